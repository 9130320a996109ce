//! TURN relay throughput, built-in vs coturn (needs root and coturn):
//! `cargo bench --bench relay [-- RATE_AT_10 RATE_AT_100 [SECONDS [ROUNDS]]]`.
//!
//! Issue 11's closing figures: 1200-byte packets at 10 and 100 allocations, each at the
//! given packets/s per allocation (default 1000 and 100), through both implementations in
//! one lab per setting (`icelab bench relay`, the same code). Prints each run's table:
//! relayed pkt/s and Mbit/s, loss, RTT p50/p99, server CPU, and the built-in/coturn ratio.

use std::time::Duration;

use icelab::bench::relay::BenchConfig;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let num = |i: usize, default: f64| args.get(i).and_then(|a| a.parse::<f64>().ok()).unwrap_or(default);
    let (rate10, rate100, seconds, rounds) = (num(0, 1000.0), num(1, 100.0), num(2, 5.0), num(3, 2.0));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for (allocations, rate) in [(10, rate10 as u32), (100, rate100 as u32)] {
        let cfg = BenchConfig {
            allocations,
            rate,
            size: 1200,
            duration: Duration::from_secs_f64(seconds),
            rounds: rounds as u32,
            ..BenchConfig::default()
        };
        let name = format!("benchrelay{}", allocations % 100);
        match rt.block_on(icelab::bench::lab::run(&cfg, &name, |_| {})) {
            Ok(report) => print!("{}", report.text()),
            Err(e) => {
                eprintln!("relay bench ({allocations} allocations x {rate} pkt/s): {e:#}");
                std::process::exit(1);
            }
        }
    }
}
