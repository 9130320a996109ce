//! Validation and address assignment: the file's network tables -> [`Topology`]. The checks live in
//! `names`, `order`, `lans`, `addressing` and `values`; this puts them in order.
//!
//! Every check records a located diagnostic and carries on, so one run of
//! `icelab check` shows every mistake in the file.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use toml::Spanned;

use super::addressing::{PoolKind, Segments, first_host, public_gateway};
use super::ipv6::{Family, Ipv6Mode, RouterV6};
use super::lans::assign_lans;
use super::names::{check_names, check_services};
use super::order::router_order;
use super::raw::{RawHost, RawRouter, RawServer, RawTopology};
use super::values::{interpret_cpu, interpret_firewall, interpret_impair, interpret_nat};
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
    let cpus: Vec<Option<f64>> =
        servers.iter().map(|(n, sv)| interpret_cpu(rep, n, sv.get_ref().cpu.as_ref())).collect();
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
            ipv6: None,
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
            family: Family::V4,
            ipv6: None,
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
    for ((name, s), cpu) in servers.iter().zip(cpus) {
        let sp = s.span();
        let s = s.get_ref();
        let addresses: Vec<Ipv4Addr> = match &s.addresses {
            Some(list) => list.get_ref().iter().map(|a| *a.get_ref()).collect(),
            None => (0..2).map(|_| segments.next_free(rep, INTERNET, PoolKind::Server, sp.clone())).collect(),
        };
        let gateway = addresses.first().map_or(Ipv4Addr::UNSPECIFIED, |a| public_gateway(*a));
        let services = services.next().unwrap_or_default();
        if let (Some(_), Some(v)) = (cpu, &s.cpu)
            && !services.iter().any(|v| v.kind.has_own_process())
        {
            rep.error(
                v.span(),
                format!("server `{name}` has a cpu limit but runs no service of its own"),
                Some("give it services = [\"turn\"] (or stun, dns), or leave cpu out".into()),
            );
        }
        out_servers.push(Server {
            name: name.clone(),
            addresses,
            gateway,
            services,
            impair: impairs[name.as_str()].clone(),
            addresses6: Vec::new(),
            cpu,
        });
    }
    let raw_routers: Vec<&Spanned<RawRouter>> = order.iter().map(|i| &routers[*i].1).collect();
    let raw_hosts: Vec<&Spanned<RawHost>> = hosts.iter().map(|(_, h)| h).collect();
    let raw_servers: Vec<&Spanned<RawServer>> = servers.iter().map(|(_, s)| s).collect();
    let v6 = RawV6 { routers: &raw_routers, hosts: &raw_hosts, servers: &raw_servers };
    assign_v6(rep, &v6, &mut out_routers, &mut out_hosts, &mut out_servers);
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

/// A written `ipv6` / `family` word, or a located error naming the allowed ones.
fn word<T: Copy>(
    rep: &mut Reporter,
    v: Option<&Spanned<String>>,
    what: &str,
    parse: fn(&str) -> Option<T>,
    names: &[&str],
) -> Option<T> {
    let v = v?;
    let got = parse(v.get_ref());
    if got.is_none() {
        rep.error(
            v.span(),
            format!("unknown {what} `{}`", v.get_ref()),
            Some(format!("use one of: {}", names.join(", "))),
        );
    }
    got
}

/// The IPv6 side of router `name`, once assigned.
fn router_v6(routers: &[Router], name: &str) -> Option<RouterV6> {
    routers.iter().find(|x| x.name == name).and_then(|x| x.ipv6)
}

/// Where a router's IPv6 mistake is shown: its `ipv6` value, else the router's table.
fn ipv6_span(r: &Spanned<RawRouter>) -> std::ops::Range<usize> {
    r.get_ref().ipv6.as_ref().map_or(r.span(), |v| v.span())
}

/// The written tables IPv6 reads, each in the order of its resolved list (routers
/// parents first).
struct RawV6<'a> {
    routers: &'a [&'a Spanned<RawRouter>],
    hosts: &'a [&'a Spanned<RawHost>],
    servers: &'a [&'a Spanned<RawServer>],
}

/// IPv6: every router's mode, every host's and server's family, and the addresses they
/// give (see [`super::ipv6`]). Nothing changes unless the file asks for IPv6 somewhere.
fn assign_v6(rep: &mut Reporter, raw: &RawV6, routers: &mut [Router], hosts: &mut [Host], servers: &mut [Server]) {
    let (raw_routers, raw_hosts) = (raw.routers, raw.hosts);
    use super::ipv6::{attach, derive, internet_gateway_v6, internet_subnet_v6, lan_prefix};
    let mode_names: Vec<&str> = Ipv6Mode::ALL.iter().map(|m| m.name()).collect();
    let family_names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
    let modes: Vec<Ipv6Mode> = raw_routers
        .iter()
        .map(|r| {
            word(rep, r.get_ref().ipv6.as_ref(), "ipv6 mode", Ipv6Mode::from_name, &mode_names).unwrap_or_default()
        })
        .collect();
    let families: Vec<Option<Family>> = raw_hosts
        .iter()
        .map(|h| word(rep, h.get_ref().family.as_ref(), "family", Family::from_name, &family_names))
        .collect();
    let server_families = server_families(rep, raw.servers);
    let asked = modes.iter().any(|m| *m != Ipv6Mode::None) || families.iter().flatten().any(|f| f.has_v6());
    if !asked {
        return;
    }
    let mut k: u16 = 0;
    for i in 0..routers.len() {
        let mode = modes[i];
        if mode == Ipv6Mode::None {
            continue;
        }
        let r = &routers[i];
        let wan = match &r.wan.uplink {
            Uplink::Internet => Some(attach(internet_subnet_v6(), r.wan.address, internet_gateway_v6())),
            Uplink::Router(p) => router_v6(routers, p).map(|pv6| attach(pv6.lan, r.wan.address, pv6.lan_address)),
        };
        let Some(wan) = wan else {
            let span = ipv6_span(raw_routers[i]);
            let Uplink::Router(p) = &r.wan.uplink else { unreachable!("the internet always has IPv6 here") };
            rep.error(
                span,
                format!("router `{}` has ipv6 = \"{}\" but its WAN router `{p}` has no IPv6", r.name, mode.name()),
                Some(format!("give `{p}` ipv6 = \"public\" or \"nat66\"")),
            );
            continue;
        };
        if let (true, Uplink::Router(p)) = (mode.is_routed(), &r.wan.uplink) {
            let parent_mode = router_v6(routers, p).map(|v| v.mode);
            if let Some(parent_mode) = parent_mode.filter(|m| m.translates()) {
                // The NAT66 above translates only its own ULA: a routed /64 below it
                // would leave unrewritten and never be routed back.
                let span = ipv6_span(raw_routers[i]);
                rep.error(
                    span,
                    format!("router `{}` has ipv6 = \"{}\" behind `{p}`, which has ipv6 = \"{}\"", r.name, mode.name(), parent_mode.name()),
                    Some(format!("a public /64 needs public routers above it: give `{p}` ipv6 = \"public\", or this one \"nat66\"")),
                );
                continue;
            }
        }
        if mode == Ipv6Mode::Nat64 && !matches!(r.nat, NatMode::Napt(_)) {
            // Tayga maps each IPv6 host to a private pool address; only the router's
            // NAPT can share its one public IPv4 address among them.
            rep.error(
                ipv6_span(raw_routers[i]),
                format!("router `{}` has ipv6 = \"nat64\" but its IPv4 NAT translates no ports", r.name),
                Some("NAT64 shares the router's IPv4 address through its NAT: give it a NAT behaviour such as \"port-restricted-cone\"".into()),
            );
            continue;
        }
        k += 1;
        let lan = lan_prefix(mode, k);
        let lan_address = derive(lan, r.lan_address);
        let routed = super::ipv6::routed_prefix(mode, k);
        routers[i].ipv6 = Some(RouterV6 { mode, wan, lan, lan_address, routed });
    }
    for (i, h) in hosts.iter_mut().enumerate() {
        let parent_v6 = match &h.uplink.uplink {
            Uplink::Internet => Some((internet_subnet_v6(), internet_gateway_v6())),
            Uplink::Router(p) => router_v6(routers, p).map(|v| (v.lan, v.lan_address)),
        };
        let family = families[i].unwrap_or(if parent_v6.is_some() { Family::Dual } else { Family::V4 });
        if family.has_v6() && parent_v6.is_none() {
            let Uplink::Router(p) = &h.uplink.uplink else { unreachable!("the internet always has IPv6 here") };
            let span = raw_hosts[i].get_ref().family.as_ref().map_or(raw_hosts[i].span(), |v| v.span());
            rep.error(
                span,
                format!("host `{}` has family = \"{}\" but its router `{p}` has no IPv6", h.name, family.name()),
                Some(format!("give `{p}` ipv6 = \"public\", \"nat66\" or \"nat64\", or use family = \"v4\"")),
            );
            continue;
        }
        h.family = family;
        if let (true, Some((segment, gateway))) = (family.has_v6(), parent_v6) {
            h.ipv6 = Some(attach(segment, h.uplink.address, gateway));
        }
    }
    for (s, family) in servers.iter_mut().zip(server_families) {
        if family != Some(Family::V4) {
            s.addresses6 = s.addresses.iter().map(|a| derive(internet_subnet_v6(), *a)).collect();
        }
    }
}

/// Each server's written family: `v4` or `dual` (a server keeps its IPv4 addresses).
fn server_families(rep: &mut Reporter, raw_servers: &[&Spanned<RawServer>]) -> Vec<Option<Family>> {
    let names = [Family::Dual.name(), Family::V4.name()];
    raw_servers
        .iter()
        .map(|s| {
            let v = s.get_ref().family.as_ref()?;
            let f = Family::from_name(v.get_ref()).filter(|f| f.has_v4());
            if f.is_none() {
                rep.error(
                    v.span(),
                    format!("unknown server family `{}`", v.get_ref()),
                    Some(format!("use one of: {} (a server keeps its IPv4 addresses)", names.join(", "))),
                );
            }
            f
        })
        .collect()
}
