//! `[expect]`: what a call must show, as written and typed, and the validation
//! between them.

use std::fmt;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::spec::OneOrMany;
use crate::diag::Reporter;

/// `[expect]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawExpect {
    outcome: Option<Spanned<String>>,
    local: Option<Spanned<OneOrMany>>,
    remote: Option<Spanned<OneOrMany>>,
    protocol: Option<Spanned<String>>,
    relay_transport: Option<Spanned<OneOrMany>>,
    /// `"direct"` or `"relayed"`: whichever end is the relay.
    path: Option<Spanned<String>>,
    /// `"ipv4"` or `"ipv6"`: the address family of the selected pair.
    family: Option<Spanned<String>>,
    max_ice_ms: Option<f64>,
    max_connect_ms: Option<f64>,
    literal_types: Option<bool>,
    /// `[expect.chromium]` / `[expect.firefox]`: overrides for calls with that peer kind.
    chromium: Option<Spanned<Box<RawExpect>>>,
    firefox: Option<Spanned<Box<RawExpect>>>,
    /// Why a per-peer override differs (required there, refused at the top).
    pub(super) reason: Option<Spanned<String>>,
}

impl RawExpect {
    /// Per-peer overrides may not set the outcome or nest.
    pub(crate) fn has_outcome_or_overrides(&self) -> bool {
        self.outcome.is_some() || self.chromium.is_some() || self.firefox.is_some()
    }

    /// Takes `reason` (only per-peer overrides have one).
    pub(crate) fn take_reason(&mut self) -> Option<String> {
        self.reason.take().map(|s| s.into_inner())
    }
}

/// A candidate type as ICE labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CandidateType {
    /// Interface address.
    Host,
    /// Server reflexive (learned from STUN).
    Srflx,
    /// Peer reflexive (learned from a connectivity check).
    Prflx,
    /// TURN relay.
    Relay,
}

impl CandidateType {
    const WORDS: [&'static str; 4] = ["host", "srflx", "prflx", "relay"];

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "host" => Self::Host,
            "srflx" => Self::Srflx,
            "prflx" => Self::Prflx,
            "relay" => Self::Relay,
            _ => return None,
        })
    }

    /// The word used in files and reports.
    pub fn as_str(self) -> &'static str {
        Self::WORDS[self as usize]
    }
}

impl fmt::Display for CandidateType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a call's selected path is relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PathClass {
    /// Neither end is a TURN relay.
    Direct,
    /// One end (or both) is a TURN relay.
    Relayed,
}

impl PathClass {
    /// The word used in files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            PathClass::Direct => "direct",
            PathClass::Relayed => "relayed",
        }
    }
}

/// Whether the call must connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpectedOutcome {
    /// The data channel opens and data flows.
    #[default]
    Connected,
    /// The call must not connect (a known-impossible path).
    Failed,
}

/// What the run must show. Absent fields are not checked.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Expect {
    /// Connected or failed.
    pub outcome: ExpectedOutcome,
    /// Offerer's selected local candidate type (any of these).
    pub local: Option<Vec<CandidateType>>,
    /// Offerer's selected remote candidate type (any of these).
    pub remote: Option<Vec<CandidateType>>,
    /// ICE transport of the selected pair (`udp`, `tcp`).
    pub protocol: Option<String>,
    /// TURN transport when the pair is relayed (`udp`, `tcp`, `tls`); any of the list.
    pub relay_transport: Option<Vec<String>>,
    /// Whether the selected path goes through a TURN relay (either end).
    pub path: Option<PathClass>,
    /// Address family (`ipv4`, `ipv6`) of both candidates of the selected pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Upper bound on offer-to-ICE-connected, ms.
    pub max_ice_ms: Option<f64>,
    /// Upper bound on offer-to-data-channel-open, ms.
    pub max_connect_ms: Option<f64>,
    /// `literal-types = true`: `local`/`remote` compare the agent's ICE type label (a prflx
    /// is prflx whatever it really is) instead of what the candidate really is.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub literal_types: bool,
    /// `[expect.<peer>]`: overrides for calls where that peer kind plays a side.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_peer: Vec<super::expect_peer::PeerExpect>,
}

pub(crate) fn interpret_expect(rep: &mut Reporter, r: RawExpect) -> Expect {
    let outcome = match r.outcome.as_ref().map(|o| o.get_ref().as_str()) {
        None | Some("connected") => ExpectedOutcome::Connected,
        Some("failed") => ExpectedOutcome::Failed,
        Some(other) => {
            rep.error(
                r.outcome.as_ref().unwrap().span(),
                format!("unknown outcome `{other}`"),
                Some("use \"connected\" or \"failed\"".into()),
            );
            ExpectedOutcome::Connected
        }
    };
    let types = |rep: &mut Reporter, v: &Option<Spanned<OneOrMany>>, what: &str| {
        let v = v.as_ref()?;
        let mut out = Vec::new();
        for w in v.get_ref().words() {
            match CandidateType::parse(&w) {
                Some(t) => out.push(t),
                None => rep.error(
                    v.span(),
                    format!("`{w}` is not a candidate type ({what})"),
                    Some(format!("use one of: {}", CandidateType::WORDS.join(", "))),
                ),
            }
        }
        if v.get_ref().words().is_empty() {
            rep.error(v.span(), format!("{what}: empty list"), None);
        }
        Some(out)
    };
    let local = types(rep, &r.local, "local");
    let remote = types(rep, &r.remote, "remote");
    let word = |rep: &mut Reporter, v: &Option<Spanned<String>>, allowed: &[&str], what: &str| {
        let v = v.as_ref()?;
        if !allowed.contains(&v.get_ref().as_str()) {
            rep.error(
                v.span(),
                format!("unknown {what} `{}`", v.get_ref()),
                Some(format!("use one of: {}", allowed.join(", "))),
            );
        }
        Some(v.get_ref().clone())
    };
    let protocol = word(rep, &r.protocol, &["udp", "tcp"], "protocol");
    let relay_transport = r.relay_transport.as_ref().map(|v| {
        let allowed = ["udp", "tcp", "tls"];
        let words = v.get_ref().words();
        for w in words.iter().filter(|w| !allowed.contains(&w.as_str())) {
            rep.error(
                v.span(),
                format!("unknown relay-transport `{w}`"),
                Some(format!("use one of: {}", allowed.join(", "))),
            );
        }
        if words.is_empty() {
            rep.error(v.span(), "relay-transport: empty list", None);
        }
        words
    });
    let family = word(rep, &r.family, &["ipv4", "ipv6"], "family");
    let path = word(rep, &r.path, &["direct", "relayed"], "path")
        .map(|w| if w == "relayed" { PathClass::Relayed } else { PathClass::Direct });
    if outcome == ExpectedOutcome::Failed {
        // Pair and timing expectations describe a connection that must not exist.
        let spans = [
            r.path.as_ref().map(|v| v.span()),
            r.family.as_ref().map(|v| v.span()),
            r.local.as_ref().map(|v| v.span()),
            r.remote.as_ref().map(|v| v.span()),
            r.protocol.as_ref().map(|v| v.span()),
            r.relay_transport.as_ref().map(|v| v.span()),
        ];
        for s in spans.into_iter().flatten() {
            rep.error(
                s,
                "a pair expectation with outcome = \"failed\"",
                Some("a call that must fail selects no pair; remove this line".into()),
            );
        }
    }
    let per_peer = [("chromium", r.chromium), ("firefox", r.firefox)]
        .into_iter()
        .filter_map(|(peer, o)| Some(super::expect_peer::interpret(rep, peer, o?, interpret_expect)))
        .collect();
    Expect {
        outcome,
        local,
        remote,
        protocol,
        relay_transport,
        path,
        family,
        max_ice_ms: r.max_ice_ms,
        max_connect_ms: r.max_connect_ms,
        literal_types: r.literal_types.unwrap_or(false),
        per_peer,
    }
}
