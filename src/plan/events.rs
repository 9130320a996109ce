//! Timeline events -> steps (pure). Everything a step needs comes from the plan's own
//! data: uplink ends ([`super::UplinkPlan`]), the engine's links ([`super::EnginePlan`]),
//! the routes and service starts among the build steps, and the same ruleset
//! generators the build uses.

use super::{Plan, PlannedEvent, Step, UplinkPlan, rulesets};
use crate::impair::{Impairment, LinkDir};
use crate::nat::{NatMode, PortPreservation, REBIND_HASH_SEED};
use crate::servers::ServiceKind;
use crate::timeline::{Action, TimelineEvent};
use crate::topology::Topology;

/// Plans every event against the lab's `plan` for `topo`.
pub(crate) fn plan_events(topo: &Topology, events: &[TimelineEvent], plan: &Plan) -> Vec<PlannedEvent> {
    // Each CPU-limited namespace's limit as it stands when an event fires (a `cpu` event
    // changes it; a restarted service joins it).
    let mut limits: Limits = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::CpuLimit { ns, .. } => Some((ns.clone(), s.clone())),
            _ => None,
        })
        .collect();
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let (steps, problem) = match steps(topo, plan, &mut limits, &e.action) {
                Ok(s) => (s, None),
                Err(p) => (Vec::new(), Some(p)),
            };
            PlannedEvent { index: i + 1, at_ms: e.at_ms, what: e.action.to_string(), steps, problem }
        })
        .collect()
}

fn ns_of(plan: &Plan, node: &str) -> Result<String, String> {
    plan.node(node).map(|n| n.ns.clone()).ok_or_else(|| format!("`{node}` is not in the plan"))
}

fn uplink<'p>(plan: &'p Plan, node: &str) -> Result<&'p UplinkPlan, String> {
    plan.uplink(&ns_of(plan, node)?).ok_or_else(|| format!("`{node}` has no uplink"))
}

/// The latest [`Step::CpuLimit`] by namespace.
type Limits = std::collections::BTreeMap<String, Step>;

fn steps(topo: &Topology, plan: &Plan, limits: &mut Limits, action: &Action) -> Result<Vec<Step>, String> {
    let router = |name: &str| topo.router(name).ok_or_else(|| format!("no router `{name}`"));
    Ok(match action {
        Action::Link { node, up } => link(plan, uplink(plan, node)?, *up),
        Action::NatFlush { router: name, new_ports } => {
            let r = router(name)?;
            let (mut mode, mut seed) = (r.nat, crate::nat::HASH_SEED);
            if *new_ports {
                // Kernel port preservation would hand a flow its old port back: hash, with a new seed.
                if let NatMode::Napt(b) = &mut mode {
                    b.port_preservation = PortPreservation::Random;
                }
                seed = REBIND_HASH_SEED;
            }
            let ns = ns_of(plan, name)?;
            vec![
                Step::Nftables { ns: ns.clone(), purpose: "nat".into(), ruleset: rulesets::nat(r, mode, seed) },
                Step::FlushConntrack { ns },
            ]
        }
        Action::Nat { router: name, nat } => {
            let ruleset = rulesets::nat(router(name)?, *nat, crate::nat::HASH_SEED);
            let ns = ns_of(plan, name)?;
            // A new NAT starts with no state; without the flush, existing flows keep their old bindings.
            vec![Step::Nftables { ns: ns.clone(), purpose: "nat".into(), ruleset }, Step::FlushConntrack { ns }]
        }
        Action::Firewall { node, firewall } => {
            let ruleset = rulesets::firewall(firewall, topo.router(node).is_some());
            vec![Step::Nftables { ns: ns_of(plan, node)?, purpose: "firewall".into(), ruleset }]
        }
        Action::FirewallClear { node } => {
            vec![Step::Nftables {
                ns: ns_of(plan, node)?,
                purpose: "firewall".into(),
                ruleset: rulesets::firewall_clear(),
            }]
        }
        Action::Turn { server, start } => {
            let ns = ns_of(plan, server)?;
            let svc = topo
                .server(server)
                .and_then(|s| s.services.iter().copied().find(|v| v.kind == ServiceKind::Turn))
                .ok_or_else(|| format!("`{server}` runs no TURN service"))?;
            // Starting again is the build's own step, run once more.
            let spawn = plan
                .steps
                .iter()
                .find(|s| matches!(s, Step::Spawn { ns: n, service, .. } if *n == ns && service == svc.kind.name()))
                .ok_or_else(|| format!("the plan starts no TURN service on `{server}`"))?;
            if !*start {
                return Ok(crate::servers::stop(svc, &ns));
            }
            // A CPU-limited server's new process joins its cgroup as at the build.
            std::iter::once(spawn).chain(limits.get(&ns)).cloned().collect()
        }
        Action::Impair { node, impair } => impair_steps(plan, uplink(plan, node)?, &impair.up, &impair.down),
        Action::Cpu { server, cores } => {
            // The build's services of the server, in the cgroup named like its namespace
            // (made here if the build had no limit).
            let ns = ns_of(plan, server)?;
            let services: Vec<String> = plan
                .steps
                .iter()
                .filter_map(|s| match s {
                    Step::Spawn { ns: n, service, .. } if *n == ns => Some(service.clone()),
                    _ => None,
                })
                .collect();
            if services.is_empty() {
                return Err(format!("the plan starts no service on `{server}`"));
            }
            let step = Step::CpuLimit { ns: ns.clone(), cgroup: ns.clone(), cores: *cores, services };
            limits.insert(ns, step.clone());
            vec![step]
        }
    })
}

/// Both ends down, or both up with the routes through them put back (taking a device
/// down deleted them).
fn link(plan: &Plan, u: &UplinkPlan, up: bool) -> Vec<Step> {
    let ends = [(&u.ns, &u.dev), (&u.parent_ns, &u.port)];
    let mut v: Vec<Step> = ends
        .iter()
        .map(|(ns, dev)| {
            let (ns, dev) = (ns.to_string(), dev.to_string());
            if up { Step::LinkUp { ns, dev } } else { Step::LinkDown { ns, dev } }
        })
        .collect();
    if up {
        for (end_ns, _) in ends {
            v.extend(plan.steps.iter().filter_map(|s| match s {
                Step::AddRoute { ns, dst, via } if ns == end_ns => {
                    Some(Step::ReplaceRoute { ns: ns.clone(), dst: *dst, via: *via })
                }
                _ => None,
            }));
        }
    }
    v
}

/// The engine's link when it carries this uplink, else netem on both veth ends.
fn impair_steps(plan: &Plan, u: &UplinkPlan, up: &Impairment, down: &Impairment) -> Vec<Step> {
    if let (Some(link), Some(e)) = (u.engine_link, &plan.engine) {
        let set = |dir, impairment: &Impairment| Step::EngineSet {
            ns: e.ns.clone(),
            control: e.control.clone(),
            link,
            dir,
            impairment: impairment.clone(),
        };
        return vec![set(LinkDir::AToB, up), set(LinkDir::BToA, down)];
    }
    // Seeded like the build's netem steps, so a replay of the event replays its losses too.
    vec![
        Step::Netem { ns: u.ns.clone(), dev: u.dev.clone(), impairment: up.clone(), seed: u.seed },
        Step::Netem { ns: u.parent_ns.clone(), dev: u.port.clone(), impairment: down.clone(), seed: u.seed ^ 1 },
    ]
}
