//! The lab's servers as typed services, and the one seam where each implementation is
//! driven: how it is written in the file (`parse_service`), how the plan starts and
//! stops it ([`launch()`], [`stop()`], [`port()`]), whether its program is installed
//! ([`check_programs()`]), and what peers are told to use ([`ice_servers()`]).
//!
//! Every function that depends on the implementation matches on [`Implementation`] once,
//! so a new implementation is one new arm per function.

mod coturn;
mod ice;
pub mod latency;
mod launch;
mod parse;
pub mod stats;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use coturn::{COTURN_PROGRAM, coturn_config, coturn_log};
pub use ice::{UrlHost, ice_servers, stun_url, turn_url};
pub use launch::{check_programs, launch, port, stop};
pub(crate) use parse::parse_service;

/// What a service does for the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// STUN binding (RFC 5389) with RFC 5780 NAT-behaviour discovery.
    Stun,
    /// TURN relay (RFC 5766); also answers STUN binding requests.
    Turn,
    /// UDP/TCP echo.
    Echo,
    /// The lab's DNS: its servers' names under [`crate::dns::DOMAIN`], with DNS64 for
    /// NAT64 routers' LANs. With one in the lab, peers get ICE server URLs by name.
    Dns,
}

impl ServiceKind {
    /// Every kind, in the order they are listed in messages.
    pub const ALL: [ServiceKind; 4] = [ServiceKind::Stun, ServiceKind::Turn, ServiceKind::Echo, ServiceKind::Dns];

    /// The name used in files, plan steps and log files.
    pub fn name(self) -> &'static str {
        match self {
            ServiceKind::Stun => "stun",
            ServiceKind::Turn => "turn",
            ServiceKind::Echo => "echo",
            ServiceKind::Dns => "dns",
        }
    }

    /// The kind written as `name`.
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// True when this kind runs as a process of the server's own (what a `cpu` limit
    /// holds); echo is one lab-wide responder outside the server's namespace.
    pub fn has_own_process(self) -> bool {
        self != ServiceKind::Echo
    }

    /// True when this kind answers STUN binding requests (a TURN server does too).
    pub fn answers_stun(self) -> bool {
        matches!(self, ServiceKind::Stun | ServiceKind::Turn)
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which program provides a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Implementation {
    /// icelab's own server, started as `icelab <kind>-server`.
    #[default]
    BuiltIn,
    /// coturn's `turnserver` (Debian package `coturn`), with a config the plan writes.
    Coturn,
}

impl Implementation {
    /// Every implementation, in the order they are listed in messages.
    pub const ALL: [Implementation; 2] = [Implementation::BuiltIn, Implementation::Coturn];

    /// The name used in files.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::BuiltIn => "built-in",
            Implementation::Coturn => "coturn",
        }
    }

    /// The implementation written as `name`.
    pub fn from_name(name: &str) -> Option<Implementation> {
        Self::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Whether it provides `kind` (coturn does STUN and TURN, not echo or DNS).
    pub fn provides(self, kind: ServiceKind) -> bool {
        match self {
            Implementation::BuiltIn => true,
            Implementation::Coturn => kind.answers_stun(),
        }
    }
}

/// One service of a server: what it does and which program does it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Service {
    /// What it does.
    pub kind: ServiceKind,
    /// Which program does it.
    pub implementation: Implementation,
}

impl Service {
    /// The built-in implementation of `kind`.
    pub fn built_in(kind: ServiceKind) -> Service {
        Service { kind, implementation: Implementation::BuiltIn }
    }
}

impl fmt::Display for Service {
    /// The kind alone for the default implementation (what the file usually says).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.implementation == Implementation::default() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{} ({})", self.kind, self.implementation.name())
        }
    }
}

/// Long-term TURN credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabCredentials {
    /// User name.
    pub user: &'static str,
    /// Password.
    pub password: &'static str,
    /// Realm.
    pub realm: &'static str,
}

/// The TURN credentials of every lab, used by the plan, the TURN server, the peers and
/// verify. Fixed: the servers are only reachable inside the lab.
pub const LAB_CREDENTIALS: LabCredentials = LabCredentials { user: "icelab", password: "icelab", realm: "icelab" };
