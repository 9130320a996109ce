//! Topology -> Plan: the ordered steps that build a lab.
//!
//! The plan is pure data. The same plan is applied through netlink
//! ([`crate::fabric`]), rendered as a shell script ([`shell`]) and printed by
//! `icelab up --dry-run`, so the three can never disagree.
//!
//! Inside every namespace the names are fixed: a node's uplink is `eth0`, a
//! router's WAN is `wan` and its LAN is the bridge `lan`; the internet is the
//! bridge `br0` in `<prefix>-internet`. Only namespace names carry the lab prefix.

mod build;
mod routes;
pub mod shell;

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub use build::{
    ECHO_PORT, ImpairEngine, PlanOptions, STUN_PORTS, TURN_PASSWORD, TURN_PORT, TURN_REALM, TURN_USER, plan, plan_with,
};

/// One action on the kernel. Every step names the namespace it acts in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Create a named network namespace (visible to `ip netns`).
    AddNamespace {
        /// Namespace name.
        ns: String,
    },
    /// Write a sysctl inside a namespace (only `net.*` keys, which are per namespace).
    Sysctl {
        /// Namespace name.
        ns: String,
        /// Dotted key, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// Value to write.
        value: String,
    },
    /// Create a bridge.
    AddBridge {
        /// Namespace name.
        ns: String,
        /// Bridge name.
        name: String,
    },
    /// Create a veth pair with one end in `ns` and the other in `peer_ns`.
    AddVeth {
        /// Namespace of the first end.
        ns: String,
        /// Name of the first end.
        name: String,
        /// Namespace of the other end.
        peer_ns: String,
        /// Name of the other end.
        peer_name: String,
    },
    /// Enslave a device to a bridge.
    SetMaster {
        /// Namespace name.
        ns: String,
        /// Device to enslave.
        dev: String,
        /// The bridge.
        master: String,
    },
    /// Bring a device up.
    LinkUp {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
    },
    /// Add an IPv4 address with its prefix.
    AddAddress {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
        /// Address and prefix length.
        address: Ipv4Net,
    },
    /// Add a route (`0.0.0.0/0` is the default route).
    AddRoute {
        /// Namespace name.
        ns: String,
        /// Destination.
        dst: Ipv4Net,
        /// Next hop.
        via: Ipv4Addr,
    },
    /// Load an nftables ruleset (`nft -f`) inside a namespace.
    Nftables {
        /// Namespace name.
        ns: String,
        /// What the ruleset is for (`nat`, `firewall`).
        purpose: String,
        /// The complete ruleset text.
        ruleset: String,
    },
    /// Start a long-running icelab service inside a namespace.
    Spawn {
        /// Namespace name.
        ns: String,
        /// Service name, used for its log file.
        service: String,
        /// Arguments after the `icelab` program name.
        args: Vec<String>,
        /// Devices (namespace, name) the service creates before it reports ready.
        #[serde(default)]
        creates: Vec<(String, String)>,
    },
    /// Impair a device's egress with netem (+ tbf) qdiscs.
    Netem {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
        /// What its outgoing frames suffer.
        impairment: crate::impair::Impairment,
        /// Seed for netem's randomness.
        seed: u64,
    },
}

impl Step {
    /// The namespace the step acts in.
    pub fn ns(&self) -> &str {
        match self {
            Step::AddNamespace { ns }
            | Step::Sysctl { ns, .. }
            | Step::AddBridge { ns, .. }
            | Step::AddVeth { ns, .. }
            | Step::SetMaster { ns, .. }
            | Step::LinkUp { ns, .. }
            | Step::AddAddress { ns, .. }
            | Step::AddRoute { ns, .. }
            | Step::Nftables { ns, .. }
            | Step::Spawn { ns, .. }
            | Step::Netem { ns, .. } => ns,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddNamespace { ns } => write!(f, "namespace {ns}"),
            Step::Sysctl { ns, key, value } => write!(f, "{ns}: sysctl {key}={value}"),
            Step::AddBridge { ns, name } => write!(f, "{ns}: bridge {name}"),
            Step::AddVeth { ns, name, peer_ns, peer_name } => write!(f, "{ns}: veth {name} <-> {peer_ns}/{peer_name}"),
            Step::SetMaster { ns, dev, master } => write!(f, "{ns}: {dev} master {master}"),
            Step::LinkUp { ns, dev } => write!(f, "{ns}: {dev} up"),
            Step::AddAddress { ns, dev, address } => write!(f, "{ns}: {dev} address {address}"),
            Step::AddRoute { ns, dst, via } => write!(f, "{ns}: route {dst} via {via}"),
            Step::Nftables { ns, purpose, ruleset } => {
                write!(f, "{ns}: nftables {purpose} ({} lines)", ruleset.lines().count())
            }
            Step::Spawn { ns, service, args, .. } => {
                write!(f, "{ns}: start {service}: icelab {}", args.join(" "))
            }
            Step::Netem { ns, dev, impairment, seed } => {
                write!(f, "{ns}: netem {dev} {} (seed {seed})", crate::impair::netem::netem_args(impairment).join(" "))
            }
        }
    }
}

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
    /// Its addresses, uplink first.
    pub addresses: Vec<Ipv4Addr>,
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

/// The ordered steps that build one lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Namespace prefix, e.g. `icelab-7f3a`.
    pub prefix: String,
    /// Nodes, internet first.
    pub nodes: Vec<NodePlan>,
    /// Services started by the plan.
    pub services: Vec<ServiceEndpoint>,
    /// Steps in the order they must run.
    pub steps: Vec<Step>,
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
}

/// Namespace name of a node in a lab.
pub fn ns_name(prefix: &str, node: &str) -> String {
    format!("{prefix}-{node}")
}
