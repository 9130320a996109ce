//! Routes towards LANs of routers that do not translate addresses.
//!
//! A NAT hides its LAN, so nobody upstream needs (or should have) a route to it:
//! such a route would let the internet bypass the NAT's filtering. A plain router
//! (`nat = "none"`) is different: its parent must route the LAN to it, and so on up
//! the chain until the first NAT, which owns the route for what it translates.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::build::nat_disabled;
use crate::topology::{INTERNET, Topology, Uplink};

/// A route to add: in node `at`, `dst` via `via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LanRoute {
    /// Node (or `internet`) that gets the route.
    pub at: String,
    /// The LAN.
    pub dst: Ipv4Net,
    /// Next hop: the WAN address of the child router on the path.
    pub via: Ipv4Addr,
}

/// All routes needed so plain routers' LANs are reachable from above.
pub(super) fn lan_routes(topo: &Topology) -> Vec<LanRoute> {
    let mut out = Vec::new();
    for r in topo.routers.iter().filter(|r| nat_disabled(r)) {
        let mut child = r;
        loop {
            let (at, next) = match &child.wan.uplink {
                Uplink::Internet => (INTERNET.to_string(), None),
                Uplink::Router(p) => (p.clone(), topo.router(p)),
            };
            out.push(LanRoute { at, dst: r.lan, via: child.wan.address });
            match next {
                Some(parent) if nat_disabled(parent) => child = parent,
                _ => break,
            }
        }
    }
    out
}
