//! nftables ruleset for a router's IPv6 side (`ipv6 = "public"` or `"nat66"`), in its own
//! table `ip6 icelab6` beside the IPv4 NAT's `ip icelab` and the firewall's `inet icelab_fw`.
//!
//! - **public**: the LAN's /64 is routed; a stateful firewall in the forward path lets out
//!   everything from the LAN and lets in only what conntrack knows as a reply
//!   (established, related: ICMPv6 errors included), dropping every inbound new
//!   connection, as RFC 6092 home gateways do by default. Conntrack matches the full
//!   5-tuple, so filtering is address-and-port-dependent: a peer's check gets in only
//!   after the host behind the firewall has sent to exactly that address and port, which
//!   is what ICE's simultaneous checks do.
//! - **nat66**: the LAN's ULA /64 is rewritten to the WAN address (`snat`, ports kept
//!   when free, like the IPv4 NAT's endpoint-independent mapping); the same forward
//!   filter, and nothing new for the WAN address reaches the router itself (but the
//!   lab's echo responder).

use std::fmt::Write;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

/// nftables table of a router's IPv6 rules.
pub const NAT6_TABLE: &str = "icelab6";

/// How a router treats IPv6 (the planned modes; `none` has no ruleset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nat6Mode {
    /// Routed /64 behind a stateful firewall.
    Public,
    /// Masquerade to the WAN address.
    Nat66,
    /// 1:1 prefix translation of the LAN to this public /64 (NPTv6).
    Nptv6(Ipv6Net),
}

/// Everything needed to render one router's IPv6 ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterNat6 {
    /// WAN interface name inside the router namespace.
    pub wan_if: String,
    /// WAN IPv6 address.
    pub wan_addr: Ipv6Addr,
    /// LAN interface name inside the router namespace.
    pub lan_if: String,
    /// LAN /64.
    pub lan_subnet: Ipv6Net,
    /// What to do.
    pub mode: Nat6Mode,
}

/// Renders a complete `nft -f` input that replaces only `table ip6 icelab6`.
pub fn ruleset6(n: &RouterNat6) -> String {
    let (wan_if, lan_if, wan, lan) = (&n.wan_if, &n.lan_if, n.wan_addr, n.lan_subnet);
    let what = match n.mode {
        Nat6Mode::Public => format!("public {lan}, inbound new connections dropped (RFC 6092)"),
        Nat6Mode::Nat66 => format!("nat66 {lan} -> {wan}"),
        Nat6Mode::Nptv6(ext) => format!("nptv6 {lan} <-> {ext}, inbound new connections dropped"),
    };
    let mut out = format!(
        "# icelab IPv6: {what}\ntable ip6 {NAT6_TABLE} {{}}\ndelete table ip6 {NAT6_TABLE}\ntable ip6 {NAT6_TABLE} {{\n"
    );
    if n.mode == Nat6Mode::Nat66 {
        let _ = writeln!(
            out,
            "\tchain srcnat {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"{wan_if}\" ip6 saddr {lan} snat ip6 to {wan}\n\t}}"
        );
    }
    if let Nat6Mode::Nptv6(ext) = n.mode {
        // The prefix is swapped and the host part kept, both ways (nftables' prefix NAT:
        // 1:1 like RFC 6296, though not its checksum-neutral rewrite).
        let _ = writeln!(
            out,
            "\tchain srcnat {{\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\toifname \"{wan_if}\" ip6 saddr {lan} snat ip6 prefix to {ext}\n\t}}"
        );
        let _ = writeln!(
            out,
            "\tchain dstnat {{\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tiifname \"{wan_if}\" ip6 daddr {ext} dnat ip6 prefix to {lan}\n\t}}"
        );
    }
    // Unsolicited WAN traffic never enters the LAN: only replies to what the LAN sent.
    let _ = writeln!(
        out,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tiifname \"{wan_if}\" oifname \"{lan_if}\" ct state established,related accept\n\t\tiifname \"{wan_if}\" oifname \"{lan_if}\" drop\n\t}}"
    );
    if n.mode == Nat6Mode::Nat66 {
        let echo = crate::plan::ECHO_PORT;
        let _ = writeln!(
            out,
            "\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t\tiifname \"{wan_if}\" ip6 daddr {wan} meta l4proto {{ tcp, udp }} th dport {echo} accept\n\t\tip6 daddr {wan} meta l4proto {{ tcp, udp }} ct state new drop\n\t}}"
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(mode: Nat6Mode) -> RouterNat6 {
        RouterNat6 {
            wan_if: "wan".into(),
            wan_addr: "2001:db8::203:0:113:10".parse().unwrap(),
            lan_if: "lan".into(),
            lan_subnet: "fd00:1::/64".parse().unwrap(),
            mode,
        }
    }

    #[test]
    fn public_filters_inbound_and_translates_nothing() {
        let r = ruleset6(&router(Nat6Mode::Public));
        assert!(r.contains("iifname \"wan\" oifname \"lan\" ct state established,related accept\n\t\tiifname \"wan\" oifname \"lan\" drop"), "{r}");
        assert!(!r.contains("snat") && !r.contains("chain input"), "{r}");
    }

    #[test]
    fn nptv6_swaps_the_prefix_both_ways_and_still_filters() {
        let r = ruleset6(&router(Nat6Mode::Nptv6("2001:db8:1::/64".parse().unwrap())));
        assert!(r.contains("oifname \"wan\" ip6 saddr fd00:1::/64 snat ip6 prefix to 2001:db8:1::/64"), "{r}");
        assert!(r.contains("iifname \"wan\" ip6 daddr 2001:db8:1::/64 dnat ip6 prefix to fd00:1::/64"), "{r}");
        assert!(r.contains("iifname \"wan\" oifname \"lan\" drop"), "{r}");
    }

    #[test]
    fn nat66_rewrites_the_lan_to_the_wan_address() {
        let r = ruleset6(&router(Nat6Mode::Nat66));
        assert!(r.contains("oifname \"wan\" ip6 saddr fd00:1::/64 snat ip6 to 2001:db8::203:0:113:10"), "{r}");
        assert!(r.contains("ip6 daddr 2001:db8::203:0:113:10 meta l4proto { tcp, udp } ct state new drop"), "{r}");
    }
}
