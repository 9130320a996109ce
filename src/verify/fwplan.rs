//! Which probes prove a firewall, and what each must show (pure).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::derive::{ALT_GRID, Action, Expectation, FirewallPlan, FwProbe, Place, TCP_CALLBACK, v4};
use super::model::{self, Leg, Path, Proto, Verdict};
use super::nat;
use super::rules;
use crate::firewall::FirewallSpec;
use crate::stun::Behaviour;
use crate::topology::{Topology, Uplink};

/// Port of every node's echo responder.
const ECHO: u16 = crate::plan::ECHO_PORT;

/// Outbound probes every firewall gets: (protocol, port, what the port stands for).
pub(super) const OUTBOUND: [(Proto, u16, &str); 7] = [
    (Proto::Udp, 3478, "STUN/TURN"),
    (Proto::Udp, 5349, "STUN/DTLS"),
    (Proto::Tcp, 3478, "TURN/TCP"),
    (Proto::Tcp, 5349, "TURN/TLS"),
    (Proto::Tcp, 443, "TLS"),
    (Proto::Udp, 53, "DNS"),
    (Proto::Tcp, 80, "HTTP"),
];

fn declared(fw: &FirewallSpec) -> String {
    let mut parts: Vec<String> = fw.presets.iter().map(|p| p.name().to_string()).collect();
    parts.extend(fw.rules.iter().map(|r| format!("`{r}`")));
    if parts.is_empty() { "no rules".into() } else { parts.join(", ") }
}

/// Hosts behind `router` (at any depth), the best vantage first: no firewall of its
/// own, then fewest routers in between; then routers directly on its LAN.
fn behind<'a>(topo: &'a Topology, router: &str) -> Vec<&'a str> {
    fn depth<'t>(topo: &'t Topology, router: &str, mut up: &'t Uplink) -> Option<usize> {
        let mut d = 0;
        while let Uplink::Router(p) = up {
            if p == router {
                return Some(d);
            }
            d += 1;
            up = &topo.router(p)?.wan.uplink;
        }
        None
    }
    let mut hosts: Vec<(bool, usize, &str)> = topo
        .hosts
        .iter()
        .filter_map(|h| Some((h.firewall.is_some(), depth(topo, router, &h.uplink.uplink)?, h.name.as_str())))
        .collect();
    hosts.sort();
    let mut v: Vec<&str> = hosts.into_iter().map(|h| h.2).collect();
    v.extend(nat::lan_members(topo, router).into_iter().filter(|m| topo.router(m).is_some()));
    v
}

fn probe(what: String, from: Place, action: Action, v: Verdict) -> FwProbe {
    FwProbe { what, from, action, expected: Expectation::from(v) }
}

/// Unsolicited traffic through the NATs and firewalls above the vantage: a flow opened
/// towards `a`, then a new flow from `b` (another address) to the same mapping.
fn unsolicited(path: &Path, proto: Proto, a: SocketAddrV4, b: SocketAddrV4) -> Verdict {
    let [req, reply] = Leg::request_reply(proto, a);
    let again = Leg { new: false, ..req };
    let other = Leg { outbound: false, proto, far: b, near_port: 0, new: true };
    // TCP: the handshake's answer and the rest of the called-back connection.
    let answer = [Leg { outbound: true, new: false, ..other }, Leg { new: false, ..other }];
    let mut legs = vec![req, reply, again, other];
    if proto == Proto::Tcp {
        legs.extend(answer);
    }
    let fw = model::evaluate(path, &legs);
    let filtered: Vec<String> = path
        .nats
        .iter()
        .filter_map(|(r, mode)| {
            let (_, f, _, _) = nat::own_behaviour(*mode)?;
            (f != Behaviour::EndpointIndependent).then(|| format!("{f} filtering of the NAT at {r}"))
        })
        .collect();
    match (fw, filtered.is_empty()) {
        (fw, true) => fw,
        (Verdict::Drop(w), false) => Verdict::Drop(format!("{}; {w}", filtered.join("; "))),
        (_, false) => Verdict::Drop(filtered.join("; ")),
    }
}

pub(super) fn firewall_plan(topo: &Topology, node: &str, fw: &FirewallSpec, server: [Ipv4Addr; 2]) -> FirewallPlan {
    let is_host = topo.hosts.iter().any(|h| h.name == node);
    let mut p = FirewallPlan {
        node: node.into(),
        declared: declared(fw),
        vantage: None,
        probes: Vec::new(),
        notes: Vec::new(),
    };
    for (i, r) in fw.rules.iter().enumerate() {
        let rule = rules::parse(r);
        if !rule.modelled() {
            p.notes.push(format!("rule {} `{r}` is not modelled: probes it may match are not judged", i + 1));
        } else if rule.probe_target().is_none() {
            p.notes.push(format!("rule {} `{r}` names no port to probe (or matches addresses)", i + 1));
        }
    }
    let vantage = if is_host { Some(node) } else { behind(topo, node).into_iter().next() };
    let Some(v) = vantage else {
        p.notes.push("nothing behind it to probe from (add a host on its LAN to check it)".into());
        return p;
    };
    p.vantage = Some(v.into());
    let Some(path) = model::path(topo, v, None) else { return p };
    let from = || Place::Node(v.to_string());
    let mut targets: Vec<(Proto, u16, String)> = OUTBOUND.iter().map(|(pr, po, w)| (*pr, *po, w.to_string())).collect();
    for (i, r) in fw.rules.iter().enumerate() {
        if let Some((pr, po)) = rules::parse(r).probe_target()
            && !targets.iter().any(|t| (t.0, t.1) == (pr, po))
        {
            targets.push((pr, po, format!("rule {}", i + 1)));
        }
    }
    for (proto, port, why) in targets {
        let to = v4(server[0], port);
        let mut legs = Leg::request_reply(proto, to).to_vec();
        let action = match proto {
            Proto::Udp => Action::Stun { to: to.into() },
            Proto::Tcp => {
                legs.push(Leg { new: false, ..legs[0] });
                Action::Tcp { to: to.into() }
            }
        };
        p.probes.push(probe(format!("{proto} {port} out ({why})"), from(), action, model::evaluate(&path, &legs)));
    }
    // Unsolicited inbound: straight to the echo responder where it is routable (a host's
    // firewall from its gateway side; a router's when nothing translates above the
    // vantage), else through a mapping the vantage opened.
    let parent = topo.hosts.iter().find(|h| h.name == node).and_then(|h| match &h.uplink.uplink {
        Uplink::Router(r) => topo.router(r),
        Uplink::Internet => None,
    });
    let (direct, sender, src) = match (is_host, parent) {
        (true, Some(r)) => (model::path(topo, v, Some(&r.name)), Place::Node(r.name.clone()), r.lan_address),
        _ => (path.nats.is_empty().then(|| path.clone()), Place::ProbeServer, server[0]),
    };
    let sender_name = match &sender {
        Place::Node(n) => n.clone(),
        Place::ProbeServer => "the probe server".into(),
    };
    match direct {
        Some(dpath) => {
            let to = SocketAddr::from((dpath.address, ECHO));
            for proto in [Proto::Udp, Proto::Tcp] {
                let far = v4(src, 0);
                let req = Leg { outbound: false, proto, far, near_port: ECHO, new: true };
                let mut legs = vec![req, Leg { outbound: true, new: false, ..req }];
                let action = match proto {
                    Proto::Udp => Action::UdpEcho { to },
                    Proto::Tcp => {
                        legs.push(Leg { new: false, ..req });
                        Action::Tcp { to }
                    }
                };
                let what = format!("{proto} {ECHO} in, unsolicited (from {sender_name})");
                p.probes.push(probe(what, sender.clone(), action, model::evaluate(&dpath, &legs)));
            }
        }
        None => {
            // UDP: the answer to a CHANGE-REQUEST from the grid's other address and port.
            let (a, b) = (v4(server[0], ALT_GRID.0), v4(server[1], ALT_GRID.1));
            let action = Action::Unsolicited { via: a.into() };
            let what = "udp in, unsolicited (to a mapping)".to_string();
            p.probes.push(probe(what, from(), action, unsolicited(&path, Proto::Udp, a, b)));
            // TCP: the call-back service connects from its other address (ephemeral port).
            let (a, b) = (v4(server[0], TCP_CALLBACK), v4(server[1], 0));
            let action = Action::UnsolicitedTcp { via: a.into() };
            let what = "tcp in, unsolicited (to a mapping)".to_string();
            p.probes.push(probe(what, from(), action, unsolicited(&path, Proto::Tcp, a, b)));
        }
    }
    p
}
