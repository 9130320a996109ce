//! Named link presets with realistic values, and their documentation table.
//!
//! "Up" is the node's uplink (node → network). Values are per direction and one-way.

use serde::{Deserialize, Serialize};

use super::spec::{Impairment, JitterDistribution, LinkImpairment, Loss};

/// A named link profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Home Wi-Fi (802.11n/ac, some contention): 2 ms ± 2 ms (normal) each way, 0.3 %
    /// random loss, 60 Mbit/s. Why: RTT to an access point is a few ms, and the
    /// variation comes from contention and MAC retries; 802.11 ARQ hides most loss, so
    /// residual IP loss is a few per mille; 60 Mbit/s is typical real goodput for a
    /// 2×2 link at mid range.
    Wifi,
    /// 4G/LTE: 25 ms ± 8 ms each way (RTT ≈ 50 ms, the median in crowd-sourced
    /// measurements), 0.5 % loss (RLC acknowledged mode retransmits most), 30 Mbit/s
    /// down / 10 Mbit/s up (uplink is power-limited) with a 300 ms-deep queue
    /// (cellular buffers are notoriously bloated).
    Lte,
    /// 3G/HSPA: 60 ms up / 50 ms down ± 20 ms (RTT 100–200 ms), 1 % loss, 3 Mbit/s
    /// down / 1 Mbit/s up — HSDPA category 6–8 real-world figures.
    #[serde(rename = "3g")]
    ThreeG,
    /// Geostationary satellite: 300 ms each way (≈ 2 × 36 000 km at light speed is
    /// 240 ms, plus ground segment and scheduling), ± 10 ms; bursty loss from rain
    /// fade (Gilbert-Elliott, ≈ 1 % long run in bursts of ≈ 5); 20 Mbit/s down /
    /// 3 Mbit/s up, as consumer GEO plans sell.
    Satellite,
    /// Congested corporate WAN over a VPN: 15 ms ± 5 ms, bursty loss (Gilbert-Elliott,
    /// ≈ 1.9 % long run in bursts of ≈ 4 frames, half lost), 0.1 % duplicates, 10 Mbit/s,
    /// MTU 1400 (IPsec/GRE overhead without working PMTU discovery).
    LossyCorporate,
}

/// Every preset, in documentation order.
pub const ALL: &[Preset] = &[Preset::Wifi, Preset::Lte, Preset::ThreeG, Preset::Satellite, Preset::LossyCorporate];

fn dir(delay: f64, jitter: f64, loss: Loss, rate: u64) -> Impairment {
    Impairment {
        delay_ms: delay,
        jitter_ms: jitter,
        jitter_distribution: JitterDistribution::Normal,
        loss,
        rate_kbit: Some(rate),
        ..Impairment::default()
    }
}

impl Preset {
    /// Its name in topology files.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Wifi => "wifi",
            Preset::Lte => "lte",
            Preset::ThreeG => "3g",
            Preset::Satellite => "satellite",
            Preset::LossyCorporate => "lossy-corporate",
        }
    }

    /// Why the values are what they are (one line).
    pub fn reasoning(self) -> &'static str {
        match self {
            Preset::Wifi => "few-ms RTT to the AP; jitter from contention/retries; ARQ hides most loss",
            Preset::Lte => "RTT ≈ 50 ms median; RLC retransmits most loss; uplink power-limited; bloated buffers",
            Preset::ThreeG => "HSPA: RTT 100–200 ms, a few Mbit/s down, 1 Mbit/s up",
            Preset::Satellite => "GEO: ≈ 240 ms light time each way + ground segment; rain-fade bursts",
            Preset::LossyCorporate => "congested WAN/VPN: bursty loss, some duplicates, 1400-byte MTU black hole",
        }
    }

    /// The impairment of both directions.
    pub fn link(self) -> LinkImpairment {
        let random = |percent| Loss::Random { percent };
        match self {
            Preset::Wifi => LinkImpairment::symmetric(dir(2.0, 2.0, random(0.3), 60_000)),
            Preset::Lte => {
                let mut up = dir(25.0, 8.0, random(0.5), 10_000);
                let mut down = dir(25.0, 8.0, random(0.5), 30_000);
                up.queue_bytes = Some(10_000 * 300 / 8);
                down.queue_bytes = Some(30_000 * 300 / 8);
                LinkImpairment { up, down }
            }
            Preset::ThreeG => {
                LinkImpairment { up: dir(60.0, 20.0, random(1.0), 1_000), down: dir(50.0, 20.0, random(1.0), 3_000) }
            }
            Preset::Satellite => {
                // Mean loss = 0.2·100 / (0.2 + 20) ≈ 1 %; bursts last 100/20 = 5 frames.
                let ge = Loss::GilbertElliott { p: 0.2, r: 20.0, bad_loss: 100.0, good_loss: 0.0 };
                LinkImpairment { up: dir(300.0, 10.0, ge, 3_000), down: dir(300.0, 10.0, ge, 20_000) }
            }
            Preset::LossyCorporate => {
                // Mean loss = 1·50 / (1 + 25) ≈ 1.9 %; the bad state lasts 4 frames.
                let ge = Loss::GilbertElliott { p: 1.0, r: 25.0, bad_loss: 50.0, good_loss: 0.0 };
                let mut i = dir(15.0, 5.0, ge, 10_000);
                i.duplicate_percent = 0.1;
                i.mtu = Some(1400);
                LinkImpairment::symmetric(i)
            }
        }
    }
}

fn describe_loss(l: &Loss) -> String {
    match *l {
        Loss::None => "0".into(),
        Loss::Random { percent } => format!("{percent} %"),
        Loss::GilbertElliott { p, r, bad_loss, good_loss } => {
            format!("GE p={p} r={r} bad={bad_loss} good={good_loss} (≈{:.1} %)", l.mean_percent())
        }
    }
}

/// The preset table as markdown (one row per preset and direction).
pub fn markdown_table() -> String {
    let mut s = String::from(
        "| preset | dir | delay (ms) | jitter (ms) | loss | rate (kbit/s) | queue (bytes) | other | why |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for p in ALL {
        let l = p.link();
        for (d, i) in [("up", &l.up), ("down", &l.down)] {
            let mut other = Vec::new();
            if i.duplicate_percent > 0.0 {
                other.push(format!("dup {} %", i.duplicate_percent));
            }
            if let Some(m) = i.mtu {
                other.push(format!("mtu {m}"));
            }
            let queue = match i.queue_limit() {
                Some(super::spec::QueueLimit::Bytes(b)) => b.to_string(),
                Some(super::spec::QueueLimit::Packets(n)) => format!("{n} pkts"),
                None => "-".into(),
            };
            s += &format!(
                "| {} | {d} | {} | {} ({:?}) | {} | {} | {queue} | {} | {} |\n",
                p.name(),
                i.delay_ms,
                i.jitter_ms,
                i.jitter_distribution,
                describe_loss(&i.loss),
                i.rate_kbit.map_or("-".into(), |r| r.to_string()),
                if other.is_empty() { "-".into() } else { other.join(", ") },
                p.reasoning(),
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_named() {
        for p in ALL {
            p.link().validate().unwrap();
            let parsed: Preset = serde_json::from_str(&format!("\"{}\"", p.name())).unwrap();
            assert_eq!(parsed, *p);
        }
    }

    #[test]
    fn table_has_a_row_per_direction() {
        let t = markdown_table();
        assert_eq!(t.lines().count(), 2 + 2 * ALL.len());
        assert!(t.contains("| 3g | up | 60 |"));
    }
}
