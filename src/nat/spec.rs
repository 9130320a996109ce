//! `nat = ...` as written in a topology file, and its resolution.

use super::behaviour::{Filtering, Mapping, NatBehaviour, PortPreservation};
use super::presets::NatPreset;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// What a router does to traffic crossing it, after resolving presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatMode {
    /// Plain routing.
    None,
    /// 1:1 NAT of [`super::RouterNat::one_to_one_host`] to the WAN address.
    OneToOne,
    /// Port-translating NAT with the given behaviour.
    Napt(NatBehaviour),
}

/// Table form: a preset plus explicit overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NatOverrides {
    /// Base preset; `port-restricted-cone` (the default behaviour) when absent.
    pub preset: Option<NatPreset>,
    /// Overrides the mapping behaviour.
    pub mapping: Option<Mapping>,
    /// Overrides the filtering behaviour.
    pub filtering: Option<Filtering>,
    /// Overrides hairpinning.
    pub hairpinning: Option<bool>,
    /// Overrides port preservation.
    pub port_preservation: Option<PortPreservation>,
    /// Overrides the UDP mapping timeout, in seconds.
    pub timeout: Option<u32>,
}

/// `nat = "symmetric"` or `nat = { preset = "full-cone", timeout = 5 }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatSpec {
    /// A bare preset name.
    Preset(NatPreset),
    /// A table of overrides.
    Custom(NatOverrides),
}

/// Why a [`NatSpec`] does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NatSpecError {
    /// Behaviour fields were given for a preset that does no port translation.
    #[error(
        "preset `{0}` does not translate ports, so it takes no mapping/filtering/hairpinning/port-preservation/timeout overrides"
    )]
    OverridesOnNonNapt(&'static str),
    /// A zero timeout would expire every mapping immediately.
    #[error("timeout must be at least 1 second")]
    ZeroTimeout,
}

impl Default for NatSpec {
    fn default() -> Self {
        Self::Preset(NatPreset::PortRestrictedCone)
    }
}

impl NatSpec {
    /// Applies overrides on top of the preset.
    pub fn resolve(&self) -> Result<NatMode, NatSpecError> {
        let o = match self {
            Self::Preset(p) => return Ok(p.mode()),
            Self::Custom(o) => o,
        };
        let preset = o.preset.unwrap_or(NatPreset::PortRestrictedCone);
        let mut b = match preset.mode() {
            NatMode::Napt(b) => b,
            other => {
                let has_overrides = o.mapping.is_some()
                    || o.filtering.is_some()
                    || o.hairpinning.is_some()
                    || o.port_preservation.is_some()
                    || o.timeout.is_some();
                return if has_overrides { Err(NatSpecError::OverridesOnNonNapt(preset.name())) } else { Ok(other) };
            }
        };
        b.mapping = o.mapping.unwrap_or(b.mapping);
        b.filtering = o.filtering.unwrap_or(b.filtering);
        b.hairpinning = o.hairpinning.unwrap_or(b.hairpinning);
        b.port_preservation = o.port_preservation.unwrap_or(b.port_preservation);
        b.timeout_s = o.timeout.unwrap_or(b.timeout_s);
        if b.timeout_s == 0 {
            return Err(NatSpecError::ZeroTimeout);
        }
        Ok(NatMode::Napt(b))
    }
}

/// Accepts a preset name or a table; validates by resolving, so bad specs fail at parse time.
impl<'de> Deserialize<'de> for NatSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NatSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NAT preset name or a table with `preset`, `mapping`, `filtering`, ...")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<NatSpec, E> {
                NatPreset::from_name(s).map(NatSpec::Preset).ok_or_else(|| {
                    let names: Vec<_> = super::PRESETS.iter().map(|p| p.name).collect();
                    E::custom(format!("unknown NAT preset `{s}`, expected one of: {}", names.join(", ")))
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NatSpec, A::Error> {
                let o = NatOverrides::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let spec = NatSpec::Custom(o);
                spec.resolve().map_err(de::Error::custom)?;
                Ok(spec)
            }
        }
        d.deserialize_any(V)
    }
}
