//! A small seeded PRNG (xoshiro256++ seeded by splitmix64).
//!
//! Written out here rather than taken from a crate so that a recorded seed replays the
//! same loss pattern forever: the sequence cannot change under a dependency upgrade.

/// Deterministic random source for one link direction.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

fn splitmix(x: &mut u64) -> u64 {
    *x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for `seed`; `stream` separates link directions that share a seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut x = seed ^ splitmix(&mut stream.wrapping_mul(0xD605_BBB5_8C8A_BE8B));
        Self { s: [splitmix(&mut x), splitmix(&mut x), splitmix(&mut x), splitmix(&mut x)] }
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let r = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `percent`/100. Draws even for 0 % or 100 % so that the
    /// sequence of draws does not depend on the values (a mid-run change keeps replay).
    pub fn chance(&mut self, percent: f64) -> bool {
        self.unit() * 100.0 < percent
    }

    /// Standard normal (Box–Muller, one value per call).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Pareto with α = 3, shifted and scaled to mean 0 and standard deviation 1.
    pub fn pareto(&mut self) -> f64 {
        const ALPHA: f64 = 3.0;
        let mean = ALPHA / (ALPHA - 1.0);
        let sd = (ALPHA / ((ALPHA - 1.0).powi(2) * (ALPHA - 2.0))).sqrt();
        let x = (1.0 - self.unit()).powf(-1.0 / ALPHA);
        (x - mean) / sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_distinct() {
        let a: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 0);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 0);
                move |_| r.next_u64()
            })
            .collect();
        let c: Vec<u64> = (0..4)
            .map({
                let mut r = Rng::new(7, 1);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn moments() {
        let mut r = Rng::new(1, 0);
        let n = 200_000;
        for f in [Rng::normal as fn(&mut Rng) -> f64, Rng::pareto] {
            let v: Vec<f64> = (0..n).map(|_| f(&mut r)).collect();
            let m = v.iter().sum::<f64>() / n as f64;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64).sqrt();
            assert!(m.abs() < 0.02, "mean {m}");
            // Pareto α=3 has infinite fourth moment, so its sample sd converges slowly.
            assert!((sd - 1.0).abs() < 0.1, "sd {sd}");
        }
    }
}
