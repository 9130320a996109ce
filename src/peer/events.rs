//! What webrtc-rs callbacks and the data task tell the peer's main loop, and the clock
//! that timestamps it at the source.

use std::sync::Arc;
use std::time::Instant;

use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState};

use super::protocol::{CandidateInfo, CandidateInit, DataStats};

/// Monotonic clock shared by everything that timestamps events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Default for Clock {
    fn default() -> Self {
        Clock(Instant::now())
    }
}

impl Clock {
    pub(crate) fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }

    /// `at` on this clock (0 for instants before it started).
    pub(crate) fn ms_at(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.0).as_secs_f64() * 1000.0
    }
}

/// What callbacks and the data task report to the main loop (timestamped at the source).
pub(crate) enum Internal {
    Candidate(f64, CandidateInfo, CandidateInit),
    CandidateError(f64, String),
    Gathering(f64, RTCIceGatheringState),
    Ice(f64, RTCIceConnectionState),
    Pc(f64, RTCPeerConnectionState),
    IncomingChannel(Arc<dyn DataChannel>),
    DcOpen(f64),
    DataDone(DataStats),
    DataError(String),
}
