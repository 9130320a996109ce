//! Topology files: the lab as the user writes it, validated and with every address
//! assigned.
//!
//! ```toml
//! # Two hosts, each behind its own home router.
//! [router.home1]
//! wan = "internet"                 # or the name of another router (double NAT)
//! nat = "port-restricted-cone"
//!
//! [router.home2]
//! wan = "internet"
//! lan = "192.168.2.0/24"           # optional; assigned when absent
//!
//! [host.alice]
//! on = "home1"
//!
//! [host.bob]
//! on = "home2"
//! address = "192.168.2.20"         # optional
//!
//! [server.stun]
//! services = ["stun"]              # two public addresses are assigned
//!
//! [server.relay]
//! services = [{ kind = "turn", implementation = "built-in" }]   # same as ["turn"]
//!
//! [server.coturn]
//! services = [{ kind = "turn", implementation = "coturn" }]     # coturn's turnserver
//! cpu = 0.25                       # optional: its services share a quarter of a core
//!
//! [host.caller]
//! on = "home1"
//! count = 8                        # eight hosts, caller-1 .. caller-8, behind home1
//! ```
//!
//! The file layer ([`crate::spec`]) parses a whole file and hands the network tables
//! here; every mistake is reported with file:line:col and a hint ([`crate::diag`]).
//! A topology is only the network: the call and its events live beside it in a
//! [`crate::spec::Spec`].

mod addressing;
mod count;
pub mod ipv6;
pub use count::MAX_COUNT;
pub mod generate;
mod lans;
mod names;
mod order;
pub(crate) mod raw;
mod resolve;
mod values;

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::NatMode;

pub(crate) use resolve::resolve;
pub use values::{CPU_MAX, CPU_MIN, cpu_limit};
pub(crate) use values::{interpret_firewall, interpret_impair, interpret_nat_value};

/// The name of the simulated public internet, usable in `wan` and `on`.
pub const INTERNET: &str = "internet";

/// The documentation ranges that form the simulated internet (RFC 5737).
pub const PUBLIC_RANGES: [&str; 3] = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];

/// Where a node's uplink is plugged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "router")]
pub enum Uplink {
    /// The simulated internet's switch.
    Internet,
    /// The LAN of the named router.
    Router(String),
}

/// A node's single uplink address and default route.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    /// Where the uplink is plugged in.
    pub uplink: Uplink,
    /// The node's address on that segment.
    pub address: Ipv4Addr,
    /// The segment (address and prefix).
    pub subnet: Ipv4Net,
    /// Next hop for the default route.
    pub gateway: Ipv4Addr,
    /// Impairment of the link (`up` is node -> parent).
    pub impair: Option<LinkImpairment>,
}

/// A router: WAN uplink, a LAN it serves, optional NAT and firewall.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Router {
    /// Node name.
    pub name: String,
    /// The WAN side.
    pub wan: Attachment,
    /// The LAN subnet.
    pub lan: Ipv4Net,
    /// The router's own LAN address (first host address of `lan`).
    pub lan_address: Ipv4Addr,
    /// What the router does to traffic (default: a typical home-router NAT).
    pub nat: NatMode,
    /// For 1:1 NAT: the LAN host that owns the WAN address.
    pub one_to_one_host: Option<Ipv4Addr>,
    /// Firewall on forwarded traffic.
    pub firewall: Option<FirewallSpec>,
    /// Its IPv6 side, when `ipv6` is `public` or `nat66`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<ipv6::RouterV6>,
}

/// An end host (where peers run).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    /// Node name.
    pub name: String,
    /// Its uplink.
    pub uplink: Attachment,
    /// Firewall on the host's own traffic.
    pub firewall: Option<FirewallSpec>,
    /// Its address families (with `V6` the IPv4 `uplink` is planned but never configured).
    #[serde(skip_serializing_if = "ipv6::Family::is_v4")]
    pub family: ipv6::Family,
    /// Its IPv6 uplink, when its family has IPv6.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<ipv6::Attachment6>,
}

/// A server on the internet (STUN, TURN, echo).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Server {
    /// Node name.
    pub name: String,
    /// Public addresses; the first is primary.
    pub addresses: Vec<Ipv4Addr>,
    /// Default gateway (the internet's gateway for the primary address's range).
    pub gateway: Ipv4Addr,
    /// Services to start.
    pub services: Vec<crate::servers::Service>,
    /// Impairment of its uplink.
    pub impair: Option<LinkImpairment>,
    /// IPv6 addresses in an IPv6 lab, one per IPv4 address and in the same order
    /// (gateway: the internet's `2001:db8::1`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub addresses6: Vec<std::net::Ipv6Addr>,
    /// CPU limit of its services in cores (`cpu = 0.25`): a cpu cgroup the plan puts
    /// them in ([`crate::plan::Step::CpuLimit`]). Absent: unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
}

/// A validated topology with every address assigned.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Topology {
    /// File name as given (for messages).
    pub file: String,
    /// Free text.
    pub description: Option<String>,
    /// Routers in an order where each router's WAN parent comes first.
    pub routers: Vec<Router>,
    /// Hosts in file order.
    pub hosts: Vec<Host>,
    /// Servers in file order.
    pub servers: Vec<Server>,
}

impl Router {
    /// True when the router translates its IPv6-only LAN to IPv4 (`ipv6 = "nat64"`).
    pub fn does_nat64(&self) -> bool {
        self.ipv6.is_some_and(|v| v.mode == ipv6::Ipv6Mode::Nat64)
    }
}

impl Topology {
    /// Names of all nodes, internet first.
    pub fn node_names(&self) -> Vec<&str> {
        let mut v = vec![INTERNET];
        v.extend(self.routers.iter().map(|r| r.name.as_str()));
        v.extend(self.hosts.iter().map(|h| h.name.as_str()));
        v.extend(self.servers.iter().map(|s| s.name.as_str()));
        v
    }

    /// True when any uplink is impaired.
    pub fn has_impairments(&self) -> bool {
        self.routers.iter().any(|r| r.wan.impair.is_some())
            || self.hosts.iter().any(|h| h.uplink.impair.is_some())
            || self.servers.iter().any(|s| s.impair.is_some())
    }

    /// The server with this name.
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// True in an IPv6 lab (its file asked for IPv6 somewhere).
    pub fn is_ipv6(&self) -> bool {
        self.routers.iter().any(|r| r.ipv6.is_some()) || self.hosts.iter().any(|h| h.ipv6.is_some())
    }

    /// The host with this name.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The router with this name.
    pub fn router(&self, name: &str) -> Option<&Router> {
        self.routers.iter().find(|r| r.name == name)
    }
}
