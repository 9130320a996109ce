//! The network tables as written: serde structs that keep source spans for error
//! messages. The whole file's top level is [`crate::spec`]'s; nothing here is
//! validated beyond TOML syntax and field names (see `resolve`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;
use toml::Spanned;

/// The network part of a file: what [`super::resolve`] turns into a topology.
#[derive(Debug)]
pub(crate) struct RawTopology {
    /// Free text shown by `icelab check` and reports.
    pub description: Option<String>,
    /// Routers by name: `[router.home]`.
    pub router: BTreeMap<String, Spanned<RawRouter>>,
    /// Hosts by name: `[host.alice]`.
    pub host: BTreeMap<String, Spanned<RawHost>>,
    /// Servers on the internet by name: `[server.stun]`.
    pub server: BTreeMap<String, Spanned<RawServer>>,
}

/// `[router.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawRouter {
    /// `"internet"` or the name of the router whose LAN this router's WAN joins.
    pub wan: Spanned<String>,
    /// Address of the WAN side; assigned when absent.
    pub wan_address: Option<Spanned<Ipv4Addr>>,
    /// LAN subnet; the router takes its first host address.
    pub lan: Option<Spanned<Ipv4Net>>,
    /// NAT behaviour (preset name or table); interpreted by the NAT module.
    pub nat: Option<Spanned<toml::Value>>,
    /// Firewall (preset name, list or table); interpreted by the firewall module.
    pub firewall: Option<Spanned<toml::Value>>,
    /// Impairment of the WAN uplink (preset name or table).
    pub impair: Option<Spanned<toml::Value>>,
    /// IPv6 on the LAN: `"public"`, `"nat66"` or `"none"` (see [`super::ipv6`]).
    pub ipv6: Option<Spanned<String>>,
}

/// `[host.NAME]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawHost {
    /// `"internet"` or a router name.
    pub on: Spanned<String>,
    /// Address; assigned when absent.
    pub address: Option<Spanned<Ipv4Addr>>,
    /// `count = N`: N such hosts behind the same uplink, named `NAME-1` .. `NAME-N`.
    pub count: Option<Spanned<i64>>,
    /// Host firewall.
    pub firewall: Option<Spanned<toml::Value>>,
    /// Impairment of the uplink (preset name or table).
    pub impair: Option<Spanned<toml::Value>>,
    /// Address families: `"v4"`, `"v6"` or `"dual"` (see [`super::ipv6`]).
    pub family: Option<Spanned<String>>,
}

/// `[server.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct RawServer {
    /// Public addresses (two by default, as RFC 5780 STUN needs two).
    pub addresses: Option<Spanned<Vec<Spanned<Ipv4Addr>>>>,
    /// Services to run: `"stun"`, `"turn"`, `"echo"`, or tables
    /// `{ kind = "turn", implementation = "built-in" }` (read by [`crate::servers`]).
    #[serde(default)]
    pub services: Vec<Spanned<toml::Value>>,
    /// Impairment of the uplink (preset name or table).
    pub impair: Option<Spanned<toml::Value>>,
    /// Address families in an IPv6 lab: `"dual"` (the default) or `"v4"` (IPv4 only,
    /// which IPv6-only hosts reach through NAT64 alone).
    pub family: Option<Spanned<String>>,
    /// CPU limit of its services, in cores (`cpu = 0.25`; see [`super::cpu_limit`]).
    pub cpu: Option<Spanned<toml::Value>>,
}
