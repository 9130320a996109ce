//! What an RFC 5780 probe on a router's LAN must see, and how its report compares.

use serde::Serialize;

use super::model::Verdict;
use super::report::{Line, Status};
use crate::nat::{Filtering, Mapping, NatMode};
use crate::stun::{Behaviour, ProbeReport};
use crate::topology::{Topology, Uplink};

/// What a probe from a router's LAN must observe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum NatExpect {
    /// No translation anywhere between the LAN and the internet (plain routers only).
    Transparent,
    /// Translation with this behaviour, composed over every NAT on the path.
    Translates {
        /// Mapping: the most dependent on the path.
        mapping: Behaviour,
        /// Filtering: the most restrictive on the path.
        filtering: Behaviour,
        /// Hairpinning; None when another NAT is upstream (not checked).
        hairpinning: Option<bool>,
        /// The shortest UDP mapping timeout on the path, in seconds.
        timeout_s: Option<u32>,
    },
}

fn mapping_word(m: Mapping) -> Behaviour {
    match m {
        Mapping::EndpointIndependent => Behaviour::EndpointIndependent,
        Mapping::AddressDependent => Behaviour::AddressDependent,
        Mapping::AddressAndPortDependent => Behaviour::AddressAndPortDependent,
    }
}

fn filtering_word(f: Filtering) -> Behaviour {
    match f {
        Filtering::EndpointIndependent => Behaviour::EndpointIndependent,
        Filtering::AddressDependent => Behaviour::AddressDependent,
        Filtering::AddressAndPortDependent => Behaviour::AddressAndPortDependent,
    }
}

/// Orders behaviours from least (EI) to most (APD) dependent.
pub fn rank(b: Behaviour) -> u8 {
    match b {
        Behaviour::EndpointIndependent => 0,
        Behaviour::AddressDependent => 1,
        Behaviour::AddressAndPortDependent => 2,
    }
}

/// (mapping, filtering, hairpinning, timeout) one NAT shows on its own; None for no NAT.
pub fn own_behaviour(mode: NatMode) -> Option<(Behaviour, Behaviour, bool, Option<u32>)> {
    match mode {
        NatMode::None => None,
        // A static 1:1 mapping forwards everything: endpoint-independent both ways.
        NatMode::OneToOne => Some((Behaviour::EndpointIndependent, Behaviour::EndpointIndependent, true, None)),
        NatMode::Napt(b) => {
            Some((mapping_word(b.mapping), filtering_word(b.filtering), b.hairpinning, Some(b.timeout_s)))
        }
    }
}

/// What a probe on `router`'s LAN must see. Nested NATs compose to the most dependent
/// mapping and the most restrictive filtering. A plain router under a NAT is None: that
/// NAT is checked on its own.
pub fn expected(topo: &Topology, router: &str) -> Option<NatExpect> {
    let r = topo.router(router)?;
    let mut acc = own_behaviour(r.nat);
    let own = acc.is_some();
    let mut upstream_nat = false;
    let mut up = &r.wan.uplink;
    while let Uplink::Router(p) = up {
        let parent = topo.router(p)?;
        if let Some((pm, pf, ph, pt)) = own_behaviour(parent.nat) {
            if !own {
                return None;
            }
            upstream_nat = true;
            acc = acc.map(|(m, f, h, t)| {
                let t = match (t, pt) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                (if rank(pm) > rank(m) { pm } else { m }, if rank(pf) > rank(f) { pf } else { f }, h && ph, t)
            });
        }
        up = &parent.wan.uplink;
    }
    Some(match acc {
        None => NatExpect::Transparent,
        Some((mapping, filtering, h, timeout_s)) => {
            NatExpect::Translates { mapping, filtering, hairpinning: (!upstream_nat).then_some(h), timeout_s }
        }
    })
}

/// Nodes directly on `router`'s LAN to probe from: hosts without a firewall of their
/// own first (nothing but the NAT in the way), then the other hosts, then child routers.
pub fn lan_members<'a>(topo: &'a Topology, router: &str) -> Vec<&'a str> {
    let on = |u: &Uplink| matches!(u, Uplink::Router(p) if p == router);
    let mut hosts: Vec<_> = topo.hosts.iter().filter(|h| on(&h.uplink.uplink)).collect();
    hosts.sort_by_key(|h| h.firewall.is_some());
    let hosts = hosts.into_iter().map(|h| h.name.as_str());
    hosts.chain(topo.routers.iter().filter(|c| on(&c.wan.uplink)).map(|c| c.name.as_str())).collect()
}

/// The filtering an RFC 5780 test observes when firewalls sit on the path as well:
/// test II (answer from the other address and port) and test III (other port only)
/// each need the NAT and the firewalls to let that unsolicited answer in.
pub fn filtering_seen(nat: Behaviour, test2: &Verdict, test3: &Verdict) -> Result<Behaviour, String> {
    let pass = |v: &Verdict| match v {
        Verdict::Pass => Ok(true),
        Verdict::Drop(_) => Ok(false),
        Verdict::Unknown(why) => Err(why.clone()),
    };
    Ok(if nat == Behaviour::EndpointIndependent && pass(test2)? {
        Behaviour::EndpointIndependent
    } else if rank(nat) <= 1 && pass(test3)? {
        Behaviour::AddressDependent
    } else {
        Behaviour::AddressAndPortDependent
    })
}

fn line(what: &str, expected: String, observed: String, ok: bool) -> Line {
    let status = if ok { Status::AsDeclared } else { Status::Mismatch };
    Line { what: what.into(), expected, observed, status, why: None }
}

fn word(b: Option<Behaviour>) -> String {
    b.map_or("untestable".into(), |b| b.to_string())
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

/// Tolerance of a lifetime measurement against the declared timeout, in seconds.
const LIFETIME_SLACK_S: f64 = 1.0;

/// Compares a probe's report with the expectation, one line per property. `filtering`
/// is what the probe must see through the firewalls ([`filtering_seen`]).
pub fn judge(expect: &NatExpect, filtering: Result<Behaviour, String>, r: &ProbeReport) -> Vec<Line> {
    let translation = format!("{} -> {}", r.local, r.mapped);
    let NatExpect::Translates { mapping, hairpinning, timeout_s, .. } = *expect else {
        let observed = if r.nat { format!("yes ({translation})") } else { "none".into() };
        return vec![line("translation", "none".into(), observed, !r.nat)];
    };
    let mut v = vec![line("translation", "yes".into(), format!("{} ({translation})", yes_no(r.nat)), r.nat)];
    v.push(line("mapping", mapping.to_string(), word(r.mapping), r.mapping == Some(mapping)));
    v.push(match filtering {
        Ok(f) => line("filtering", f.to_string(), word(r.filtering), r.filtering == Some(f)),
        Err(why) => Line {
            what: "filtering".into(),
            expected: "unknown".into(),
            observed: word(r.filtering),
            status: Status::NotChecked,
            why: Some(why),
        },
    });
    if let Some(h) = hairpinning {
        let observed = r.hairpinning.map_or("untestable".into(), yes_no);
        v.push(line("hairpinning", yes_no(h), observed, r.hairpinning == Some(h)));
    }
    if let (Some(t), Some(alive)) = (timeout_s, r.lifetime_s) {
        let t = f64::from(t);
        let observed = match r.lifetime_dead_s {
            Some(d) => format!("alive after {alive:.1} s, gone after {d:.1} s"),
            None => format!("alive after {alive:.1} s (the longest tried)"),
        };
        let ok = alive <= t + LIFETIME_SLACK_S && r.lifetime_dead_s.is_none_or(|d| d >= t - LIFETIME_SLACK_S);
        v.push(line("mapping timeout", format!("{t:.0} s"), observed, ok));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Topology;

    fn parse_str(file: &str, src: &str) -> Result<Topology, crate::spec::FileError> {
        crate::spec::parse_str(file, src).map(|s| s.topology)
    }

    #[test]
    fn nested_nats_compose_and_plain_routers_are_transparent() {
        let topo = parse_str(
            "t.toml",
            "[router.carrier]\nwan = \"internet\"\nnat = \"cgnat\"\n[router.home]\nwan = \"carrier\"\nnat = \"full-cone\"\n\
             [router.plain]\nwan = \"internet\"\nnat = \"none\"\n[router.under]\nwan = \"carrier\"\nnat = \"none\"\n",
        )
        .unwrap();
        let NatExpect::Translates { mapping, filtering, hairpinning, timeout_s } = expected(&topo, "home").unwrap()
        else {
            panic!("home translates")
        };
        assert_eq!((mapping, filtering), (Behaviour::EndpointIndependent, Behaviour::AddressAndPortDependent));
        assert_eq!((hairpinning, timeout_s), (None, Some(30)));
        assert_eq!(expected(&topo, "plain"), Some(NatExpect::Transparent));
        assert_eq!(expected(&topo, "under"), None, "checked at the carrier");
        assert_eq!(lan_members(&topo, "carrier"), ["home", "under"]);
    }

    #[test]
    fn firewalls_narrow_the_filtering_a_probe_sees() {
        let drop = Verdict::Drop("x".into());
        let ei = Behaviour::EndpointIndependent;
        assert_eq!(filtering_seen(ei, &Verdict::Pass, &Verdict::Pass), Ok(ei));
        assert_eq!(filtering_seen(ei, &drop, &Verdict::Pass), Ok(Behaviour::AddressDependent));
        assert_eq!(filtering_seen(ei, &drop, &drop), Ok(Behaviour::AddressAndPortDependent));
        let apd = Behaviour::AddressAndPortDependent;
        assert_eq!(filtering_seen(apd, &Verdict::Unknown("u".into()), &drop), Ok(apd), "NAT alone decides");
        assert!(filtering_seen(ei, &Verdict::Unknown("u".into()), &drop).is_err());
    }
}
