//! The nftables rulesets of a node, built in one place for the lab build and for the
//! events that change them.

use crate::firewall::{FW_TABLE, FirewallCtx, FirewallSpec, FwRole};
use crate::nat::{Nat6Mode, NatMode, RouterNat, RouterNat6};
use crate::topology::Router;
use crate::topology::ipv6::Ipv6Mode;

/// The router's NAT ruleset in `mode`, with port hashes seeded by `seed`.
pub(crate) fn nat(r: &Router, mode: NatMode, seed: u32) -> String {
    crate::nat::ruleset_seeded(
        &RouterNat {
            wan_if: "wan".into(),
            wan_addr: r.wan.address,
            lan_if: "lan".into(),
            lan_subnet: r.lan,
            one_to_one_host: r.one_to_one_host,
            mode,
        },
        seed,
    )
}

/// A firewall ruleset for a router (between `wan` and `lan`) or for a host.
pub(crate) fn firewall(fw: &FirewallSpec, router: bool) -> String {
    let role = if router { FwRole::Router { wan_if: "wan".into(), lan_if: "lan".into() } } else { FwRole::Host };
    crate::firewall::ruleset(fw, &FirewallCtx { role })
}

/// Removes the firewall table (creating it first, so removing works when there is none).
pub(crate) fn firewall_clear() -> String {
    format!("table inet {FW_TABLE} {{}}\ndelete table inet {FW_TABLE}\n")
}

/// nftables rulesets of a router at build time: its NAT, then its firewall.
pub(crate) fn router(r: &Router) -> Vec<(String, String)> {
    let mut v = Vec::new();
    if r.nat != NatMode::None {
        v.push(("nat".into(), nat(r, r.nat, crate::nat::HASH_SEED)));
    }
    if let Some(v6) = &r.ipv6 {
        let mode = match v6.mode {
            Ipv6Mode::Nat66 => Some(Nat6Mode::Nat66),
            // A NAT64 router's LAN is routed like a public one; tayga does the rest.
            Ipv6Mode::Public | Ipv6Mode::Nat64 => Some(Nat6Mode::Public),
            Ipv6Mode::Nptv6 => v6.routed.map(Nat6Mode::Nptv6),
            Ipv6Mode::None => None,
        };
        if let Some(mode) = mode {
            let n = RouterNat6 {
                wan_if: "wan".into(),
                wan_addr: v6.wan.address,
                lan_if: "lan".into(),
                lan_subnet: v6.lan,
                mode,
            };
            v.push(("ipv6".into(), crate::nat::ruleset6(&n)));
        }
    }
    if let Some(fw) = &r.firewall {
        v.push(("firewall".into(), firewall(fw, true)));
    }
    v
}
