//! One side of a matrix cell: a network configuration a host can sit behind, in
//! libwebrtc's vocabulary (its `P2PTransportChannelTest` configs) and icelab's terms.

use serde::{Deserialize, Serialize};

/// A side's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Config {
    /// A host on the internet, no NAT.
    Open,
    /// Full cone: endpoint-independent mapping and filtering.
    Cone,
    /// Restricted cone: endpoint-independent mapping, address-dependent filtering.
    Addr,
    /// Port-restricted cone: endpoint-independent mapping, address-and-port filtering.
    Port,
    /// Symmetric: a mapping per destination.
    Symm,
    /// A full cone behind a full cone.
    DoubleCone,
    /// A symmetric outer NAT over a full-cone inner NAT.
    SymmOverCone,
    /// UDP blocked (behind a port-restricted NAT).
    NoUdp,
    /// UDP blocked and inbound TCP blocked (behind a port-restricted NAT).
    NoTcp,
    /// Only outbound TCP 443 (a strict corporate proxy's view).
    Http,
}

impl Config {
    /// libwebrtc's ten, in its order.
    pub const ALL: [Config; 10] = [
        Config::Open,
        Config::Cone,
        Config::Addr,
        Config::Port,
        Config::Symm,
        Config::DoubleCone,
        Config::SymmOverCone,
        Config::NoUdp,
        Config::NoTcp,
        Config::Http,
    ];

    /// The short label of libwebrtc's table.
    pub fn label(self) -> &'static str {
        match self {
            Config::Open => "OPEN",
            Config::Cone => "CONE",
            Config::Addr => "ADDR",
            Config::Port => "PORT",
            Config::Symm => "SYMM",
            Config::DoubleCone => "2CON",
            Config::SymmOverCone => "SCON",
            Config::NoUdp => "!UDP",
            Config::NoTcp => "!TCP",
            Config::Http => "HTTP",
        }
    }

    /// A lowercase word for node names (`!UDP` -> `noudp`, `2CON` -> `dcon`).
    pub fn word(self) -> &'static str {
        match self {
            Config::Open => "open",
            Config::Cone => "cone",
            Config::Addr => "addr",
            Config::Port => "port",
            Config::Symm => "symm",
            Config::DoubleCone => "dcon",
            Config::SymmOverCone => "scon",
            Config::NoUdp => "noudp",
            Config::NoTcp => "notcp",
            Config::Http => "http",
        }
    }

    /// Reads a label, case-insensitively.
    pub fn from_label(s: &str) -> Option<Config> {
        Config::ALL.into_iter().find(|c| c.label().eq_ignore_ascii_case(s))
    }

    /// What it is, in icelab's terms.
    pub fn describe(self) -> &'static str {
        match self {
            Config::Open => "host on the internet",
            Config::Cone => "full-cone NAT",
            Config::Addr => "restricted-cone NAT",
            Config::Port => "port-restricted-cone NAT",
            Config::Symm => "symmetric NAT",
            Config::DoubleCone => "full cone behind full cone",
            Config::SymmOverCone => "symmetric NAT over a full cone",
            Config::NoUdp => "port-restricted NAT, firewall udp-blocked",
            Config::NoTcp => "port-restricted NAT, firewall udp-blocked + inbound-blocked",
            Config::Http => "port-restricted NAT, firewall tcp-443-only",
        }
    }

    /// Whether any UDP leaves this side (so ICE over UDP, and TURN over UDP, can work).
    pub fn has_udp(self) -> bool {
        !matches!(self, Config::NoUdp | Config::NoTcp | Config::Http)
    }

    /// Whether the outermost mapping depends on the destination (symmetric).
    pub fn symmetric(self) -> bool {
        matches!(self, Config::Symm | Config::SymmOverCone)
    }

    /// The file's tables for this side: routers named `<side>1`, `<side>2` and the
    /// host `host`.
    pub fn tables(self, side: &str, host: &str) -> String {
        self.tables_n(side, host, 1)
    }

    /// [`Config::tables`] with `count` hosts behind the same routers (`count = N`:
    /// `host-1` .. `host-N`); one host keeps its plain name.
    pub fn tables_n(self, side: &str, host: &str, count: usize) -> String {
        self.tables_with(side, host, count, "")
    }

    /// [`Config::tables_n`] with `extra` lines in the host's table (e.g. `impair = "lte"`).
    pub fn tables_with(self, side: &str, host: &str, count: usize, extra: &str) -> String {
        let router = |name: &str, wan: &str, nat: &str, firewall: Option<&str>| {
            let fw = firewall.map(|f| format!("firewall = {f}\n")).unwrap_or_default();
            format!("[router.{name}]\nwan = \"{wan}\"\nnat = \"{nat}\"\n{fw}\n")
        };
        let (r1, r2) = (format!("{side}1"), format!("{side}2"));
        let n = if count > 1 { format!("count = {count}\n") } else { String::new() };
        let on = |r: &str| format!("[host.{host}]\non = \"{r}\"\n{n}{extra}\n");
        match self {
            Config::Open => on("internet"),
            Config::Cone => router(&r1, "internet", "full-cone", None) + &on(&r1),
            Config::Addr => router(&r1, "internet", "restricted-cone", None) + &on(&r1),
            Config::Port => router(&r1, "internet", "port-restricted-cone", None) + &on(&r1),
            Config::Symm => router(&r1, "internet", "symmetric", None) + &on(&r1),
            Config::DoubleCone => {
                router(&r1, "internet", "full-cone", None) + &router(&r2, &r1, "full-cone", None) + &on(&r2)
            }
            Config::SymmOverCone => {
                router(&r1, "internet", "symmetric", None) + &router(&r2, &r1, "full-cone", None) + &on(&r2)
            }
            Config::NoUdp => router(&r1, "internet", "port-restricted-cone", Some("\"udp-blocked\"")) + &on(&r1),
            Config::NoTcp => {
                router(&r1, "internet", "port-restricted-cone", Some("[\"udp-blocked\", \"inbound-blocked\"]"))
                    + &on(&r1)
            }
            Config::Http => router(&r1, "internet", "port-restricted-cone", Some("\"tcp-443-only\"")) + &on(&r1),
        }
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
