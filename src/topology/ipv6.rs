//! IPv6 in a lab: per router `ipv6 = "public" | "nat66" | "none"`, per host
//! `family = "v4" | "v6" | "dual"`, and the addresses that follow from them.
//!
//! A lab is an IPv6 lab only when its file asks (a router with `ipv6` other than
//! `"none"`, or a host with `family` other than `"v4"`); every other lab stays IPv4 only,
//! step for step. In an IPv6 lab the simulated internet is dual-stack: its switch has
//! `2001:db8::1/64`, every server and every host on the internet (unless it says
//! `family = "v4"`) gets an IPv6 address beside its IPv4 one.
//!
//! Addresses are derived, never drawn: a node's IPv6 address is its segment's /64 with
//! the node's IPv4 address written in the last four groups, octet by octet
//! (`203.0.113.10` on the internet is `2001:db8::203:0:113:10`), so the two families of
//! one node read alike. A router's LAN gets the /64 number k (its place among the IPv6
//! routers, file order): `2001:db8:k::/64` when `public` (routed, globally reachable
//! addresses behind a stateful firewall), `fd00:k::/64` (ULA) when `nat66` (masqueraded
//! to the router's WAN address). A `nat64` router's LAN is routed like a `public` one; its
//! hosts reach IPv4 through the NAT64 prefix (see [`crate::nat::nat64`]).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::Ipv6Net;
use serde::{Deserialize, Serialize};

/// The documentation range the simulated internet's IPv6 comes from (RFC 3849).
pub const PUBLIC_RANGE_V6: &str = "2001:db8::/32";

/// The internet switch's segment.
pub fn internet_subnet_v6() -> Ipv6Net {
    "2001:db8::/64".parse().expect("a valid prefix")
}

/// The internet's own address (every internet node's IPv6 gateway).
pub fn internet_gateway_v6() -> Ipv6Addr {
    "2001:db8::1".parse().expect("a valid address")
}

/// What a router does with IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ipv6Mode {
    /// No IPv6 on the LAN (the default).
    #[default]
    None,
    /// A routed public /64 behind a stateful firewall that drops inbound new
    /// connections (RFC 6092 home gear).
    Public,
    /// A ULA /64 masqueraded to the WAN address (NAT66).
    Nat66,
    /// An IPv6-only access network (a mobile carrier's): a routed public /64 behind the
    /// same stateful firewall as `public`, plus NAT64 (tayga) from
    /// [`crate::nat::nat64::PREFIX`] to the router's IPv4 NAT.
    Nat64,
    /// A ULA /64 translated 1:1 to the public /64 `2001:db8:k::/64` (NPTv6, RFC 6296's
    /// prefix translation: the host part is kept), behind the same stateful firewall.
    Nptv6,
}

impl Ipv6Mode {
    /// Every mode, in the order messages list them.
    pub const ALL: [Ipv6Mode; 5] =
        [Ipv6Mode::Public, Ipv6Mode::Nat66, Ipv6Mode::Nptv6, Ipv6Mode::Nat64, Ipv6Mode::None];

    /// The word used in files.
    pub fn name(self) -> &'static str {
        match self {
            Ipv6Mode::None => "none",
            Ipv6Mode::Public => "public",
            Ipv6Mode::Nat66 => "nat66",
            Ipv6Mode::Nat64 => "nat64",
            Ipv6Mode::Nptv6 => "nptv6",
        }
    }

    /// The mode written as `s`.
    pub fn from_name(s: &str) -> Option<Ipv6Mode> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// True when the LAN's /64 is public and routed to the router (the internet needs a
    /// route to it): `public` and `nat64`.
    pub fn is_routed(self) -> bool {
        matches!(self, Ipv6Mode::Public | Ipv6Mode::Nat64)
    }

    /// True when the LAN has private (ULA) addresses that the router translates.
    pub fn translates(self) -> bool {
        matches!(self, Ipv6Mode::Nat66 | Ipv6Mode::Nptv6)
    }
}

/// Which address families a host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// IPv4 only (the default outside IPv6 labs).
    #[default]
    V4,
    /// IPv6 only: the host has no IPv4 address.
    V6,
    /// Both.
    Dual,
}

impl Family {
    /// Every family, in the order messages list them.
    pub const ALL: [Family; 3] = [Family::V4, Family::V6, Family::Dual];

    /// The word used in files.
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "v4",
            Family::V6 => "v6",
            Family::Dual => "dual",
        }
    }

    /// The family written as `s`.
    pub fn from_name(s: &str) -> Option<Family> {
        Self::ALL.into_iter().find(|m| m.name() == s)
    }

    /// True when the host has an IPv4 address.
    pub fn has_v4(self) -> bool {
        self != Family::V6
    }

    /// True when the host has an IPv6 address.
    pub fn has_v6(self) -> bool {
        self != Family::V4
    }

    /// True for the default.
    pub fn is_v4(&self) -> bool {
        *self == Family::V4
    }
}

/// A node's IPv6 uplink: address, segment and default gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attachment6 {
    /// The node's address on the segment.
    pub address: Ipv6Addr,
    /// The segment (address and prefix).
    pub subnet: Ipv6Net,
    /// Next hop for the default route.
    pub gateway: Ipv6Addr,
}

/// A router's IPv6 side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RouterV6 {
    /// What it does with IPv6 (never [`Ipv6Mode::None`] here).
    pub mode: Ipv6Mode,
    /// Its WAN address.
    pub wan: Attachment6,
    /// Its LAN /64.
    pub lan: Ipv6Net,
    /// Its own LAN address (the LAN hosts' gateway).
    pub lan_address: Ipv6Addr,
    /// The public /64 the internet routes to this router: the LAN itself (`public`,
    /// `nat64`), the LAN's translation (`nptv6`), none (`nat66`: the WAN address).
    pub routed: Option<Ipv6Net>,
}

/// The /64 of a router's LAN: number `k` (1-based) among the lab's IPv6 routers.
pub fn lan_prefix(mode: Ipv6Mode, k: u16) -> Ipv6Net {
    let first = match mode {
        Ipv6Mode::Nat66 | Ipv6Mode::Nptv6 => Ipv6Addr::new(0xfd00, k, 0, 0, 0, 0, 0, 0),
        _ => Ipv6Addr::new(0x2001, 0xdb8, k, 0, 0, 0, 0, 0),
    };
    Ipv6Net::new(first, 64).expect("a /64")
}

/// The public /64 that the internet routes to a router in `mode` with LAN number `k`.
pub fn routed_prefix(mode: Ipv6Mode, k: u16) -> Option<Ipv6Net> {
    match mode {
        Ipv6Mode::Public | Ipv6Mode::Nat64 => Some(lan_prefix(mode, k)),
        Ipv6Mode::Nptv6 => Some(lan_prefix(Ipv6Mode::Public, k)),
        Ipv6Mode::Nat66 | Ipv6Mode::None => None,
    }
}

/// A node's IPv6 address on `segment`: its IPv4 address written in the last four groups,
/// each octet's decimal digits read as hex digits (`192.0.2.10` -> `...:192:0:2:10`).
pub fn derive(segment: Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
    let g = |o: u8| u16::from_str_radix(&o.to_string(), 16).expect("decimal digits are hex digits");
    let [a, b, c, d] = v4.octets();
    let s = segment.network().segments();
    Ipv6Addr::new(s[0], s[1], s[2], s[3], g(a), g(b), g(c), g(d))
}

/// The attachment of a node with IPv4 address `v4` on `segment`, whose gateway is `gateway`.
pub fn attach(segment: Ipv6Net, v4: Ipv4Addr, gateway: Ipv6Addr) -> Attachment6 {
    let address = derive(segment, v4);
    Attachment6 { address, subnet: Ipv6Net::new(address, segment.prefix_len()).expect("a /64"), gateway }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_mirror_the_ipv4_ones() {
        assert_eq!(derive(internet_subnet_v6(), "203.0.113.10".parse().unwrap()).to_string(), "2001:db8::203:0:113:10");
        let lan = lan_prefix(Ipv6Mode::Public, 2);
        assert_eq!(lan.to_string(), "2001:db8:2::/64");
        assert_eq!(derive(lan, "192.168.2.10".parse().unwrap()).to_string(), "2001:db8:2:0:192:168:2:10");
        assert_eq!(lan_prefix(Ipv6Mode::Nat66, 1).to_string(), "fd00:1::/64");
        let a = attach(lan, "192.168.2.1".parse().unwrap(), internet_gateway_v6());
        assert_eq!(a.subnet.to_string(), "2001:db8:2:0:192:168:2:1/64");
        assert!(PUBLIC_RANGE_V6.parse::<Ipv6Net>().unwrap().contains(&a.address));
    }

    #[test]
    fn words_round_trip() {
        for m in Ipv6Mode::ALL {
            assert_eq!(Ipv6Mode::from_name(m.name()), Some(m));
        }
        for f in Family::ALL {
            assert_eq!(Family::from_name(f.name()), Some(f));
        }
        assert!(Family::Dual.has_v4() && Family::Dual.has_v6() && !Family::V6.has_v4());
    }
}
