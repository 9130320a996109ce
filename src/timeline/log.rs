//! What a call with a timeline recorded: each event as applied, and the byte counters
//! sampled meanwhile. The driver (in [`crate::scenario`]) writes it; [`super::analyze`]
//! reads it.

use serde::Serialize;

use crate::peer::PeerEvent;

/// Byte counters are read this often.
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

/// What was done for one event.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// 1-based event number.
    pub index: usize,
    /// Planned time, ms after the data channel opened.
    pub at_ms: u64,
    /// The event in words.
    pub what: String,
    /// When its steps started, ms after the data channel opened.
    pub applied_ms: Option<f64>,
    /// How long they took.
    pub took_ms: Option<f64>,
    /// The steps, in words.
    pub ops: Vec<String>,
    /// Why it failed or was not applied.
    pub error: Option<String>,
}

/// Everything observed during the call. Times are ms since the relay started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TimelineLog {
    /// The offerer's data channel opened: the timeline's zero.
    pub t0_ms: Option<f64>,
    /// What was done.
    pub applied: Vec<Applied>,
    /// (time, bytes received by both hosts' interfaces, UDP datagrams delivered to
    /// their sockets), both counted since the namespaces were made.
    pub samples: Vec<(f64, u64, u64)>,
    /// The offerer's events with their arrival times (state, pair, error, done).
    pub offerer: Vec<(f64, PeerEvent)>,
    /// The answerer's, likewise.
    pub answerer: Vec<(f64, PeerEvent)>,
}
