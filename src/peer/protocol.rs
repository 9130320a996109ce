//! The JSON-lines protocol between a peer and whoever relays its signaling.
//!
//! Input (stdin): one [`SignalMsg`] per line. Output (stdout): one [`PeerEvent`] per line;
//! [`PeerEvent::Signal`] lines carry a [`SignalMsg`] that the relay must hand to the other
//! peer, every other line is a report for the orchestrator.

use serde::{Deserialize, Serialize};

use super::config::Role;

/// `RTCIceCandidateInit` as browsers serialize it (camelCase keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateInit {
    /// The `candidate:...` SDP attribute value.
    pub candidate: String,
    /// Media stream id the candidate belongs to.
    #[serde(default)]
    pub sdp_mid: Option<String>,
    /// Index of the m-line the candidate belongs to.
    #[serde(default, rename = "sdpMLineIndex")]
    pub sdp_mline_index: Option<u16>,
    /// ICE ufrag of the generation this candidate belongs to.
    #[serde(default)]
    pub username_fragment: Option<String>,
}

/// A signaling message, relayed verbatim between the two peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SignalMsg {
    /// SDP offer.
    Offer {
        /// Session description.
        sdp: String,
    },
    /// SDP answer.
    Answer {
        /// Session description.
        sdp: String,
    },
    /// A trickled ICE candidate.
    Candidate {
        /// The candidate.
        candidate: CandidateInit,
    },
    /// The sender has added the receiver's relay candidate at `endpoint` to its ICE agent
    /// (see `turn_shim`: a stream relay's checks wait for this).
    CandidateAdded {
        /// `address:port` of the candidate.
        endpoint: String,
    },
    /// The sender has gathered all its candidates.
    EndOfCandidates,
    /// The sender gives up (timeout or error); the receiver should stop waiting.
    Bye {
        /// Why.
        reason: String,
    },
}

/// `address:port`, `[address]:port` for IPv6: what `SocketAddr` prints and parses.
pub fn endpoint(address: &str, port: impl std::fmt::Display) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

/// One candidate as reported in events and in the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateInfo {
    /// `host`, `srflx`, `prflx` or `relay` as the ICE agent labels it.
    pub candidate_type: String,
    /// What the candidate really is: equals `candidate_type`, except that a `prflx`
    /// whose address matches a known candidate takes that candidate's type (so a prflx
    /// that is really the other side's TURN relay reads `relay`).
    pub base_type: String,
    /// ICE transport: `udp` or `tcp`.
    pub protocol: String,
    /// IP address.
    pub address: String,
    /// Port.
    pub port: u16,
    /// Transport to the TURN server (`udp`, `tcp`, `tls`); relay candidates only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_protocol: Option<String>,
    /// Related (base / mapped) address for srflx and relay candidates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_address: Option<String>,
    /// STUN/TURN URL the candidate was gathered from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl CandidateInfo {
    /// `address:port` (`[address]:port` for IPv6), the key used to match prflx candidates
    /// to known ones.
    pub fn endpoint(&self) -> String {
        endpoint(&self.address, self.port)
    }

    /// `ipv4` or `ipv6`, the family of the candidate's address (`None` for a name, such
    /// as an mDNS `.local` candidate).
    pub fn family(&self) -> Option<&'static str> {
        match self.address.parse::<std::net::IpAddr>().ok()? {
            std::net::IpAddr::V4(_) => Some("ipv4"),
            std::net::IpAddr::V6(_) => Some("ipv6"),
        }
    }
}

/// The candidate pair ICE nominated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectedPair {
    /// Our side.
    pub local: CandidateInfo,
    /// Their side.
    pub remote: CandidateInfo,
    /// True if either side's `base_type` is `relay`.
    pub relay_based: bool,
    /// The TURN transport of the relay end, when known (ours if we relay, else theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_protocol: Option<String>,
    /// Latest STUN round-trip time on this pair, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
}

/// Data channel throughput, measured by the application (payload bytes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataStats {
    /// Payload bytes we sent.
    pub bytes_sent: u64,
    /// Payload bytes we received.
    pub bytes_received: u64,
    /// Messages we sent.
    pub messages_sent: u64,
    /// Messages we received.
    pub messages_received: u64,
    /// How long we were sending.
    pub send_duration_ms: f64,
    /// From the first to the last received data message.
    pub recv_duration_ms: f64,
    /// `bytes_sent / send_duration`.
    pub send_bytes_per_sec: f64,
    /// `bytes_received / recv_duration`.
    pub recv_bytes_per_sec: f64,
    /// What the connection's transport sent and received up to now: every datagram
    /// ICE handed the network (connectivity checks, DTLS records carrying SCTP, i.e. the
    /// data channel's bytes with all their framing), before any TURN framing. From the
    /// WebRTC stack's transport stats, when it has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<TransportStats>,
    /// Of those, what went over the selected candidate pairs once ICE had selected one:
    /// the DTLS records, without the ICE agent's checks (`getStats()` candidate-pair
    /// `bytesSent`/`bytesReceived`, summed over every pair that was selected). For a
    /// relayed end, what its relay carried for it apart from checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected_pairs: Option<TransportStats>,
}

/// Datagrams and their payload bytes a connection's transport sent and received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportStats {
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Datagrams received.
    pub packets_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
}

/// What kind of failure an [`PeerEvent::Error`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A wait exceeded the deadline.
    Timeout,
    /// ICE or the peer connection went to `failed`.
    Failed,
    /// The other side said bye or closed its signaling stream.
    PeerGone,
    /// Bad input or an error from the WebRTC stack.
    Internal,
}

/// Where the peer was when something happened; tells a timeout's cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the offer/answer.
    Signaling,
    /// Description exchanged, waiting for ICE to connect.
    Ice,
    /// ICE connected, waiting for DTLS.
    Dtls,
    /// DTLS up, waiting for the data channel to open.
    DataChannel,
    /// Exchanging data.
    Data,
    /// Finished.
    Done,
}

/// A line the peer writes. Every variant carries `t_ms`: monotonic ms since the peer
/// started (fractional, microsecond resolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
// Events are written once and dropped; boxing the big variants buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum PeerEvent {
    /// The peer is up.
    Started {
        /// Time.
        t_ms: f64,
        /// Our role.
        role: Role,
        /// The ICE stack and its settings (e.g. `webrtc-rs 0.21.1`), as the peer names itself.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        implementation: Option<String>,
    },
    /// A browser peer's browser is up and its page is running (optional; browser peers
    /// only). Call timings start after it, so browser start-up is reported apart.
    BrowserReady {
        /// Time.
        t_ms: f64,
        /// From launching the browser to the page running, in ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        startup_ms: Option<f64>,
        /// The browser's `navigator.userAgent`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_agent: Option<String>,
    },
    /// A signaling message for the other peer.
    Signal {
        /// Time.
        t_ms: f64,
        /// The message to relay.
        signal: SignalMsg,
    },
    /// ICE gathering began.
    GatheringStarted {
        /// Time.
        t_ms: f64,
    },
    /// A local candidate was gathered.
    CandidateGathered {
        /// Time.
        t_ms: f64,
        /// The candidate.
        candidate: CandidateInfo,
    },
    /// ICE gathering finished.
    GatheringComplete {
        /// Time.
        t_ms: f64,
    },
    /// `RTCIceConnectionState` changed (`checking`, `connected`, `failed`, ...).
    IceState {
        /// Time.
        t_ms: f64,
        /// New state.
        state: String,
    },
    /// The nominated candidate pair; written when ICE connects, whenever the pair changes
    /// (e.g. after an ICE restart), and again before `done`.
    SelectedPair {
        /// Time.
        t_ms: f64,
        /// The pair.
        pair: SelectedPair,
    },
    /// ICE restarts: the offerer sent a re-offer with new credentials, or the answerer
    /// accepted one.
    IceRestart {
        /// Time.
        t_ms: f64,
        /// 1 for the first restart of the call.
        attempt: u32,
        /// Why: `failed`, `disconnected for 1000 ms`, `re-offer`, ...
        reason: String,
    },
    /// The first connectivity check of this side got a response: the network's part of
    /// ICE is done here; what follows until `connected` is the stack's nomination policy.
    FirstPairSucceeded {
        /// Time.
        t_ms: f64,
    },
    /// DTLS handshake done (peer connection state `connected`).
    DtlsConnected {
        /// Time.
        t_ms: f64,
    },
    /// The data channel is open.
    DataChannelOpen {
        /// Time.
        t_ms: f64,
    },
    /// STUN round-trip time on the selected pair.
    Rtt {
        /// Time.
        t_ms: f64,
        /// Round-trip time in ms.
        rtt_ms: f64,
    },
    /// Data exchange results.
    DataStats {
        /// Time.
        t_ms: f64,
        /// The numbers.
        stats: DataStats,
    },
    /// Something went wrong; a fatal error is followed by a non-zero exit.
    Error {
        /// Time.
        t_ms: f64,
        /// Category.
        kind: ErrorKind,
        /// Phase the peer was in.
        phase: Phase,
        /// Human-readable detail.
        message: String,
    },
    /// The peer finished successfully and will exit 0.
    Done {
        /// Time.
        t_ms: f64,
    },
}

impl PeerEvent {
    /// The event's timestamp.
    pub fn t_ms(&self) -> f64 {
        match self {
            PeerEvent::Started { t_ms, .. }
            | PeerEvent::BrowserReady { t_ms, .. }
            | PeerEvent::Signal { t_ms, .. }
            | PeerEvent::GatheringStarted { t_ms }
            | PeerEvent::CandidateGathered { t_ms, .. }
            | PeerEvent::GatheringComplete { t_ms }
            | PeerEvent::IceState { t_ms, .. }
            | PeerEvent::SelectedPair { t_ms, .. }
            | PeerEvent::IceRestart { t_ms, .. }
            | PeerEvent::FirstPairSucceeded { t_ms }
            | PeerEvent::DtlsConnected { t_ms }
            | PeerEvent::DataChannelOpen { t_ms }
            | PeerEvent::Rtt { t_ms, .. }
            | PeerEvent::DataStats { t_ms, .. }
            | PeerEvent::Error { t_ms, .. }
            | PeerEvent::Done { t_ms } => *t_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_tagged() {
        let s = serde_json::to_string(&PeerEvent::Signal { t_ms: 1.5, signal: SignalMsg::EndOfCandidates }).unwrap();
        assert_eq!(s, r#"{"event":"signal","t_ms":1.5,"signal":{"type":"end_of_candidates"}}"#);
        let m: SignalMsg = serde_json::from_str(
            r#"{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
        )
        .unwrap();
        assert!(matches!(m, SignalMsg::Candidate { .. }));
    }
}
