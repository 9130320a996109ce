//! The schedule: when each call arrives and who calls whom. Open loop: arrival times
//! are fixed in advance from the rate, whatever the lab does, so a lab slower than
//! the rate shows as calls waiting for a slot (queueing), not as a lower offered rate.

use serde::Serialize;

use super::population::Population;
use super::spec::{Arrivals, LoadSpec};
use crate::matrix::{Config, expect};
use crate::scenario::{CallPair, PathClass};

/// A small seeded generator (SplitMix64): the same seed gives the same load on any
/// machine and with any version of a random-number crate.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }
}

/// One call of the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arrival {
    /// 0-based, in arrival order.
    pub index: usize,
    /// When it arrives, ms after the first arrival.
    pub at_ms: f64,
    /// Who calls whom.
    pub pair: CallPair,
    /// Population loads: the offerer's and the answerer's kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<(Config, Config)>,
    /// Population loads: the path the matrix expects for the pair of kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_path: Option<PathClass>,
}

/// Arrival times: `calls` of them at `rate` per second, uniform or poisson.
pub fn arrival_times(spec: &LoadSpec, rng: &mut Rng) -> Vec<f64> {
    let gap = 1000.0 / spec.rate;
    let mut t = 0.0;
    (0..spec.calls)
        .map(|i| match spec.arrivals {
            Arrivals::Uniform => i as f64 * gap,
            Arrivals::Poisson => {
                let now = t;
                // Exponential gap: -ln(1 - U) / rate.
                t += -(1.0 - rng.unit()).ln() * gap;
                now
            }
        })
        .collect()
}

/// The schedule of a load in a lab file's lab: its `[scenario]` pairs in turn.
pub fn from_pairs(spec: &LoadSpec, pairs: &[CallPair]) -> Vec<Arrival> {
    let mut rng = Rng::new(spec.seed);
    arrival_times(spec, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(index, at_ms)| Arrival {
            index,
            at_ms,
            pair: pairs[index % pairs.len().max(1)].clone(),
            kinds: None,
            expected_path: None,
        })
        .collect()
}

/// The schedule of a population load: both ends' kinds drawn by weight, then an
/// offering host of the first and an answering host of the second, seeded.
pub fn from_population(spec: &LoadSpec, pop: &Population) -> Vec<Arrival> {
    let mut rng = Rng::new(spec.seed);
    let times = arrival_times(spec, &mut rng);
    times
        .into_iter()
        .enumerate()
        .map(|(index, at_ms)| {
            let (a, b) = (pop.draw(&mut rng), pop.draw(&mut rng));
            let (ha, hb) = (pop.hosts(a, 'a'), pop.hosts(b, 'b'));
            let offerer = ha[rng.below(ha.len())].clone();
            let answerer = hb[rng.below(hb.len())].clone();
            Arrival {
                index,
                at_ms,
                pair: CallPair { offerer, answerer },
                kinds: Some((a, b)),
                expected_path: Some(expect(a, b).path),
            }
        })
        .collect()
}
