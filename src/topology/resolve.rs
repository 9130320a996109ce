//! Validation and address assignment: the file's network tables -> [`Topology`]. The checks live in
//! `names`, `order`, `lans`, `addressing` and `values`; this puts them in order.
//!
//! Every check records a located diagnostic and carries on, so one run of
//! `icelab check` shows every mistake in the file.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use toml::Spanned;

use super::addressing::{PoolKind, Segments, first_host, public_gateway};
use super::lans::assign_lans;
use super::names::{check_names, check_services};
use super::order::router_order;
use super::raw::RawTopology;
use super::values::{interpret_firewall, interpret_impair, interpret_nat};
use super::{Host, INTERNET, Router, Server, Topology, Uplink};
use crate::diag::Reporter;
use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::NatMode;

/// Checks the network and assigns every address, recording mistakes in `rep`. `None`
/// when the mistakes leave nothing to build on; with `Some`, `rep` may still hold errors.
pub(crate) fn resolve(rep: &mut Reporter, file: &str, raw: RawTopology) -> Option<Topology> {
    let routers = sorted(raw.router);
    let hosts = super::count::expand(rep, sorted(raw.host));
    let servers = sorted(raw.server);

    if routers.is_empty() && hosts.is_empty() && servers.is_empty() {
        rep.error(
            0..0,
            "the topology has no nodes",
            Some("add a [host.NAME] with on = \"internet\", or a [router.NAME]".into()),
        );
        return None;
    }
    check_names(rep, &routers, &hosts, &servers);
    let order = router_order(rep, &routers);
    let lans = assign_lans(rep, &routers, &order);

    let mut segments = Segments::new(&lans);
    // Explicit addresses first, so automatic ones never take an address someone asked for.
    for (name, r) in &routers {
        if let Some(a) = &r.get_ref().wan_address {
            segments.claim(rep, r.get_ref().wan.get_ref(), *a.get_ref(), a.span(), name);
        }
    }
    for (name, h) in &hosts {
        if let Some(a) = &h.get_ref().address {
            segments.claim(rep, h.get_ref().on.get_ref(), *a.get_ref(), a.span(), name);
        }
    }
    for (name, s) in &servers {
        if let Some(list) = &s.get_ref().addresses {
            if list.get_ref().is_empty() {
                rep.error(
                    list.span(),
                    format!("server `{name}` has an empty address list"),
                    Some("give at least one address, or leave `addresses` out".into()),
                );
            }
            for a in list.get_ref() {
                segments.claim(rep, INTERNET, *a.get_ref(), a.span(), name);
            }
        }
    }
    let mut services = check_services(rep, &servers).into_iter();
    if !rep.is_empty() {
        return None;
    }

    let nats: BTreeMap<&str, NatMode> =
        routers.iter().map(|(n, r)| (n.as_str(), interpret_nat(rep, n, r.get_ref()))).collect();
    let mut firewalls: BTreeMap<&str, Option<FirewallSpec>> = BTreeMap::new();
    for (n, r) in &routers {
        firewalls.insert(n, interpret_firewall(rep, r.get_ref().firewall.as_ref()));
    }
    for (n, h) in &hosts {
        firewalls.insert(n, interpret_firewall(rep, h.get_ref().firewall.as_ref()));
    }
    let mut impairs: BTreeMap<&str, Option<LinkImpairment>> = BTreeMap::new();
    for (n, r) in &routers {
        impairs.insert(n, interpret_impair(rep, r.get_ref().impair.as_ref()));
    }
    for (n, h) in &hosts {
        impairs.insert(n, interpret_impair(rep, h.get_ref().impair.as_ref()));
    }
    for (n, sv) in &servers {
        impairs.insert(n, interpret_impair(rep, sv.get_ref().impair.as_ref()));
    }
    if !rep.is_empty() {
        return None;
    }

    let mut out_routers = Vec::new();
    for idx in &order {
        let (name, r) = &routers[*idx];
        let r = r.get_ref();
        let seg = r.wan.get_ref();
        let address = match &r.wan_address {
            Some(a) => *a.get_ref(),
            None => segments.next_free(rep, seg, PoolKind::RouterWan, r.wan.span()),
        };
        let lan = lans[name.as_str()];
        out_routers.push(Router {
            name: name.clone(),
            wan: segments.attachment(seg, address, impairs[name.as_str()].clone()),
            lan,
            lan_address: first_host(lan),
            nat: nats[name.as_str()],
            one_to_one_host: None,
            firewall: firewalls[name.as_str()].clone(),
        });
    }
    let mut out_hosts = Vec::new();
    for (name, h) in &hosts {
        let h = h.get_ref();
        let seg = h.on.get_ref();
        let address = match &h.address {
            Some(a) => *a.get_ref(),
            None => segments.next_free(rep, seg, PoolKind::Host, h.on.span()),
        };
        out_hosts.push(Host {
            name: name.clone(),
            uplink: segments.attachment(seg, address, impairs[name.as_str()].clone()),
            firewall: firewalls[name.as_str()].clone(),
        });
    }
    // 1:1 NAT gives its WAN address to the first host on its LAN.
    for (r, (_, raw)) in out_routers.iter_mut().zip(order.iter().map(|i| &routers[*i])) {
        if r.nat == NatMode::OneToOne {
            let on_lan = |u: &Uplink| matches!(u, Uplink::Router(p) if *p == r.name);
            r.one_to_one_host = out_hosts.iter().find(|h| on_lan(&h.uplink.uplink)).map(|h| h.uplink.address);
            if r.one_to_one_host.is_none() {
                let span = raw.get_ref().nat.as_ref().map_or(raw.span(), |n| n.span());
                rep.error(
                    span,
                    format!("router `{}` does 1:1 NAT but has no host on its LAN", r.name),
                    Some("add a [host.NAME] with on = the router's name".into()),
                );
            }
        }
    }
    let mut out_servers = Vec::new();
    for (name, s) in &servers {
        let sp = s.span();
        let s = s.get_ref();
        let addresses: Vec<Ipv4Addr> = match &s.addresses {
            Some(list) => list.get_ref().iter().map(|a| *a.get_ref()).collect(),
            None => (0..2).map(|_| segments.next_free(rep, INTERNET, PoolKind::Server, sp.clone())).collect(),
        };
        let gateway = addresses.first().map_or(Ipv4Addr::UNSPECIFIED, |a| public_gateway(*a));
        out_servers.push(Server {
            name: name.clone(),
            addresses,
            gateway,
            services: services.next().unwrap_or_default(),
            impair: impairs[name.as_str()].clone(),
        });
    }
    Some(Topology {
        file: file.to_string(),
        description: raw.description,
        routers: out_routers,
        hosts: out_hosts,
        servers: out_servers,
    })
}

/// Map entries in file order (TOML tables come back sorted by name).
fn sorted<T>(m: BTreeMap<String, Spanned<T>>) -> Vec<(String, Spanned<T>)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by_key(|(_, s)| s.span().start);
    v
}
