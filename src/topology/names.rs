//! Node names and services: valid, unique, not reserved, and references that resolve.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::INTERNET;
use super::raw::{RawHost, RawRouter, RawServer};
use crate::diag::Reporter;
use crate::servers::{Service, ServiceKind};

pub(super) const MAX_NAME: usize = 20;

pub(super) fn check_names(
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

pub(super) fn list_or_none(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none (use \"internet\")".into()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

/// Reads every server's services (in server order) and checks they can run together.
pub(super) fn check_services(
    rep: &mut Reporter,
    servers: &[(String, Spanned<RawServer>)],
) -> Vec<Vec<crate::servers::Service>> {
    let mut out = Vec::new();
    for (name, s) in servers {
        let services: Vec<Service> =
            s.get_ref().services.iter().filter_map(|v| crate::servers::parse_service(rep, name, v)).collect();
        let has = |k: ServiceKind| services.iter().any(|v| v.kind == k);
        if has(ServiceKind::Stun) && has(ServiceKind::Turn) {
            rep.error(
                s.span(),
                format!("server `{name}` runs both `stun` and `turn`; both listen on UDP 3478"),
                Some("use two servers; a TURN server answers STUN binding requests too".into()),
            );
        }
        out.push(services);
    }
    out
}
