//! Validation and address assignment: raw file -> [`Topology`].
//!
//! Every check records a located diagnostic and carries on, so one run of
//! `icelab check` shows every mistake in the file.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::ops::Range;

use ipnet::Ipv4Net;
use toml::Spanned;

use serde::Deserialize;

use super::error::{Reporter, TopologyError};
use super::raw::{RawHost, RawRouter, RawServer, RawTopology};
use super::{Attachment, Host, INTERNET, PUBLIC_RANGES, Router, Server, Topology, Uplink};
use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::{NatBehaviour, NatMode, NatSpec};

const KNOWN_SERVICES: [&str; 3] = ["stun", "turn", "echo"];
const MAX_NAME: usize = 20;

pub(super) fn resolve(file: &str, src: &str, raw: RawTopology) -> Result<Topology, TopologyError> {
    let mut rep = Reporter::new(file, src);
    let routers = sorted(raw.router);
    let hosts = sorted(raw.host);
    let servers = sorted(raw.server);

    if routers.is_empty() && hosts.is_empty() && servers.is_empty() {
        rep.error(
            0..0,
            "the topology has no nodes",
            Some("add a [host.NAME] with on = \"internet\", or a [router.NAME]".into()),
        );
        return Err(rep.finish().unwrap_err());
    }
    check_names(&mut rep, &routers, &hosts, &servers);
    let order = router_order(&mut rep, &routers);
    let lans = assign_lans(&mut rep, &routers, &order);

    let mut segments = Segments::new(&lans);
    // Explicit addresses first, so automatic ones never take an address someone asked for.
    for (name, r) in &routers {
        if let Some(a) = &r.get_ref().wan_address {
            segments.claim(&mut rep, r.get_ref().wan.get_ref(), *a.get_ref(), a.span(), name);
        }
    }
    for (name, h) in &hosts {
        if let Some(a) = &h.get_ref().address {
            segments.claim(&mut rep, h.get_ref().on.get_ref(), *a.get_ref(), a.span(), name);
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
                segments.claim(&mut rep, INTERNET, *a.get_ref(), a.span(), name);
            }
        }
    }
    check_services(&mut rep, &servers);
    if !rep.is_empty() {
        return Err(rep.finish().unwrap_err());
    }

    let nats: BTreeMap<&str, NatMode> =
        routers.iter().map(|(n, r)| (n.as_str(), interpret_nat(&mut rep, n, r.get_ref()))).collect();
    let mut firewalls: BTreeMap<&str, Option<FirewallSpec>> = BTreeMap::new();
    for (n, r) in &routers {
        firewalls.insert(n, interpret_firewall(&mut rep, r.get_ref().firewall.as_ref()));
    }
    for (n, h) in &hosts {
        firewalls.insert(n, interpret_firewall(&mut rep, h.get_ref().firewall.as_ref()));
    }
    let mut impairs: BTreeMap<&str, Option<LinkImpairment>> = BTreeMap::new();
    for (n, r) in &routers {
        impairs.insert(n, interpret_impair(&mut rep, r.get_ref().impair.as_ref()));
    }
    for (n, h) in &hosts {
        impairs.insert(n, interpret_impair(&mut rep, h.get_ref().impair.as_ref()));
    }
    for (n, sv) in &servers {
        impairs.insert(n, interpret_impair(&mut rep, sv.get_ref().impair.as_ref()));
    }
    if !rep.is_empty() {
        return Err(rep.finish().unwrap_err());
    }

    let mut out_routers = Vec::new();
    for idx in &order {
        let (name, r) = &routers[*idx];
        let r = r.get_ref();
        let seg = r.wan.get_ref();
        let address = match &r.wan_address {
            Some(a) => *a.get_ref(),
            None => segments.next_free(&mut rep, seg, PoolKind::RouterWan, r.wan.span()),
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
            None => segments.next_free(&mut rep, seg, PoolKind::Host, h.on.span()),
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
            None => (0..2).map(|_| segments.next_free(&mut rep, INTERNET, PoolKind::Server, sp.clone())).collect(),
        };
        let gateway = addresses.first().map_or(Ipv4Addr::UNSPECIFIED, |a| public_gateway(*a));
        out_servers.push(Server {
            name: name.clone(),
            addresses,
            gateway,
            services: s.services.iter().map(|x| x.get_ref().clone()).collect(),
            impair: impairs[name.as_str()].clone(),
        });
    }
    let nodes = crate::scenario::Nodes {
        hosts: out_hosts.iter().map(|h| h.name.as_str()).collect(),
        servers: out_servers
            .iter()
            .map(|s| (s.name.as_str(), s.services.iter().map(|x| x.as_str()).collect()))
            .collect(),
    };
    let times = raw.scenario.as_ref().map(|s| s.get_ref().explicit_times());
    let (mut scenario, expect) = crate::scenario::interpret(&mut rep, &nodes, raw.scenario, raw.expect);
    let kinds = crate::timeline::spec::NodeKinds {
        routers: out_routers.iter().map(|r| (r.name.as_str(), r.nat)).collect(),
        hosts: nodes.hosts.clone(),
        servers: nodes.servers.clone(),
    };
    let interpreters = crate::timeline::spec::Interpreters {
        nat: &|rep, name, v| interpret_nat_value(rep, name, v),
        firewall: &|rep, v| interpret_firewall(rep, Some(v)),
        impair: &|rep, v| interpret_impair(rep, Some(v)),
    };
    let (data_ms, deadline_ms) = times.unwrap_or((None, None));
    let events = crate::timeline::spec::interpret(
        &mut rep,
        &kinds,
        &interpreters,
        raw.event,
        scenario.as_mut(),
        crate::timeline::spec::ExplicitTimes { data_ms, deadline_ms },
    );
    rep.finish()?;
    Ok(Topology {
        file: file.to_string(),
        description: raw.description,
        routers: out_routers,
        hosts: out_hosts,
        servers: out_servers,
        scenario,
        expect,
        events,
    })
}

/// `nat = ...` -> NatMode, with the file position of any mistake.
fn interpret_nat(rep: &mut Reporter, name: &str, r: &RawRouter) -> NatMode {
    let Some(v) = &r.nat else {
        return NatMode::Napt(NatBehaviour::default());
    };
    interpret_nat_value(rep, name, v)
}

/// A `nat` value (preset name or table) -> NatMode; also used by `nat` timeline events.
fn interpret_nat_value(rep: &mut Reporter, name: &str, v: &Spanned<toml::Value>) -> NatMode {
    match NatSpec::deserialize(v.get_ref().clone()) {
        Ok(spec) => match spec.resolve() {
            Ok(mode) => mode,
            Err(e) => {
                rep.error(v.span(), format!("router `{name}`: {e}"), None);
                NatMode::None
            }
        },
        Err(e) => {
            rep.error(
                v.span(),
                format!("router `{name}`: bad nat: {}", e.to_string().trim()),
                Some(format!(
                    "presets: {}; or a table with preset, mapping, filtering, hairpinning, port-preservation, timeout",
                    nat_preset_names()
                )),
            );
            NatMode::None
        }
    }
}

fn nat_preset_names() -> String {
    crate::nat::PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// `firewall = ...` -> FirewallSpec, with the file position of any mistake.
fn interpret_firewall(rep: &mut Reporter, v: Option<&Spanned<toml::Value>>) -> Option<FirewallSpec> {
    let v = v?;
    let presets = || crate::firewall::FirewallPreset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    match FirewallSpec::deserialize(v.get_ref().clone()) {
        Ok(spec) => {
            if let Err(e) = spec.validate() {
                rep.error(
                    v.span(),
                    e.to_string(),
                    Some("each custom rule is one nft rule line, e.g. \"udp dport 3478 drop\"".into()),
                );
            }
            Some(spec)
        }
        Err(e) => {
            rep.error(
                v.span(),
                format!("bad firewall: {}", e.to_string().trim()),
                Some(format!("presets: {}; or {{ preset = ..., rules = [...] }}", presets())),
            );
            None
        }
    }
}

/// `impair = "lte"` or `impair = { up = {...}, down = {...} }` -> LinkImpairment.
fn interpret_impair(rep: &mut Reporter, v: Option<&Spanned<toml::Value>>) -> Option<LinkImpairment> {
    let v = v?;
    // A bare string is a preset name.
    let value = match v.get_ref() {
        toml::Value::String(p) => {
            let mut t = toml::Table::new();
            t.insert("preset".into(), toml::Value::String(p.clone()));
            toml::Value::Table(t)
        }
        other => other.clone(),
    };
    let presets = || crate::impair::presets::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    match LinkImpairment::deserialize(value) {
        Ok(l) => match l.validate() {
            Ok(()) => Some(l),
            Err(e) => {
                rep.error(v.span(), format!("bad impairment: {e}"), None);
                None
            }
        },
        Err(e) => {
            rep.error(v.span(), format!("bad impairment: {}", e.to_string().trim()), Some(format!("presets: {}; or {{ up = {{ delay-ms = 20, loss = {{ model = \"random\", percent = 1 }} }}, down = {{ ... }} }}", presets())));
            None
        }
    }
}

/// Map entries in file order (TOML tables come back sorted by name).
fn sorted<T>(m: BTreeMap<String, Spanned<T>>) -> Vec<(String, Spanned<T>)> {
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by_key(|(_, s)| s.span().start);
    v
}

fn check_names(
    rep: &mut Reporter,
    routers: &[(String, Spanned<RawRouter>)],
    hosts: &[(String, Spanned<RawHost>)],
    servers: &[(String, Spanned<RawServer>)],
) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    let all = routers
        .iter()
        .map(|(n, r)| (n, r.span(), "router"))
        .chain(hosts.iter().map(|(n, h)| (n, h.span(), "host")))
        .chain(servers.iter().map(|(n, s)| (n, s.span(), "server")));
    for (name, span, kind) in all {
        let valid = name.len() <= MAX_NAME
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            rep.error(span.clone(), format!("invalid node name `{name}`"), Some(format!(
                "names become namespace names: start with a lowercase letter, then a-z, 0-9 or '-', at most {MAX_NAME} characters")));
        }
        if name == INTERNET {
            rep.error(
                span.clone(),
                "`internet` is reserved for the simulated internet",
                Some("pick another name".into()),
            );
        }
        if let Some(other) = seen.insert(name, kind) {
            rep.error(
                span,
                format!("`{name}` is declared both as a {other} and as a {kind}"),
                Some("node names must be unique across routers, hosts and servers".into()),
            );
        }
    }
    let router_names: BTreeSet<&str> = routers.iter().map(|(n, _)| n.as_str()).collect();
    for (name, h) in hosts {
        let on = h.get_ref().on.get_ref();
        if on != INTERNET && !router_names.contains(on.as_str()) {
            let hint = if seen.contains_key(on.as_str()) {
                format!("`{on}` is not a router; hosts attach to a router's LAN or to \"internet\"")
            } else {
                format!("known routers: {}", list_or_none(&router_names))
            };
            rep.error(h.get_ref().on.span(), format!("host `{name}` is on unknown router `{on}`"), Some(hint));
        }
    }
}

fn list_or_none(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none (use \"internet\")".into()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// Orders routers so that each comes after the router its WAN is plugged into.
fn router_order(rep: &mut Reporter, routers: &[(String, Spanned<RawRouter>)]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = routers.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
    let names: BTreeSet<&str> = index.keys().copied().collect();
    let mut bad = BTreeSet::new();
    for (i, (name, r)) in routers.iter().enumerate() {
        let wan = r.get_ref().wan.get_ref();
        if name == INTERNET {
            // Reported by `check_names`; a router posing as the internet would make every
            // `wan = "internet"` chain point back at itself.
            bad.insert(i);
        } else if wan == name {
            rep.error(
                r.get_ref().wan.span(),
                format!("router `{name}` has its WAN on its own LAN"),
                Some("set wan = \"internet\" or the name of another router".into()),
            );
            bad.insert(i);
        } else if wan != INTERNET && !index.contains_key(wan.as_str()) {
            rep.error(
                r.get_ref().wan.span(),
                format!("router `{name}` has its WAN on unknown router `{wan}`"),
                Some(format!("known routers: {}", list_or_none(&names))),
            );
            bad.insert(i);
        }
    }
    let mut order = Vec::new();
    let mut placed = vec![false; routers.len()];
    // Repeatedly place routers whose parent is placed; what remains is a cycle.
    loop {
        let before = order.len();
        for (i, (_, r)) in routers.iter().enumerate() {
            if placed[i] || bad.contains(&i) {
                continue;
            }
            let wan = r.get_ref().wan.get_ref().as_str();
            if wan == INTERNET || index.get(wan).is_some_and(|p| placed[*p]) {
                placed[i] = true;
                order.push(i);
            }
        }
        if order.len() == before {
            break;
        }
    }
    for (i, (name, r)) in routers.iter().enumerate() {
        let wan = r.get_ref().wan.get_ref();
        if !placed[i] && !bad.contains(&i) && index.get(wan.as_str()).is_some_and(|p| !bad.contains(p)) {
            rep.error(
                r.get_ref().wan.span(),
                format!("router `{name}` is part of a WAN loop (via `{wan}`)"),
                Some("every chain of routers must end at \"internet\"".into()),
            );
        }
    }
    order
}

fn is_private(net: &Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]
        .iter()
        .any(|p| p.parse::<Ipv4Net>().unwrap().contains(net))
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn is_cgnat(r: &RawRouter) -> bool {
    match r.nat.as_ref().map(|v| v.get_ref()) {
        Some(toml::Value::String(s)) => s == "cgnat",
        Some(toml::Value::Table(t)) => t.get("preset").and_then(|p| p.as_str()) == Some("cgnat"),
        _ => false,
    }
}

/// Checks explicit LANs and assigns the others (192.168.k.0/24; 100.64.k.0/24 for CGNATs).
fn assign_lans<'a>(
    rep: &mut Reporter,
    routers: &'a [(String, Spanned<RawRouter>)],
    order: &[usize],
) -> BTreeMap<&'a str, Ipv4Net> {
    let explicit: Vec<Ipv4Net> =
        routers.iter().filter_map(|(_, r)| r.get_ref().lan.as_ref().map(|l| *l.get_ref())).collect();
    let public: Vec<Ipv4Net> = PUBLIC_RANGES.iter().map(|p| p.parse().unwrap()).collect();
    let mut lans = BTreeMap::new();
    let mut auto_taken: Vec<Ipv4Net> = Vec::new();
    for (name, r) in routers {
        let r = r.get_ref();
        let lan = match &r.lan {
            Some(l) => {
                let net = *l.get_ref();
                if net.prefix_len() < 8 || net.prefix_len() > 30 {
                    rep.error(
                        l.span(),
                        format!("LAN {net} must have a prefix between /8 and /30"),
                        Some("a home LAN is usually a /24".into()),
                    );
                } else if public.iter().any(|p| overlaps(p, &net)) {
                    rep.error(
                        l.span(),
                        format!("LAN {net} overlaps the simulated internet"),
                        Some(format!(
                            "{} are public in the lab; use a private range such as 192.168.1.0/24",
                            PUBLIC_RANGES.join(", ")
                        )),
                    );
                } else if !is_private(&net) {
                    rep.error(
                        l.span(),
                        format!("LAN {net} is not a private range"),
                        Some("use 10/8, 172.16/12, 192.168/16 or 100.64/10 (CGNAT)".into()),
                    );
                } else if net.network() != net.addr() {
                    rep.error(
                        l.span(),
                        format!("LAN {net} has host bits set"),
                        Some(format!("did you mean {}?", net.trunc())),
                    );
                }
                net.trunc()
            }
            None => {
                let base: [u8; 2] = if is_cgnat(r) { [100, 64] } else { [192, 168] };
                let net = (1..=254u8)
                    .map(|k| Ipv4Net::new(Ipv4Addr::new(base[0], base[1], k, 0), 24).unwrap())
                    .find(|n| !explicit.iter().chain(&auto_taken).any(|e| overlaps(e, n)))
                    .unwrap_or_else(|| Ipv4Net::new(Ipv4Addr::new(10, 255, 0, 0), 24).unwrap());
                auto_taken.push(net);
                net
            }
        };
        lans.insert(name.as_str(), lan);
    }
    // A LAN that overlaps a LAN on its own path to the internet breaks routing.
    for i in order {
        let (name, r) = &routers[*i];
        let mut parent = r.get_ref().wan.get_ref().as_str();
        // `order` holds only routers whose chain ends at the internet; the step bound keeps
        // the walk finite even if that ever stops being true.
        let mut steps = 0;
        while parent != INTERNET && steps < routers.len() {
            steps += 1;
            let Some(p) = lans.get(parent) else { break };
            if overlaps(p, &lans[name.as_str()]) {
                let span = r.get_ref().lan.as_ref().map_or(r.span(), |l| l.span());
                rep.error(
                    span,
                    format!(
                        "LAN of `{name}` ({}) overlaps the LAN of `{parent}` ({p}) on its way to the internet",
                        lans[name.as_str()]
                    ),
                    Some("nested NATs need distinct subnets; sibling routers may share one".into()),
                );
                break;
            }
            parent =
                routers.iter().find(|(n, _)| n == parent).map_or(INTERNET, |(_, r)| r.get_ref().wan.get_ref().as_str());
        }
    }
    lans
}

fn check_services(rep: &mut Reporter, servers: &[(String, Spanned<RawServer>)]) {
    for (name, s) in servers {
        let has = |x: &str| s.get_ref().services.iter().any(|v| v.get_ref() == x);
        if has("stun") && has("turn") {
            rep.error(
                s.span(),
                format!("server `{name}` runs both `stun` and `turn`; both listen on UDP 3478"),
                Some("use two servers; a TURN server answers STUN binding requests too".into()),
            );
        }
        for svc in &s.get_ref().services {
            if !KNOWN_SERVICES.contains(&svc.get_ref().as_str()) {
                rep.error(
                    svc.span(),
                    format!("server `{name}` has unknown service `{}`", svc.get_ref()),
                    Some(format!("known services: {}", KNOWN_SERVICES.join(", "))),
                );
            }
        }
    }
}

/// What `net.hosts().count()` would say, without walking 16 million addresses of a /8.
fn host_count(net: Ipv4Net) -> u32 {
    match net.prefix_len() {
        32 => 1,
        31 => 2,
        p => (1u32 << (32 - p)) - 2,
    }
}

fn first_host(net: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + 1)
}

/// The internet's gateway for a public address: .1 of its /24.
fn public_gateway(a: Ipv4Addr) -> Ipv4Addr {
    let o = a.octets();
    Ipv4Addr::new(o[0], o[1], o[2], 1)
}

#[derive(Clone, Copy)]
enum PoolKind {
    RouterWan,
    Host,
    Server,
}

/// Address bookkeeping per segment: the internet and each router's LAN.
struct Segments<'a> {
    lans: &'a BTreeMap<&'a str, Ipv4Net>,
    used: BTreeMap<String, BTreeMap<Ipv4Addr, String>>,
}

impl<'a> Segments<'a> {
    fn new(lans: &'a BTreeMap<&'a str, Ipv4Net>) -> Self {
        Segments { lans, used: BTreeMap::new() }
    }

    fn subnets(&self, seg: &str) -> Vec<Ipv4Net> {
        if seg == INTERNET {
            PUBLIC_RANGES.iter().map(|p| p.parse().unwrap()).collect()
        } else {
            self.lans.get(seg).copied().into_iter().collect()
        }
    }

    fn claim(&mut self, rep: &mut Reporter, seg: &str, a: Ipv4Addr, span: Range<usize>, who: &str) {
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

    fn next_free(&mut self, rep: &mut Reporter, seg: &str, kind: PoolKind, span: Range<usize>) -> Ipv4Addr {
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

    fn attachment(&self, seg: &str, address: Ipv4Addr, impair: Option<LinkImpairment>) -> Attachment {
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
