//! `firewall = ...` as written in a topology file.

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A canned firewall behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirewallPreset {
    /// No UDP in either direction (forces TURN over TCP/TLS).
    UdpBlocked,
    /// Strict corporate egress: only new outbound TCP to port 443, no DNS, nothing else out.
    #[serde(rename = "tcp-443-only")]
    TcpOnly443,
    /// UDP and TCP to/from ports 3478 (STUN/TURN) and 5349 (STUN/TURN over TLS/DTLS) dropped.
    StunPortBlocked,
    /// Only established/related traffic comes in.
    InboundBlocked,
}

impl FirewallPreset {
    /// Every preset.
    pub const ALL: [FirewallPreset; 4] =
        [Self::UdpBlocked, Self::TcpOnly443, Self::StunPortBlocked, Self::InboundBlocked];

    /// Topology-file name.
    pub fn name(self) -> &'static str {
        match self {
            Self::UdpBlocked => "udp-blocked",
            Self::TcpOnly443 => "tcp-443-only",
            Self::StunPortBlocked => "stun-port-blocked",
            Self::InboundBlocked => "inbound-blocked",
        }
    }
}

/// Presets plus custom nft rule lines.
///
/// TOML: `firewall = "udp-blocked"`, `firewall = ["udp-blocked", "inbound-blocked"]`
/// or `firewall = { preset = "..." | [...], rules = ["tcp dport 22 drop"] }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FirewallSpec {
    /// Presets, all applied (a packet passes only if every preset lets it).
    pub presets: Vec<FirewallPreset>,
    /// Custom rule lines, evaluated after the presets (see [`super::ruleset`]).
    pub rules: Vec<String>,
}

/// A custom rule that cannot be a single nft rule line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("firewall rule {index} `{rule}`: {why}")]
pub struct RuleError {
    /// Position in [`FirewallSpec::rules`].
    pub index: usize,
    /// The offending rule.
    pub rule: String,
    /// What is wrong.
    pub why: &'static str,
}

impl FirewallSpec {
    /// Cheap syntactic checks that keep each rule inside its chain; real
    /// validation is [`super::check_with_nft`].
    pub fn validate(&self) -> Result<(), RuleError> {
        for (index, rule) in self.rules.iter().enumerate() {
            let err = |why| Err(RuleError { index, rule: rule.clone(), why });
            if rule.trim().is_empty() {
                return err("empty rule");
            }
            // A newline or `;` would let one "rule" add statements outside the chain.
            if rule.contains(['\n', '\r', ';']) {
                return err("must be one rule: no newlines or `;`");
            }
            if rule.matches('"').count() % 2 != 0 {
                return err("unbalanced quotes");
            }
            let mut depth = 0i32;
            for c in rule.chars() {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                if depth < 0 {
                    return err("unbalanced braces");
                }
            }
            if depth != 0 {
                return err("unbalanced braces");
            }
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(FirewallPreset),
    Many(Vec<FirewallPreset>),
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct Table {
    #[serde(default)]
    preset: Option<OneOrMany>,
    #[serde(default)]
    rules: Vec<String>,
}

fn preset_named<E: de::Error>(s: &str) -> Result<FirewallPreset, E> {
    FirewallPreset::ALL.into_iter().find(|p| p.name() == s).ok_or_else(|| {
        let names: Vec<_> = FirewallPreset::ALL.iter().map(|p| p.name()).collect();
        E::custom(format!("unknown firewall preset `{s}`, expected one of: {}", names.join(", ")))
    })
}

impl<'de> Deserialize<'de> for FirewallSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirewallSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a firewall preset name, a list of them, or a table with `preset` and `rules`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FirewallSpec, E> {
                Ok(FirewallSpec { presets: vec![preset_named(s)?], rules: vec![] })
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirewallSpec, A::Error> {
                let mut presets = vec![];
                while let Some(name) = seq.next_element::<String>()? {
                    presets.push(preset_named(&name)?);
                }
                Ok(FirewallSpec { presets, rules: vec![] })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<FirewallSpec, A::Error> {
                let t = Table::deserialize(de::value::MapAccessDeserializer::new(map))?;
                let presets = match t.preset {
                    None => vec![],
                    Some(OneOrMany::One(p)) => vec![p],
                    Some(OneOrMany::Many(v)) => v,
                };
                let spec = FirewallSpec { presets, rules: t.rules };
                spec.validate().map_err(de::Error::custom)?;
                Ok(spec)
            }
        }
        d.deserialize_any(V)
    }
}
