//! NAT64 on a router with `ipv6 = "nat64"` (an IPv6-only carrier's access network):
//! tayga (Debian's stateless translator, through a TUN device) maps each IPv6 host to an
//! address of a private pool and translates between the NAT64 prefix and IPv4; the
//! router's own IPv4 NAT then shares its WAN address among the pool, so the NAT64's
//! IPv4 side has exactly the router's `nat` behaviour (RFC 6146 stateful NAT64 is this
//! pair: a stateless translator plus a NAPT).
//!
//! The prefix is a network-specific one from the documentation range,
//! `2001:db8:ffff:64::/96`, not the well-known `64:ff9b::/96`: RFC 6052 section 3.1
//! forbids the well-known prefix for non-global IPv4 addresses, which the lab's
//! documentation-range "public" addresses are (tayga enforces it and refuses them, and
//! refuses the RFC 8215 local-use prefix too). No IPv6 router's LAN can meet it: LANs
//! are `2001:db8:k:0::/64`.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// The NAT64 prefix (RFC 6052 network-specific prefix, /96).
pub const PREFIX: &str = "2001:db8:ffff:64::/96";

/// Tayga's IPv4 pool inside the router (RFC 2544 benchmarking range: never a LAN or a
/// public address of the lab).
pub const POOL: &str = "198.18.64.0/24";

/// The TUN device tayga creates in the router's namespace.
pub const DEVICE: &str = "nat64";

/// The program (Debian package `tayga`).
pub const PROGRAM: &str = "tayga";

/// The NAT64 prefix.
pub fn prefix() -> Ipv6Net {
    PREFIX.parse().expect("a valid prefix")
}

/// The pool tayga maps IPv6 hosts into.
pub fn pool() -> Ipv4Net {
    POOL.parse().expect("a valid pool")
}

/// The IPv6 address an IPv6-only host uses for IPv4 address `v4` (RFC 6052 /96 form),
/// as DNS64 synthesizes it.
pub fn synthesize(v4: Ipv4Addr) -> Ipv6Addr {
    crate::dns::synthesize(prefix(), v4)
}

/// Tayga's configuration: its TUN device, its own IPv4 address (the pool's first), the
/// prefix and the dynamic pool.
pub fn tayga_config() -> String {
    let pool = pool();
    let own = pool.hosts().next().expect("a /24 has hosts");
    let mut s = String::from("# icelab NAT64 (tayga): IPv6-only hosts reach IPv4 through the prefix\n");
    let _ = writeln!(s, "tun-device {DEVICE}");
    let _ = writeln!(s, "ipv4-addr {own}");
    let _ = writeln!(s, "prefix {PREFIX}");
    let _ = writeln!(s, "dynamic-pool {pool}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthesized_addresses_embed_the_ipv4_address() {
        assert_eq!(synthesize("198.51.100.10".parse().unwrap()).to_string(), "2001:db8:ffff:64::c633:640a");
        assert!(prefix().contains(&synthesize("203.0.113.1".parse().unwrap())));
        // No router LAN (2001:db8:k::/64) overlaps the prefix.
        let lan = crate::topology::ipv6::lan_prefix(crate::topology::ipv6::Ipv6Mode::Nat64, 0xffff);
        assert!(!lan.contains(&prefix().network()));
    }

    #[test]
    fn tayga_gets_its_device_prefix_and_pool() {
        insta::assert_snapshot!(tayga_config(), @r"
        # icelab NAT64 (tayga): IPv6-only hosts reach IPv4 through the prefix
        tun-device nat64
        ipv4-addr 198.18.64.1
        prefix 2001:db8:ffff:64::/96
        dynamic-pool 198.18.64.0/24
        ");
    }
}
