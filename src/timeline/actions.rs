//! Events -> concrete operations on namespaces (pure, like plan steps, snapshot-tested).
//!
//! Everything an operation needs is resolved here from the topology and the lab's plan:
//! device names on both ends of an uplink, the routes to restore after a link comes
//! back, rulesets, the TURN service's arguments, where impairments live.

use std::fmt;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::spec::{Action, TimelineEvent};
use crate::firewall::{FW_TABLE, FirewallCtx, FwRole};
use crate::impair::{Impairment, LinkDir, TapLink};
use crate::nat::{NatMode, PortPreservation, RouterNat};
use crate::plan::{Plan, Step};
use crate::topology::Topology;

/// Seed for the port hash after a rebinding: any value other than the NAT's own.
const REBIND_HASH_SEED: &str = "0x5eed1ce";

/// One operation on the kernel or on a lab process.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// `ip link set DEV up|down`.
    SetLink {
        /// Namespace.
        ns: String,
        /// Device.
        dev: String,
        /// Up or down.
        up: bool,
    },
    /// `ip route replace DST via VIA` (link-down removes routes through the device).
    ReplaceRoute {
        /// Namespace.
        ns: String,
        /// Destination.
        dst: Ipv4Net,
        /// Next hop.
        via: std::net::Ipv4Addr,
    },
    /// `nft -f` of a ruleset.
    Nftables {
        /// Namespace.
        ns: String,
        /// What it is for.
        purpose: String,
        /// Ruleset text.
        ruleset: String,
    },
    /// Delete every conntrack entry of the namespace (ctnetlink).
    FlushConntrack {
        /// Namespace.
        ns: String,
    },
    /// SIGKILL the lab service started with exactly these arguments.
    StopService {
        /// Namespace.
        ns: String,
        /// Service name.
        service: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Start the service again and wait for its `ready` line.
    StartService {
        /// Namespace.
        ns: String,
        /// Service name.
        service: String,
        /// Its arguments.
        args: Vec<String>,
    },
    /// Replace a device's netem qdiscs.
    Netem {
        /// Namespace.
        ns: String,
        /// Device.
        dev: String,
        /// Impairment of its egress.
        impairment: Impairment,
    },
    /// Set one direction of a userspace-engine link over its control socket.
    EngineSet {
        /// Control socket.
        control: String,
        /// Link index.
        link: usize,
        /// Direction.
        dir: LinkDir,
        /// New impairment.
        impairment: Impairment,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::SetLink { ns, dev, up } => write!(f, "{ns}: {dev} {}", if *up { "up" } else { "down" }),
            Op::ReplaceRoute { ns, dst, via } => write!(f, "{ns}: route {dst} via {via}"),
            Op::Nftables { ns, purpose, ruleset } => {
                write!(f, "{ns}: nftables {purpose} ({} lines)", ruleset.lines().count())
            }
            Op::FlushConntrack { ns } => write!(f, "{ns}: conntrack flush"),
            Op::StopService { ns, service, .. } => write!(f, "{ns}: kill {service}"),
            Op::StartService { ns, service, .. } => write!(f, "{ns}: start {service}"),
            Op::Netem { ns, dev, impairment, .. } => {
                write!(f, "{ns}: netem {dev} {}", crate::impair::netem::netem_args(impairment).join(" "))
            }
            Op::EngineSet { link, dir, .. } => write!(f, "impair engine: link {link} {dir:?}"),
        }
    }
}

/// The operations of one event, to run at `at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Firing {
    /// 1-based event number in file order.
    pub index: usize,
    /// ms after the data channel opened.
    pub at_ms: u64,
    /// The event, in words.
    pub what: String,
    /// What to do, in order.
    pub ops: Vec<Op>,
}

/// Resolves every event against the lab's plan.
pub fn firings(topo: &Topology, plan: &Plan, events: &[TimelineEvent]) -> Result<Vec<Firing>, String> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let ops = ops(topo, plan, &e.action).map_err(|m| format!("event {} ({}): {m}", i + 1, e.action))?;
            Ok(Firing { index: i + 1, at_ms: e.at_ms, what: e.action.to_string(), ops })
        })
        .collect()
}

fn ns_of(plan: &Plan, node: &str) -> Result<String, String> {
    plan.node(node).map(|n| n.ns.clone()).ok_or_else(|| format!("`{node}` is not in the plan"))
}

fn ops(topo: &Topology, plan: &Plan, action: &Action) -> Result<Vec<Op>, String> {
    Ok(match action {
        Action::Link { node, up } => link_ops(plan, &ns_of(plan, node)?, *up)?,
        Action::NatFlush { router, new_ports } => {
            let r = topo.router(router).ok_or_else(|| format!("no router `{router}`"))?;
            let mut mode = r.nat;
            if *new_ports && let NatMode::Napt(b) = &mut mode {
                // Kernel port preservation would hand the flow its old port back: hash instead.
                b.port_preservation = PortPreservation::Random;
            }
            let mut ruleset = nat_ruleset(r, mode);
            if *new_ports {
                ruleset = rebind(&ruleset)?;
            }
            let ns = ns_of(plan, router)?;
            vec![Op::Nftables { ns: ns.clone(), purpose: "nat".into(), ruleset }, Op::FlushConntrack { ns }]
        }
        Action::Nat { router, nat } => {
            let r = topo.router(router).ok_or_else(|| format!("no router `{router}`"))?;
            let ns = ns_of(plan, router)?;
            // A new NAT starts with no state; without the flush, existing flows keep their old bindings.
            vec![
                Op::Nftables { ns: ns.clone(), purpose: "nat".into(), ruleset: nat_ruleset(r, *nat) },
                Op::FlushConntrack { ns },
            ]
        }
        Action::Firewall { node, firewall } => {
            let role = if topo.router(node).is_some() {
                FwRole::Router { wan_if: "wan".into(), lan_if: "lan".into() }
            } else {
                FwRole::Host
            };
            let ruleset = crate::firewall::ruleset(firewall, &FirewallCtx { role });
            vec![Op::Nftables { ns: ns_of(plan, node)?, purpose: "firewall".into(), ruleset }]
        }
        Action::FirewallClear { node } => vec![Op::Nftables {
            ns: ns_of(plan, node)?,
            purpose: "firewall".into(),
            ruleset: format!("table inet {FW_TABLE} {{}}\ndelete table inet {FW_TABLE}\n"),
        }],
        Action::Turn { server, start } => {
            let ns = ns_of(plan, server)?;
            let args = plan
                .steps
                .iter()
                .find_map(|s| match s {
                    Step::Spawn { ns: n, service, args, .. } if *n == ns && service == "turn" => Some(args.clone()),
                    _ => None,
                })
                .ok_or_else(|| format!("the plan starts no TURN service on `{server}`"))?;
            let service = "turn".to_string();
            vec![if *start { Op::StartService { ns, service, args } } else { Op::StopService { ns, service, args } }]
        }
        Action::Impair { node, impair } => impair_ops(plan, &ns_of(plan, node)?, &impair.up, &impair.down)?,
    })
}

fn nat_ruleset(r: &crate::topology::Router, mode: NatMode) -> String {
    crate::nat::ruleset(&RouterNat {
        wan_if: "wan".into(),
        wan_addr: r.wan.address,
        lan_if: "lan".into(),
        lan_subnet: r.lan,
        one_to_one_host: r.one_to_one_host,
        mode,
    })
}

/// The same NAT with ports from a different hash: every flow's next packet gets a
/// mapping, and (almost surely) not the one it had.
fn rebind(ruleset: &str) -> Result<String, String> {
    let seed = regex_free_seed(ruleset).ok_or("the NAT ruleset has no port hash to re-seed")?;
    Ok(ruleset.replace(&seed, &format!("seed {REBIND_HASH_SEED}")))
}

/// The `seed 0x...` token of the ruleset's `jhash` port expressions.
fn regex_free_seed(ruleset: &str) -> Option<String> {
    let i = ruleset.find(" seed 0x")? + 1;
    let end = ruleset[i + 5..].find(|c: char| !c.is_ascii_hexdigit() && c != 'x')? + i + 5;
    Some(ruleset[i..end].to_string())
}

/// Both ends of the uplink of the node in `ns`: a veth pair, or the userspace engine's TAPs.
fn uplink_ends(plan: &Plan, ns: &str) -> Option<[(String, String); 2]> {
    plan.steps
        .iter()
        .find_map(|s| match s {
            Step::AddVeth { ns: n, name, peer_ns, peer_name } if n == ns => {
                Some([(n.clone(), name.clone()), (peer_ns.clone(), peer_name.clone())])
            }
            _ => None,
        })
        .or_else(|| {
            let (_, i) = engine_link(plan, ns)?;
            let t = &engine_links(plan)?.1[i];
            Some([(t.ns_a.clone(), t.dev_a.clone()), (t.ns_b.clone(), t.dev_b.clone())])
        })
}

/// The userspace engine's control socket and links, when the plan starts one.
fn engine_links(plan: &Plan) -> Option<(String, Vec<TapLink>)> {
    plan.steps.iter().find_map(|s| match s {
        Step::Spawn { service, args, .. } if service == "impair" => {
            let control = args.iter().skip_while(|a| *a != "--control").nth(1)?.clone();
            let links = args.iter().skip_while(|a| *a != "--links").nth(1)?;
            Some((control, serde_json::from_str(links).ok()?))
        }
        _ => None,
    })
}

fn engine_link(plan: &Plan, ns: &str) -> Option<(String, usize)> {
    let (control, links) = engine_links(plan)?;
    links.iter().position(|l| l.ns_a == ns).map(|i| (control, i))
}

fn link_ops(plan: &Plan, ns: &str, up: bool) -> Result<Vec<Op>, String> {
    let ends = uplink_ends(plan, ns).ok_or_else(|| format!("no uplink found for {ns}"))?;
    let mut v: Vec<Op> = ends.iter().map(|(ns, dev)| Op::SetLink { ns: ns.clone(), dev: dev.clone(), up }).collect();
    if up {
        // Taking a device down deleted the routes through it; put the plan's back.
        for (end_ns, _) in &ends {
            for s in &plan.steps {
                if let Step::AddRoute { ns: n, dst, via } = s
                    && n == end_ns
                {
                    v.push(Op::ReplaceRoute { ns: n.clone(), dst: *dst, via: *via });
                }
            }
        }
    }
    Ok(v)
}

fn impair_ops(plan: &Plan, ns: &str, up: &Impairment, down: &Impairment) -> Result<Vec<Op>, String> {
    if let Some((control, link)) = engine_link(plan, ns) {
        return Ok(vec![
            Op::EngineSet { control: control.clone(), link, dir: LinkDir::AToB, impairment: up.clone() },
            Op::EngineSet { control, link, dir: LinkDir::BToA, impairment: down.clone() },
        ]);
    }
    // Not an engine link: a veth, impaired (again) with netem; exec reports a kernel without it.
    let [(a_ns, a_dev), (b_ns, b_dev)] = uplink_ends(plan, ns).ok_or_else(|| format!("no uplink found for {ns}"))?;
    Ok(vec![
        Op::Netem { ns: a_ns, dev: a_dev, impairment: up.clone() },
        Op::Netem { ns: b_ns, dev: b_dev, impairment: down.clone() },
    ])
}
