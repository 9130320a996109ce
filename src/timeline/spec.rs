//! `[[event]]` in files: the raw (spanned) form, and its validation into
//! [`super::event`]'s types with file:line:col errors.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::event::{Action, EventExpect, PairExpect, TimelineEvent};
use crate::diag::Reporter;
use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::NatMode;

/// Time after the last event in which the call may recover, when `data-ms` is derived.
/// Longer than webrtc-rs's 5 s ICE disconnected timeout, so a break shows in ICE too.
pub const DEFAULT_RECOVERY_WINDOW_MS: u64 = 6000;

/// `[[event]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawEvent {
    at_ms: Spanned<u64>,
    link: Option<Spanned<String>>,
    node: Option<Spanned<String>>,
    nat_flush: Option<Spanned<String>>,
    new_ports: Option<Spanned<bool>>,
    nat: Option<Spanned<RawNatChange>>,
    firewall: Option<Spanned<RawFirewallChange>>,
    firewall_clear: Option<Spanned<String>>,
    turn: Option<Spanned<String>>,
    server: Option<Spanned<String>>,
    impair: Option<Spanned<RawImpairChange>>,
    cpu: Option<Spanned<RawCpuChange>>,
    expect: Option<Spanned<String>>,
    max_recovery_ms: Option<Spanned<u64>>,
    pair: Option<Spanned<String>>,
}

impl RawEvent {
    /// Where the event asks to be judged against one call (`expect`, `max-recovery-ms`,
    /// `pair`), if it does: a load's events only change the lab.
    pub(crate) fn judged_span(&self) -> Option<std::ops::Range<usize>> {
        let e = self.expect.as_ref().map(|v| v.span());
        e.or_else(|| self.max_recovery_ms.as_ref().map(|v| v.span())).or_else(|| self.pair.as_ref().map(|v| v.span()))
    }
}

/// `nat = { router = "home", nat = "symmetric" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNatChange {
    router: Spanned<String>,
    nat: Spanned<toml::Value>,
}

/// `firewall = { node = "home", firewall = "udp-blocked" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFirewallChange {
    node: Spanned<String>,
    firewall: Spanned<toml::Value>,
}

/// `impair = { node = "alice", impair = "lte" }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImpairChange {
    node: Spanned<String>,
    impair: Spanned<toml::Value>,
}

/// `cpu = { server = "relay", cpu = 0.1 }`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCpuChange {
    server: Spanned<String>,
    cpu: Spanned<f64>,
}

/// What validation needs to know about the nodes.
pub(crate) struct NodeKinds<'a> {
    /// Router name -> its NAT mode.
    pub routers: BTreeMap<&'a str, NatMode>,
    /// Host names.
    pub hosts: Vec<&'a str>,
    /// Server name -> the kinds of its services.
    pub servers: BTreeMap<&'a str, Vec<crate::servers::ServiceKind>>,
}

/// How the topology's own values are interpreted (shared with the node tables).
pub(crate) struct Interpreters<'f> {
    /// `nat = ...` value -> mode.
    pub nat: &'f dyn Fn(&mut Reporter, &str, &Spanned<toml::Value>) -> NatMode,
    /// `firewall = ...` value -> spec.
    pub firewall: &'f dyn Fn(&mut Reporter, &Spanned<toml::Value>) -> Option<FirewallSpec>,
    /// `impair = ...` value -> impairment.
    pub impair: &'f dyn Fn(&mut Reporter, &Spanned<toml::Value>) -> Option<LinkImpairment>,
}

/// `data-ms` and `deadline-ms` as written in `[scenario]` (absent: derived).
pub(crate) struct ExplicitTimes {
    /// `data-ms`.
    pub data_ms: Option<Spanned<u64>>,
    /// `deadline-ms`.
    pub deadline_ms: Option<Spanned<u64>>,
}

/// Checks and types the events (`has_scenario`: the file places a call for them to
/// happen during).
pub(crate) fn interpret(
    rep: &mut Reporter,
    nodes: &NodeKinds,
    f: &Interpreters,
    raw: Vec<Spanned<RawEvent>>,
    has_scenario: bool,
    times: &ExplicitTimes,
) -> Vec<TimelineEvent> {
    let Some(first) = raw.first() else {
        return Vec::new();
    };
    if !has_scenario {
        rep.error(
            first.span(),
            "[[event]] without [scenario]",
            Some("events happen during a call; add a [scenario]".into()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut last_at: Option<u64> = None;
    for ev in raw {
        let span = ev.span();
        let r = ev.into_inner();
        let at = *r.at_ms.get_ref();
        if last_at.is_some_and(|l| at < l) {
            rep.error(
                r.at_ms.span(),
                "events must be in time order",
                Some("sort the [[event]] entries by at-ms".into()),
            );
        }
        last_at = Some(at);
        if let Some(d) = &times.data_ms
            && at >= *d.get_ref()
        {
            rep.error(
                r.at_ms.span(),
                format!("event at {at} ms is after the data phase ends (data-ms = {})", d.get_ref()),
                Some("leave data-ms out to derive it from the events, or raise it".into()),
            );
        }
        if let Some(d) = &times.deadline_ms
            && at >= *d.get_ref()
        {
            rep.error(
                r.at_ms.span(),
                format!("event at {at} ms is beyond the deadline ({} ms)", d.get_ref()),
                Some("raise deadline-ms, or leave it out to derive it".into()),
            );
        }
        let expect = interpret_expect(rep, &r);
        let pair = interpret_pair(rep, &r);
        if let Some(action) = interpret_action(rep, nodes, f, span, r) {
            out.push(TimelineEvent { at_ms: at, action, expect, pair });
        }
    }
    out
}

/// When the last event's window closes: the data phase must last at least this long
/// for every event's effect to be seen.
pub(crate) fn window_end(events: &[TimelineEvent]) -> Option<u64> {
    events.last().map(|e| {
        let max = match e.expect {
            Some(EventExpect::Recovers { max_recovery_ms: Some(m) }) => m + 1000,
            _ => 0,
        };
        e.at_ms + max.max(DEFAULT_RECOVERY_WINDOW_MS)
    })
}

fn interpret_expect(rep: &mut Reporter, r: &RawEvent) -> Option<EventExpect> {
    let max = r.max_recovery_ms.as_ref().map(|m| *m.get_ref());
    let e = match r.expect.as_ref().map(|e| e.get_ref().as_str()) {
        None => None,
        Some("recovers") => Some(EventExpect::Recovers { max_recovery_ms: max }),
        Some("breaks") => Some(EventExpect::Breaks),
        Some(other) => {
            rep.error(
                r.expect.as_ref().unwrap().span(),
                format!("unknown event expectation `{other}`"),
                Some("use \"recovers\" or \"breaks\"".into()),
            );
            None
        }
    };
    if let Some(m) = &r.max_recovery_ms
        && !matches!(e, Some(EventExpect::Recovers { .. }))
    {
        rep.error(m.span(), "max-recovery-ms needs expect = \"recovers\"", None);
    }
    e
}

fn interpret_pair(rep: &mut Reporter, r: &RawEvent) -> Option<PairExpect> {
    let p = r.pair.as_ref()?;
    match p.get_ref().as_str() {
        "relay" => Some(PairExpect::Relay),
        "direct" => Some(PairExpect::Direct),
        other => {
            rep.error(
                p.span(),
                format!("unknown pair expectation `{other}`"),
                Some("use \"relay\" or \"direct\"".into()),
            );
            None
        }
    }
}

/// Which nodes an action may name.
#[derive(Clone, Copy)]
enum Kind {
    Any,
    Router,
    RouterOrHost,
}

fn check_node(rep: &mut Reporter, nodes: &NodeKinds, n: &Spanned<String>, kind: Kind) -> String {
    let name = n.get_ref().as_str();
    let (is_router, is_host, is_server) =
        (nodes.routers.contains_key(name), nodes.hosts.contains(&name), nodes.servers.contains_key(name));
    let known = is_router || is_host || is_server;
    let fits = match kind {
        Kind::Any => known,
        Kind::Router => is_router,
        Kind::RouterOrHost => is_router || is_host,
    };
    let wanted = match kind {
        Kind::Any => "a router, host or server",
        Kind::Router => "a router",
        Kind::RouterOrHost => "a router or host",
    };
    if !known {
        let mut all: Vec<&str> = nodes.routers.keys().copied().collect();
        all.extend(&nodes.hosts);
        all.extend(nodes.servers.keys());
        rep.error(n.span(), format!("unknown node `{name}`"), Some(format!("nodes: {}", all.join(", "))));
    } else if !fits {
        rep.error(n.span(), format!("`{name}` is not {wanted}"), Some(format!("this event acts on {wanted}")));
    }
    name.to_string()
}

fn interpret_action(
    rep: &mut Reporter,
    nodes: &NodeKinds,
    f: &Interpreters,
    span: std::ops::Range<usize>,
    r: RawEvent,
) -> Option<Action> {
    let given = [
        r.link.as_ref().map(|_| "link"),
        r.nat_flush.as_ref().map(|_| "nat-flush"),
        r.nat.as_ref().map(|_| "nat"),
        r.firewall.as_ref().map(|_| "firewall"),
        r.firewall_clear.as_ref().map(|_| "firewall-clear"),
        r.turn.as_ref().map(|_| "turn"),
        r.impair.as_ref().map(|_| "impair"),
        r.cpu.as_ref().map(|_| "cpu"),
    ];
    let given: Vec<&str> = given.into_iter().flatten().collect();
    if given.len() != 1 {
        let msg = if given.is_empty() {
            "event has no action".to_string()
        } else {
            format!("event has {} actions ({})", given.len(), given.join(", "))
        };
        rep.error(
            span,
            msg,
            Some("give exactly one of: link, nat-flush, nat, firewall, firewall-clear, turn, impair, cpu".into()),
        );
        return None;
    }
    // `node`/`server`/`new-ports` belong to one action each.
    let stray = |rep: &mut Reporter, v: Option<std::ops::Range<usize>>, key: &str, owner: &str| {
        if let Some(s) = v {
            rep.error(s, format!("`{key}` does not go with this action"), Some(format!("`{key}` is for {owner}")));
        }
    };
    if r.link.is_none() {
        stray(rep, r.node.as_ref().map(|n| n.span()), "node", "link = \"down\"|\"up\"");
    }
    if r.turn.is_none() {
        stray(rep, r.server.as_ref().map(|n| n.span()), "server", "turn = \"stop\"|\"start\"");
    }
    if r.nat_flush.is_none() {
        stray(rep, r.new_ports.as_ref().map(|n| n.span()), "new-ports", "nat-flush");
    }
    if let Some(l) = &r.link {
        let up = match l.get_ref().as_str() {
            "up" => true,
            "down" => false,
            other => {
                rep.error(l.span(), format!("bad link action `{other}`"), Some("use \"down\" or \"up\"".into()));
                return None;
            }
        };
        let Some(n) = &r.node else {
            rep.error(l.span(), "link event without `node`", Some("add node = \"NAME\" (whose uplink)".into()));
            return None;
        };
        return Some(Action::Link { node: check_node(rep, nodes, n, Kind::Any), up });
    }
    if let Some(n) = &r.nat_flush {
        let router = check_node(rep, nodes, n, Kind::Router);
        if let Some(m) = nodes.routers.get(router.as_str())
            && !matches!(m, NatMode::Napt(_))
        {
            rep.error(n.span(), format!("router `{router}` has no port-mapping NAT to flush"), None);
        }
        return Some(Action::NatFlush { router, new_ports: r.new_ports.is_none_or(|v| *v.get_ref()) });
    }
    if let Some(c) = r.nat {
        let c = c.into_inner();
        let router = check_node(rep, nodes, &c.router, Kind::Router);
        let nat = (f.nat)(rep, &router, &c.nat);
        return Some(Action::Nat { router, nat });
    }
    if let Some(c) = r.firewall {
        let c = c.into_inner();
        let node = check_node(rep, nodes, &c.node, Kind::RouterOrHost);
        let firewall = (f.firewall)(rep, &c.firewall)?;
        return Some(Action::Firewall { node, firewall });
    }
    if let Some(n) = &r.firewall_clear {
        return Some(Action::FirewallClear { node: check_node(rep, nodes, n, Kind::RouterOrHost) });
    }
    if let Some(t) = &r.turn {
        let start = match t.get_ref().as_str() {
            "start" => true,
            "stop" => false,
            other => {
                rep.error(t.span(), format!("bad turn action `{other}`"), Some("use \"stop\" or \"start\"".into()));
                return None;
            }
        };
        let Some(s) = &r.server else {
            rep.error(t.span(), "turn event without `server`", Some("add server = \"NAME\"".into()));
            return None;
        };
        let name = s.get_ref().as_str();
        match nodes.servers.get(name) {
            None => rep.error(
                s.span(),
                format!("unknown server `{name}`"),
                Some(format!("servers: {}", nodes.servers.keys().copied().collect::<Vec<_>>().join(", "))),
            ),
            Some(svc) if !svc.contains(&crate::servers::ServiceKind::Turn) => rep.error(
                s.span(),
                format!("server `{name}` runs no TURN"),
                Some("add \"turn\" to its services".into()),
            ),
            Some(_) => {}
        }
        return Some(Action::Turn { server: name.to_string(), start });
    }
    if let Some(c) = r.impair {
        let c = c.into_inner();
        let node = check_node(rep, nodes, &c.node, Kind::Any);
        let impair = (f.impair)(rep, &c.impair)?;
        return Some(Action::Impair { node, impair });
    }
    if let Some(c) = r.cpu {
        let c = c.into_inner();
        let name = c.server.get_ref().as_str();
        match nodes.servers.get(name) {
            None => rep.error(
                c.server.span(),
                format!("unknown server `{name}`"),
                Some(format!("servers: {}", nodes.servers.keys().copied().collect::<Vec<_>>().join(", "))),
            ),
            Some(svc) if !svc.iter().any(|k| k.has_own_process()) => rep.error(
                c.server.span(),
                format!("server `{name}` runs no service of its own to limit"),
                Some("limit a server with services = [\"turn\"] (or stun, dns)".into()),
            ),
            Some(_) => {}
        }
        let cores = match crate::topology::cpu_limit(*c.cpu.get_ref()) {
            Ok(x) => x,
            Err(e) => {
                let hint = format!("cores from {} to {}", crate::topology::CPU_MIN, crate::topology::CPU_MAX);
                rep.error(c.cpu.span(), e, Some(hint));
                return None;
            }
        };
        return Some(Action::Cpu { server: name.to_string(), cores });
    }
    None
}
