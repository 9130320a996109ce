//! The pure function Topology -> Plan.

use std::collections::BTreeMap;

use ipnet::Ipv4Net;

use super::{NodeKind, NodePlan, Plan, ServiceEndpoint, Step, ns_name, routes};
use crate::firewall::{FirewallCtx, FwRole};
use crate::nat::{NatMode, RouterNat};
use crate::topology::{Attachment, INTERNET, PUBLIC_RANGES, Router, Topology, Uplink};

/// UDP and TCP port of the echo responder on every node.
pub const ECHO_PORT: u16 = 7;

/// Builds the plan for `topo` with namespaces named `<prefix>-<node>`.
pub fn plan(topo: &Topology, prefix: &str) -> Plan {
    let mut b = Builder {
        prefix: prefix.to_string(),
        steps: Vec::new(),
        ports: BTreeMap::new(),
    };
    let inet = b.ns(INTERNET);
    let mut nodes = vec![NodePlan {
        name: INTERNET.into(),
        ns: inet.clone(),
        kind: NodeKind::Internet,
        addresses: internet_gateways().iter().map(|n| n.addr()).collect(),
    }];
    nodes.extend(topo.routers.iter().map(|r| NodePlan {
        name: r.name.clone(),
        ns: b.ns(&r.name),
        kind: NodeKind::Router,
        addresses: vec![r.wan.address, r.lan_address],
    }));
    nodes.extend(topo.hosts.iter().map(|h| NodePlan {
        name: h.name.clone(),
        ns: b.ns(&h.name),
        kind: NodeKind::Host,
        addresses: vec![h.uplink.address],
    }));
    nodes.extend(topo.servers.iter().map(|s| NodePlan {
        name: s.name.clone(),
        ns: b.ns(&s.name),
        kind: NodeKind::Server,
        addresses: s.addresses.clone(),
    }));

    for n in &nodes {
        b.steps.push(Step::AddNamespace { ns: n.ns.clone() });
    }
    for n in &nodes {
        // IPv6 off: link-local addresses would add host candidates the lab never meant.
        b.sysctl(&n.ns, "net.ipv6.conf.all.disable_ipv6", "1");
        b.sysctl(&n.ns, "net.ipv6.conf.default.disable_ipv6", "1");
        if matches!(n.kind, NodeKind::Internet | NodeKind::Router) {
            b.sysctl(&n.ns, "net.ipv4.ip_forward", "1");
        }
        b.steps.push(Step::LinkUp {
            ns: n.ns.clone(),
            dev: "lo".into(),
        });
    }

    b.bridge(&inet, "br0", &internet_gateways());
    for r in &topo.routers {
        let ns = b.ns(&r.name);
        b.bridge(
            &ns,
            "lan",
            &[Ipv4Net::new(r.lan_address, r.lan.prefix_len()).unwrap()],
        );
    }
    for r in &topo.routers {
        b.uplink(&r.name, "wan", &r.wan);
    }
    for h in &topo.hosts {
        b.uplink(&h.name, "eth0", &h.uplink);
    }
    for s in &topo.servers {
        let ns = b.ns(&s.name);
        let dev = "eth0";
        b.attach(&ns, dev, INTERNET);
        for a in &s.addresses {
            let net = internet_gateways()
                .into_iter()
                .find(|n| n.contains(a))
                .unwrap_or_default();
            b.steps.push(Step::AddAddress {
                ns: ns.clone(),
                dev: dev.into(),
                address: Ipv4Net::new(*a, net.prefix_len()).unwrap(),
            });
        }
        b.steps.push(Step::LinkUp {
            ns: ns.clone(),
            dev: dev.into(),
        });
        b.default_route(&ns, s.gateway);
    }
    for route in routes::lan_routes(topo) {
        b.steps.push(Step::AddRoute {
            ns: b.ns(&route.at),
            dst: route.dst,
            via: route.via,
        });
    }
    for r in &topo.routers {
        for (purpose, ruleset) in router_rulesets(r) {
            b.steps.push(Step::Nftables {
                ns: b.ns(&r.name),
                purpose,
                ruleset,
            });
        }
    }
    for h in &topo.hosts {
        if let Some(fw) = &h.firewall {
            let ruleset = crate::firewall::ruleset(fw, &FirewallCtx { role: FwRole::Host });
            b.steps.push(Step::Nftables {
                ns: b.ns(&h.name),
                purpose: "firewall".into(),
                ruleset,
            });
        }
    }
    let mut services = Vec::new();
    for s in &topo.servers {
        for svc in &s.services {
            if let Some(args) = service_args(svc, s, topo) {
                b.steps.push(Step::Spawn {
                    ns: b.ns(&s.name),
                    service: svc.clone(),
                    args,
                });
            }
            let port = match svc.as_str() {
                "echo" => ECHO_PORT,
                "turn" => TURN_PORT,
                _ => STUN_PORTS.0,
            };
            services.push(ServiceEndpoint {
                node: s.name.clone(),
                service: svc.clone(),
                address: (s.addresses[0], port).into(),
            });
        }
    }
    // One responder process serves UDP/TCP echo in every namespace of the lab.
    let mut args = vec![
        "echo-server".to_string(),
        "--port".into(),
        ECHO_PORT.to_string(),
    ];
    for n in &nodes {
        args.extend(["--netns".to_string(), n.ns.clone()]);
    }
    b.steps.push(Step::Spawn {
        ns: inet,
        service: "echo".into(),
        args,
    });
    Plan {
        prefix: prefix.to_string(),
        nodes,
        services,
        steps: b.steps,
    }
}

/// The internet's own addresses: `.1` of each documentation range.
pub(crate) fn internet_gateways() -> Vec<Ipv4Net> {
    PUBLIC_RANGES
        .iter()
        .map(|r| {
            let n: Ipv4Net = r.parse().unwrap();
            Ipv4Net::new(
                std::net::Ipv4Addr::from(u32::from(n.network()) + 1),
                n.prefix_len(),
            )
            .unwrap()
        })
        .collect()
}

/// True when the router only routes (`nat = "none"`).
pub(crate) fn nat_disabled(r: &Router) -> bool {
    r.nat == NatMode::None
}

/// nftables rulesets of a router: its NAT, then its firewall.
fn router_rulesets(r: &Router) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if !nat_disabled(r) {
        let nat = RouterNat {
            wan_if: "wan".into(),
            wan_addr: r.wan.address,
            lan_if: "lan".into(),
            lan_subnet: r.lan,
            one_to_one_host: r.one_to_one_host,
            mode: r.nat,
        };
        v.push(("nat".into(), crate::nat::ruleset(&nat)));
    }
    if let Some(fw) = &r.firewall {
        let ctx = FirewallCtx {
            role: FwRole::Router {
                wan_if: "wan".into(),
                lan_if: "lan".into(),
            },
        };
        v.push(("firewall".into(), crate::firewall::ruleset(fw, &ctx)));
    }
    v
}

/// The STUN server's UDP ports: primary and RFC 5780 alternate.
pub const STUN_PORTS: (u16, u16) = (3478, 3479);

/// TURN's UDP (and TCP) port; TLS is on 443.
pub const TURN_PORT: u16 = 3478;
/// TURN realm of every lab.
pub const TURN_REALM: &str = "icelab";
/// TURN user of every lab. Fixed: the server is only reachable inside the lab.
pub const TURN_USER: &str = "icelab";
/// TURN password of every lab (see [`TURN_USER`]).
pub const TURN_PASSWORD: &str = "icelab";

/// Command line of a server's service (`echo` is served lab-wide by one process).
fn service_args(svc: &str, s: &crate::topology::Server, topo: &Topology) -> Option<Vec<String>> {
    match svc {
        "turn" => {
            let mut a = vec![
                "turn-server".to_string(),
                "--public-ip".into(),
                s.addresses[0].to_string(),
                "--realm".into(),
                TURN_REALM.into(),
                "--user".into(),
                TURN_USER.into(),
                "--password".into(),
                TURN_PASSWORD.into(),
            ];
            // Relays reach the lab (public ranges and every LAN) and nothing else.
            let lans = topo.routers.iter().map(|r| r.lan.to_string());
            for net in PUBLIC_RANGES.iter().map(|r| r.to_string()).chain(lans) {
                a.extend(["--allow".into(), net]);
            }
            Some(a)
        }
        "stun" => {
            let mut a = vec![
                "stun-server".to_string(),
                "--primary".into(),
                s.addresses[0].to_string(),
            ];
            if let Some(alt) = s.addresses.get(1) {
                a.extend(["--alternate".into(), alt.to_string()]);
            }
            a.extend([
                "--port".into(),
                STUN_PORTS.0.to_string(),
                "--alt-port".into(),
                STUN_PORTS.1.to_string(),
            ]);
            Some(a)
        }
        _ => None,
    }
}

struct Builder {
    prefix: String,
    steps: Vec<Step>,
    /// Next free port number per parent namespace.
    ports: BTreeMap<String, usize>,
}

impl Builder {
    fn ns(&self, node: &str) -> String {
        ns_name(&self.prefix, node)
    }

    fn sysctl(&mut self, ns: &str, key: &str, value: &str) {
        self.steps.push(Step::Sysctl {
            ns: ns.into(),
            key: key.into(),
            value: value.into(),
        });
    }

    fn bridge(&mut self, ns: &str, name: &str, addresses: &[Ipv4Net]) {
        self.steps.push(Step::AddBridge {
            ns: ns.into(),
            name: name.into(),
        });
        for a in addresses {
            self.steps.push(Step::AddAddress {
                ns: ns.into(),
                dev: name.into(),
                address: *a,
            });
        }
        self.steps.push(Step::LinkUp {
            ns: ns.into(),
            dev: name.into(),
        });
    }

    /// A veth from the node to its parent's bridge; the parent end is `p<N>`.
    fn attach(&mut self, ns: &str, dev: &str, parent: &str) {
        let parent_ns = self.ns(parent);
        let bridge = if parent == INTERNET { "br0" } else { "lan" };
        let n = self.ports.entry(parent_ns.clone()).or_insert(0);
        let port = format!("p{n}");
        *n += 1;
        self.steps.push(Step::AddVeth {
            ns: ns.into(),
            name: dev.into(),
            peer_ns: parent_ns.clone(),
            peer_name: port.clone(),
        });
        self.steps.push(Step::SetMaster {
            ns: parent_ns.clone(),
            dev: port.clone(),
            master: bridge.into(),
        });
        self.steps.push(Step::LinkUp {
            ns: parent_ns,
            dev: port,
        });
    }

    fn uplink(&mut self, node: &str, dev: &str, a: &Attachment) {
        let ns = self.ns(node);
        let parent = match &a.uplink {
            Uplink::Internet => INTERNET,
            Uplink::Router(r) => r.as_str(),
        };
        self.attach(&ns, dev, parent);
        self.steps.push(Step::AddAddress {
            ns: ns.clone(),
            dev: dev.into(),
            address: a.subnet,
        });
        self.steps.push(Step::LinkUp {
            ns: ns.clone(),
            dev: dev.into(),
        });
        self.default_route(&ns, a.gateway);
    }

    fn default_route(&mut self, ns: &str, via: std::net::Ipv4Addr) {
        self.steps.push(Step::AddRoute {
            ns: ns.into(),
            dst: "0.0.0.0/0".parse().unwrap(),
            via,
        });
    }
}
