//! A WebRTC peer for lab runs, driven by JSON-lines signaling over stdio.
//!
//! The orchestrator starts `icelab peer --role offerer|answerer --config <json>` inside a
//! network namespace and wires its stdin/stdout to [`relay_signaling`]; the library entry
//! point is [`run_peer`]. [`call_pair`] does the same in-process for tests.
//!
//! # Why `webrtc` 0.21 (the async layer over the sans-IO `rtc` core)
//!
//! webrtc-rs comes in two lines on crates.io: `webrtc` 0.17.x, the classic tokio API
//! (callbacks on `RTCPeerConnection`), and 0.20+/0.21.x, a rewrite in which the protocol
//! state lives in the sans-IO `rtc` crates and `webrtc` is a thin async driver on top
//! (tokio via the default `runtime-tokio` feature). We use 0.21.1 because:
//!
//! * it is where development happens (0.17 is the end of the classic line);
//! * `get_stats()` returns W3C-shaped stats: the transport's `selectedCandidatePairId`,
//!   candidate-pair stats with `currentRoundTripTime`, and local/remote candidate stats
//!   with `candidateType`, `protocol`, `address`, `port`, `relayProtocol` and `url` —
//!   everything we report for the selected pair, read the way a browser's
//!   `getStats()` would be;
//! * candidates come as `RTCIceCandidate` with type/protocol/address/related address/URL,
//!   and ICE gathering errors surface through `on_ice_candidate_error`;
//! * it can bind explicit local sockets (`with_udp_addrs`), which a namespaced peer and the
//!   loopback tests need, and supports ICE-TCP host candidates.
//!
//! Limitation shared by both lines: the TURN *client* only does TURN over UDP. `turn:` URLs
//! with `?transport=tcp` and all `turns:` URLs are skipped with a warning (0.21
//! `turn_relayer.rs`; 0.17 `agent_gather.rs` has the same TODO). We fill the gap outside
//! the stack: for each such URL the peer runs a local UDP-to-TCP/TLS shim (`turn_shim`)
//! and hands webrtc-rs a UDP URL pointing at it, then reports the relay candidates it
//! yields with the original URL and relay protocol `tcp` / `tls`.

mod candidate;
pub mod checks_log;
mod config;
mod data;
pub mod driver;
mod events;
mod handler;
mod harness;
mod outcome;
mod output;
mod pool;
pub mod pool_wire;
pub mod protocol;
mod relay;
mod restart;
mod run;
mod session;
mod setup;
mod shim_gate;
mod turn_shim;

pub use config::{AcceptanceWaits, IceProfile, IceRestart, IceServer, IceTimeouts, PeerConfig, Role, TransportPolicy};
pub use driver::PeerKind;
pub use harness::call_pair;
pub use outcome::{GatheredCandidate, Outcome, PeerError, PeerOutcome};
pub use pool::run_pool;
pub use protocol::{
    CandidateInfo, CandidateInit, DataStats, ErrorKind, PeerEvent, Phase, SelectedPair, SignalMsg, TransportStats,
};
pub use relay::{Plain, RelayWatch, relay_signaling, relay_watched};
pub use run::run_peer;
