//! nftables ruleset for a firewall on a router or a host.
//!
//! Each preset gets its own pair of regular chains (`<preset>_out`,
//! `<preset>_in`) that only `drop` or `return`, so presets combine as an
//! intersection whatever their order. Base chains jump to them by direction,
//! then to `custom`, which holds the user's rule lines.

use super::spec::{FirewallPreset, FirewallSpec};
use std::fmt::Write;

/// nftables table that holds the firewall; separate from the NAT table.
pub const FW_TABLE: &str = "icelab_fw";

/// Where the firewall sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FwRole {
    /// On a router: filters forwarded traffic; "out" is LAN -> WAN.
    Router {
        /// WAN interface in the router namespace.
        wan_if: String,
        /// LAN interface in the router namespace.
        lan_if: String,
    },
    /// On an end host: filters its own traffic (loopback exempt).
    Host,
}

/// Context a firewall ruleset is rendered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallCtx {
    /// Router or host.
    pub role: FwRole,
}

/// Rules of one preset as (outbound, inbound) lines.
fn preset_rules(p: FirewallPreset) -> (&'static [&'static str], &'static [&'static str]) {
    match p {
        FirewallPreset::UdpBlocked => (&["meta l4proto udp drop"], &["meta l4proto udp drop"]),
        FirewallPreset::TcpOnly443 => (&["ct state established,related return", "tcp dport 443 return", "drop"], &[]),
        FirewallPreset::StunPortBlocked => (
            &["meta l4proto { tcp, udp } th dport { 3478, 5349 } drop"],
            &["meta l4proto { tcp, udp } th sport { 3478, 5349 } drop"],
        ),
        FirewallPreset::InboundBlocked => (&[], &["ct state established,related return", "drop"]),
    }
}

/// Renders a complete `nft -f` input for the namespace the firewall protects.
///
/// Replaces only `table inet icelab_fw`. Custom rules go to chain `custom`,
/// jumped to from `forward` on a router and from both `output` and `input` on
/// a host; they are expected to be validated ([`FirewallSpec::validate`]).
pub fn ruleset(spec: &FirewallSpec, ctx: &FirewallCtx) -> String {
    let mut out = format!("table inet {FW_TABLE} {{}}\ndelete table inet {FW_TABLE}\ntable inet {FW_TABLE} {{\n");
    let mut jumps_out = vec![];
    let mut jumps_in = vec![];
    for p in &spec.presets {
        let (rules_out, rules_in) = preset_rules(*p);
        let base = p.name().replace('-', "_");
        for (dir, rules, jumps) in [("out", rules_out, &mut jumps_out), ("in", rules_in, &mut jumps_in)] {
            if rules.is_empty() {
                continue;
            }
            let chain = format!("{base}_{dir}");
            if jumps.contains(&chain) {
                continue; // a preset listed twice
            }
            let _ = writeln!(out, "\tchain {chain} {{");
            for r in rules {
                let _ = writeln!(out, "\t\t{r}");
            }
            out.push_str("\t}\n");
            jumps.push(chain);
        }
    }
    out.push_str("\tchain custom {\n");
    for r in &spec.rules {
        let _ = writeln!(out, "\t\t{}", r.trim());
    }
    out.push_str("\t}\n");
    let base = |out: &mut String, name: &str, hook: &str, body: &[String]| {
        let _ = writeln!(out, "\tchain {name} {{\n\t\ttype filter hook {hook} priority filter; policy accept;");
        for l in body {
            let _ = writeln!(out, "\t\t{l}");
        }
        out.push_str("\t}\n");
    };
    let jump =
        |cond: &str, chains: &[String]| -> Vec<String> { chains.iter().map(|c| format!("{cond} jump {c}")).collect() };
    match &ctx.role {
        FwRole::Router { wan_if, lan_if } => {
            let mut body = jump(&format!("iifname \"{lan_if}\" oifname \"{wan_if}\""), &jumps_out);
            body.extend(jump(&format!("iifname \"{wan_if}\" oifname \"{lan_if}\""), &jumps_in));
            body.push("jump custom".into());
            base(&mut out, "forward", "forward", &body);
        }
        FwRole::Host => {
            let mut body = jump("oifname != \"lo\"", &jumps_out);
            body.push("jump custom".into());
            base(&mut out, "output", "output", &body);
            let mut body = jump("iifname != \"lo\"", &jumps_in);
            body.push("jump custom".into());
            base(&mut out, "input", "input", &body);
        }
    }
    out.push_str("}\n");
    out
}
