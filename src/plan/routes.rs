//! Routes towards LANs of routers that do not translate addresses.
//!
//! A NAT hides its LAN, so nobody upstream needs (or should have) a route to it:
//! such a route would let the internet bypass the NAT's filtering. A plain router
//! (`nat = "none"`) is different: its parent must route the LAN to it, and so on up
//! the chain until the first NAT, which owns the route for what it translates.

//!
//! IPv6 alike: a router with `ipv6 = "public"` routes its /64, so every router above it
//! routes that /64 down to it, up to the internet or the first `nat66` router.

use std::net::IpAddr;

use ipnet::IpNet;

use super::build::nat_disabled;
use crate::topology::{INTERNET, Router, Topology, Uplink};

/// A route to add: in node `at`, `dst` via `via`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LanRoute {
    /// Node (or `internet`) that gets the route.
    pub at: String,
    /// The LAN.
    pub dst: IpNet,
    /// Next hop: the WAN address of the child router on the path.
    pub via: IpAddr,
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
            out.push(LanRoute { at, dst: IpNet::V4(r.lan), via: child.wan.address.into() });
            match next {
                Some(parent) if nat_disabled(parent) => child = parent,
                _ => break,
            }
        }
    }
    let public = |r: &Router| r.ipv6.is_some_and(|v| v.routed.is_some());
    for r in topo.routers.iter().filter(|r| public(r)) {
        let lan = r.ipv6.and_then(|v| v.routed).expect("routed");
        let mut child = r;
        loop {
            let (at, next) = match &child.wan.uplink {
                Uplink::Internet => (INTERNET.to_string(), None),
                Uplink::Router(p) => (p.clone(), topo.router(p)),
            };
            let Some(wan) = child.ipv6.map(|v| v.wan.address) else { break };
            out.push(LanRoute { at, dst: IpNet::V6(lan), via: wan.into() });
            match next {
                Some(parent) if public(parent) => child = parent,
                _ => break,
            }
        }
    }
    out
}
