//! What each event did to the call, from the timeline log (pure, unit-tested), and the
//! checks for `expect = "recovers" | "breaks"`.
//!
//! "Data flowing" is read from the kernel, not the peer: while the data phase pushes
//! chunks both ways, the two hosts' interfaces receive at least [`FLOW_BYTES_PER_MS`]
//! in UDP datagrams delivered to sockets (at least [`FLOW_DATAGRAMS`] per sample, so a
//! burst of ICMP errors from a dead server does not count). ICE consent checks and
//! keepalives are far below it. A stall is a run of samples without flow lasting
//! [`STALL_MS`] or more.
//!
//! A peer with an ICE restart policy reports each restart (`ice_restart`) and each new
//! selected pair; an event's outcome lists the restarts in its window and the pair the
//! call ended up on, which `pair = "relay" | "direct"` checks.

use serde::Serialize;

use super::event::{EventExpect, PairExpect, TimelineEvent};
use super::log::TimelineLog;
use crate::check::Check;
use crate::peer::{PeerEvent, SelectedPair};

/// Receive rate (both hosts together) above which data counts as flowing: 20 kB/s.
pub const FLOW_BYTES_PER_MS: f64 = 20.0;
/// UDP datagrams per sample (both hosts) needed, besides the bytes, to count as flowing.
pub const FLOW_DATAGRAMS: u64 = 2;
/// Shortest stall that counts as a break (longer than an SCTP retransmission on a lossy link).
pub const STALL_MS: f64 = 500.0;
/// The data phase winds down (fin/ack) this long before `data-ms` ends.
const END_MARGIN_MS: f64 = 150.0;

/// How the call fared after one event.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Recovery {
    /// Data kept flowing and ICE stayed connected.
    NeverBroke,
    /// Data stopped (or ICE disconnected) and came back within the event's window.
    Recovered {
        /// From the event to data flowing again with ICE connected.
        recovery_ms: f64,
    },
    /// Data stopped and did not come back before the next event or the end.
    Broke,
    /// The event was not applied (or failed).
    NotApplied,
}

/// One event's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct EventOutcome {
    /// 1-based event number.
    pub index: usize,
    /// The event in words.
    pub what: String,
    /// Planned time, ms after the data channel opened.
    pub at_ms: u64,
    /// When it was applied, ms after the data channel opened.
    pub applied_ms: Option<f64>,
    /// Operations done.
    pub ops: Vec<String>,
    /// Why applying failed.
    pub error: Option<String>,
    /// What happened to the call.
    pub recovery: Recovery,
    /// Longest data stall in the window, ms.
    pub stall_ms: Option<f64>,
    /// From the event to data flowing again, when it had stalled.
    pub data_resumed_ms: Option<f64>,
    /// From the event to ICE `connected` again (both sides), when it had left it.
    pub ice_reconnected_ms: Option<f64>,
    /// End of the window the event was judged in (next event or end of data), ms after open.
    pub window_end_ms: f64,
    /// ICE state changes in the window: `offerer disconnected @ +5012 ms`.
    pub ice: Vec<String>,
    /// ICE restarts in the window: `offerer restart 1 (failed) @ +2100 ms`.
    pub ice_restarts: Vec<String>,
    /// The offerer's selected pair in effect at the end of the window: the last one
    /// reported before the next event (for the last event, the final re-read).
    pub selected_pair: Option<SelectedPair>,
    /// That pair differs from the one ICE selected first.
    pub pair_changed: Option<bool>,
    /// What the file expects.
    pub expect: Option<EventExpect>,
    /// The pair the file expects at the end of the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_pair: Option<PairExpect>,
}

/// A stall: [start, end) in ms after open; `open` when data never came back.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stall {
    start: f64,
    end: f64,
    open: bool,
}

/// Stalls of at least [`STALL_MS`] in `[0, end]` (times relative to the open).
fn stalls(samples: &[(f64, u64, u64)], end: f64) -> Vec<Stall> {
    let mut out = Vec::new();
    let mut cur: Option<f64> = None;
    for w in samples.windows(2) {
        let ((t1, b1, d1), (t2, b2, d2)) = (w[0], w[1]);
        if t2 <= 0.0 || t1 >= end {
            continue;
        }
        let flowing = (b2.saturating_sub(b1)) as f64 / (t2 - t1).max(1.0) >= FLOW_BYTES_PER_MS
            && d2.saturating_sub(d1) >= FLOW_DATAGRAMS;
        match (flowing, cur) {
            (false, None) => cur = Some(t1.max(0.0)),
            (true, Some(s)) => {
                if t1 - s >= STALL_MS {
                    out.push(Stall { start: s, end: t1, open: false });
                }
                cur = None;
            }
            _ => {}
        }
    }
    if let Some(s) = cur
        && end - s >= STALL_MS
    {
        out.push(Stall { start: s, end, open: true });
    }
    out
}

/// Judges every event from the log. `data_ms` is the scenario's data phase.
pub fn analyze(events: &[TimelineEvent], log: &TimelineLog, data_ms: u64) -> Vec<EventOutcome> {
    let t0 = log.t0_ms.unwrap_or(0.0);
    let rel = |t: f64| t - t0;
    // The data phase ends at data-ms, or earlier when a peer gives up.
    let gave_up = log
        .offerer
        .iter()
        .chain(&log.answerer)
        .filter(|(_, e)| matches!(e, PeerEvent::Error { .. } | PeerEvent::Done { .. }))
        .map(|(t, _)| rel(*t))
        .fold(f64::INFINITY, f64::min);
    let end = (data_ms as f64 - END_MARGIN_MS).min(gave_up);
    let samples: Vec<(f64, u64, u64)> = log.samples.iter().map(|(t, b, d)| (rel(*t), *b, *d)).collect();
    let stalls = stalls(&samples, end);
    let ice: Vec<(f64, &str, &str)> = [("offerer", &log.offerer), ("answerer", &log.answerer)]
        .into_iter()
        .flat_map(|(who, v)| {
            v.iter().filter_map(move |(t, e)| match e {
                PeerEvent::IceState { state, .. } => Some((rel(*t), who, state.as_str())),
                _ => None,
            })
        })
        .collect();
    let pairs: Vec<(f64, &SelectedPair)> = log
        .offerer
        .iter()
        .filter_map(|(t, e)| match e {
            PeerEvent::SelectedPair { pair, .. } => Some((rel(*t), pair)),
            _ => None,
        })
        .collect();
    let first_pair = pairs.first().map(|p| p.1);
    let restarts: Vec<(f64, String)> = [("offerer", &log.offerer), ("answerer", &log.answerer)]
        .into_iter()
        .flat_map(|(who, v)| {
            v.iter().filter_map(move |(t, e)| match e {
                PeerEvent::IceRestart { attempt, reason, .. } => {
                    Some((rel(*t), format!("{who} restart {attempt} ({reason}) @ +{:.0} ms", rel(*t))))
                }
                _ => None,
            })
        })
        .collect();

    events
        .iter()
        .zip(&log.applied)
        .enumerate()
        .map(|(i, (ev, ap))| {
            let next = log.applied.get(i + 1).map(|n| n.applied_ms.unwrap_or(n.at_ms as f64));
            let window_end = next.unwrap_or(end).min(end);
            let mut o = EventOutcome {
                index: ap.index,
                what: ap.what.clone(),
                at_ms: ev.at_ms,
                applied_ms: ap.applied_ms,
                ops: ap.ops.clone(),
                error: ap.error.clone(),
                recovery: Recovery::NotApplied,
                stall_ms: None,
                data_resumed_ms: None,
                ice_reconnected_ms: None,
                window_end_ms: window_end,
                ice: Vec::new(),
                ice_restarts: Vec::new(),
                selected_pair: None,
                pair_changed: None,
                expect: ev.expect,
                expect_pair: ev.pair,
            };
            let Some(a) = ap.applied_ms.filter(|_| ap.error.is_none()) else {
                return o;
            };
            let in_window: Vec<&(f64, &str, &str)> = ice.iter().filter(|(t, ..)| *t >= a && *t < window_end).collect();
            o.ice = in_window.iter().map(|(t, who, s)| format!("{who} {s} @ +{t:.0} ms")).collect();
            // A stall that starts within two samples of the next event is that event's doing
            // (the sample that shows it may begin just before the event fired).
            let late = 2.0 * super::log::SAMPLE_EVERY.as_secs_f64() * 1e3;
            let stall = stalls.iter().find(|s| s.end > a && (s.start < a || s.start < window_end - late));
            o.stall_ms = stall.map(|s| s.end.min(window_end) - s.start.max(a));
            // Per side: was ICE out of `connected` at the event or did it leave it in the
            // window, and when did it come back?
            let mut ice_broke = false;
            let mut ice_back: Option<f64> = Some(a);
            for who in ["offerer", "answerer"] {
                let side: Vec<&(f64, &str, &str)> = ice.iter().filter(|(_, w, _)| *w == who).collect();
                let down = |s: &str| s == "disconnected" || s == "failed";
                let before = side.iter().rev().find(|(t, ..)| *t < a).is_some_and(|(_, _, s)| down(s));
                let first_down = if before {
                    Some(a)
                } else {
                    side.iter().find(|(t, _, s)| *t >= a && *t < window_end && down(s)).map(|(t, ..)| *t)
                };
                if let Some(d) = first_down {
                    ice_broke = true;
                    let back =
                        side.iter().find(|(t, _, s)| *t >= d && *t < window_end && *s == "connected").map(|(t, ..)| *t);
                    ice_back = ice_back.zip(back).map(|(x, y)| x.max(y));
                }
            }
            o.ice_reconnected_ms = ice_back.filter(|_| ice_broke).map(|t| t - a);
            // Likewise a stall seen to end within two samples of the next event: the sample
            // that shows data flowing again may begin just before that event fired, so the
            // flow may be the next event's doing (a link coming back up).
            let ends_by = if next.is_some() { window_end - late } else { window_end };
            let data_back = match stall {
                None => Some(a),
                Some(s) if !s.open && s.end < ends_by => Some(s.end),
                Some(_) => None,
            };
            o.data_resumed_ms = data_back.filter(|_| stall.is_some()).map(|t| t - a);
            o.recovery = match (stall.is_some() || ice_broke, data_back, ice_back) {
                (false, ..) => Recovery::NeverBroke,
                (true, Some(d), Some(i)) => Recovery::Recovered { recovery_ms: d.max(i) - a },
                _ => Recovery::Broke,
            };
            o.ice_restarts =
                restarts.iter().filter(|(t, _)| *t >= a && *t < window_end).map(|(_, s)| s.clone()).collect();
            // Pairs are reported when they change, so the one in effect is the last before
            // the next event; the last event also sees the re-read at the end of the call.
            let pair_end = next.unwrap_or(f64::INFINITY);
            o.selected_pair = pairs.iter().rfind(|(t, _)| *t < pair_end).map(|p| p.1.clone());
            o.pair_changed = match (&o.selected_pair, first_pair) {
                (Some(p), Some(f)) => {
                    Some(p.local.endpoint() != f.local.endpoint() || p.remote.endpoint() != f.remote.endpoint())
                }
                _ => None,
            };
            o
        })
        .collect()
}

impl EventOutcome {
    /// What happened, in a few words.
    pub fn observed(&self) -> String {
        match (&self.recovery, &self.error) {
            (_, Some(e)) => e.clone(),
            (Recovery::NeverBroke, _) => "never broke".into(),
            (Recovery::Recovered { recovery_ms }, _) => format!("recovered in {recovery_ms:.0} ms"),
            (Recovery::Broke, _) => format!(
                "broke, not recovered by +{:.0} ms{}",
                self.window_end_ms,
                if self.ice.is_empty() { String::new() } else { format!(" (ICE: {})", self.ice.join(", ")) }
            ),
            (Recovery::NotApplied, _) => "not applied".into(),
        }
    }

    /// The check for this event's expectations (recovery and pair), if it has any.
    pub fn check(&self) -> Option<Check> {
        if self.expect.is_none() && self.expect_pair.is_none() {
            return None;
        }
        let name = format!("event {}", self.index);
        let mut expected = Vec::new();
        let mut observed = self.observed();
        let mut ok = true;
        match self.expect {
            None => {}
            Some(EventExpect::Breaks) => {
                expected.push("breaks".to_string());
                ok &= self.recovery == Recovery::Broke;
            }
            Some(EventExpect::Recovers { max_recovery_ms }) => {
                let within = |ms: f64| max_recovery_ms.is_none_or(|m| ms <= m as f64);
                ok &= match &self.recovery {
                    Recovery::NeverBroke => true,
                    Recovery::Recovered { recovery_ms } => within(*recovery_ms),
                    _ => false,
                };
                let bound = max_recovery_ms.map_or(String::new(), |m| format!(" within {m} ms"));
                expected.push(format!("recovers{bound}"));
            }
        }
        if let Some(want) = self.expect_pair {
            let relay = self.selected_pair.as_ref().map(|p| p.relay_based);
            ok &= relay == Some(want == PairExpect::Relay);
            expected.push(format!("on a {} pair", want.as_str()));
            observed.push_str(&match &self.selected_pair {
                Some(p) => format!(
                    ", on a {} pair ({} -> {})",
                    if p.relay_based { "relay" } else { "direct" },
                    p.local.base_type,
                    p.remote.base_type
                ),
                None => ", no pair reported".into(),
            });
        }
        // The answerer's lines mirror the offerer's restarts.
        let restarts = self.ice_restarts.iter().filter(|l| l.starts_with("offerer ")).count();
        if restarts > 0 {
            observed.push_str(&format!(" after {restarts} ICE restart(s)"));
        }
        Some(Check { name, expected: format!("{} ({})", expected.join(" "), self.what), observed, ok })
    }
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
