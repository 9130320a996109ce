//! The IPv6 side of each IPv6 router, as probes from a host on its LAN (pure): outbound
//! reaches the lab's STUN server over IPv6; the address the server sees is what the mode
//! says (the host's own for `public` and `nat64`, the router's WAN address for `nat66`,
//! the host part under the public /64 for `nptv6`); an answer from the server's other
//! address and port, unsolicited, is dropped (the stateful firewall); and behind `nat64`,
//! the server's IPv4 address through the NAT64 prefix is answered, seen from the router's
//! IPv4 WAN address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use super::derive::{Action, Expectation, FirewallPlan, FwProbe, Place};
use super::model::Verdict;
use crate::plan::STUN_PORTS;
use crate::servers::{Implementation, ServiceKind};
use crate::topology::ipv6::{Ipv6Mode, RouterV6};
use crate::topology::{Topology, Uplink};

/// A probe that must pass.
fn must_pass(what: String, from: &str, action: Action) -> FwProbe {
    FwProbe {
        what,
        from: Place::Node(from.into()),
        action,
        expected: Expectation { pass: Some(true), why: "allowed".into() },
    }
}

/// `host`'s address with its /64 swapped for `to` (NPTv6 keeps the host part).
fn swap_prefix(host: Ipv6Addr, to: ipnet::Ipv6Net) -> Ipv6Addr {
    let (h, p) = (host.segments(), to.network().segments());
    Ipv6Addr::new(p[0], p[1], p[2], p[3], h[4], h[5], h[6], h[7])
}

/// One plan per IPv6 router with an IPv6 host on its LAN.
pub(super) fn ipv6_plans(topo: &Topology) -> Vec<FirewallPlan> {
    let answers = |s: &&crate::topology::Server| s.services.iter().any(|x| x.kind.answers_stun());
    let stun6 = topo.servers.iter().filter(answers).find(|s| !s.addresses6.is_empty());
    // CHANGE-REQUEST needs an RFC 5780 server (a STUN service, not a TURN one) on two
    // IPv6 addresses.
    let rfc5780 = |s: &&crate::topology::Server| {
        s.services.iter().any(|x| x.kind == ServiceKind::Stun && x.implementation == Implementation::BuiltIn)
    };
    let grid6 = topo.servers.iter().filter(rfc5780).find(|s| s.addresses6.len() > 1);
    let stun4 = topo.servers.iter().find(answers);
    topo.routers
        .iter()
        .filter_map(|r| r.ipv6.map(|v| (r, v)))
        .map(|(r, v6)| {
            let mut p = FirewallPlan {
                node: r.name.clone(),
                declared: format!("ipv6 = \"{}\" (IPv6)", v6.mode.name()),
                vantage: None,
                probes: Vec::new(),
                notes: Vec::new(),
            };
            let on_lan = |h: &&crate::topology::Host| matches!(&h.uplink.uplink, Uplink::Router(x) if *x == r.name);
            let Some(h) = topo.hosts.iter().filter(on_lan).find(|h| h.ipv6.is_some() && h.firewall.is_none()) else {
                p.notes.push("IPv6 not probed: no IPv6 host without a firewall on its LAN".into());
                return p;
            };
            p.vantage = Some(h.name.clone());
            let me = h.ipv6.expect("an IPv6 host").address;
            match stun6 {
                Some(s) => {
                    let to = SocketAddr::new(IpAddr::V6(s.addresses6[0]), STUN_PORTS.0);
                    let seen = mapped(v6, me);
                    let what = format!("udp {} out over IPv6, seen as {seen}", STUN_PORTS.0);
                    p.probes.push(must_pass(what, &h.name, Action::StunMapped { to, mapped: IpAddr::V6(seen) }));
                }
                None => p.notes.push("IPv6 mapping not probed: no STUN server with IPv6 in the lab".into()),
            }
            match grid6 {
                Some(s) => {
                    let via = SocketAddr::new(IpAddr::V6(s.addresses6[0]), STUN_PORTS.0);
                    let what = "udp in over IPv6, unsolicited (the server's other address and port)".to_string();
                    let why = "the stateful firewall lets in only replies (RFC 6092)".to_string();
                    p.probes.push(FwProbe {
                        what,
                        from: Place::Node(h.name.clone()),
                        action: Action::Unsolicited { via },
                        expected: Expectation::from(Verdict::Drop(why)),
                    });
                }
                None => {
                    p.notes.push("unsolicited IPv6 not probed: no built-in STUN server on two IPv6 addresses".into())
                }
            }
            if let (Ipv6Mode::Nat64, Some(s)) = (v6.mode, stun4) {
                let to = SocketAddr::new(IpAddr::V6(crate::nat::nat64::synthesize(s.addresses[0])), STUN_PORTS.0);
                let what =
                    format!("udp {} to {} through NAT64, seen as {}", STUN_PORTS.0, s.addresses[0], r.wan.address);
                p.probes.push(must_pass(what, &h.name, Action::StunMapped { to, mapped: IpAddr::V4(r.wan.address) }));
            }
            p
        })
        .collect()
}

/// The address the internet sees for LAN host `me` of a router with `v6`.
fn mapped(v6: RouterV6, me: Ipv6Addr) -> Ipv6Addr {
    match v6.mode {
        Ipv6Mode::Nat66 => v6.wan.address,
        Ipv6Mode::Nptv6 => v6.routed.map_or(me, |ext| swap_prefix(me, ext)),
        Ipv6Mode::Public | Ipv6Mode::Nat64 | Ipv6Mode::None => me,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(src: &str) -> Vec<FirewallPlan> {
        ipv6_plans(&crate::spec::parse_str("t.toml", src).unwrap().topology)
    }

    const LAB: &str = "[router.a]\nwan = \"internet\"\nipv6 = \"MODE\"\n[host.h]\non = \"a\"\nfamily = \"v6\"\n[server.stun]\nservices = [\"stun\"]\n";

    #[test]
    fn each_mode_says_what_the_server_sees() {
        let seen = |mode: &str| match &plans(&LAB.replace("MODE", mode))[0].probes[0].action {
            Action::StunMapped { mapped, .. } => mapped.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(seen("public"), "2001:db8:1:0:192:168:1:10");
        assert_eq!(seen("nat66"), "2001:db8::203:0:113:10");
        assert_eq!(seen("nptv6"), "2001:db8:1:0:192:168:1:10");
        let p = plans(&LAB.replace("MODE", "nat64"));
        assert_eq!(p[0].probes.len(), 3, "{p:?}");
        assert!(matches!(&p[0].probes[2].action, Action::StunMapped { to, mapped }
            if to.to_string() == "[2001:db8:ffff:64::c633:640a]:3478" && mapped.to_string() == "203.0.113.10"));
        assert_eq!(p[0].probes[1].expected.pass, Some(false));
    }

    #[test]
    fn without_an_ipv6_stun_server_nothing_is_probed() {
        let p = plans(
            &LAB.replace("MODE", "public").replace("services = [\"stun\"]", "services = [\"stun\"]\nfamily = \"v4\""),
        );
        assert!(p[0].probes.is_empty() && p[0].notes[0].contains("no STUN server with IPv6"), "{p:?}");
        // A TURN server answers STUN but not CHANGE-REQUEST: no unsolicited probe with it.
        let p = plans(&LAB.replace("MODE", "public").replace("services = [\"stun\"]", "services = [\"turn\"]"));
        assert_eq!(p[0].probes.len(), 1, "{p:?}");
        assert!(p[0].notes[0].contains("two IPv6 addresses"), "{p:?}");
    }
}
