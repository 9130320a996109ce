//! [`Outcome`]: what one call produced, folded from the peers' event streams.

use serde::{Deserialize, Serialize};

use super::protocol::{CandidateInfo, DataStats, ErrorKind, PeerEvent, Phase, SelectedPair};

/// A local candidate and when it was gathered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatheredCandidate {
    /// ms since the peer started.
    pub t_ms: f64,
    /// The candidate.
    pub candidate: CandidateInfo,
}

/// An error a peer reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerError {
    /// ms since the peer started.
    pub t_ms: f64,
    /// Category.
    pub kind: ErrorKind,
    /// Phase the peer was in.
    pub phase: Phase,
    /// Detail.
    pub message: String,
}

/// One peer's results. Times are ms since that peer started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerOutcome {
    /// The peer wrote `done`.
    pub ok: bool,
    /// The peer hit a deadline.
    pub timed_out: bool,
    /// Why the peer (process) failed, if it did, as its runner saw it.
    pub exit_error: Option<String>,
    /// The stack and settings that ran, as the peer named itself (`started`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub implementation: Option<String>,
    /// Browser peers: browser launch to page running, in ms (apart from call timings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_startup_ms: Option<f64>,
    /// Browser peers: when the page was running (the call could start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_ready_ms: Option<f64>,
    /// Local candidates in gathering order.
    pub candidates: Vec<GatheredCandidate>,
    /// When gathering started.
    pub gathering_started_ms: Option<f64>,
    /// When gathering completed.
    pub gathering_complete_ms: Option<f64>,
    /// First connectivity check that got a response (the network's share of ICE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_pair_succeeded_ms: Option<f64>,
    /// First ICE `connected`.
    pub ice_connected_ms: Option<f64>,
    /// DTLS up (peer connection `connected`).
    pub dtls_connected_ms: Option<f64>,
    /// Data channel open.
    pub data_channel_open_ms: Option<f64>,
    /// Last reported selected pair (re-read at the end, when all candidates are known).
    pub selected_pair: Option<SelectedPair>,
    /// ICE restarts this peer did (offerer) or accepted (answerer).
    pub ice_restarts: u32,
    /// Selected-pair reports (connect, each change, the final re-read).
    pub pair_reports: u32,
    /// Last STUN RTT on the selected pair.
    pub rtt_ms: Option<f64>,
    /// Data exchange numbers.
    pub data: Option<DataStats>,
    /// When the peer finished.
    pub done_ms: Option<f64>,
    /// Every error event, fatal or not.
    pub errors: Vec<PeerError>,
}

impl PeerOutcome {
    /// Folds a peer's event lines into its outcome.
    pub fn from_events(events: &[PeerEvent]) -> Self {
        let mut o = PeerOutcome::default();
        for ev in events {
            match ev {
                PeerEvent::CandidateGathered { t_ms, candidate } => {
                    o.candidates.push(GatheredCandidate { t_ms: *t_ms, candidate: candidate.clone() })
                }
                PeerEvent::BrowserReady { t_ms, startup_ms, .. } => {
                    o.browser_ready_ms = Some(*t_ms);
                    o.browser_startup_ms = *startup_ms;
                }
                PeerEvent::GatheringStarted { t_ms } => {
                    o.gathering_started_ms.get_or_insert(*t_ms);
                }
                PeerEvent::GatheringComplete { t_ms } => {
                    o.gathering_complete_ms.get_or_insert(*t_ms);
                }
                // Stacks that skip `connected` (aiortc) go straight to `completed`.
                PeerEvent::IceState { t_ms, state } if state == "connected" || state == "completed" => {
                    o.ice_connected_ms.get_or_insert(*t_ms);
                }
                PeerEvent::SelectedPair { pair, .. } => {
                    o.selected_pair = Some(pair.clone());
                    o.pair_reports += 1;
                }
                PeerEvent::IceRestart { attempt, .. } => o.ice_restarts = o.ice_restarts.max(*attempt),
                PeerEvent::FirstPairSucceeded { t_ms } => {
                    o.first_pair_succeeded_ms.get_or_insert(*t_ms);
                }
                PeerEvent::Started { implementation, .. } => o.implementation = implementation.clone(),
                PeerEvent::DtlsConnected { t_ms } => {
                    o.dtls_connected_ms.get_or_insert(*t_ms);
                }
                PeerEvent::DataChannelOpen { t_ms } => {
                    o.data_channel_open_ms.get_or_insert(*t_ms);
                }
                PeerEvent::Rtt { rtt_ms, .. } => o.rtt_ms = Some(*rtt_ms),
                PeerEvent::DataStats { stats, .. } => o.data = Some(stats.clone()),
                PeerEvent::Error { t_ms, kind, phase, message } => {
                    o.timed_out |= *kind == ErrorKind::Timeout;
                    o.errors.push(PeerError { t_ms: *t_ms, kind: *kind, phase: *phase, message: message.clone() });
                }
                PeerEvent::Done { t_ms } => {
                    o.done_ms = Some(*t_ms);
                    o.ok = true;
                }
                _ => {}
            }
        }
        o
    }

    /// If our selected remote candidate is a prflx that the other side gathered under
    /// another type (typically its TURN relay, learned from a check before the candidate
    /// was trickled), take that type.
    fn resolve_remote_prflx(&mut self, other: &PeerOutcome) {
        let Some(pair) = self.selected_pair.as_mut() else {
            return;
        };
        if pair.remote.candidate_type != "prflx" {
            return;
        }
        let ep = pair.remote.endpoint();
        if let Some(c) = other.candidates.iter().find(|c| c.candidate.endpoint() == ep) {
            pair.remote.base_type = c.candidate.base_type.clone();
            pair.remote.relay_protocol = c.candidate.relay_protocol.clone();
            pair.relay_based = pair.local.base_type == "relay" || pair.remote.base_type == "relay";
            if pair.relay_protocol.is_none() {
                pair.relay_protocol = pair.remote.relay_protocol.clone();
            }
        }
    }
}

/// Both peers' results of one call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The offering peer.
    pub offerer: PeerOutcome,
    /// The answering peer.
    pub answerer: PeerOutcome,
}

impl Outcome {
    /// Builds the outcome from both event streams, cross-resolving prflx candidates.
    pub fn from_events(offerer: &[PeerEvent], answerer: &[PeerEvent]) -> Self {
        let mut o =
            Outcome { offerer: PeerOutcome::from_events(offerer), answerer: PeerOutcome::from_events(answerer) };
        let (a, b) = (o.offerer.clone(), o.answerer.clone());
        o.offerer.resolve_remote_prflx(&b);
        o.answerer.resolve_remote_prflx(&a);
        o
    }

    /// Both peers finished.
    pub fn ok(&self) -> bool {
        self.offerer.ok && self.answerer.ok
    }
}
