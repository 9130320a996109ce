//! RFC 4787 behaviour knobs of a NAPT.

use serde::{Deserialize, Deserializer, Serialize};

/// How the external port of a mapping is chosen (RFC 4787 section 4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// EIM: one mapping per internal endpoint, reused for every destination.
    EndpointIndependent,
    /// ADM: one mapping per (internal endpoint, remote address).
    AddressDependent,
    /// APDM ("symmetric"): one mapping per (internal endpoint, remote address, remote port).
    AddressAndPortDependent,
}

/// Which inbound packets a mapping lets through (RFC 4787 section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filtering {
    /// EIF: anyone may send to an existing mapping.
    EndpointIndependent,
    /// ADF: only remote addresses the internal endpoint has sent to (any port).
    AddressDependent,
    /// APDF: only the exact remote endpoints the internal endpoint has sent to.
    AddressAndPortDependent,
}

/// Whether the NAT tries to keep the internal source port as the external port.
///
/// Only honoured with [`Mapping::EndpointIndependent`]: with address(-and-port)
/// dependent mapping the external port must differ per destination, so the
/// ruleset derives it from a hash instead (see [`crate::nat::ruleset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortPreservation {
    /// Keep the internal port when it is free on the WAN address.
    #[default]
    Preserve,
    /// Pick a pseudo-random external port (deterministic per mapping key).
    Random,
}

/// Accepts `"preserve"`, `"random"`, `true` (preserve) or `false` (random).
impl<'de> Deserialize<'de> for PortPreservation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Name(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bool(true) => Ok(Self::Preserve),
            Raw::Bool(false) => Ok(Self::Random),
            Raw::Name(n) if n == "preserve" => Ok(Self::Preserve),
            Raw::Name(n) if n == "random" => Ok(Self::Random),
            Raw::Name(n) => Err(serde::de::Error::custom(format!(
                "unknown port-preservation `{n}`, expected `preserve`, `random` or a bool"
            ))),
        }
    }
}

/// Complete behaviour of a NAPT router.
///
/// The [`Default`] is a typical home router: EIM + APDF, hairpinning on, port
/// preservation, and a 30 s UDP mapping timeout (short, like many consumer
/// routers; ICE's 15 s keepalive interval is designed to survive it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct NatBehaviour {
    /// Mapping behaviour.
    pub mapping: Mapping,
    /// Filtering behaviour.
    pub filtering: Filtering,
    /// Whether LAN hosts can reach each other through the WAN address.
    pub hairpinning: bool,
    /// External port choice.
    pub port_preservation: PortPreservation,
    /// UDP mapping idle timeout in seconds, refreshed by outbound traffic.
    pub timeout_s: u32,
}

impl Default for NatBehaviour {
    fn default() -> Self {
        Self {
            mapping: Mapping::EndpointIndependent,
            filtering: Filtering::AddressAndPortDependent,
            hairpinning: true,
            port_preservation: PortPreservation::Preserve,
            timeout_s: 30,
        }
    }
}

impl Mapping {
    /// Short RFC 4787 abbreviation (EIM, ADM, APDM).
    pub fn abbrev(self) -> &'static str {
        match self {
            Self::EndpointIndependent => "EIM",
            Self::AddressDependent => "ADM",
            Self::AddressAndPortDependent => "APDM",
        }
    }
}

impl Filtering {
    /// Short RFC 4787 abbreviation (EIF, ADF, APDF).
    pub fn abbrev(self) -> &'static str {
        match self {
            Self::EndpointIndependent => "EIF",
            Self::AddressDependent => "ADF",
            Self::AddressAndPortDependent => "APDF",
        }
    }
}
