//! Named NAT presets and their documentation table.

use super::behaviour::{Filtering, Mapping, NatBehaviour, PortPreservation};
use super::spec::NatMode;
use serde::Deserialize;

/// A named NAT type, as written in a topology file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatPreset {
    /// EIM + EIF.
    FullCone,
    /// EIM + ADF.
    RestrictedCone,
    /// EIM + APDF (the [`NatBehaviour::default`] home router).
    PortRestrictedCone,
    /// APDM + APDF, random ports.
    Symmetric,
    /// Carrier-grade NAT: EIM + APDF (RFC 6888 asks for EIM), random ports, no hairpinning.
    Cgnat,
    /// Plain router: forwards without translation.
    None,
    /// 1:1 NAT of one LAN host to the WAN address (all ports, both directions).
    OneToOne,
}

/// One row of the preset table.
#[derive(Debug, Clone, Copy)]
pub struct PresetInfo {
    /// The preset.
    pub preset: NatPreset,
    /// Its topology-file name.
    pub name: &'static str,
    /// One-line description.
    pub summary: &'static str,
}

/// Every preset, in documentation order.
pub const PRESETS: &[PresetInfo] = &[
    PresetInfo { preset: NatPreset::FullCone, name: "full-cone", summary: "anyone can reach an open mapping" },
    PresetInfo {
        preset: NatPreset::RestrictedCone,
        name: "restricted-cone",
        summary: "only addresses the host has contacted",
    },
    PresetInfo {
        preset: NatPreset::PortRestrictedCone,
        name: "port-restricted-cone",
        summary: "typical home router (the default)",
    },
    PresetInfo {
        preset: NatPreset::Symmetric,
        name: "symmetric",
        summary: "new port per destination; breaks STUN-only ICE",
    },
    PresetInfo { preset: NatPreset::Cgnat, name: "cgnat", summary: "carrier NAT: random ports, no hairpinning" },
    PresetInfo { preset: NatPreset::None, name: "none", summary: "plain router, no translation" },
    PresetInfo { preset: NatPreset::OneToOne, name: "one-to-one", summary: "single LAN host owns the WAN address" },
];

impl NatPreset {
    /// Topology-file name of the preset.
    pub fn name(self) -> &'static str {
        PRESETS.iter().find(|p| p.preset == self).map_or("?", |p| p.name)
    }

    /// Parses a topology-file name.
    pub fn from_name(name: &str) -> Option<Self> {
        PRESETS.iter().find(|p| p.name == name).map(|p| p.preset)
    }

    /// What the preset means without overrides.
    pub fn mode(self) -> NatMode {
        let napt = |mapping, filtering, hairpinning, port_preservation| {
            NatMode::Napt(NatBehaviour {
                mapping,
                filtering,
                hairpinning,
                port_preservation,
                ..NatBehaviour::default()
            })
        };
        use Filtering as F;
        use Mapping as M;
        use PortPreservation as P;
        match self {
            Self::FullCone => napt(M::EndpointIndependent, F::EndpointIndependent, true, P::Preserve),
            Self::RestrictedCone => napt(M::EndpointIndependent, F::AddressDependent, true, P::Preserve),
            Self::PortRestrictedCone => NatMode::Napt(NatBehaviour::default()),
            Self::Symmetric => napt(M::AddressAndPortDependent, F::AddressAndPortDependent, true, P::Random),
            Self::Cgnat => napt(M::EndpointIndependent, F::AddressAndPortDependent, false, P::Random),
            Self::None => NatMode::None,
            Self::OneToOne => NatMode::OneToOne,
        }
    }
}

/// Renders [`PRESETS`] as a markdown table (for generated docs).
pub fn presets_markdown() -> String {
    let mut out = String::from(
        "| preset | mapping | filtering | hairpinning | ports | UDP timeout | notes |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for p in PRESETS {
        let row = match p.preset.mode() {
            NatMode::Napt(b) => format!(
                "| `{}` | {} | {} | {} | {} | {} s | {} |\n",
                p.name,
                b.mapping.abbrev(),
                b.filtering.abbrev(),
                if b.hairpinning { "yes" } else { "no" },
                match b.port_preservation {
                    PortPreservation::Preserve => "preserved",
                    PortPreservation::Random => "random",
                },
                b.timeout_s,
                p.summary
            ),
            _ => format!("| `{}` | - | - | - | - | - | {} |\n", p.name, p.summary),
        };
        out.push_str(&row);
    }
    out
}
