//! Peer configuration, read from the `--config <json>` argument.

use serde::{Deserialize, Serialize};

/// Which side of the offer/answer exchange this peer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Creates the data channel and the offer.
    Offerer,
    /// Waits for the offer and answers it.
    Answerer,
}

/// Which candidates ICE may use (`RTCIceTransportPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportPolicy {
    /// Host, server-reflexive and relay candidates.
    #[default]
    All,
    /// Relay candidates only.
    Relay,
}

/// One STUN or TURN server, as in `RTCIceServer`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct IceServer {
    /// `stun:host:port` / `turn:host:port?transport=udp` URLs.
    pub urls: Vec<String>,
    /// TURN username (empty for STUN).
    #[serde(default)]
    pub username: String,
    /// TURN password (empty for STUN).
    #[serde(default)]
    pub credential: String,
}

/// Everything a peer needs; all fields but `role` have defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerConfig {
    /// Offerer or answerer.
    pub role: Role,
    /// STUN/TURN servers.
    pub ice_servers: Vec<IceServer>,
    /// `all` or `relay`.
    pub transport_policy: TransportPolicy,
    /// Local UDP sockets to gather host candidates on. `0.0.0.0:0` expands to every
    /// non-loopback interface (what a namespaced lab peer wants); tests pass `127.0.0.1:0`.
    pub udp_bind: Vec<String>,
    /// How long both sides push data once the channel is open.
    pub data_duration_ms: u64,
    /// Size of each data channel message.
    pub data_chunk_bytes: usize,
    /// Pace the data phase to this rate (kbit/s, a media-like load); `None` floods to
    /// measure what the path carries.
    #[serde(default)]
    pub data_rate_kbps: Option<u64>,
    /// Hard limit for the whole run, from process start to `done`.
    pub deadline_ms: u64,
    /// How long to keep the connection after `done` so the last SCTP messages reach the
    /// other side before we tear down.
    pub linger_ms: u64,
    /// ICE connectivity-check interval; `None` keeps the stack default (200 ms). In
    /// webrtc-rs 0.21 DTLS/SCTP progress visibly waits on this tick, so it sets setup time.
    pub ice_check_interval_ms: Option<u64>,
    /// Restart ICE when the connection fails or stays disconnected; `None` never restarts.
    pub ice_restart: Option<IceRestart>,
    /// ICE timeouts (`SettingEngine::with_ice_timeouts`); unset ones keep the stack defaults.
    pub ice_timeouts: IceTimeouts,
    /// Test hook: the offerer restarts ICE this long after the data channel opened, healthy
    /// or not (needs `ice_restart`), so a restart can be tested without breaking a path.
    pub test_restart_after_open_ms: Option<u64>,
    /// Test hook: the peer reads signaling but never answers, so the call must time out.
    pub test_silent: bool,
    /// ICE nomination timers of the built-in peer: the stack's defaults or browser-like.
    pub ice_profile: IceProfile,
    /// Per-candidate-type acceptance waits (ms) that override the profile's.
    pub ice_acceptance_ms: AcceptanceWaits,
}

/// How long the built-in peer waits, from the start of checks, before it may nominate a
/// pair of each local candidate type. These waits, not the network, set webrtc-rs's ICE
/// time on an unimpaired lab, so a profile says which figure a run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IceProfile {
    /// webrtc-rs 0.21 defaults: host 0, srflx 500 ms, prflx 1000 ms, relay 2000 ms.
    #[default]
    WebrtcRs,
    /// No acceptance waits, as libwebrtc and Firefox: the first pair that succeeds wins.
    BrowserLike,
}

impl IceProfile {
    /// The profile's waits (`None`: the stack default).
    pub fn waits(self) -> AcceptanceWaits {
        match self {
            IceProfile::WebrtcRs => AcceptanceWaits::default(),
            IceProfile::BrowserLike => {
                AcceptanceWaits { host: Some(0), srflx: Some(0), prflx: Some(0), relay: Some(0) }
            }
        }
    }

    /// Name as written in files.
    pub fn name(self) -> &'static str {
        match self {
            IceProfile::WebrtcRs => "webrtc-rs",
            IceProfile::BrowserLike => "browser-like",
        }
    }
}

/// Acceptance waits per local candidate type, in ms; `None` keeps what the profile sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AcceptanceWaits {
    /// Host candidates.
    pub host: Option<u64>,
    /// Server-reflexive candidates.
    pub srflx: Option<u64>,
    /// Peer-reflexive candidates.
    pub prflx: Option<u64>,
    /// Relay candidates.
    pub relay: Option<u64>,
}

impl AcceptanceWaits {
    /// `self` where set, else `base`.
    pub fn over(self, base: AcceptanceWaits) -> AcceptanceWaits {
        AcceptanceWaits {
            host: self.host.or(base.host),
            srflx: self.srflx.or(base.srflx),
            prflx: self.prflx.or(base.prflx),
            relay: self.relay.or(base.relay),
        }
    }
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            role: Role::Offerer,
            ice_servers: Vec::new(),
            transport_policy: TransportPolicy::All,
            udp_bind: vec!["0.0.0.0:0".into()],
            data_duration_ms: 1000,
            data_chunk_bytes: 16 * 1024,
            data_rate_kbps: None,
            deadline_ms: 15_000,
            linger_ms: 100,
            ice_check_interval_ms: None,
            ice_restart: None,
            ice_timeouts: IceTimeouts::default(),
            test_restart_after_open_ms: None,
            test_silent: false,
            ice_profile: IceProfile::default(),
            ice_acceptance_ms: AcceptanceWaits::default(),
        }
    }
}

impl PeerConfig {
    /// A config with defaults for the given role.
    pub fn new(role: Role) -> Self {
        Self { role, ..Self::default() }
    }
}

/// When the offerer restarts ICE (what apps do with `restartIce()`). The answerer accepts a
/// re-offer either way; with a policy it also outlives ICE `failed`, waiting for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IceRestart {
    /// Restart once ICE has been `disconnected` this long (`failed` restarts at once).
    pub after_disconnected_ms: u64,
    /// Give up after this many restarts.
    pub max_restarts: u32,
}

impl Default for IceRestart {
    fn default() -> Self {
        Self { after_disconnected_ms: 1000, max_restarts: 3 }
    }
}

/// ICE consent timers. The stack defaults are 5 s to `disconnected`, 25 s more to
/// `failed`, and keepalives every 2 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IceTimeouts {
    /// No traffic on the selected pair this long: `disconnected`.
    pub disconnected_ms: Option<u64>,
    /// Then this much longer: `failed`.
    pub failed_ms: Option<u64>,
    /// Keepalive (consent) interval; derived from `disconnected_ms` when only that is set.
    pub keepalive_ms: Option<u64>,
}
