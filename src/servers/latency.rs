//! Answer latencies as sparse log-bucket histograms (pure).
//!
//! A [`Histogram`] counts values in microseconds: bucket `k` holds `[1.1^k, 1.1^(k+1))`,
//! so every figure read back is within 5 % of the truth whatever its scale, and a
//! server's whole run fits in a few dozen buckets per method. Histograms add and
//! subtract bucket by bucket, as the counters of [`super::stats::ServerStats`] do, so
//! the figures of any span between two cumulative samples come out exact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Growth factor between buckets.
const BASE: f64 = 1.1;

/// Counts by bucket index (buckets with no value are absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(pub BTreeMap<u16, u64>);

/// The bucket of `micros` (below 1 µs: bucket 0).
pub fn bucket(micros: u64) -> u16 {
    if micros <= 1 {
        return 0;
    }
    let k = ((micros as f64).ln() / BASE.ln()).floor();
    // Floating point may land a power of 1.1 one bucket low or high: settle on the edges.
    let mut k = k.clamp(0.0, u16::MAX as f64) as u16;
    while k > 0 && lower_edge(k) > micros as f64 {
        k -= 1;
    }
    while k < u16::MAX && lower_edge(k + 1) <= micros as f64 {
        k += 1;
    }
    k
}

fn lower_edge(k: u16) -> f64 {
    BASE.powi(k as i32)
}

/// The value a bucket stands for: its geometric midpoint, µs.
pub fn midpoint(k: u16) -> f64 {
    BASE.powf(k as f64 + 0.5)
}

impl Histogram {
    /// Counts one value.
    pub fn record(&mut self, micros: u64) {
        *self.0.entry(bucket(micros)).or_default() += 1;
    }

    /// Values counted.
    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// Adds `o`'s counts.
    pub fn add(&mut self, o: &Histogram) {
        for (k, n) in &o.0 {
            *self.0.entry(*k).or_default() += n;
        }
    }

    /// What was counted after `earlier` (the same counter's older sample).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        Histogram(
            self.0
                .iter()
                .map(|(k, n)| (*k, n.saturating_sub(earlier.0.get(k).copied().unwrap_or(0))))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }

    /// The `p` quantile (0..=1, nearest rank) as its bucket's midpoint, µs; `None` when empty.
    pub fn quantile(&self, p: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        self.0.iter().find_map(|(k, n)| {
            seen += n;
            (seen >= rank).then(|| midpoint(*k))
        })
    }
}

/// Histograms by request method (`Allocate`, `Binding`, ...).
pub type ByMethod = BTreeMap<String, Histogram>;

/// Adds `b` into `a`, method by method.
pub fn add_methods(a: &mut ByMethod, b: &ByMethod) {
    for (m, h) in b {
        a.entry(m.clone()).or_default().add(h);
    }
}

/// `a` since `b`, method by method; methods with nothing new are left out.
pub fn methods_since(a: &ByMethod, b: &ByMethod) -> ByMethod {
    a.iter()
        .map(|(m, h)| (m.clone(), b.get(m).map_or_else(|| h.clone(), |e| h.since(e))))
        .filter(|(_, h)| h.count() > 0)
        .collect()
}

/// One method's answer latencies, for a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MethodLatency {
    /// The request method.
    pub method: String,
    /// Requests answered and timed.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// Each method's count and quantiles, in method order; empty histograms left out.
pub fn summarize(by: &ByMethod) -> Vec<MethodLatency> {
    by.iter()
        .filter_map(|(m, h)| {
            let ms = |p| h.quantile(p).map(|us| us / 1000.0);
            Some(MethodLatency {
                method: m.clone(),
                count: h.count(),
                p50_ms: ms(0.5)?,
                p95_ms: ms(0.95)?,
                p99_ms: ms(0.99)?,
            })
        })
        .collect()
}

/// What sets the figures, for labels: it is not what a client waits.
pub const LABEL: &str = "the server's own time from reading a request to sending its answer, network excluded";

/// `Allocate x60 0.210/0.450/0.800, Binding x4 ...`: count and p50/p95/p99 ms of each
/// method (empty: `no answer timed`).
pub fn compact(methods: &[MethodLatency]) -> String {
    if methods.is_empty() {
        return "no answer timed".into();
    }
    let parts: Vec<String> = methods
        .iter()
        .map(|m| format!("{} x{} {:.3}/{:.3}/{:.3}", m.method, m.count, m.p50_ms, m.p95_ms, m.p99_ms))
        .collect();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_1_1() {
        assert_eq!((bucket(0), bucket(1)), (0, 0));
        // 1.1^7 = 1.9487, 1.1^8 = 2.1436: 2 µs is bucket 7.
        assert_eq!(bucket(2), 7);
        for us in [3u64, 10, 999, 1000, 123_456, 60_000_000] {
            let k = bucket(us);
            assert!(lower_edge(k) <= us as f64 && (us as f64) < lower_edge(k + 1), "{us} in bucket {k}");
            let mid = midpoint(k);
            assert!((mid / us as f64 - 1.0).abs() < 0.1, "{us}: midpoint {mid}");
        }
    }

    #[test]
    fn quantiles_read_bucket_midpoints() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..90 {
            h.record(100);
        }
        for _ in 0..9 {
            h.record(1_000);
        }
        h.record(50_000);
        assert_eq!(h.count(), 100);
        let within = |q: f64, v: f64| (h.quantile(q).unwrap() / v - 1.0).abs() < 0.05;
        assert!(within(0.5, 100.0) && within(0.90, 100.0), "{h:?}");
        assert!(within(0.95, 1_000.0) && within(0.99, 1_000.0));
        assert!(within(1.0, 50_000.0));
        assert_eq!(h.quantile(0.5), Some(midpoint(bucket(100))));
    }

    #[test]
    fn histograms_add_and_difference_bucket_by_bucket() {
        let mut early = Histogram::default();
        early.record(100);
        early.record(200);
        let mut late = early.clone();
        late.record(200);
        late.record(5_000);
        let d = late.since(&early);
        assert_eq!(d.0, BTreeMap::from([(bucket(200), 1), (bucket(5_000), 1)]), "the bucket of 100 is gone");
        let mut sum = early.clone();
        sum.add(&d);
        assert_eq!(sum, late);
        // By method: a method with nothing new is left out; a new one kept whole.
        let a = ByMethod::from([("Allocate".to_string(), late.clone()), ("Binding".to_string(), early.clone())]);
        let b = ByMethod::from([("Binding".to_string(), early.clone()), ("Allocate".to_string(), early)]);
        assert_eq!(methods_since(&a, &b), ByMethod::from([("Allocate".to_string(), d)]));
        assert_eq!(methods_since(&a, &ByMethod::new()), a);
        let s = summarize(&a);
        assert_eq!(
            s.iter().map(|m| (m.method.as_str(), m.count)).collect::<Vec<_>>(),
            [("Allocate", 4), ("Binding", 2)]
        );
        assert!(s[0].p50_ms > 0.0 && s[0].p50_ms <= s[0].p95_ms && s[0].p95_ms <= s[0].p99_ms);
    }
}
