//! Mutation fuzzing of the whole file layer (TOML parser + resolver + scenario and
//! timeline interpretation) from the bundled topologies, on stable Rust.
//!
//! Property, for every input: no panic, no hang, under 100 ms, and every error carries a
//! real location (line >= 1, col >= 1, inside the file).
//!
//! The normal run is short and deterministic (fixed seed). For a longer run:
//! `ICELAB_FUZZ_SECS=600 ICELAB_FUZZ_SEED=$RANDOM cargo test --release --test topology_fuzz -- --nocapture`
//! (`ICELAB_FUZZ_ITERS` caps the number of inputs instead). A failing input is written to
//! `target/fuzz-failures/` and its seed is printed.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use icelab::spec::parse_bytes;

/// Per-input bound from the issue; a slow input is re-timed before it counts, since the
/// machine may be busy.
const PER_INPUT: Duration = Duration::from_millis(100);
/// Past this an input is a hang.
const HANG: Duration = Duration::from_secs(5);

/// SplitMix64: tiny, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Words that matter to the resolver: reserved and node names, presets, keys, values
/// at the edges of their ranges.
const WORDS: &[&str] = &[
    "internet",
    "\"internet\"",
    "home1",
    "home2",
    "alice",
    "bob",
    "relay",
    "stun",
    "[router.internet]",
    "[host.internet]",
    "[server.internet]",
    "wan = \"internet\"",
    "on = \"internet\"",
    "\"10.0.0.0/8\"",
    "\"192.0.2.0/24\"",
    "\"0.0.0.0/0\"",
    "\"100.64.0.0/10\"",
    "\"192.168.1.1\"",
    "\"255.255.255.255\"",
    "0",
    "-1",
    "1e308",
    "18446744073709551616",
    "nan",
    "\"\"",
    "[]",
    "{}",
    "[[event]]",
    "at-ms = 0",
    "[scenario]",
    "[expect]",
    "nat = \"cgnat\"",
    "nat = \"one-to-one\"",
    "nat = { preset = \"symmetric\", timeout = 0 }",
    "impair = \"lte\"",
    "firewall = \"udp-blocked\"",
    "services = [\"stun\", \"turn\"]",
    "\u{00e9}",
    "\u{1F600}",
    "\n",
    "\"",
    "=",
    ".",
];

/// One mutation of `src`, chosen by `rng`; the result may be any bytes.
fn mutate(rng: &mut Rng, src: &[u8], donors: &[Vec<u8>]) -> Vec<u8> {
    let mut out = src.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let at = rng.below(out.len() + 1);
        match rng.below(10) {
            0 => {
                // Flip a byte (can break UTF-8 on purpose).
                if at < out.len() {
                    out[at] ^= 1 << rng.below(8);
                }
            }
            1 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 | 3 => {
                let w = rng.pick(WORDS).as_bytes();
                out.splice(at..at, w.iter().copied());
            }
            4 => {
                // Replace a quoted value with a word: renames `wan`/`on` targets.
                let quotes: Vec<usize> = out.iter().enumerate().filter(|(_, b)| **b == b'"').map(|(i, _)| i).collect();
                if quotes.len() >= 2 {
                    let i = rng.below(quotes.len() - 1);
                    let (a, b) = (quotes[i], quotes[i + 1]);
                    let w = rng.pick(WORDS).trim_matches('"').as_bytes().to_vec();
                    out.splice(a + 1..b, w);
                }
            }
            5 => {
                // Rename a table header's node to another name seen in the file.
                let text = String::from_utf8_lossy(&out).into_owned();
                let names = ["internet", "home1", "alice", "relay", "bob"];
                let to = *rng.pick(&names);
                let from = *rng.pick(&names);
                out = text.replacen(&format!(".{from}]"), &format!(".{to}]"), 1).into_bytes();
            }
            6 => {
                // Duplicate a line.
                let lines: Vec<&[u8]> = out.split(|b| *b == b'\n').collect();
                let l = rng.below(lines.len());
                let mut v: Vec<Vec<u8>> = lines.iter().map(|x| x.to_vec()).collect();
                v.insert(rng.below(v.len() + 1), lines[l].to_vec());
                out = v.join(&b'\n');
            }
            7 => {
                // Splice in a line from another bundled file.
                let d = rng.pick(donors);
                let lines: Vec<&[u8]> = d.split(|b| *b == b'\n').collect();
                let mut l = rng.pick(&lines).to_vec();
                l.push(b'\n');
                out.splice(at..at, l);
            }
            8 => {
                let b = (rng.next() & 0xff) as u8;
                out.insert(at, b);
            }
            _ => {
                // Replace a digit run with an extreme number.
                let nums = ["0", "65535", "4294967296", "99999999999999999999", "-5", "3.5"];
                if let Some(p) = out[at.min(out.len())..].iter().position(|b| b.is_ascii_digit()) {
                    let s = at + p;
                    let e = s + out[s..].iter().take_while(|b| b.is_ascii_digit()).count();
                    out.splice(s..e, rng.pick(&nums).bytes());
                }
            }
        }
    }
    out
}

/// Checks the property on one input; `Err` describes the violation.
fn check(input: &[u8]) -> Result<(Duration, bool), String> {
    let (tx, rx) = mpsc::channel();
    let owned = input.to_vec();
    let t0 = Instant::now();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| parse_bytes("f.toml", &owned));
        let _ = tx.send(r);
    });
    let result = match rx.recv_timeout(HANG) {
        Ok(r) => r,
        Err(_) => return Err(format!("hang: no result after {HANG:?}")),
    };
    let took = t0.elapsed();
    let Ok(result) = result else { return Err("panic".into()) };
    let lines = input.split(|b| *b == b'\n').count();
    let rejected = result.is_err();
    if let Err(e) = result {
        if e.diagnostics.is_empty() {
            return Err("error without diagnostics".into());
        }
        for d in &e.diagnostics {
            if d.line < 1 || d.col < 1 || d.line > lines || d.file != "f.toml" {
                return Err(format!("bad location {}:{}:{} for `{}`", d.file, d.line, d.col, d.message));
            }
        }
    }
    Ok((took, rejected))
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn mutated_topologies_hold_the_property() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/topologies");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 10, "bundled topologies not found in {dir}");
    // The reproduction is a seed too, so its neighbourhood is explored.
    seeds.push(b"[router.internet]\nwan = \"internet\"\n[router.home1]\nwan = \"internet\"\n".to_vec());

    let seed = env_u64("ICELAB_FUZZ_SEED").unwrap_or(0x1CE1AB);
    let budget = Duration::from_secs(env_u64("ICELAB_FUZZ_SECS").unwrap_or(20));
    let max_iters = env_u64("ICELAB_FUZZ_ITERS").unwrap_or(u64::MAX);
    let mut rng = Rng(seed);
    let start = Instant::now();
    let (mut runs, mut rejected, mut slowest) = (0u64, 0u64, Duration::ZERO);
    while runs < max_iters && start.elapsed() < budget {
        let base = rng.pick(&seeds).clone();
        let input = mutate(&mut rng, &base, &seeds);
        let mut verdict = check(&input);
        if let Ok((t, r)) = verdict
            && t > PER_INPUT
        {
            // Re-time: a busy machine can stall one run; a slow input is slow every time.
            let again = (0..3).filter_map(|_| check(&input).ok().map(|v| v.0)).min().unwrap_or(t);
            verdict = if again > PER_INPUT { Err(format!("took {again:?} (> {PER_INPUT:?})")) } else { Ok((again, r)) };
        }
        match verdict {
            Ok((t, r)) => {
                slowest = slowest.max(t);
                rejected += u64::from(r);
            }
            Err(why) => {
                let out = concat!(env!("CARGO_MANIFEST_DIR"), "/target/fuzz-failures");
                let _ = std::fs::create_dir_all(out);
                let path = format!("{out}/seed-{seed:x}-input-{runs}.toml");
                let _ = std::fs::write(&path, &input);
                panic!("input {runs} (seed {seed:#x}) broke the property: {why}; saved to {path}");
            }
        }
        runs += 1;
    }
    eprintln!(
        "topology fuzz: {runs} inputs in {:.1} s (seed {seed:#x}), {rejected} rejected, slowest {slowest:?}",
        start.elapsed().as_secs_f64()
    );
    assert!(runs >= 100, "only {runs} inputs ran in {budget:?}");
}
