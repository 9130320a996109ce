//! Interpretation of the free-form values (`nat`, `firewall`, `impair`) into their
//! modules' types, with the file position of any mistake.

use serde::Deserialize;
use toml::Spanned;

use super::raw::RawRouter;
use crate::diag::Reporter;
use crate::firewall::FirewallSpec;
use crate::impair::LinkImpairment;
use crate::nat::{NatBehaviour, NatMode, NatSpec};

/// `nat = ...` -> NatMode, with the file position of any mistake.
pub(super) fn interpret_nat(rep: &mut Reporter, name: &str, r: &RawRouter) -> NatMode {
    let Some(v) = &r.nat else {
        return NatMode::Napt(NatBehaviour::default());
    };
    interpret_nat_value(rep, name, v)
}

/// A `nat` value (preset name or table) -> NatMode; also used by `nat` timeline events.
pub(crate) fn interpret_nat_value(rep: &mut Reporter, name: &str, v: &Spanned<toml::Value>) -> NatMode {
    match NatSpec::deserialize(v.get_ref().clone()) {
        Ok(spec) => match spec.resolve() {
            Ok(mode) => mode,
            Err(e) => {
                rep.error(v.span(), format!("router `{name}`: {e}"), None);
                NatMode::None
            }
        },
        Err(e) => {
            rep.error(
                v.span(),
                format!("router `{name}`: bad nat: {}", e.to_string().trim()),
                Some(format!(
                    "presets: {}; or a table with preset, mapping, filtering, hairpinning, port-preservation, timeout",
                    nat_preset_names()
                )),
            );
            NatMode::None
        }
    }
}

fn nat_preset_names() -> String {
    crate::nat::PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}

/// `firewall = ...` -> FirewallSpec, with the file position of any mistake.
pub(crate) fn interpret_firewall(rep: &mut Reporter, v: Option<&Spanned<toml::Value>>) -> Option<FirewallSpec> {
    let v = v?;
    let presets = || crate::firewall::FirewallPreset::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    match FirewallSpec::deserialize(v.get_ref().clone()) {
        Ok(spec) => {
            if let Err(e) = spec.validate() {
                rep.error(
                    v.span(),
                    e.to_string(),
                    Some("each custom rule is one nft rule line, e.g. \"udp dport 3478 drop\"".into()),
                );
            }
            Some(spec)
        }
        Err(e) => {
            rep.error(
                v.span(),
                format!("bad firewall: {}", e.to_string().trim()),
                Some(format!("presets: {}; or {{ preset = ..., rules = [...] }}", presets())),
            );
            None
        }
    }
}

/// `impair = "lte"` or `impair = { up = {...}, down = {...} }` -> LinkImpairment.
pub(crate) fn interpret_impair(rep: &mut Reporter, v: Option<&Spanned<toml::Value>>) -> Option<LinkImpairment> {
    let v = v?;
    // A bare string is a preset name.
    let value = match v.get_ref() {
        toml::Value::String(p) => {
            let mut t = toml::Table::new();
            t.insert("preset".into(), toml::Value::String(p.clone()));
            toml::Value::Table(t)
        }
        other => other.clone(),
    };
    let presets = || crate::impair::presets::ALL.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
    match LinkImpairment::deserialize(value) {
        Ok(l) => match l.validate() {
            Ok(()) => Some(l),
            Err(e) => {
                rep.error(v.span(), format!("bad impairment: {e}"), None);
                None
            }
        },
        Err(e) => {
            rep.error(v.span(), format!("bad impairment: {}", e.to_string().trim()), Some(format!("presets: {}; or {{ up = {{ delay-ms = 20, loss = {{ model = \"random\", percent = 1 }} }}, down = {{ ... }} }}", presets())));
            None
        }
    }
}
