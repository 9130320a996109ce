//! Address pools per segment (the internet and each router's LAN): explicit addresses
//! claimed and checked, automatic ones handed out.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use ipnet::Ipv4Net;

use super::{Attachment, INTERNET, PUBLIC_RANGES, Uplink};
use crate::diag::Reporter;
use crate::impair::LinkImpairment;

/// What `net.hosts().count()` would say, without walking 16 million addresses of a /8.
fn host_count(net: Ipv4Net) -> u32 {
    match net.prefix_len() {
        32 => 1,
        31 => 2,
        p => (1u32 << (32 - p)) - 2,
    }
}

pub(super) fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// The internet's gateway for a public address: .1 of its /24.
pub(super) fn public_gateway(a: Ipv4Addr) -> Ipv4Addr {
    let o = a.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

#[derive(Clone, Copy)]
pub(super) enum PoolKind {
    RouterWan,
    Host,
    Server,
}

/// Address bookkeeping per segment: the internet and each router's LAN.
pub(super) struct Segments<'a> {
    lans: &'a BTreeMap<&'a str, Ipv4Net>,
    used: BTreeMap<String, BTreeMap<Ipv4Addr, String>>,
}

impl<'a> Segments<'a> {
    pub(super) fn new(lans: &'a BTreeMap<&'a str, Ipv4Net>) -> Self {
        Segments { lans, used: BTreeMap::new() }
    }

    fn subnets(&self, seg: &str) -> Vec<Ipv4Net> {
        if seg == INTERNET {
            PUBLIC_RANGES.iter().map(|p| p.parse().unwrap()).collect()
        } else {
            self.lans.get(seg).copied().into_iter().collect()
        }
    }

    pub(super) fn claim(&mut self, rep: &mut Reporter, seg: &str, a: Ipv4Addr, span: Range<usize>, who: &str) {
        let subnets = self.subnets(seg);
        if subnets.is_empty() {
            return; // unknown segment, reported elsewhere
        }
        let Some(net) = subnets.iter().find(|n| n.contains(&a)) else {
            let hint = if seg == INTERNET {
                format!("public addresses come from {}", PUBLIC_RANGES.join(", "))
            } else {
                format!("`{seg}` serves {}", subnets[0])
            };
            rep.error(
                span,
                format!(
                    "{a} of `{who}` is not on {}",
                    if seg == INTERNET { "the simulated internet".to_string() } else { format!("the LAN of `{seg}`") }
                ),
                Some(hint),
            );
            return;
        };
        if a == net.network() || a == net.broadcast() || a == first_host(*net) {
            rep.error(
                span,
                format!("{a} of `{who}` is reserved on {net}"),
                Some(format!("the network, broadcast and gateway ({}) addresses cannot be assigned", first_host(*net))),
            );
            return;
        }
        let used = self.used.entry(seg.to_string()).or_default();
        if let Some(owner) = used.insert(a, who.to_string()) {
            rep.error(
                span,
                format!("{a} is given to both `{owner}` and `{who}`"),
                Some("each address on a segment belongs to one node".into()),
            );
        }
    }

    pub(super) fn next_free(&mut self, rep: &mut Reporter, seg: &str, kind: PoolKind, span: Range<usize>) -> Ipv4Addr {
        let subnets = self.subnets(seg);
        let net = if seg == INTERNET {
            let i = match kind {
                PoolKind::Host => 0,
                PoolKind::Server => 1,
                PoolKind::RouterWan => 2,
            };
            subnets[i]
        } else {
            subnets[0]
        };
        let used = self.used.entry(seg.to_string()).or_default();
        let start = u32::from(net.network()) + 10.min(host_count(net) / 2).max(2);
        let found = (start..u32::from(net.broadcast())).map(Ipv4Addr::from).find(|a| !used.contains_key(a));
        match found {
            Some(a) => {
                used.insert(a, String::new());
                a
            }
            None => {
                rep.error(
                    span,
                    format!("no free address left on {net}"),
                    Some("use a larger LAN or give addresses explicitly".into()),
                );
                Ipv4Addr::UNSPECIFIED
            }
        }
    }

    pub(super) fn attachment(&self, seg: &str, address: Ipv4Addr, impair: Option<LinkImpairment>) -> Attachment {
        let subnet = self.subnets(seg).into_iter().find(|n| n.contains(&address)).unwrap_or_default();
        let uplink = if seg == INTERNET { Uplink::Internet } else { Uplink::Router(seg.to_string()) };
        Attachment {
            uplink,
            address,
            subnet: Ipv4Net::new(address, subnet.prefix_len()).unwrap(),
            gateway: first_host(subnet),
            impair,
        }
    }
}
