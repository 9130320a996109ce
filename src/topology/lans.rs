//! LAN subnets: explicit ones checked, the others assigned, and no LAN overlapping one on
//! its own path to the internet.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use toml::Spanned;

use super::raw::RawRouter;
use super::{INTERNET, PUBLIC_RANGES};
use crate::diag::Reporter;

fn is_private(net: &Ipv4Net) -> bool {
    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"]
        .iter()
        .any(|p| p.parse::<Ipv4Net>().unwrap().contains(net))
}

pub(super) fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
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
pub(super) fn assign_lans<'a>(
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
