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

/// Smallest CPU limit a server may have, in cores.
pub const CPU_MIN: f64 = 0.05;
/// Largest CPU limit a server may have, in cores.
pub const CPU_MAX: f64 = 64.0;

/// A CPU limit in cores, checked: [`CPU_MIN`]..=[`CPU_MAX`]; the error says why not.
pub fn cpu_limit(cores: f64) -> Result<f64, String> {
    if cores.is_finite() && (CPU_MIN..=CPU_MAX).contains(&cores) {
        Ok(cores)
    } else {
        Err(format!("cpu = {cores} is outside {CPU_MIN}..={CPU_MAX} cores"))
    }
}

/// `cpu = ...` on server `name` -> cores, with the file position of any mistake.
pub(super) fn interpret_cpu(rep: &mut Reporter, name: &str, v: Option<&Spanned<toml::Value>>) -> Option<f64> {
    let v = v?;
    let hint = || Some(format!("a number of cores from {CPU_MIN} to {CPU_MAX}, e.g. cpu = 0.25"));
    let cores = match v.get_ref() {
        toml::Value::Float(x) => *x,
        toml::Value::Integer(n) => *n as f64,
        other => {
            rep.error(
                v.span(),
                format!("server `{name}`: cpu must be a number of cores, not {}", other.type_str()),
                hint(),
            );
            return None;
        }
    };
    match cpu_limit(cores) {
        Ok(c) => Some(c),
        Err(e) => {
            rep.error(v.span(), format!("server `{name}`: {e}"), hint());
            None
        }
    }
}
