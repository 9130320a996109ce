//! The pure function Topology -> Plan.

use std::collections::BTreeMap;

use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::{EnginePlan, NodeKind, NodePlan, Plan, ServiceEndpoint, Step, UplinkPlan, ns_name, routes, rulesets};
use crate::impair::{LinkImpairment, TapLink};
use crate::nat::NatMode;
use crate::servers::ServiceKind;
use crate::timeline::TimelineEvent;
use crate::topology::ipv6::{Attachment6, internet_gateway_v6, internet_subnet_v6};
use crate::topology::{Attachment, INTERNET, PUBLIC_RANGES, Router, Topology, Uplink};
use serde::{Deserialize, Serialize};

/// UDP and TCP port of the echo responder on every node.
pub const ECHO_PORT: u16 = 7;

/// Which engine impairs links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImpairEngine {
    /// icelab's TAP-pair engine (works on every kernel with TUN/TAP).
    #[default]
    Userspace,
    /// The kernel's netem + tbf qdiscs on the veth ends (only where netem exists).
    Netem,
}

/// Choices that are not in the topology file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Impairment engine.
    pub engine: ImpairEngine,
    /// Seed of every impairment's randomness (each link derives its own).
    pub seed: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { engine: ImpairEngine::Userspace, seed: 1 }
    }
}

/// Builds the plan for `topo`'s network (no events) with namespaces named
/// `<prefix>-<node>` and default options.
pub fn plan(topo: &Topology, prefix: &str) -> Plan {
    plan_with(topo, &[], prefix, &PlanOptions::default())
}

/// Builds the plan with explicit options: the lab's steps, then its events' steps.
pub fn plan_with(topo: &Topology, events: &[TimelineEvent], prefix: &str, opts: &PlanOptions) -> Plan {
    let lab = prefix.strip_prefix(crate::fabric::registry::NS_PREFIX).unwrap_or(prefix);
    let mut b = Builder {
        prefix: prefix.to_string(),
        state_dir: crate::fabric::registry::lab_dir(lab).display().to_string(),
        steps: Vec::new(),
        links: links(topo, prefix, opts.seed),
        engine: opts.engine,
        engine_plan: None,
    };
    let inet = b.ns(INTERNET);
    let v6_lab = topo.is_ipv6();
    let inet6 = v6_lab.then(internet_gateway_v6_net);
    let mut nodes = vec![NodePlan {
        name: INTERNET.into(),
        ns: inet.clone(),
        kind: NodeKind::Internet,
        addresses: internet_gateways().iter().map(|n| n.addr()).collect(),
        addresses6: inet6.iter().map(|n| n.addr()).collect(),
    }];
    nodes.extend(topo.routers.iter().map(|r| NodePlan {
        name: r.name.clone(),
        ns: b.ns(&r.name),
        kind: NodeKind::Router,
        addresses: vec![r.wan.address, r.lan_address],
        addresses6: r.ipv6.iter().flat_map(|v| [v.wan.address, v.lan_address]).collect(),
    }));
    nodes.extend(topo.hosts.iter().map(|h| NodePlan {
        name: h.name.clone(),
        ns: b.ns(&h.name),
        kind: NodeKind::Host,
        addresses: if h.family.has_v4() { vec![h.uplink.address] } else { Vec::new() },
        addresses6: h.ipv6.iter().map(|a| a.address).collect(),
    }));
    nodes.extend(topo.servers.iter().map(|s| NodePlan {
        name: s.name.clone(),
        ns: b.ns(&s.name),
        kind: NodeKind::Server,
        addresses: s.addresses.clone(),
        addresses6: s.addresses6.clone(),
    }));

    for n in &nodes {
        b.steps.push(Step::AddNamespace { ns: n.ns.clone() });
    }
    for n in &nodes {
        let forwards = matches!(n.kind, NodeKind::Internet | NodeKind::Router);
        if n.addresses6.is_empty() {
            // IPv6 off: link-local addresses would add host candidates the lab never meant.
            b.sysctl(&n.ns, "net.ipv6.conf.all.disable_ipv6", "1");
            b.sysctl(&n.ns, "net.ipv6.conf.default.disable_ipv6", "1");
        } else {
            // IPv6 on, and usable at once: no duplicate address detection (the plan hands
            // out every address), no router advertisements (the plan sets every route).
            for conf in ["all", "default"] {
                b.sysctl(&n.ns, &format!("net.ipv6.conf.{conf}.disable_ipv6"), "0");
                b.sysctl(&n.ns, &format!("net.ipv6.conf.{conf}.accept_dad"), "0");
                b.sysctl(&n.ns, &format!("net.ipv6.conf.{conf}.accept_ra"), "0");
            }
            if forwards {
                b.sysctl(&n.ns, "net.ipv6.conf.all.forwarding", "1");
            }
        }
        if forwards {
            b.sysctl(&n.ns, "net.ipv4.ip_forward", "1");
            // A bridge here is a switch: switched frames must not cross IP
            // netfilter (br_netfilter, when loaded, defaults to doing so).
            b.sysctl(&n.ns, "net.bridge.bridge-nf-call-iptables", "0");
            if !n.addresses6.is_empty() {
                b.sysctl(&n.ns, "net.bridge.bridge-nf-call-ip6tables", "0");
            }
        }
        b.steps.push(Step::LinkUp { ns: n.ns.clone(), dev: "lo".into() });
    }

    let mut inet_addrs: Vec<IpNet> = internet_gateways().into_iter().map(IpNet::V4).collect();
    inet_addrs.extend(inet6.map(IpNet::V6));
    b.bridge(&inet, "br0", &inet_addrs);
    for r in &topo.routers {
        let ns = b.ns(&r.name);
        let mut addrs = vec![IpNet::V4(Ipv4Net::new(r.lan_address, r.lan.prefix_len()).unwrap())];
        addrs.extend(r.ipv6.map(|v| IpNet::V6(Ipv6Net::new(v.lan_address, v.lan.prefix_len()).unwrap())));
        b.bridge(&ns, "lan", &addrs);
    }
    b.impair_engine();
    for r in &topo.routers {
        b.uplink(&r.name, "wan", Some(&r.wan), r.ipv6.as_ref().map(|v| &v.wan));
    }
    for h in &topo.hosts {
        b.uplink(&h.name, "eth0", h.family.has_v4().then_some(&h.uplink), h.ipv6.as_ref());
    }
    for s in &topo.servers {
        let ns = b.ns(&s.name);
        let dev = "eth0";
        b.attach(&ns);
        for a in &s.addresses {
            let net = internet_gateways().into_iter().find(|n| n.contains(a)).unwrap_or_default();
            b.steps.push(Step::AddAddress {
                ns: ns.clone(),
                dev: dev.into(),
                address: IpNet::V4(Ipv4Net::new(*a, net.prefix_len()).unwrap()),
            });
        }
        for a in &s.addresses6 {
            let address = IpNet::V6(Ipv6Net::new(*a, internet_subnet_v6().prefix_len()).unwrap());
            b.steps.push(Step::AddAddress { ns: ns.clone(), dev: dev.into(), address });
        }
        b.steps.push(Step::LinkUp { ns: ns.clone(), dev: dev.into() });
        b.netem(&ns);
        b.default_route(&ns, s.gateway.into());
        if !s.addresses6.is_empty() {
            b.default_route(&ns, internet_gateway_v6().into());
        }
    }
    for route in routes::lan_routes(topo) {
        b.steps.push(Step::AddRoute { ns: b.ns(&route.at), dst: route.dst, via: route.via });
    }
    for r in &topo.routers {
        for (purpose, ruleset) in rulesets::router(r) {
            b.steps.push(Step::Nftables { ns: b.ns(&r.name), purpose, ruleset });
        }
    }
    for r in topo.routers.iter().filter(|r| r.does_nat64()) {
        b.nat64(&r.name);
    }
    for h in &topo.hosts {
        if let Some(fw) = &h.firewall {
            let ruleset = rulesets::firewall(fw, false);
            b.steps.push(Step::Nftables { ns: b.ns(&h.name), purpose: "firewall".into(), ruleset });
        }
    }
    for n in nodes.iter().filter(|n| !n.addresses6.is_empty()) {
        b.steps.push(Step::WaitCarrier { ns: n.ns.clone() });
    }
    b.resolvers(topo, &nodes);
    let mut services = Vec::new();
    for s in &topo.servers {
        let ns = b.ns(&s.name);
        let mut started = Vec::new();
        for svc in &s.services {
            let steps = crate::servers::launch(*svc, s, topo, &ns, &b.state_dir);
            started.extend(steps.iter().filter_map(|st| match st {
                Step::Spawn { service, .. } => Some(service.clone()),
                _ => None,
            }));
            b.steps.extend(steps);
            services.push(ServiceEndpoint {
                node: s.name.clone(),
                service: svc.kind.name().into(),
                address: (s.addresses[0], crate::servers::port(*svc)).into(),
            });
        }
        if let (Some(cores), false) = (s.cpu, started.is_empty()) {
            // The cgroup is named like the namespace: `icelab-<lab>-<server>`.
            b.steps.push(Step::CpuLimit { ns: ns.clone(), cgroup: ns, cores, services: started });
        }
    }
    // One responder process serves UDP/TCP echo in every namespace of the lab.
    let mut args = vec!["echo-server".to_string(), "--port".into(), ECHO_PORT.to_string()];
    for n in &nodes {
        args.extend(["--netns".to_string(), n.ns.clone()]);
    }
    b.steps.push(Step::Spawn {
        ns: inet,
        service: ServiceKind::Echo.name().into(),
        program: super::ICELAB_PROGRAM.into(),
        args,
        ready: super::Readiness::ReadyLine,
        creates: Vec::new(),
    });
    let uplinks = b.uplinks(topo);
    let mut plan = Plan {
        prefix: prefix.to_string(),
        state_dir: b.state_dir,
        nodes,
        services,
        uplinks,
        engine: b.engine_plan,
        steps: b.steps,
        events: Vec::new(),
    };
    plan.events = super::events::plan_events(topo, events, &plan);
    plan
}

/// The internet's own IPv6 address with its segment's prefix (`2001:db8::1/64`).
fn internet_gateway_v6_net() -> Ipv6Net {
    Ipv6Net::new(internet_gateway_v6(), internet_subnet_v6().prefix_len()).unwrap()
}

/// The internet's own addresses: `.1` of each documentation range.
pub(crate) fn internet_gateways() -> Vec<Ipv4Net> {
    PUBLIC_RANGES
        .iter()
        .map(|r| {
            let n: Ipv4Net = r.parse().unwrap();
            Ipv4Net::new(std::net::Ipv4Addr::from(u32::from(n.network()) + 1), n.prefix_len()).unwrap()
        })
        .collect()
}

/// True when the router only routes (`nat = "none"`).
pub(crate) fn nat_disabled(r: &Router) -> bool {
    r.nat == NatMode::None
}

/// The STUN server's UDP ports: primary and RFC 5780 alternate.
pub const STUN_PORTS: (u16, u16) = (3478, 3479);

/// TURN's UDP (and TCP) port; TLS is on 443.
pub const TURN_PORT: u16 = 3478;
struct Builder {
    prefix: String,
    state_dir: String,
    steps: Vec<Step>,
    /// Uplinks by node namespace.
    links: BTreeMap<String, Link>,
    engine: ImpairEngine,
    engine_plan: Option<EnginePlan>,
}

/// A node's uplink to its parent's bridge.
#[derive(Debug, Clone)]
struct Link {
    dev: String,
    parent_ns: String,
    /// The parent's end: `p<N>`, numbered per parent in file order.
    port: String,
    bridge: &'static str,
    impair: Option<LinkImpairment>,
    seed: u64,
}

/// Every uplink, numbered in the order routers, hosts, servers.
fn links(topo: &Topology, prefix: &str, seed: u64) -> BTreeMap<String, Link> {
    let parent_of = |a: &Attachment| match &a.uplink {
        Uplink::Internet => INTERNET.to_string(),
        Uplink::Router(r) => r.clone(),
    };
    let mut order: Vec<(String, &str, String, Option<LinkImpairment>)> = Vec::new();
    order.extend(topo.routers.iter().map(|r| (r.name.clone(), "wan", parent_of(&r.wan), r.wan.impair.clone())));
    order.extend(topo.hosts.iter().map(|h| (h.name.clone(), "eth0", parent_of(&h.uplink), h.uplink.impair.clone())));
    order.extend(topo.servers.iter().map(|s| (s.name.clone(), "eth0", INTERNET.to_string(), s.impair.clone())));
    let mut next_port: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (i, (node, dev, parent, impair)) in order.into_iter().enumerate() {
        let n = next_port.entry(parent.clone()).or_insert(0);
        let link = Link {
            dev: dev.into(),
            parent_ns: ns_name(prefix, &parent),
            port: format!("p{n}"),
            bridge: if parent == INTERNET { "br0" } else { "lan" },
            impair,
            // Distinct, reproducible streams per link (golden-ratio spacing).
            seed: seed.wrapping_add((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        };
        *n += 1;
        out.insert(ns_name(prefix, &node), link);
    }
    out
}

impl Builder {
    fn ns(&self, node: &str) -> String {
        ns_name(&self.prefix, node)
    }

    fn sysctl(&mut self, ns: &str, key: &str, value: &str) {
        self.steps.push(Step::Sysctl { ns: ns.into(), key: key.into(), value: value.into() });
    }

    fn bridge(&mut self, ns: &str, name: &str, addresses: &[IpNet]) {
        self.steps.push(Step::AddBridge { ns: ns.into(), name: name.into() });
        for a in addresses {
            self.steps.push(Step::AddAddress { ns: ns.into(), dev: name.into(), address: *a });
        }
        self.steps.push(Step::LinkUp { ns: ns.into(), dev: name.into() });
    }

    /// Connects a node's uplink to its parent's bridge: a veth pair, or the TAP pair
    /// the userspace engine created for an impaired link.
    fn attach(&mut self, ns: &str) {
        let l = self.links[ns].clone();
        if !(l.impair.is_some() && self.engine == ImpairEngine::Userspace) {
            self.steps.push(Step::AddVeth {
                ns: ns.into(),
                name: l.dev.clone(),
                peer_ns: l.parent_ns.clone(),
                peer_name: l.port.clone(),
            });
        }
        self.steps.push(Step::SetMaster { ns: l.parent_ns.clone(), dev: l.port.clone(), master: l.bridge.into() });
        self.steps.push(Step::LinkUp { ns: l.parent_ns, dev: l.port });
    }

    /// With the netem engine: qdiscs on both ends of an impaired link (after it is up).
    fn netem(&mut self, ns: &str) {
        let l = &self.links[ns];
        if let (Some(imp), ImpairEngine::Netem) = (&l.impair, self.engine) {
            let (a, b) = (
                Step::Netem { ns: ns.into(), dev: l.dev.clone(), impairment: imp.up.clone(), seed: l.seed },
                Step::Netem {
                    ns: l.parent_ns.clone(),
                    dev: l.port.clone(),
                    impairment: imp.down.clone(),
                    seed: l.seed ^ 1,
                },
            );
            self.steps.extend([a, b]);
        }
    }

    /// Every uplink as data, in the order routers, hosts, servers.
    fn uplinks(&self, topo: &Topology) -> Vec<UplinkPlan> {
        let names = topo.routers.iter().map(|r| &r.name).chain(topo.hosts.iter().map(|h| &h.name));
        names
            .chain(topo.servers.iter().map(|s| &s.name))
            .map(|node| {
                let ns = self.ns(node);
                let l = &self.links[&ns];
                let engine_link = self.engine_plan.as_ref().and_then(|e| e.links.iter().position(|t| t.ns_a == ns));
                UplinkPlan {
                    node: node.clone(),
                    dev: l.dev.clone(),
                    parent_ns: l.parent_ns.clone(),
                    port: l.port.clone(),
                    engine_link,
                    seed: l.seed,
                    ns,
                }
            })
            .collect()
    }

    /// With the userspace engine: one process (in the internet namespace, so lab
    /// teardown finds it) creates every impaired link's TAP pair and pumps it.
    fn impair_engine(&mut self) {
        if self.engine != ImpairEngine::Userspace {
            return;
        }
        let taps: Vec<TapLink> = self
            .links
            .iter()
            .filter_map(|(ns, l)| {
                let imp = l.impair.as_ref()?;
                Some(TapLink {
                    ns_a: ns.clone(),
                    dev_a: l.dev.clone(),
                    ns_b: l.parent_ns.clone(),
                    dev_b: l.port.clone(),
                    a_to_b: imp.up.clone(),
                    b_to_a: imp.down.clone(),
                    seed: l.seed,
                })
            })
            .collect();
        if taps.is_empty() {
            return;
        }
        let control = format!("{}/impair.sock", self.state_dir);
        let creates =
            taps.iter().flat_map(|t| [(t.ns_a.clone(), t.dev_a.clone()), (t.ns_b.clone(), t.dev_b.clone())]).collect();
        self.steps.push(Step::Spawn {
            ns: self.ns(INTERNET),
            service: "impair".into(),
            program: super::ICELAB_PROGRAM.into(),
            ready: super::Readiness::ReadyLine,
            args: vec![
                "impair-engine".into(),
                "--control".into(),
                control.clone(),
                "--links".into(),
                serde_json::to_string(&taps).expect("serializable"),
            ],
            creates,
        });
        self.engine_plan = Some(EnginePlan { ns: self.ns(INTERNET), control, links: taps });
    }

    /// A router's WAN or a host's uplink, with the addresses of its families.
    fn uplink(&mut self, node: &str, dev: &str, a: Option<&Attachment>, a6: Option<&Attachment6>) {
        let ns = self.ns(node);
        self.attach(&ns);
        if let Some(a) = a {
            self.steps.push(Step::AddAddress { ns: ns.clone(), dev: dev.into(), address: IpNet::V4(a.subnet) });
        }
        if let Some(a6) = a6 {
            self.steps.push(Step::AddAddress { ns: ns.clone(), dev: dev.into(), address: IpNet::V6(a6.subnet) });
        }
        self.steps.push(Step::LinkUp { ns: ns.clone(), dev: dev.into() });
        self.netem(&ns);
        if let Some(a) = a {
            self.default_route(&ns, a.gateway.into());
        }
        if let Some(a6) = a6 {
            self.default_route(&ns, a6.gateway.into());
        }
    }

    /// With a DNS service in the lab, every host's resolver configuration: the DNS
    /// server's address of each family the host has (its IPv6 one first on an IPv6-only
    /// host), and short timeouts (glibc's default waits 5 s per try).
    fn resolvers(&mut self, topo: &Topology, nodes: &[NodePlan]) {
        let dns = topo.servers.iter().find(|s| s.services.iter().any(|v| v.kind == ServiceKind::Dns));
        let Some(dns) = dns else { return };
        for n in nodes.iter().filter(|n| n.kind == NodeKind::Host) {
            let mut text = format!("# icelab: the lab's DNS (server `{}`)\n", dns.name);
            let v6 = dns.addresses6.first().filter(|_| !n.addresses6.is_empty()).map(|a| IpAddr::V6(*a));
            let v4 = dns.addresses.first().filter(|_| !n.addresses.is_empty()).map(|a| IpAddr::V4(*a));
            for a in v6.into_iter().chain(v4) {
                text.push_str(&format!("nameserver {a}\n"));
            }
            text.push_str(&format!("search {}\noptions timeout:1 attempts:2\n", crate::dns::DOMAIN));
            let path = super::resolv_conf_path(&self.state_dir, &n.ns);
            self.steps.push(Step::WriteFile { ns: n.ns.clone(), path, text });
        }
    }

    /// NAT64 in `router`'s namespace: tayga with its configuration, its TUN device up,
    /// and routes to it for the prefix (from the LAN) and the pool (replies the router's
    /// NAT has translated back). See [`crate::nat::nat64`].
    fn nat64(&mut self, router: &str) {
        use crate::nat::nat64;
        let ns = self.ns(router);
        let conf = format!("{}/{ns}-tayga.conf", self.state_dir);
        self.steps.push(Step::WriteFile { ns: ns.clone(), path: conf.clone(), text: nat64::tayga_config() });
        self.steps.push(Step::Spawn {
            ns: ns.clone(),
            service: "nat64".into(),
            program: nat64::PROGRAM.into(),
            args: vec!["--nodetach".into(), "--config".into(), conf],
            ready: super::Readiness::Devices,
            creates: vec![(ns.clone(), nat64::DEVICE.into())],
        });
        self.steps.push(Step::LinkUp { ns: ns.clone(), dev: nat64::DEVICE.into() });
        for dst in [IpNet::V4(nat64::pool()), IpNet::V6(nat64::prefix())] {
            self.steps.push(Step::AddDeviceRoute { ns: ns.clone(), dst, dev: nat64::DEVICE.into() });
        }
    }

    fn default_route(&mut self, ns: &str, via: IpAddr) {
        let dst = match via {
            IpAddr::V4(_) => "0.0.0.0/0".parse().unwrap(),
            IpAddr::V6(_) => "::/0".parse().unwrap(),
        };
        self.steps.push(Step::AddRoute { ns: ns.into(), dst, via });
    }
}
