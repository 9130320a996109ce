//! The probe's result, as JSON (serde) and as a few human-readable lines.

use super::behaviour::Behaviour;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Result of [`probe`](super::probe::probe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// The STUN server probed.
    pub server: SocketAddr,
    /// Local address of the first probe socket.
    pub local: SocketAddr,
    /// Its server-reflexive (mapped) address.
    pub mapped: SocketAddr,
    /// `mapped != local`.
    pub nat: bool,
    /// Server's OTHER-ADDRESS (null: server lacks RFC 5780 support).
    pub other_address: Option<SocketAddr>,
    /// Mapping behaviour (null when untestable: no OTHER-ADDRESS).
    pub mapping: Option<Behaviour>,
    /// Filtering behaviour (null when untestable: no OTHER-ADDRESS).
    pub filtering: Option<Behaviour>,
    /// Whether the NAT hairpins (null when untestable or no NAT).
    pub hairpinning: Option<bool>,
    /// Mapping lifetime lower bound in seconds (null when not measured or
    /// longer than `lifetime_max`).
    pub lifetime_s: Option<f64>,
    /// Idle time at which the mapping was first seen dead, when measured.
    pub lifetime_dead_s: Option<f64>,
    /// Mapped port equals local port.
    pub port_preservation: bool,
    /// Server SOFTWARE attribute.
    pub software: Option<String>,
    /// Free-form remarks (why something was not measured, …).
    pub notes: Vec<String>,
}

fn opt<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "unknown".into(), |v| v.to_string())
}

impl fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lifetime = match (self.lifetime_s, self.lifetime_dead_s) {
            (Some(a), Some(d)) => format!("{a:.1} s (dead at {d:.1} s)"),
            (Some(a), None) => format!("> {a:.1} s"),
            (None, _) => "not measured".into(),
        };
        writeln!(f, "server:            {}", self.server)?;
        writeln!(f, "local / mapped:    {} -> {}", self.local, self.mapped)?;
        writeln!(f, "nat:               {}", if self.nat { "yes" } else { "no" })?;
        writeln!(f, "other address:     {}", opt(&self.other_address))?;
        writeln!(f, "mapping:           {}", opt(&self.mapping))?;
        writeln!(f, "filtering:         {}", opt(&self.filtering))?;
        writeln!(f, "hairpinning:       {}", opt(&self.hairpinning))?;
        writeln!(f, "port preservation: {}", self.port_preservation)?;
        write!(f, "mapping lifetime:  {lifetime}")?;
        for n in &self.notes {
            write!(f, "\nnote: {n}")?;
        }
        Ok(())
    }
}
