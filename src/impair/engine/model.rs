//! The per-direction impairment state machine, free of I/O and clocks.
//!
//! Times are nanoseconds on the engine's monotonic clock. A frame goes through two
//! stages, in the order netem → tbf uses:
//!
//! 1. [`DirectionModel::arrive`]: MTU check, duplication, loss, then the delay line
//!    (delay + jitter, or "send now" when picked for reordering). This follows
//!    `netem_enqueue`: duplicate decision first, one loss check, and the copy is
//!    loss-checked again on its own and never duplicated again.
//! 2. [`DirectionModel::bottleneck`], at the moment the frame leaves the delay line:
//!    a FIFO token-bucket shaper with a tail-drop queue (tbf's semantics).
//!
//! The RNG is drawn in a fixed order per frame, so a seed replays exactly when the
//! same frames arrive in the same order.

use std::collections::VecDeque;

use super::rng::Rng;
use crate::impair::spec::{ETH_HEADER, Impairment, JitterDistribution, Loss, QueueLimit};

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// Larger than the MTU.
    Mtu,
    /// Random (or Gilbert-Elliott) loss.
    Loss,
    /// The bottleneck queue was full.
    Queue,
}

/// What stage 1 decided: the times at which each copy leaves the delay line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing leaves.
    Dropped(Drop),
    /// One copy, or two with the duplicate first (the order netem enqueues them).
    Pass {
        /// Exit time of the first copy.
        first: u64,
        /// Exit time of the second copy, if duplicated.
        second: Option<u64>,
    },
}

/// State of one link direction.
#[derive(Debug, Clone)]
pub struct DirectionModel {
    imp: Impairment,
    rng: Rng,
    ge_bad: bool,
    reorder_counter: u32,
    /// GCRA "theoretical arrival time": when the token bucket will be full again.
    tat: u64,
    /// Departure times and sizes of frames still in the bottleneck at the last entry.
    queue: VecDeque<(u64, u32)>,
    queued_bytes: u64,
}

impl DirectionModel {
    /// A fresh model (the impairment must be valid).
    pub fn new(imp: Impairment, rng: Rng) -> Self {
        Self { imp, rng, ge_bad: false, reorder_counter: 0, tat: 0, queue: VecDeque::new(), queued_bytes: 0 }
    }

    /// The impairment in force.
    pub fn impairment(&self) -> &Impairment {
        &self.imp
    }

    /// Replaces the impairment, keeping RNG, loss-chain and queue state, so a change
    /// mid-run behaves like `tc qdisc change`.
    pub fn set(&mut self, imp: Impairment) {
        self.imp = imp;
    }

    /// True when frames only need the bottleneck stage when a rate is set.
    pub fn has_rate(&self) -> bool {
        self.imp.rate_kbit.is_some()
    }

    fn lost(&mut self) -> bool {
        match self.imp.loss {
            Loss::None => false,
            Loss::Random { percent } => self.rng.chance(percent),
            Loss::GilbertElliott { p, r, bad_loss, good_loss } => {
                // Transition first, then decide in the new state (as netem's GILB_ELL).
                if self.ge_bad {
                    if self.rng.chance(r) {
                        self.ge_bad = false;
                    }
                } else if self.rng.chance(p) {
                    self.ge_bad = true;
                }
                self.rng.chance(if self.ge_bad { bad_loss } else { good_loss })
            }
        }
    }

    fn delay_line(&mut self, now: u64) -> u64 {
        let i = &self.imp;
        let gap = if i.reorder_percent > 0.0 { i.gap() } else { 0 };
        let reorder = gap != 0 && self.reorder_counter >= gap - 1 && self.rng.chance(self.imp.reorder_percent);
        if reorder {
            self.reorder_counter = 0;
            return now;
        }
        self.reorder_counter = self.reorder_counter.saturating_add(1);
        let i = &self.imp;
        let mut ms = i.delay_ms;
        if i.jitter_ms > 0.0 {
            let z = match i.jitter_distribution {
                JitterDistribution::Uniform => 2.0 * self.rng.unit() - 1.0,
                JitterDistribution::Normal => self.rng.normal(),
                JitterDistribution::Pareto => self.rng.pareto(),
            };
            ms += z * self.imp.jitter_ms;
        }
        now + (ms.max(0.0) * 1e6).round() as u64
    }

    /// Stage 1 for a frame of `len` bytes (Ethernet header included) arriving at `now`.
    pub fn arrive(&mut self, now: u64, len: usize) -> Verdict {
        if let Some(mtu) = self.imp.mtu
            && len > (mtu + ETH_HEADER) as usize
        {
            return Verdict::Dropped(Drop::Mtu);
        }
        let dup = self.imp.duplicate_percent > 0.0 && self.rng.chance(self.imp.duplicate_percent);
        let mut count = 1 + u32::from(dup);
        if self.lost() {
            count -= 1;
        }
        if count == 0 {
            return Verdict::Dropped(Drop::Loss);
        }
        // The copy re-enters the qdisc: its own loss check, its own delay.
        let copy = if count > 1 && !self.lost() { Some(self.delay_line(now)) } else { None };
        let orig = self.delay_line(now);
        match copy {
            Some(c) => Verdict::Pass { first: c, second: Some(orig) },
            None => Verdict::Pass { first: orig, second: None },
        }
    }

    /// Stage 2: a frame of `len` bytes enters the bottleneck at `t` (entries must come
    /// in time order). Returns its departure time, or `None` when the queue is full.
    /// Without a rate the frame leaves at `t`.
    pub fn bottleneck(&mut self, t: u64, len: usize) -> Option<u64> {
        let Some(rate) = self.imp.rate_kbit else {
            return Some(t);
        };
        while let Some(&(dep, l)) = self.queue.front() {
            if dep > t {
                break;
            }
            self.queue.pop_front();
            self.queued_bytes -= u64::from(l);
        }
        let full = match self.imp.queue_limit() {
            Some(QueueLimit::Packets(n)) => self.queue.len() >= n as usize,
            Some(QueueLimit::Bytes(b)) => self.queued_bytes + len as u64 > b,
            None => false,
        };
        if full {
            return None;
        }
        // Serialisation time and bucket depth, in ns: bytes·8 / (kbit/s · 1000) s.
        let tx = len as u64 * 8_000_000 / rate;
        let depth = self.imp.burst_bytes().unwrap_or(0) * 8_000_000 / rate;
        let last = self.queue.back().map_or(0, |q| q.0);
        let dep = t.max(last).max((self.tat + tx).saturating_sub(depth));
        self.tat = self.tat.max(dep) + tx;
        if dep > t {
            self.queue.push_back((dep, len as u32));
            self.queued_bytes += len as u64;
        }
        Some(dep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(i: Impairment) -> DirectionModel {
        i.validate().unwrap();
        DirectionModel::new(i, Rng::new(42, 0))
    }

    #[test]
    fn perfect_link_passes_at_once() {
        let mut m = model(Impairment::default());
        assert_eq!(m.arrive(5, 100), Verdict::Pass { first: 5, second: None });
        assert_eq!(m.bottleneck(5, 100), Some(5));
    }

    #[test]
    fn fixed_delay() {
        let mut m = model(Impairment { delay_ms: 20.0, ..Default::default() });
        assert_eq!(m.arrive(1_000, 100), Verdict::Pass { first: 20_001_000, second: None });
    }

    #[test]
    fn mtu_counts_ip_bytes() {
        let mut m = model(Impairment { mtu: Some(1000), ..Default::default() });
        assert!(matches!(m.arrive(0, 1014), Verdict::Pass { .. }));
        assert_eq!(m.arrive(0, 1015), Verdict::Dropped(Drop::Mtu));
    }

    #[test]
    fn loss_rate_and_ge_bursts() {
        let mut m = model(Impairment { loss: Loss::Random { percent: 5.0 }, ..Default::default() });
        let lost = (0..100_000).filter(|_| matches!(m.arrive(0, 100), Verdict::Dropped(_))).count();
        assert!((lost as f64 / 1000.0 - 5.0).abs() < 0.3, "{lost}");

        let ge = Loss::GilbertElliott { p: 5.0, r: 30.0, bad_loss: 100.0, good_loss: 0.0 };
        let mut m = model(Impairment { loss: ge, ..Default::default() });
        let pattern: Vec<bool> = (0..100_000).map(|_| matches!(m.arrive(0, 100), Verdict::Dropped(_))).collect();
        let lost = pattern.iter().filter(|l| **l).count();
        let bursts = pattern.windows(2).filter(|w| w[1] && !w[0]).count();
        assert!((lost as f64 / 1000.0 - ge.mean_percent()).abs() < 0.5);
        assert!((lost as f64 / bursts as f64 - 100.0 / 30.0).abs() < 0.2);
    }

    #[test]
    fn duplicate_rate() {
        let mut m = model(Impairment { duplicate_percent: 10.0, ..Default::default() });
        let dups = (0..100_000).filter(|_| matches!(m.arrive(0, 100), Verdict::Pass { second: Some(_), .. })).count();
        assert!((dups as f64 / 1000.0 - 10.0).abs() < 0.4);
    }

    #[test]
    fn reorder_sends_now() {
        let mut m = model(Impairment { delay_ms: 10.0, reorder_percent: 25.0, ..Default::default() });
        let now = (0..100_000).filter(|_| m.arrive(7, 100) == Verdict::Pass { first: 7, second: None }).count();
        assert!((now as f64 / 1000.0 - 25.0).abs() < 0.5);
    }

    #[test]
    fn shaper_rate_burst_and_queue() {
        // 8 Mbit/s: a 1000-byte frame takes 1 ms; burst is 3028 bytes (3 frames fit).
        let mut m = model(Impairment { rate_kbit: Some(8000), queue_packets: Some(5), ..Default::default() });
        let deps: Vec<Option<u64>> = (0..10).map(|_| m.bottleneck(0, 1000)).collect();
        assert_eq!(deps[0], Some(0));
        assert_eq!(deps[1], Some(0));
        assert_eq!(deps[2], Some(0));
        // The 4th frame waits for tokens: 4 ms of debt minus 3.028 ms of depth.
        assert_eq!(deps[3], Some(972_000));
        // Sustained spacing is 1 ms once the burst is spent.
        let d = |i: usize| deps[i].unwrap();
        assert_eq!(d(5) - d(4), 1_000_000);
        // Queue of 5 waiting frames: the rest are dropped.
        assert_eq!(deps.iter().filter(|d| d.is_none()).count(), 2);
    }

    #[test]
    fn jitter_never_negative() {
        let mut m = model(Impairment {
            delay_ms: 1.0,
            jitter_ms: 5.0,
            jitter_distribution: JitterDistribution::Normal,
            ..Default::default()
        });
        for _ in 0..10_000 {
            let Verdict::Pass { first, .. } = m.arrive(1_000_000_000, 100) else { panic!() };
            assert!(first >= 1_000_000_000);
        }
    }
}
