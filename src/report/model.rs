//! The report model: plain data, independent of how a call was placed.

use serde::{Deserialize, Serialize};

/// Everything one `icelab run` showed: N calls (a call per run today; many calls per
/// lab later), the verdict, and, over repeated runs, a summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// What was run (the topology file).
    pub source: String,
    /// Every call passed and every run could be done.
    pub pass: bool,
    /// The calls, in the order they were placed.
    pub calls: Vec<Call>,
    /// Runs that could not be done (their errors).
    pub errors: Vec<String>,
    /// Over repeated runs: pass rate, selected pairs, percentiles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
}

/// One call between a pair of peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// A short name, unique in the report: `alice -> bob` (and `#N` over repeats).
    pub name: String,
    /// The lab it ran in.
    pub lab: String,
    /// The offering peer (host name).
    pub offerer: String,
    /// The answering peer (host name).
    pub answerer: String,
    /// How the peers were set up: `stun: stun, turn: relay, policy: all`.
    pub setup: String,
    /// How the call ended, in a few words.
    pub outcome: String,
    /// The offerer's selected pair.
    pub pair: Option<Pair>,
    /// Every check of the verdict, in order.
    pub checks: Vec<CheckRow>,
    /// All checks hold.
    pub pass: bool,
    /// Timings that were measured, in display order.
    pub timings: Vec<CallTiming>,
    /// Timeline events and how the call fared.
    pub events: Vec<EventRow>,
    /// Peers' stderr tails, only for calls that did not connect.
    pub stderr: Vec<PeerStderr>,
    /// The lab was kept afterwards.
    pub kept: bool,
    /// What the lab's TURN and STUN servers say they answered and relayed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<ServerRow>,
}

/// One server's own figures over the run (cumulative, as of `stats.at_unix_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRow {
    /// Server name.
    pub server: String,
    /// `turn` or `stun`.
    pub service: String,
    /// `built-in`, `coturn`.
    pub implementation: String,
    /// The figures.
    pub stats: crate::servers::stats::ServerStats,
    /// Why they are missing or partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One end of a selected pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Type as ICE labels it (`host`, `srflx`, `prflx`, `relay`).
    pub kind: String,
    /// What it really is, when ICE's label hides it (a prflx that is a relay).
    pub really: Option<String>,
    /// `udp` or `tcp`.
    pub protocol: String,
    /// `address:port` (`[address]:port` for IPv6).
    pub endpoint: String,
    /// `ipv4` or `ipv6` (absent for a name, as an mDNS candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// A selected candidate pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    /// Our side.
    pub local: Candidate,
    /// Their side.
    pub remote: Candidate,
    /// TURN transport when relayed.
    pub relayed_over: Option<String>,
}

impl Pair {
    /// `srflx/prflx`: the types, local then remote.
    pub fn short(&self) -> String {
        format!("{}/{}", self.local.kind, self.remote.kind)
    }
}

/// One expectation and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRow {
    /// The `[expect]` key (or `event N`).
    pub name: String,
    /// What the file asks for.
    pub expected: String,
    /// What the call showed.
    pub observed: String,
    /// Whether it holds.
    pub ok: bool,
}

/// One measured timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallTiming {
    /// Display name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Value.
    pub value: f64,
}

/// One timeline event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    /// 1-based number.
    pub index: usize,
    /// The event in words.
    pub what: String,
    /// When it was applied, ms after the data channel opened.
    pub applied_ms: Option<f64>,
    /// What happened to the call.
    pub observed: String,
    /// Longest data stall after it.
    pub stall_ms: Option<f64>,
    /// Details: ICE changes, restarts, the pair after.
    pub notes: Vec<String>,
}

/// A peer's stderr tail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStderr {
    /// `offerer` or `answerer`.
    pub peer: String,
    /// The tail.
    pub text: String,
}

/// Repeated runs, or several calls, at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Calls asked for (runs × the scenario's calls).
    pub repeat: u32,
    /// Calls whose verdict passed.
    pub passed: usize,
    /// Runs that could not be done.
    pub errors: usize,
    /// Selected pairs (`local/remote` types) and how often.
    pub selected_pairs: Vec<(String, usize)>,
    /// p50/p95 of each timing.
    pub timings: Vec<TimingStat>,
}

/// Percentiles of one timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingStat {
    /// Timing name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Runs that had it.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}
