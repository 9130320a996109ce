//! Timings of one run, and their percentiles over repeated runs.

use serde::Serialize;

use crate::peer::Outcome;

/// How long each part of a run took. Call phases are the offerer's, measured from the
/// moment it created the offer (gathering starts with it), so process start-up is out.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timings {
    /// Building the lab.
    pub lab_up_ms: Option<f64>,
    /// Offer created -> all local candidates gathered.
    pub gathering_ms: Option<f64>,
    /// Offer created -> the offerer's first connectivity check answered: what the network
    /// (and the other side's answer) took.
    pub first_check_ms: Option<f64>,
    /// Offer created -> ICE connected: the first check plus the stack's nomination policy
    /// (webrtc-rs's acceptance waits under the `webrtc-rs` profile).
    pub ice_ms: Option<f64>,
    /// Offer created -> DTLS up.
    pub dtls_ms: Option<f64>,
    /// Offer created -> data channel open.
    pub connect_ms: Option<f64>,
    /// STUN round trip on the selected pair.
    pub rtt_ms: Option<f64>,
    /// Data offerer -> answerer, bytes/s (as the answerer received it).
    pub forward_bytes_per_sec: Option<f64>,
    /// Data answerer -> offerer, bytes/s (as the offerer received it).
    pub reverse_bytes_per_sec: Option<f64>,
    /// Peers started -> both peers gone.
    pub call_ms: Option<f64>,
    /// Tearing the lab down.
    pub teardown_ms: Option<f64>,
    /// The whole run, wall clock.
    pub total_ms: Option<f64>,
}

impl Timings {
    /// The call phases, read from the outcome; the orchestrator fills in the rest.
    pub fn from_outcome(o: &Outcome) -> Self {
        let p = &o.offerer;
        // A browser answerer may still be starting when the offer is made: the call starts
        // when both sides are up (peers start together, so their clocks agree to ~1 ms).
        let start = |offer: f64| o.answerer.browser_ready_ms.map_or(offer, |r| r.max(offer));
        let since_offer = |t: Option<f64>| Some(t? - start(p.gathering_started_ms?));
        let rate = |d: &Option<crate::peer::DataStats>| {
            d.as_ref().filter(|d| d.bytes_received > 0).map(|d| d.recv_bytes_per_sec)
        };
        Timings {
            gathering_ms: p.gathering_complete_ms.zip(p.gathering_started_ms).map(|(c, s)| c - s),
            first_check_ms: since_offer(p.first_pair_succeeded_ms),
            ice_ms: since_offer(p.ice_connected_ms),
            dtls_ms: since_offer(p.dtls_connected_ms),
            connect_ms: since_offer(p.data_channel_open_ms),
            rtt_ms: p.rtt_ms.or(o.answerer.rtt_ms),
            forward_bytes_per_sec: rate(&o.answerer.data),
            reverse_bytes_per_sec: rate(&p.data),
            ..Default::default()
        }
    }

    /// Every field with its display name and unit, in display order.
    pub fn fields(&self) -> Vec<(&'static str, &'static str, Option<f64>)> {
        vec![
            ("lab up", "ms", self.lab_up_ms),
            ("gathering", "ms", self.gathering_ms),
            ("first check ok", "ms", self.first_check_ms),
            ("ice connected", "ms", self.ice_ms),
            ("dtls connected", "ms", self.dtls_ms),
            ("data channel open", "ms", self.connect_ms),
            ("rtt", "ms", self.rtt_ms),
            ("offerer->answerer", "B/s", self.forward_bytes_per_sec),
            ("answerer->offerer", "B/s", self.reverse_bytes_per_sec),
            ("call", "ms", self.call_ms),
            ("teardown", "ms", self.teardown_ms),
            ("total", "ms", self.total_ms),
        ]
    }
}

/// Median and 95th percentile of one timing over repeated runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Percentiles {
    /// Timing name.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Runs that had this timing.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
}

/// p50/p95 of every timing that at least one run has.
pub fn percentiles(runs: &[Timings]) -> Vec<Percentiles> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    let n_fields = first.fields().len();
    (0..n_fields)
        .filter_map(|i| {
            let (name, unit, _) = first.fields()[i];
            let mut v: Vec<f64> = runs.iter().filter_map(|t| t.fields()[i].2).collect();
            if v.is_empty() {
                return None;
            }
            v.sort_by(f64::total_cmp);
            Some(Percentiles { name, unit, count: v.len(), p50: nearest_rank(&v, 0.50), p95: nearest_rank(&v, 0.95) })
        })
        .collect()
}

/// Nearest-rank percentile of sorted, non-empty `v`.
fn nearest_rank(v: &[f64], p: f64) -> f64 {
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let runs: Vec<Timings> =
            (1..=10).map(|i| Timings { ice_ms: Some(i as f64 * 10.0), ..Default::default() }).collect();
        let p = percentiles(&runs);
        assert_eq!(p.len(), 1);
        assert_eq!((p[0].p50, p[0].p95, p[0].count), (50.0, 100.0, 10));
    }
}
