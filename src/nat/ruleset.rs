//! nftables ruleset for one router namespace.
//!
//! Mechanisms (kernel nftables + conntrack only):
//! - **Mapping**: `snat` with a deterministic port. EIM + port preservation is
//!   plain `snat` (the kernel keeps the source port when the resulting tuple is
//!   free). Otherwise the port is `jhash` of the mapping key: internal endpoint
//!   (EIM), plus remote address (ADM), plus remote port (APDM), so every
//!   conntrack entry with the same key gets the same external port.
//! - **Filtering**: conntrack alone is APDF. For EIF/ADF a postrouting chain
//!   (after srcnat) records each mapping in a dynamic map keyed by the external
//!   port (EIF) or (external port, remote address) (ADF); prerouting DNATs
//!   unsolicited inbound packets whose key is in the map to the internal endpoint.
//! - **Hairpinning**: LAN packets to the WAN address are DNATed through the same
//!   mapping map and SNATed to the WAN address so replies return via the router.
//!   Hairpinned packets are not filtered (as if EIF): a conntrack-only NAT has
//!   no record of which internal endpoints a hairpinned flow "contacted".
//!   The translation happens in the router's local output path: a raw
//!   prerouting chain `dup`s LAN packets for the WAN address into it and drops
//!   the originals, so that same-host hairpinning also works when the host has
//!   `br_netfilter` loaded (see `hairpin_reinject` for why).
//! - **Timeout**: a `ct timeout` object sets the UDP conntrack timeouts and the
//!   map elements expire after the same idle time; both are refreshed by
//!   outbound packets. TCP mappings follow conntrack's TCP state machine and
//!   the maps keep TCP entries for 7440 s (RFC 5382's 2 h 4 min).
//!
//! Not expressible with nftables (left for a userspace NAT):
//! - port preservation together with ADM/APDM (the first mapping keeps the port,
//!   later ones do not): the ruleset hashes every port instead;
//! - guaranteed EIM under port collisions: if two internal endpoints map to the
//!   same external port towards the same remote endpoint, the kernel picks
//!   another port for that one conntrack entry;
//! - an EIF/ADF map entry is keyed by external port only, so with port
//!   preservation two LAN hosts using the same source port share one entry
//!   (the last one to send wins inbound);
//! - inbound-refreshed mapping timers (RFC 4787 REQ-6 "MAY"), port parity and contiguity.

use super::behaviour::{Filtering, Mapping, NatBehaviour, PortPreservation};
use super::spec::NatMode;
use ipnet::Ipv4Net;
use std::fmt::Write;
use std::net::Ipv4Addr;

/// nftables table that holds all NAT state of a router.
pub const NAT_TABLE: &str = "icelab";
/// Seed for port hashes; fixed so rulesets and ports are reproducible.
pub const HASH_SEED: u32 = 0x1ce1ab;
/// Seed after a rebinding (`nat-flush` with new ports): any value but [`HASH_SEED`].
pub const REBIND_HASH_SEED: u32 = 0x5eed1ce;
/// TCP mapping lifetime in the EIF/ADF maps (RFC 5382 REQ-5).
const TCP_MAP_TIMEOUT_S: u32 = 7440;

/// Everything needed to render the NAT ruleset of one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterNat {
    /// WAN interface name inside the router namespace.
    pub wan_if: String,
    /// WAN address; all translated traffic uses it.
    pub wan_addr: Ipv4Addr,
    /// LAN interface name inside the router namespace.
    pub lan_if: String,
    /// LAN subnet behind the router.
    pub lan_subnet: Ipv4Net,
    /// Host owning the WAN address in [`NatMode::OneToOne`].
    pub one_to_one_host: Option<Ipv4Addr>,
    /// What to do.
    pub mode: NatMode,
}

/// Renders a complete `nft -f` input, to be applied inside the router's namespace.
///
/// It replaces only `table ip icelab` (other tables, e.g. the firewall's, are
/// kept), so it can be re-applied. In [`NatMode::OneToOne`] without
/// `one_to_one_host` no inbound translation is possible; the ruleset then only
/// masquerades and says so in a comment.
pub fn ruleset(nat: &RouterNat) -> String {
    ruleset_seeded(nat, HASH_SEED)
}

/// [`ruleset`] with port hashes seeded by `seed`: the same NAT with a different seed
/// gives (almost surely) every flow a different external port.
pub fn ruleset_seeded(nat: &RouterNat, seed: u32) -> String {
    let mut out = format!(
        "# icelab NAT: {}\ntable ip {NAT_TABLE} {{}}\ndelete table ip {NAT_TABLE}\ntable ip {NAT_TABLE} {{\n",
        describe(&nat.mode)
    );
    match nat.mode {
        NatMode::None => out.push_str("\t# plain router: no translation, no filtering\n"),
        NatMode::OneToOne => one_to_one(nat, &mut out),
        NatMode::Napt(b) => napt(nat, &b, seed, &mut out),
    }
    out.push_str("}\n");
    out
}

fn describe(mode: &NatMode) -> String {
    match mode {
        NatMode::None => "none".into(),
        NatMode::OneToOne => "one-to-one".into(),
        NatMode::Napt(b) => format!(
            "{} + {}, hairpinning {}, ports {:?}, UDP timeout {} s",
            b.mapping.abbrev(),
            b.filtering.abbrev(),
            if b.hairpinning { "on" } else { "off" },
            b.port_preservation,
            b.timeout_s
        ),
    }
}

fn one_to_one(nat: &RouterNat, out: &mut String) {
    let (wan, wan_if, lan_if, lan) = (nat.wan_addr, &nat.wan_if, &nat.lan_if, nat.lan_subnet);
    if let Some(h) = nat.one_to_one_host {
        hairpin_reinject(nat, "", out);
        let _ = writeln!(out, "{HAIRPIN_DSTNAT}\t\tip daddr {wan} dnat ip to {h}\n\t}}");
    }
    out.push_str("\tchain dstnat {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
    match nat.one_to_one_host {
        Some(h) => {
            let _ = writeln!(out, "\t\tiifname \"{wan_if}\" ip daddr {wan} dnat ip to {h}");
        }
        None => out.push_str("\t\t# no one-to-one host given: inbound translation disabled\n"),
    }
    out.push_str("\t}\n\tchain srcnat {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    let _ = writeln!(out, "\t\toifname \"{wan_if}\" ip saddr {lan} snat ip to {wan}");
    let _ = writeln!(out, "\t\toifname \"{lan_if}\" ip saddr {lan} ct status dnat snat ip to {wan}");
    out.push_str("\t}\n");
}

/// Opens the output nat chain that translates hairpinned packets (see
/// [`hairpin_reinject`]); nft 1.0.6 knows no `dstnat` priority name for output.
const HAIRPIN_DSTNAT: &str = "\tchain hairpin_dstnat {\n\t\ttype nat hook output priority -100; policy accept;\n";

/// Chains that move hairpinned packets (`filter` selects which: e.g. only
/// TCP/UDP) from prerouting into the router's local output path, where
/// [`HAIRPIN_DSTNAT`] DNATs them and `srcnat` SNATs them to the WAN address.
///
/// Why not DNAT in prerouting: with `br_netfilter` active (host module
/// loaded; `bridge-nf-call-iptables` defaults to 1 in every namespace) the
/// prerouting hooks run while the LAN bridge is still *bridging* the frame,
/// and a DNAT to a LAN address makes br_netfilter bridge it to the new
/// destination instead of routing it. When that destination is the sending
/// host itself (two sockets of one host, RFC 5780 §4.5) the bridge would
/// have to send the frame back out of its ingress port, which it never does,
/// so the packet vanished. `dup` sends a clone from the router itself (any
/// port allowed) and untracks it; the raw output chain gives it conntrack
/// back (`ct zone set 0` attaches the default-zone template), so new
/// hairpinned flows and their replies are NATed by conntrack as usual.
/// Clones nothing maps (no DNAT) loop back to `input` and are dropped there.
/// The router's own packets to a mapped WAN port are hairpinned alike. Needs
/// `nft_dup_ipv4` (CONFIG_NFT_DUP_IPV4).
fn hairpin_reinject(nat: &RouterNat, filter: &str, out: &mut String) {
    let (wan, lan_if) = (nat.wan_addr, &nat.lan_if);
    let _ = writeln!(
        out,
        "\tchain hairpin_reinject {{\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t\tiifname \"{lan_if}\" ip daddr {wan} {filter}dup to {wan} drop\n\t}}"
    );
    let _ = writeln!(
        out,
        "\tchain hairpin_track {{\n\t\ttype filter hook output priority raw; policy accept;\n\t\tct state untracked ip daddr {wan} {filter}ct zone set 0\n\t}}"
    );
}

/// `: <port expression>` for `snat`, or "" to let the kernel preserve the port.
fn port_expr(b: &NatBehaviour, proto: &str, seed: u32) -> String {
    let key = match (b.mapping, b.port_preservation) {
        (Mapping::EndpointIndependent, PortPreservation::Preserve) => return String::new(),
        (Mapping::EndpointIndependent, PortPreservation::Random) => {
            format!("ip saddr . {proto} sport")
        }
        (Mapping::AddressDependent, _) => format!("ip saddr . {proto} sport . ip daddr"),
        (Mapping::AddressAndPortDependent, _) => {
            format!("ip saddr . {proto} sport . ip daddr . {proto} dport")
        }
    };
    format!(" : jhash {key} mod 64512 seed {seed:#x} offset 1024")
}

fn napt(nat: &RouterNat, b: &NatBehaviour, seed: u32, out: &mut String) {
    let (wan, wan_if, lan_if, lan) = (nat.wan_addr, &nat.wan_if, &nat.lan_if, nat.lan_subnet);
    let eif_map = b.filtering == Filtering::EndpointIndependent || b.hairpinning;
    let adf_map = b.filtering == Filtering::AddressDependent;
    let t = b.timeout_s;
    if b.mapping != Mapping::EndpointIndependent && b.port_preservation == PortPreservation::Preserve {
        out.push_str(
            "\t# port preservation is not honoured with address(-and-port) dependent mapping: ports are hashed\n",
        );
    }
    let _ = writeln!(
        out,
        "\tct timeout udp_mapping {{\n\t\tprotocol udp; l3proto ip\n\t\tpolicy = {{ unreplied: {t}, replied: {t} }}\n\t}}"
    );
    for (p, pt) in [("udp", t), ("tcp", TCP_MAP_TIMEOUT_S)] {
        let mut map = |name: &str, key: &str, why: &str| {
            let _ = writeln!(
                out,
                "\t# {why}\n\tmap {p}_{name} {{\n\t\ttype {key} : ipv4_addr . inet_service\n\t\tflags dynamic, timeout\n\t\ttimeout {pt}s\n\t}}"
            );
        };
        if eif_map {
            map("mappings", "inet_service", "external port -> internal endpoint");
        }
        if adf_map {
            map("peers", "inet_service . ipv4_addr", "(external port, remote address) -> internal endpoint");
        }
    }
    out.push_str("\tchain conntrack_timeout {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n");
    out.push_str("\t\tmeta l4proto udp ct state new ct timeout set \"udp_mapping\"\n\t}\n");
    if b.hairpinning {
        hairpin_reinject(nat, "meta l4proto { tcp, udp } ", out);
        // Hairpinned flows get their conntrack entry in the output path.
        out.push_str(
            "\tchain conntrack_timeout_local {\n\t\ttype filter hook output priority mangle; policy accept;\n",
        );
        let _ = writeln!(out, "\t\tip daddr {wan} meta l4proto udp ct state new ct timeout set \"udp_mapping\"\n\t}}");
        out.push_str(HAIRPIN_DSTNAT);
        for p in ["udp", "tcp"] {
            let _ = writeln!(out, "\t\tip daddr {wan} {p} dport @{p}_mappings dnat ip to {p} dport map @{p}_mappings");
        }
        out.push_str("\t}\n");
    }

    out.push_str("\tchain dstnat {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n");
    for p in ["udp", "tcp"] {
        if b.filtering == Filtering::EndpointIndependent {
            let _ = writeln!(
                out,
                "\t\tiifname \"{wan_if}\" ip daddr {wan} {p} dport @{p}_mappings dnat ip to {p} dport map @{p}_mappings"
            );
        }
        if adf_map {
            let _ = writeln!(
                out,
                "\t\tiifname \"{wan_if}\" ip daddr {wan} {p} dport . ip saddr @{p}_peers dnat ip to {p} dport . ip saddr map @{p}_peers"
            );
        }
    }
    out.push_str("\t}\n\tchain srcnat {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n");
    for p in ["udp", "tcp"] {
        let port = port_expr(b, p, seed);
        let _ = writeln!(out, "\t\toifname \"{wan_if}\" meta l4proto {p} snat ip to {wan}{port}");
        if b.hairpinning {
            let _ = writeln!(
                out,
                "\t\toifname \"{lan_if}\" ip saddr {lan} ct status dnat meta l4proto {p} snat ip to {wan}{port}"
            );
        }
    }
    let _ = writeln!(out, "\t\toifname \"{wan_if}\" snat ip to {wan}");
    out.push_str("\t}\n");

    if eif_map || adf_map {
        // Runs after srcnat so `ct reply proto-dst` is the chosen external port;
        // a filter chain sees every packet, so outbound traffic refreshes the entry.
        out.push_str(
            "\tchain record_mappings {\n\t\ttype filter hook postrouting priority srcnat + 1; policy accept;\n",
        );
        for p in ["udp", "tcp"] {
            let pre = format!("oifname \"{wan_if}\" meta l4proto {p}");
            let orig = "ct original ip saddr . ct original proto-src";
            let repl = "ct reply ip saddr . ct reply proto-src";
            if eif_map {
                let _ = writeln!(
                    out,
                    "\t\t{pre} ct direction original update @{p}_mappings {{ ct reply proto-dst : {orig} }}"
                );
                let _ = writeln!(
                    out,
                    "\t\t{pre} ct direction reply ct status dnat update @{p}_mappings {{ ct original proto-dst : {repl} }}"
                );
            }
            if adf_map {
                let _ = writeln!(
                    out,
                    "\t\t{pre} ct direction original update @{p}_peers {{ ct reply proto-dst . ip daddr : {orig} }}"
                );
                let _ = writeln!(
                    out,
                    "\t\t{pre} ct direction reply ct status dnat update @{p}_peers {{ ct original proto-dst . ip daddr : {repl} }}"
                );
            }
        }
        out.push_str("\t}\n");
    }
    // Unsolicited WAN traffic must not be routed into the LAN unless a mapping DNATed it.
    let _ = writeln!(
        out,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname \"{wan_if}\" oifname \"{lan_if}\" ct state established,related accept\n\t\tiifname \"{wan_if}\" oifname \"{lan_if}\" ct status dnat accept\n\t\tiifname \"{wan_if}\" oifname \"{lan_if}\" drop\n\t}}"
    );
    // Silently drop (no ICMP, and before conntrack confirms an entry that would
    // later clash with a mapping) anything new for the WAN address that no
    // mapping claimed; this is also what "hairpinning off" means. The lab's own
    // echo responder (port 7) stays reachable so reachability can be tested.
    let echo = crate::plan::ECHO_PORT;
    let _ = writeln!(
        out,
        "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname \"{wan_if}\" ip daddr {wan} meta l4proto {{ tcp, udp }} th dport {echo} accept\n\t\tip daddr {wan} meta l4proto {{ tcp, udp }} ct state new drop\n\t}}"
    );
}
