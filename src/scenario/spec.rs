//! `[scenario]`: the call as written (spanned) and typed, and the validation between
//! them, which reports mistakes with file:line:col. `[expect]` is [`super::expect`]'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::expect::{Expect, RawExpect, interpret_expect};
use super::pairs::{CallPair, RawCalls, RawPairs, interpret_pairs};
use crate::diag::Reporter;
use crate::peer::{AcceptanceWaits, IceProfile, IceRestart, IceTimeouts, PeerKind, TransportPolicy};
use crate::servers::ServiceKind;

/// Default data phase after the channel opens.
pub const DEFAULT_DATA_MS: u64 = 300;
/// Default overall deadline of one call.
pub const DEFAULT_DEADLINE_MS: u64 = 8000;
/// Default ICE check interval. webrtc-rs paces ICE, DTLS and SCTP on this tick
/// (default 200 ms); 50 ms cuts setup time without starving slow (relayed) pairs.
pub const DEFAULT_ICE_CHECK_MS: u64 = 50;

/// TURN transports a browser would be configured with, in preference order.
pub(super) const TURN_TRANSPORTS: [&str; 3] = ["udp", "tcp", "tls"];

/// `[scenario]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RawScenario {
    offerer: Option<Spanned<String>>,
    answerer: Option<Spanned<String>>,
    /// Several calls at once: `[["alice", "bob"], ["carol", "dave"]]`.
    calls: Option<RawCalls>,
    stun: Option<Spanned<OneOrMany>>,
    turn: Option<Spanned<String>>,
    turn_transports: Option<Spanned<OneOrMany>>,
    policy: Option<Spanned<String>>,
    data_ms: Option<Spanned<u64>>,
    data_rate_kbps: Option<u64>,
    deadline_ms: Option<Spanned<u64>>,
    ice_check_ms: Option<Spanned<u64>>,
    ice_restart: Option<Spanned<toml::Value>>,
    ice_disconnected_ms: Option<Spanned<u64>>,
    ice_failed_ms: Option<Spanned<u64>>,
    ice_keepalive_ms: Option<Spanned<u64>>,
    /// `"webrtc-rs"` (the stack's acceptance waits) or `"browser-like"` (none).
    ice_profile: Option<Spanned<String>>,
    /// `{ host = 0, srflx = 0, prflx = 0, relay = 0 }`: waits that override the profile's.
    ice_acceptance_ms: Option<Spanned<toml::Value>>,
    /// The peer program for both sides: `"built-in"` or `{ command = [...] }`.
    peer: Option<Spanned<toml::Value>>,
    /// The offerer's peer program (overrides `peer`).
    offerer_peer: Option<Spanned<toml::Value>>,
    /// The answerer's peer program (overrides `peer`).
    answerer_peer: Option<Spanned<toml::Value>>,
    /// Test hook: the answerer reads signaling but never answers.
    test_silent_answerer: Option<bool>,
}

impl RawScenario {
    /// `data-ms` and `deadline-ms` as written (timeline events derive the missing ones).
    pub(crate) fn explicit_times(&self) -> (Option<Spanned<u64>>, Option<Spanned<u64>>) {
        (self.data_ms.clone(), self.deadline_ms.clone())
    }
}

/// A word or a list of words.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn words(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// The call to place in the lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scenario {
    /// The calls, placed in the lab at once (one for `offerer`/`answerer`).
    pub calls: Vec<CallPair>,
    /// Servers whose STUN service the peers use.
    pub stun: Vec<String>,
    /// Server whose TURN service the peers use.
    pub turn: Option<String>,
    /// Which TURN URLs the peers are given: `udp`, `tcp` (port 3478), `tls` (443).
    pub turn_transports: Vec<String>,
    /// ICE transport policy.
    pub policy: TransportPolicy,
    /// Data exchange after the channel opens.
    pub data_ms: u64,
    /// Pace the data phase (kbit/s each way); absent: flood, to measure capacity.
    pub data_rate_kbps: Option<u64>,
    /// Deadline of the whole call (both peers).
    pub deadline_ms: u64,
    /// ICE connectivity-check interval.
    pub ice_check_ms: u64,
    /// Restart ICE when the call's path dies (`ice-restart`); `None`: never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_restart: Option<IceRestart>,
    /// `ice-disconnected-ms`, `ice-failed-ms`, `ice-keepalive-ms`.
    pub ice_timeouts: IceTimeouts,
    /// The built-in peer's ICE nomination profile.
    pub ice_profile: IceProfile,
    /// Acceptance waits that override the profile's.
    pub ice_acceptance_ms: AcceptanceWaits,
    /// The program that plays the offerer.
    pub offerer_peer: PeerKind,
    /// The program that plays the answerer.
    pub answerer_peer: PeerKind,
    /// Test hook: the answerer never answers, so the call must time out.
    pub silent_answerer: bool,
}

impl Scenario {
    /// Checks that every peer program can run here (before a lab is built).
    pub fn check_peers(&self) -> Result<(), String> {
        self.offerer_peer.check_available()?;
        self.answerer_peer.check_available()
    }

    /// Runs the built-in peer with this ICE profile (`--ice-profile`).
    pub fn with_ice_profile(mut self, profile: IceProfile) -> Self {
        self.ice_profile = profile;
        self
    }

    /// Plays both sides with these peers (`--peers A,B` or `--peers A`).
    pub fn with_peers(mut self, offerer: PeerKind, answerer: PeerKind) -> Self {
        self.offerer_peer = offerer;
        self.answerer_peer = answerer;
        self
    }
}

/// What validation needs to know about the nodes: hosts, and each server's services.
pub(crate) struct Nodes<'a> {
    /// Host names.
    pub hosts: Vec<&'a str>,
    /// Server name -> the kinds of its services.
    pub servers: BTreeMap<&'a str, Vec<ServiceKind>>,
}

/// Checks and types `[scenario]`/`[expect]`, recording located mistakes in `rep`.
pub(crate) fn interpret(
    rep: &mut Reporter,
    nodes: &Nodes,
    scenario: Option<Spanned<RawScenario>>,
    expect: Option<Spanned<RawExpect>>,
) -> (Option<Scenario>, Option<Expect>) {
    let scn = scenario.map(|s| {
        let at = s.span();
        interpret_scenario(rep, nodes, at, s.into_inner())
    });
    let exp = match expect {
        Some(e) if scn.is_none() => {
            rep.error(
                e.span(),
                "[expect] without [scenario]",
                Some("add a [scenario] with offerer and answerer hosts".into()),
            );
            None
        }
        Some(e) => {
            let e = e.into_inner();
            if let Some(r) = &e.reason {
                rep.error(r.span(), "`reason` outside a per-peer override", Some("put it in [expect.<peer>]".into()));
            }
            Some(interpret_expect(rep, e))
        }
        None => None,
    };
    (scn, exp)
}

fn interpret_scenario(rep: &mut Reporter, nodes: &Nodes, at: std::ops::Range<usize>, r: RawScenario) -> Scenario {
    let raw_pairs = RawPairs { offerer: r.offerer.as_ref(), answerer: r.answerer.as_ref(), calls: r.calls.as_ref() };
    let calls = interpret_pairs(rep, &nodes.hosts, at, raw_pairs);
    let mut server_with =
        |name: &Spanned<String>, wants: fn(ServiceKind) -> bool, add: ServiceKind, role: &str| match nodes
            .servers
            .get(name.get_ref().as_str())
        {
            None => rep.error(
                name.span(),
                format!("unknown server `{}`", name.get_ref()),
                Some(format!("servers: {}", list(&nodes.servers.keys().copied().collect::<Vec<_>>()))),
            ),
            Some(s) if !s.iter().any(|k| wants(*k)) => rep.error(
                name.span(),
                format!("server `{}` does not provide {role}", name.get_ref()),
                Some(format!("add \"{add}\" to its services")),
            ),
            Some(_) => {}
        };
    let mut stun = Vec::new();
    if let Some(s) = &r.stun {
        for w in s.get_ref().words() {
            // A TURN server answers STUN binding requests too.
            server_with(&Spanned::new(s.span(), w.clone()), ServiceKind::answers_stun, ServiceKind::Stun, "STUN");
            stun.push(w);
        }
    }
    if let Some(t) = &r.turn {
        server_with(t, |k| k == ServiceKind::Turn, ServiceKind::Turn, "TURN");
    }
    let mut turn_transports: Vec<String> = TURN_TRANSPORTS.iter().map(|t| t.to_string()).collect();
    if let Some(tt) = &r.turn_transports {
        turn_transports = tt.get_ref().words();
        if let Some(bad) = turn_transports.iter().find(|w| !TURN_TRANSPORTS.contains(&w.as_str())) {
            rep.error(
                tt.span(),
                format!("unknown TURN transport `{bad}`"),
                Some("use \"udp\", \"tcp\" or \"tls\"".into()),
            );
        }
        if r.turn.is_none() {
            rep.error(
                tt.span(),
                "turn-transports without a TURN server",
                Some("add turn = \"SERVER\" to [scenario]".into()),
            );
        }
    }
    let policy = match r.policy.as_ref().map(|p| p.get_ref().as_str()) {
        None | Some("all") => TransportPolicy::All,
        Some("relay") => TransportPolicy::Relay,
        Some(other) => {
            let p = r.policy.as_ref().unwrap();
            rep.error(p.span(), format!("unknown policy `{other}`"), Some("use \"all\" or \"relay\"".into()));
            TransportPolicy::All
        }
    };
    if policy == TransportPolicy::Relay && r.turn.is_none() {
        let p = r.policy.as_ref().unwrap();
        rep.error(p.span(), "policy \"relay\" needs a TURN server", Some("add turn = \"SERVER\" to [scenario]".into()));
    }
    let positive = |rep: &mut Reporter, v: &Option<Spanned<u64>>, what: &str| {
        if let Some(v) = v
            && *v.get_ref() == 0
        {
            rep.error(v.span(), format!("{what} must be positive"), None);
        }
    };
    positive(rep, &r.deadline_ms, "deadline-ms");
    positive(rep, &r.ice_check_ms, "ice-check-ms");
    positive(rep, &r.ice_disconnected_ms, "ice-disconnected-ms");
    positive(rep, &r.ice_failed_ms, "ice-failed-ms");
    positive(rep, &r.ice_keepalive_ms, "ice-keepalive-ms");
    if let (Some(k), Some(d)) = (&r.ice_keepalive_ms, &r.ice_disconnected_ms)
        && k.get_ref() >= d.get_ref()
    {
        rep.error(
            k.span(),
            format!("ice-keepalive-ms {} is not below ice-disconnected-ms {}", k.get_ref(), d.get_ref()),
            Some("a quiet healthy pair would go disconnected; leave it out to derive it".into()),
        );
    }
    let ice_restart = r.ice_restart.as_ref().and_then(|v| interpret_ice_restart(rep, v));
    let ice_timeouts = IceTimeouts {
        disconnected_ms: r.ice_disconnected_ms.map(Spanned::into_inner),
        failed_ms: r.ice_failed_ms.map(Spanned::into_inner),
        keepalive_ms: r.ice_keepalive_ms.map(Spanned::into_inner),
    };
    let ice_profile = match r.ice_profile.as_ref().map(|p| (p, p.get_ref().as_str())) {
        None | Some((_, "webrtc-rs")) => IceProfile::WebrtcRs,
        Some((_, "browser-like")) => IceProfile::BrowserLike,
        Some((p, other)) => {
            let hint = Some("use \"webrtc-rs\" (the stack's waits) or \"browser-like\" (none)".into());
            rep.error(p.span(), format!("unknown ice-profile `{other}`"), hint);
            IceProfile::WebrtcRs
        }
    };
    let ice_acceptance_ms = r.ice_acceptance_ms.as_ref().map(|v| interpret_waits(rep, v)).unwrap_or_default();
    let mut peer = |v: &Option<Spanned<toml::Value>>, fallback: &PeerKind| match v {
        None => fallback.clone(),
        Some(v) => PeerKind::from_toml(v.get_ref()).unwrap_or_else(|m| {
            let hint =
                Some("e.g. peer = \"built-in\" or offerer-peer = { command = [\"python3\", \"peer.py\"] }".into());
            rep.error(v.span(), m, hint);
            PeerKind::BuiltIn
        }),
    };
    let both = peer(&r.peer, &PeerKind::BuiltIn);

    let (offerer_peer, answerer_peer) = (peer(&r.offerer_peer, &both), peer(&r.answerer_peer, &both));
    Scenario {
        calls,
        stun,
        turn: r.turn.map(Spanned::into_inner),
        turn_transports,
        policy,
        data_ms: r.data_ms.map_or(DEFAULT_DATA_MS, Spanned::into_inner),
        data_rate_kbps: r.data_rate_kbps,
        deadline_ms: r.deadline_ms.map_or(DEFAULT_DEADLINE_MS, Spanned::into_inner),
        ice_check_ms: r.ice_check_ms.map_or(DEFAULT_ICE_CHECK_MS, Spanned::into_inner),
        ice_restart,
        ice_timeouts,
        ice_profile,
        ice_acceptance_ms,
        offerer_peer,
        answerer_peer,
        silent_answerer: r.test_silent_answerer.unwrap_or(false),
    }
}

/// `ice-acceptance-ms = { host = N, srflx = N, prflx = N, relay = N }` (any subset).
fn interpret_waits(rep: &mut Reporter, v: &Spanned<toml::Value>) -> AcceptanceWaits {
    const HINT: &str = "e.g. ice-acceptance-ms = { srflx = 0, relay = 100 }";
    let mut w = AcceptanceWaits::default();
    let Some(t) = v.get_ref().as_table() else {
        rep.error(v.span(), "ice-acceptance-ms must be a table", Some(HINT.into()));
        return w;
    };
    for (k, val) in t {
        let n = val.as_integer().filter(|n| *n >= 0).map(|n| n as u64);
        let slot = match k.as_str() {
            "host" => &mut w.host,
            "srflx" => &mut w.srflx,
            "prflx" => &mut w.prflx,
            "relay" => &mut w.relay,
            _ => {
                rep.error(v.span(), format!("ice-acceptance-ms: unknown candidate type `{k}`"), Some(HINT.into()));
                continue;
            }
        };
        match n {
            Some(n) => *slot = Some(n),
            None => rep.error(v.span(), format!("ice-acceptance-ms: `{k}` must be a whole number of ms"), None),
        }
    }
    w
}

/// `ice-restart = true | false | { after-disconnected-ms = N, max = N }`.
fn interpret_ice_restart(rep: &mut Reporter, v: &Spanned<toml::Value>) -> Option<IceRestart> {
    const HINT: &str = "use true, or { after-disconnected-ms = 1000, max = 3 }";
    let mut policy = IceRestart::default();
    match v.get_ref() {
        toml::Value::Boolean(b) => return b.then_some(policy),
        toml::Value::Table(t) => {
            for (k, val) in t {
                let n = val.as_integer().filter(|n| *n >= 0);
                match (k.as_str(), n) {
                    ("after-disconnected-ms", Some(n)) => policy.after_disconnected_ms = n as u64,
                    ("max", Some(n)) if n >= 1 => policy.max_restarts = n.min(u32::MAX as i64) as u32,
                    ("max", _) => rep.error(v.span(), "ice-restart: max must be a whole number >= 1", None),
                    ("after-disconnected-ms", None) => {
                        rep.error(v.span(), "ice-restart: after-disconnected-ms must be a whole number >= 0", None)
                    }
                    (other, _) => rep.error(v.span(), format!("ice-restart: unknown key `{other}`"), Some(HINT.into())),
                }
            }
        }
        other => rep.error(
            v.span(),
            format!("ice-restart: expected a boolean or a table, found {}", other.type_str()),
            Some(HINT.into()),
        ),
    }
    Some(policy)
}

pub(super) fn list(v: &[&str]) -> String {
    if v.is_empty() { "none".into() } else { v.join(", ") }
}
