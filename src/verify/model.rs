//! What the file says a firewall does to a packet, and which firewalls and NATs a
//! probe's packets cross: the pure model the firewall expectations come from.
//!
//! The presets are modelled from their documented meaning (README, "Firewall presets"),
//! not from the ruleset text, so a ruleset that drifts from its documentation is caught.

use std::net::{Ipv4Addr, SocketAddrV4};

use serde::Serialize;

use super::rules::{self, RuleMatch, RuleVerdict};
use crate::firewall::{FirewallPreset, FirewallSpec};
use crate::nat::NatMode;
use crate::topology::{Topology, Uplink};

/// The STUN/TURN ports `stun-port-blocked` closes.
pub const STUN_TURN_PORTS: [u16; 2] = [3478, 5349];

/// Transport protocol of a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Proto::Udp => "udp",
            Proto::Tcp => "tcp",
        })
    }
}

/// Direction of a packet through a firewall, seen from the side it protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Leaving the protected side (router: LAN -> WAN; host: output).
    Out,
    /// Arriving at it.
    In,
}

/// One packet as a firewall sees it. Port 0 is "some ephemeral port".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Protocol.
    pub proto: Proto,
    /// Source address.
    pub src: Ipv4Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
    /// True for the first packet of a flow (conntrack `new`), false for `established`.
    pub new: bool,
}

/// A firewall's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The packet passes.
    Pass,
    /// It is dropped; why.
    Drop(String),
    /// The model cannot tell; why.
    Unknown(String),
}

impl Verdict {
    /// The reason of a drop or an unknown; empty for a pass.
    pub fn reason(&self) -> &str {
        match self {
            Verdict::Pass => "",
            Verdict::Drop(w) | Verdict::Unknown(w) => w,
        }
    }
}

/// Why a preset drops the packet, if it does.
fn preset_drops(p: FirewallPreset, dir: Dir, pkt: &Packet) -> Option<&'static str> {
    match (p, dir) {
        (FirewallPreset::UdpBlocked, _) if pkt.proto == Proto::Udp => Some("no UDP"),
        (FirewallPreset::TcpOnly443, Dir::Out) if pkt.new && !(pkt.proto == Proto::Tcp && pkt.dport == 443) => {
            Some("only new TCP to 443 goes out")
        }
        (FirewallPreset::StunPortBlocked, Dir::Out) if STUN_TURN_PORTS.contains(&pkt.dport) => {
            Some("ports 3478/5349 blocked")
        }
        (FirewallPreset::StunPortBlocked, Dir::In) if STUN_TURN_PORTS.contains(&pkt.sport) => {
            Some("ports 3478/5349 blocked")
        }
        (FirewallPreset::InboundBlocked, Dir::In) if pkt.new => Some("nothing unsolicited comes in"),
        _ => None,
    }
}

/// What `spec` does to `pkt` crossing it in direction `dir`: presets first (each can
/// only drop), then the custom rules in order.
pub fn judge(spec: &FirewallSpec, dir: Dir, pkt: &Packet) -> Verdict {
    for p in &spec.presets {
        if let Some(why) = preset_drops(*p, dir, pkt) {
            return Verdict::Drop(format!("{}: {why}", p.name()));
        }
    }
    for (i, text) in spec.rules.iter().enumerate() {
        let rule = rules::parse(text);
        match (rule.matches(pkt), rule.verdict()) {
            (RuleMatch::No, _) | (_, Some(RuleVerdict::Continue)) => {}
            (RuleMatch::Yes, Some(RuleVerdict::Block)) => {
                return Verdict::Drop(format!("rule {} `{}`", i + 1, rule.text()));
            }
            (RuleMatch::Yes, Some(RuleVerdict::Accept | RuleVerdict::Return)) => return Verdict::Pass,
            (RuleMatch::Yes, None) => {
                return Verdict::Unknown(format!("rule {} `{}`: verdict not modelled", i + 1, rule.text()));
            }
            (RuleMatch::Maybe(why), _) => return Verdict::Unknown(why),
        }
    }
    Verdict::Pass
}

/// One firewall on a probe's path.
#[derive(Debug, Clone, PartialEq)]
pub struct Hop<'a> {
    /// Node that has the firewall.
    pub node: &'a str,
    /// Its rules.
    pub fw: &'a FirewallSpec,
    /// The vantage's address as this firewall sees it (after NATs below it).
    pub inner: Ipv4Addr,
}

/// The firewalls and NATs between a vantage and the outside.
#[derive(Debug, Clone, PartialEq)]
pub struct Path<'a> {
    /// Firewalls, nearest first. For all of them the vantage is on the protected side.
    pub hops: Vec<Hop<'a>>,
    /// Translating routers on the path (name, mode), nearest first.
    pub nats: Vec<(&'a str, NatMode)>,
    /// The vantage's own address.
    pub address: Ipv4Addr,
}

/// A node's address and where its uplink is.
fn attachment<'a>(topo: &'a Topology, node: &str) -> Option<(Ipv4Addr, &'a Uplink, Option<&'a FirewallSpec>)> {
    if let Some(h) = topo.hosts.iter().find(|h| h.name == node) {
        return Some((h.uplink.address, &h.uplink.uplink, h.firewall.as_ref()));
    }
    // A router's own traffic does not cross its firewall (that filters forwarded traffic).
    topo.router(node).map(|r| (r.wan.address, &r.wan.uplink, None))
}

/// The path from `vantage` (a host or a router) up to the router `upto` (exclusive) or,
/// with None, to the internet.
pub fn path<'a>(topo: &'a Topology, vantage: &'a str, upto: Option<&str>) -> Option<Path<'a>> {
    let (address, mut up, own) = attachment(topo, vantage)?;
    let mut p = Path { hops: Vec::new(), nats: Vec::new(), address };
    if let Some(fw) = own {
        p.hops.push(Hop { node: vantage, fw, inner: address });
    }
    let mut inner = address;
    while let Uplink::Router(name) = up {
        if Some(name.as_str()) == upto {
            break;
        }
        let r = topo.router(name)?;
        if let Some(fw) = &r.firewall {
            p.hops.push(Hop { node: &r.name, fw, inner });
        }
        if r.nat != NatMode::None {
            p.nats.push((&r.name, r.nat));
            inner = r.wan.address;
        }
        up = &r.wan.uplink;
    }
    Some(p)
}

/// One packet of a probe's exchange, between the vantage and a far end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leg {
    /// True when it travels from the vantage towards the far end.
    pub outbound: bool,
    /// Protocol.
    pub proto: Proto,
    /// The far end (port 0: ephemeral).
    pub far: SocketAddrV4,
    /// The vantage's port (0: ephemeral).
    pub near_port: u16,
    /// First packet of its flow.
    pub new: bool,
}

impl Leg {
    /// A request from the vantage and its reply, for a client on an ephemeral port.
    pub fn request_reply(proto: Proto, far: SocketAddrV4) -> [Leg; 2] {
        [
            Leg { outbound: true, proto, far, near_port: 0, new: true },
            Leg { outbound: false, proto, far, near_port: 0, new: false },
        ]
    }
}

/// Do all legs cross every firewall on the path? A definite drop wins over an unknown.
pub fn evaluate(path: &Path, legs: &[Leg]) -> Verdict {
    let mut unknown = None;
    for leg in legs {
        for hop in &path.hops {
            let (pkt, dir) = if leg.outbound {
                let p = Packet {
                    proto: leg.proto,
                    src: hop.inner,
                    sport: leg.near_port,
                    dst: *leg.far.ip(),
                    dport: leg.far.port(),
                    new: leg.new,
                };
                (p, Dir::Out)
            } else {
                let p = Packet {
                    proto: leg.proto,
                    src: *leg.far.ip(),
                    sport: leg.far.port(),
                    dst: hop.inner,
                    dport: leg.near_port,
                    new: leg.new,
                };
                (p, Dir::In)
            };
            match judge(hop.fw, dir, &pkt) {
                Verdict::Pass => {}
                Verdict::Drop(why) => return Verdict::Drop(format!("{why} (firewall of {})", hop.node)),
                Verdict::Unknown(why) => unknown = unknown.or(Some(format!("{why} (firewall of {})", hop.node))),
            }
        }
    }
    unknown.map_or(Verdict::Pass, Verdict::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(proto: Proto, dport: u16) -> Packet {
        Packet {
            proto,
            src: Ipv4Addr::new(192, 168, 1, 10),
            sport: 0,
            dst: Ipv4Addr::new(198, 51, 100, 250),
            dport,
            new: true,
        }
    }

    fn spec(presets: &[FirewallPreset], rules: &[&str]) -> FirewallSpec {
        FirewallSpec { presets: presets.to_vec(), rules: rules.iter().map(|r| r.to_string()).collect() }
    }

    #[test]
    fn presets_as_documented() {
        use FirewallPreset::*;
        let pass = |s: &FirewallSpec, d, p: &Packet| judge(s, d, p) == Verdict::Pass;
        let udp = spec(&[UdpBlocked], &[]);
        assert!(!pass(&udp, Dir::Out, &out(Proto::Udp, 3478)));
        assert!(pass(&udp, Dir::Out, &out(Proto::Tcp, 3478)));
        let t443 = spec(&[TcpOnly443], &[]);
        assert!(pass(&t443, Dir::Out, &out(Proto::Tcp, 443)));
        assert!(!pass(&t443, Dir::Out, &out(Proto::Tcp, 80)));
        assert!(!pass(&t443, Dir::Out, &out(Proto::Udp, 53)));
        let stun = spec(&[StunPortBlocked], &[]);
        assert!(!pass(&stun, Dir::Out, &out(Proto::Tcp, 5349)));
        assert!(pass(&stun, Dir::Out, &out(Proto::Udp, 3479)));
        let inbound = spec(&[InboundBlocked], &[]);
        assert!(pass(&inbound, Dir::Out, &out(Proto::Udp, 3478)));
        assert!(!pass(&inbound, Dir::In, &out(Proto::Udp, 7)));
        let mut reply = out(Proto::Udp, 7);
        reply.new = false;
        assert!(pass(&inbound, Dir::In, &reply));
        // Presets intersect, then custom rules run in order.
        let both = spec(&[StunPortBlocked], &["tcp dport 443 accept", "meta l4proto tcp drop"]);
        assert!(pass(&both, Dir::Out, &out(Proto::Tcp, 443)));
        assert!(matches!(judge(&both, Dir::Out, &out(Proto::Tcp, 80)), Verdict::Drop(w) if w.contains("rule 2")));
        assert!(matches!(judge(&both, Dir::Out, &out(Proto::Tcp, 3478)), Verdict::Drop(w) if w.contains("stun")));
    }

    #[test]
    fn paths_cross_router_firewalls_and_translate_addresses() {
        let topo = crate::spec::parse_str(
            "t.toml",
            "[router.carrier]\nwan = \"internet\"\nnat = \"cgnat\"\nfirewall = \"tcp-443-only\"\n\
             [router.home]\nwan = \"carrier\"\nfirewall = \"stun-port-blocked\"\n\
             [host.alice]\non = \"home\"\nfirewall = \"inbound-blocked\"\n",
        )
        .unwrap()
        .topology;
        let p = path(&topo, "alice", None).unwrap();
        let nodes: Vec<&str> = p.hops.iter().map(|h| h.node).collect();
        assert_eq!(nodes, ["alice", "home", "carrier"]);
        assert_eq!(p.hops[2].inner, topo.router("home").unwrap().wan.address);
        assert_eq!(p.nats.iter().map(|n| n.0).collect::<Vec<_>>(), ["home", "carrier"]);
        let far = SocketAddrV4::new(Ipv4Addr::new(198, 51, 100, 250), 443);
        assert_eq!(evaluate(&p, &Leg::request_reply(Proto::Tcp, far)), Verdict::Pass);
        let far = SocketAddrV4::new(far.ip().to_owned(), 3478);
        let v = evaluate(&p, &Leg::request_reply(Proto::Udp, far));
        assert!(matches!(v, Verdict::Drop(w) if w.contains("firewall of home")), "nearest drop first");
        // Up to home (exclusive): only alice's own firewall.
        assert_eq!(path(&topo, "alice", Some("home")).unwrap().hops.len(), 1);
        // A router's own traffic skips its own firewall.
        assert_eq!(path(&topo, "home", None).unwrap().hops.len(), 1);
    }
}
