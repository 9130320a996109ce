//! Router order: each router after the router its WAN is plugged into; loops and
//! dangling references reported.

use std::collections::{BTreeMap, BTreeSet};

use toml::Spanned;

use super::INTERNET;
use super::names::list_or_none;
use super::raw::RawRouter;
use crate::diag::Reporter;

/// Orders routers so that each comes after the router its WAN is plugged into.
pub(super) fn router_order(rep: &mut Reporter, routers: &[(String, Spanned<RawRouter>)]) -> Vec<usize> {
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
    let parent = |i: usize| index.get(routers[i].1.get_ref().wan.get_ref().as_str()).copied();
    // On the loop itself when following WAN links comes back (bounded: at most n steps).
    let on_loop = |i: usize| {
        let mut j = parent(i);
        for _ in 0..routers.len() {
            match j {
                Some(k) if k == i => return true,
                Some(k) => j = parent(k),
                None => return false,
            }
        }
        false
    };
    for (i, (name, r)) in routers.iter().enumerate() {
        let wan = r.get_ref().wan.get_ref();
        if !placed[i] && !bad.contains(&i) && index.get(wan.as_str()).is_some_and(|p| !bad.contains(p)) {
            let message = if on_loop(i) {
                format!("router `{name}` is part of a WAN loop (via `{wan}`)")
            } else {
                format!("router `{name}` never reaches the internet: its WAN `{wan}` leads into a loop")
            };
            rep.error(r.get_ref().wan.span(), message, Some("every chain of routers must end at \"internet\"".into()));
        }
    }
    order
}
