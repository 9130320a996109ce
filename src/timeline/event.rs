//! What the file's `[[event]]`s mean, typed: an action on the lab at a time, and what it
//! must do to the call. [`super::spec`] builds these from the file.

use std::fmt;

use serde::Serialize;

use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::NatMode;

/// What one event does to the lab.
// A file has a handful of events; boxing the impairment variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// The node's uplink goes down (both ends) or comes back up.
    Link {
        /// Node whose uplink it is.
        node: String,
        /// Up or down.
        up: bool,
    },
    /// The router forgets its NAT state: conntrack entries and mapping maps.
    NatFlush {
        /// The router.
        router: String,
        /// Ports come from a new hash, so existing flows get new external ports.
        new_ports: bool,
    },
    /// The router's NAT behaviour changes (state is flushed too).
    Nat {
        /// The router.
        router: String,
        /// The new behaviour.
        nat: NatMode,
    },
    /// The node's firewall is replaced.
    Firewall {
        /// Router or host.
        node: String,
        /// The new firewall.
        firewall: FirewallSpec,
    },
    /// The node's firewall is removed.
    FirewallClear {
        /// Router or host.
        node: String,
    },
    /// The server's TURN process is killed or started again.
    Turn {
        /// The server.
        server: String,
        /// Start (true) or stop.
        start: bool,
    },
    /// The server's CPU limit changes (or starts): its services' cgroup gets a new quota.
    Cpu {
        /// The server.
        server: String,
        /// Cores its services may use from now on.
        cores: f64,
    },
    /// The node's uplink impairment changes.
    Impair {
        /// Node whose uplink it is.
        node: String,
        /// The new impairment.
        impair: LinkImpairment,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Link { node, up } => write!(f, "link {node} {}", if *up { "up" } else { "down" }),
            Action::NatFlush { router, new_ports: true } => write!(f, "nat-flush {router} (new ports)"),
            Action::NatFlush { router, new_ports: false } => write!(f, "nat-flush {router}"),
            Action::Nat { router, nat } => write!(f, "nat {router} -> {}", nat_word(nat)),
            Action::Firewall { node, firewall } => {
                let mut parts: Vec<String> = firewall.presets.iter().map(|p| p.name().to_string()).collect();
                if !firewall.rules.is_empty() {
                    parts.push(format!("{} custom rule(s)", firewall.rules.len()));
                }
                write!(f, "firewall {node} = {}", parts.join(" + "))
            }
            Action::FirewallClear { node } => write!(f, "firewall-clear {node}"),
            Action::Turn { server, start } => write!(f, "turn {server} {}", if *start { "start" } else { "stop" }),
            Action::Impair { node, .. } => write!(f, "impair {node}"),
            Action::Cpu { server, cores } => write!(f, "cpu {server} = {cores} cores"),
        }
    }
}

fn nat_word(m: &NatMode) -> String {
    match m {
        NatMode::None => "none".into(),
        NatMode::OneToOne => "one-to-one".into(),
        NatMode::Napt(b) => format!("{}+{}", b.mapping.abbrev(), b.filtering.abbrev()),
    }
}

/// What an event must do to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "expect", rename_all = "kebab-case")]
pub enum EventExpect {
    /// The call survives: it never breaks, or data flows again (and ICE is connected)
    /// before the next event, within `max_recovery_ms` of this one.
    Recovers {
        /// Upper bound on the recovery time.
        max_recovery_ms: Option<u64>,
    },
    /// Data stops and does not flow again before the next event (or the end).
    Breaks,
}

/// What the offerer's selected pair must be once an event has played out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairExpect {
    /// Through a TURN relay (either side's candidate is a relay).
    Relay,
    /// Not through a relay (host, srflx or prflx on both sides).
    Direct,
}

impl PairExpect {
    /// The word used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PairExpect::Relay => "relay",
            PairExpect::Direct => "direct",
        }
    }
}

/// One timeline event: at `at_ms` after the data channel opened, do `action`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineEvent {
    /// ms after the offerer's data channel opened.
    pub at_ms: u64,
    /// What happens.
    pub action: Action,
    /// What it must do to the call.
    pub expect: Option<EventExpect>,
    /// The pair the call must be on at the end of the event's window (`pair = "relay"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairExpect>,
}
