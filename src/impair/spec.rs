//! The impairment model: what one direction of a link does to the frames crossing it.
//!
//! The semantics are netem's (delay, jitter, loss, duplication, reordering) followed by
//! a token-bucket bottleneck (tbf) and an MTU black hole, so that the kernel engine
//! ([`super::netem`]) and the userspace engine ([`super::engine`]) can promise the
//! same behaviour. Percentages are 0–100, as `tc` writes them.
//!
//! ```
//! let l: icelab::impair::LinkImpairment = toml::from_str(r#"
//! up = { delay-ms = 20, loss = { model = "random", percent = 1 } }
//! down = { delay-ms = 20, rate-kbit = 20000 }
//! "#).unwrap();
//! assert_eq!(l.up.delay_ms, 20.0);
//! assert_eq!(l.down.rate_kbit, Some(20000));
//! ```

use serde::{Deserialize, Serialize};

/// Ethernet header bytes counted by rate limits and added to the MTU when matching frames.
pub const ETH_HEADER: u32 = 14;

/// How the jitter is distributed around the mean delay.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JitterDistribution {
    /// Uniform in `delay ± jitter` (netem without a `distribution`).
    #[default]
    Uniform,
    /// Normal with standard deviation `jitter` (netem `distribution normal`).
    Normal,
    /// Pareto (α = 3), shifted to mean 0 and scaled to standard deviation `jitter`
    /// (netem `distribution pareto`): mostly small, with a long tail of late frames.
    Pareto,
}

/// Which frames are dropped at random.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", rename_all_fields = "kebab-case", deny_unknown_fields)]
pub enum Loss {
    /// No random loss.
    #[default]
    None,
    /// Each frame is lost independently with probability `percent`.
    Random {
        /// Loss probability, percent.
        percent: f64,
    },
    /// Two-state Markov chain (netem `loss gemodel p r 1-h 1-k`): bursts of loss while
    /// in the bad state. Long-run loss is `(p·bad + r·good) / (p + r)`; in the bad state
    /// the chain stays on average `100/r` frames.
    GilbertElliott {
        /// Probability (percent) of moving good → bad, per frame.
        p: f64,
        /// Probability (percent) of moving bad → good, per frame.
        r: f64,
        /// Loss probability (percent) in the bad state (netem's `1-h`).
        #[serde(default = "hundred")]
        bad_loss: f64,
        /// Loss probability (percent) in the good state (netem's `1-k`).
        #[serde(default)]
        good_loss: f64,
    },
}

fn hundred() -> f64 {
    100.0
}

impl Loss {
    /// Expected long-run loss, percent.
    pub fn mean_percent(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Random { percent } => percent,
            Loss::GilbertElliott { p, r, bad_loss, good_loss } => {
                if p + r == 0.0 {
                    good_loss
                } else {
                    (p * bad_loss + r * good_loss) / (p + r)
                }
            }
        }
    }
}

/// What one direction of a link does to frames. The default is a perfect link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Impairment {
    /// Mean one-way delay added, milliseconds.
    pub delay_ms: f64,
    /// Jitter, milliseconds: half-width for `uniform`, standard deviation otherwise.
    /// A frame's delay never goes below zero. Frames may overtake each other, as in netem.
    pub jitter_ms: f64,
    /// Shape of the jitter.
    pub jitter_distribution: JitterDistribution,
    /// Random loss.
    pub loss: Loss,
    /// netem `reorder`: percent of eligible frames sent at once instead of delayed,
    /// so they overtake frames still in the delay line. Needs `delay-ms > 0`.
    pub reorder_percent: f64,
    /// netem `gap`: only every `gap`-th frame is eligible for reordering (default 1).
    pub reorder_gap: Option<u32>,
    /// Percent of frames sent twice; the copy is delayed and loss-checked on its own.
    pub duplicate_percent: f64,
    /// Bottleneck rate in kbit/s (1000 bit/s), counting Ethernet frame bytes
    /// (header included, no FCS/preamble), like tbf on a veth.
    pub rate_kbit: Option<u64>,
    /// Bottleneck queue length in frames (with `rate-kbit`); frames beyond are tail-dropped.
    pub queue_packets: Option<u32>,
    /// Bottleneck queue length in bytes (with `rate-kbit`); exclusive with `queue-packets`.
    pub queue_bytes: Option<u64>,
    /// Largest IP packet (bytes) that crosses; larger frames vanish silently (a PMTU black hole).
    pub mtu: Option<u32>,
}

impl Default for Impairment {
    fn default() -> Self {
        Self {
            delay_ms: 0.0,
            jitter_ms: 0.0,
            jitter_distribution: JitterDistribution::Uniform,
            loss: Loss::None,
            reorder_percent: 0.0,
            reorder_gap: None,
            duplicate_percent: 0.0,
            rate_kbit: None,
            queue_packets: None,
            queue_bytes: None,
            mtu: None,
        }
    }
}

/// The resolved bottleneck queue limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueLimit {
    /// At most this many frames waiting.
    Packets(u32),
    /// At most this many bytes waiting.
    Bytes(u64),
}

/// Why an [`Impairment`] does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImpairError {
    /// A percentage outside 0–100 or not a number.
    #[error("{0} must be a percentage between 0 and 100, got {1}")]
    Percent(&'static str, f64),
    /// A negative or non-finite time.
    #[error("{0} must be a finite number of milliseconds >= 0, got {1}")]
    Time(&'static str, f64),
    /// Reordering without delay has nothing to overtake.
    #[error("reorder-percent needs delay-ms > 0 (reordered frames overtake delayed ones)")]
    ReorderWithoutDelay,
    /// A zero gap.
    #[error("reorder-gap must be at least 1")]
    ZeroGap,
    /// A zero rate.
    #[error("rate-kbit must be at least 1")]
    ZeroRate,
    /// Queue limits only apply to a rate-limited link.
    #[error("queue-packets/queue-bytes need rate-kbit")]
    QueueWithoutRate,
    /// Both queue limits.
    #[error("give queue-packets or queue-bytes, not both")]
    TwoQueues,
    /// A zero-length queue.
    #[error("the queue limit must be at least 1")]
    ZeroQueue,
    /// An MTU below the IPv4 minimum.
    #[error("mtu must be at least 68, got {0}")]
    SmallMtu(u32),
}

impl Impairment {
    /// Checks every field; both engines refuse an invalid impairment.
    pub fn validate(&self) -> Result<(), ImpairError> {
        let time = |n, v: f64| {
            if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(ImpairError::Time(n, v)) }
        };
        let pct = |n, v: f64| {
            if (0.0..=100.0).contains(&v) { Ok(()) } else { Err(ImpairError::Percent(n, v)) }
        };
        time("delay-ms", self.delay_ms)?;
        time("jitter-ms", self.jitter_ms)?;
        pct("reorder-percent", self.reorder_percent)?;
        pct("duplicate-percent", self.duplicate_percent)?;
        match self.loss {
            Loss::None => {}
            Loss::Random { percent } => pct("loss percent", percent)?,
            Loss::GilbertElliott { p, r, bad_loss, good_loss } => {
                pct("loss p", p)?;
                pct("loss r", r)?;
                pct("loss bad-loss", bad_loss)?;
                pct("loss good-loss", good_loss)?;
            }
        }
        if self.reorder_percent > 0.0 && self.delay_ms == 0.0 {
            return Err(ImpairError::ReorderWithoutDelay);
        }
        if self.reorder_gap == Some(0) {
            return Err(ImpairError::ZeroGap);
        }
        if self.rate_kbit == Some(0) {
            return Err(ImpairError::ZeroRate);
        }
        if self.queue_packets.is_some() || self.queue_bytes.is_some() {
            if self.rate_kbit.is_none() {
                return Err(ImpairError::QueueWithoutRate);
            }
            if self.queue_packets.is_some() && self.queue_bytes.is_some() {
                return Err(ImpairError::TwoQueues);
            }
            if self.queue_packets == Some(0) || self.queue_bytes == Some(0) {
                return Err(ImpairError::ZeroQueue);
            }
        }
        if let Some(m) = self.mtu
            && m < 68
        {
            return Err(ImpairError::SmallMtu(m));
        }
        Ok(())
    }

    /// True when the link passes every frame unchanged and at once.
    pub fn is_perfect(&self) -> bool {
        *self == Self::default()
    }

    /// The reorder gap in effect (netem sets 1 when only a percentage is given).
    pub fn gap(&self) -> u32 {
        self.reorder_gap.unwrap_or(1)
    }

    /// Token-bucket depth in bytes: one millisecond at the rate, but at least two
    /// full-size frames so a 1500-byte packet always fits (tbf requires burst >= MTU).
    pub fn burst_bytes(&self) -> Option<u64> {
        self.rate_kbit.map(|k| (k / 8).max(2 * 1514))
    }

    /// The queue limit in effect: the configured one, else 100 ms at the rate (at least
    /// four full frames) — deep enough for TCP, shallow enough not to hide the rate.
    pub fn queue_limit(&self) -> Option<QueueLimit> {
        let rate = self.rate_kbit?;
        Some(match (self.queue_packets, self.queue_bytes) {
            (Some(p), _) => QueueLimit::Packets(p),
            (None, Some(b)) => QueueLimit::Bytes(b),
            (None, None) => QueueLimit::Bytes((rate * 100 / 8).max(4 * 1514)),
        })
    }
}

/// One direction of a link, from the point of view of the node the link belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// From the node towards its parent (uplink).
    Up,
    /// From the parent towards the node (downlink).
    Down,
}

/// Both directions of a link.
///
/// In a file: `{ up = {...}, down = {...} }`, or `{ both = {...} }` for a symmetric
/// link, or `{ preset = "lte" }`; `up`/`down` given next to `both`/`preset` replace
/// that direction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinkImpairmentFile")]
pub struct LinkImpairment {
    /// Node → parent.
    pub up: Impairment,
    /// Parent → node.
    pub down: Impairment,
}

/// The file form of [`LinkImpairment`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct LinkImpairmentFile {
    preset: Option<super::presets::Preset>,
    both: Option<Impairment>,
    up: Option<Impairment>,
    down: Option<Impairment>,
}

/// Why a link impairment table does not make sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkImpairmentError {
    /// `preset` and `both` both set.
    #[error("give `preset` or `both`, not both")]
    PresetAndBoth,
    /// A direction is invalid.
    #[error("{0:?}: {1}")]
    Invalid(Direction, ImpairError),
}

impl TryFrom<LinkImpairmentFile> for LinkImpairment {
    type Error = LinkImpairmentError;
    fn try_from(f: LinkImpairmentFile) -> Result<Self, Self::Error> {
        let base = match (f.preset, f.both) {
            (Some(_), Some(_)) => return Err(LinkImpairmentError::PresetAndBoth),
            (Some(p), None) => p.link(),
            (None, Some(b)) => LinkImpairment::symmetric(b),
            (None, None) => LinkImpairment::default(),
        };
        let l = LinkImpairment { up: f.up.unwrap_or(base.up), down: f.down.unwrap_or(base.down) };
        l.validate()?;
        Ok(l)
    }
}

impl LinkImpairment {
    /// The same impairment both ways.
    pub fn symmetric(i: Impairment) -> Self {
        Self { up: i.clone(), down: i }
    }

    /// One direction.
    pub fn get(&self, d: Direction) -> &Impairment {
        match d {
            Direction::Up => &self.up,
            Direction::Down => &self.down,
        }
    }

    /// Validates both directions.
    pub fn validate(&self) -> Result<(), LinkImpairmentError> {
        for d in [Direction::Up, Direction::Down] {
            self.get(d).validate().map_err(|e| LinkImpairmentError::Invalid(d, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_fields() {
        let i: Impairment = toml::from_str(
            r#"
            delay-ms = 20.5
            jitter-ms = 3
            jitter-distribution = "pareto"
            loss = { model = "gilbert-elliott", p = 1, r = 25, bad-loss = 50 }
            reorder-percent = 10
            reorder-gap = 5
            duplicate-percent = 0.5
            rate-kbit = 2000
            queue-packets = 30
            mtu = 1400
            "#,
        )
        .unwrap();
        assert_eq!(i.jitter_distribution, JitterDistribution::Pareto);
        assert_eq!(i.loss, Loss::GilbertElliott { p: 1.0, r: 25.0, bad_loss: 50.0, good_loss: 0.0 });
        assert_eq!(i.queue_limit(), Some(QueueLimit::Packets(30)));
        i.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(toml::from_str::<Impairment>("delay = 3").is_err());
        assert!(toml::from_str::<Impairment>(r#"loss = { model = "random", pct = 3 }"#).is_err());
        assert!(toml::from_str::<LinkImpairment>("sideways = {}").is_err());
    }

    #[test]
    fn link_forms() {
        let l: LinkImpairment = toml::from_str("both = { delay-ms = 5 }\nup = { delay-ms = 7 }").unwrap();
        assert_eq!((l.up.delay_ms, l.down.delay_ms), (7.0, 5.0));
        let l: LinkImpairment = toml::from_str(r#"preset = "satellite""#).unwrap();
        assert!(l.down.delay_ms > 250.0);
        let e = toml::from_str::<LinkImpairment>(r#"both = { reorder-percent = 5 }"#);
        assert!(e.unwrap_err().to_string().contains("delay-ms > 0"));
    }

    #[test]
    fn validation() {
        let bad = |i: Impairment| i.validate().unwrap_err();
        let d = Impairment::default;
        assert!(matches!(bad(Impairment { delay_ms: -1.0, ..d() }), ImpairError::Time(..)));
        assert!(matches!(bad(Impairment { duplicate_percent: 101.0, ..d() }), ImpairError::Percent(..)));
        assert_eq!(bad(Impairment { queue_packets: Some(3), ..d() }), ImpairError::QueueWithoutRate);
        assert_eq!(bad(Impairment { mtu: Some(10), ..d() }), ImpairError::SmallMtu(10));
        assert!(d().is_perfect());
    }

    #[test]
    fn ge_mean() {
        let l = Loss::GilbertElliott { p: 5.0, r: 30.0, bad_loss: 100.0, good_loss: 0.0 };
        assert!((l.mean_percent() - 100.0 * 5.0 / 35.0).abs() < 1e-9);
    }
}
