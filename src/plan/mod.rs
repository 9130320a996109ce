//! Topology -> Plan: the ordered steps that build a lab, and the steps of each of its
//! timeline events.
//!
//! The plan is pure data. The same plan is applied through netlink
//! ([`crate::fabric::Applier`]), rendered as a shell script ([`shell`]) and printed by
//! `icelab up --dry-run`, so the three can never disagree. A mid-call change is not a
//! second language: an event is a list of [`Step`]s too ([`PlannedEvent`]), fired by
//! the same applier at its time, replayable from the exported script.
//!
//! Inside every namespace the names are fixed: a node's uplink is `eth0`, a
//! router's WAN is `wan` and its LAN is the bridge `lan`; the internet is the
//! bridge `br0` in `<prefix>-internet`. Only namespace names carry the lab prefix.

mod build;
mod events;
mod routes;
mod rulesets;
pub mod shell;
mod step;

use std::fmt::Write;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

pub use step::{CPU_PERIOD_US, ICELAB_PROGRAM, Readiness, Step, cpu_quota_us};

pub use build::{ECHO_PORT, ImpairEngine, PlanOptions, STUN_PORTS, TURN_PORT, plan, plan_with};

/// What kind of node a namespace holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    /// The simulated internet.
    Internet,
    /// A router.
    Router,
    /// An end host.
    Host,
    /// A server on the internet.
    Server,
}

/// A node of the lab and its namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodePlan {
    /// Node name from the topology.
    pub name: String,
    /// Its namespace.
    pub ns: String,
    /// Its kind.
    pub kind: NodeKind,
    /// Its IPv4 addresses, uplink first (none on an IPv6-only host).
    pub addresses: Vec<Ipv4Addr>,
    /// Its IPv6 addresses in an IPv6 lab, uplink first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses6: Vec<std::net::Ipv6Addr>,
}

/// A service the lab offers, for tools that need to find it (probe, peers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceEndpoint {
    /// Server node.
    pub node: String,
    /// Service name (`stun`, `turn`).
    pub service: String,
    /// Where it listens (primary address).
    pub address: std::net::SocketAddr,
}

/// A node's uplink: both ends, and the userspace engine link that carries it, if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UplinkPlan {
    /// The node.
    pub node: String,
    /// Its namespace.
    pub ns: String,
    /// Its end (`eth0`, or `wan` on a router).
    pub dev: String,
    /// Namespace of the parent (internet or router).
    pub parent_ns: String,
    /// The parent's end (`p<N>`), a port of its bridge.
    pub port: String,
    /// Index into [`EnginePlan::links`] when the userspace engine carries this link.
    pub engine_link: Option<usize>,
    /// Seed of this link's impairment randomness.
    pub seed: u64,
}

/// The userspace impairment engine of a lab, as data (its `Spawn` step's arguments are
/// rendered from it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnginePlan {
    /// Namespace it runs in.
    pub ns: String,
    /// Its control socket.
    pub control: String,
    /// The TAP links it pumps.
    pub links: Vec<crate::impair::TapLink>,
}

/// One timeline event, planned: the steps to apply at `at_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedEvent {
    /// 1-based event number in file order.
    pub index: usize,
    /// ms after the offerer's data channel opened.
    pub at_ms: u64,
    /// The event, in words.
    pub what: String,
    /// What to do, in order.
    pub steps: Vec<Step>,
    /// Why the event has no steps (only for topologies built without validation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The ordered steps that build one lab, and its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Namespace prefix, e.g. `icelab-7f3a`.
    pub prefix: String,
    /// Directory of the lab's state (logs, service pids, control sockets).
    #[serde(default)]
    pub state_dir: String,
    /// Nodes, internet first.
    pub nodes: Vec<NodePlan>,
    /// Services started by the plan.
    pub services: Vec<ServiceEndpoint>,
    /// Every node's uplink.
    #[serde(default)]
    pub uplinks: Vec<UplinkPlan>,
    /// The userspace impairment engine, when the plan starts one.
    #[serde(default)]
    pub engine: Option<EnginePlan>,
    /// Steps in the order they must run.
    pub steps: Vec<Step>,
    /// The timeline's events, in time order.
    #[serde(default)]
    pub events: Vec<PlannedEvent>,
}

/// Where the plan writes the resolver configuration of namespace `ns`.
pub(crate) fn resolv_conf_path(state_dir: &str, ns: &str) -> String {
    format!("{state_dir}/{ns}.resolv.conf")
}

impl Plan {
    /// The namespaces the plan creates.
    pub fn namespaces(&self) -> Vec<&str> {
        self.nodes.iter().map(|n| n.ns.as_str()).collect()
    }

    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodePlan> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The first server offering `service`.
    pub fn service(&self, service: &str) -> Option<&ServiceEndpoint> {
        self.services.iter().find(|s| s.service == service)
    }

    /// The resolver configuration of the node in namespace `ns`: a file the plan writes
    /// when the lab has a DNS service (see [`crate::dns`]), bound over `/etc/resolv.conf`
    /// for the processes started there.
    pub fn resolv_conf(&self, ns: &str) -> Option<String> {
        let dns = crate::servers::ServiceKind::Dns.name();
        let host = self.nodes.iter().any(|n| n.ns == ns && n.kind == NodeKind::Host);
        (host && self.service(dns).is_some()).then(|| resolv_conf_path(&self.state_dir, ns))
    }

    /// The uplink of the node in namespace `ns`.
    pub fn uplink(&self, ns: &str) -> Option<&UplinkPlan> {
        self.uplinks.iter().find(|u| u.ns == ns)
    }

    /// The numbered steps, then each event's steps under an `event N at T ms: what`
    /// header (what `icelab up --dry-run` prints).
    pub fn listing(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.steps.iter().enumerate() {
            let _ = writeln!(out, "{:>4}  {s}", i + 1);
        }
        for e in &self.events {
            let _ = writeln!(out, "\nevent {} at {} ms: {}", e.index, e.at_ms, e.what);
            if let Some(p) = &e.problem {
                let _ = writeln!(out, "      cannot be planned: {p}");
            }
            for (i, s) in e.steps.iter().enumerate() {
                let _ = writeln!(out, "{:>4}  {s}", i + 1);
            }
        }
        out
    }
}

/// Namespace name of a node in a lab.
pub fn ns_name(prefix: &str, node: &str) -> String {
    format!("{prefix}-{node}")
}
