//! The highest sustained call-setup rate (needs root):
//! `cargo bench --bench load [-- RATE... [per-call]]`.
//!
//! Runs `icelab load loads/homes.toml` (four hosts behind one NAT calling an open host,
//! browser-like ICE, 200 ms of data per call) at each offered rate (default 100, 150,
//! 200, 250, 300 calls/s; five seconds of arrivals each, 1024 at once at most) and prints
//! offered vs achieved setups/s, p95 channel open (from the offer) and setup from
//! arrival (queueing included), peak concurrency, the peers' CPU per call and failures;
//! then the highest rate that kept every call connected with p95 setup from arrival
//! under 1 s. The built-in peers are pooled, one process per host; `per-call` runs two
//! processes per call instead, to compare. The machine's other load counts: say what
//! else ran when quoting the figure.

use std::process::Command;

fn stat(v: &serde_json::Value, name: &str, p: &str) -> f64 {
    v["setup"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == name))
        .and_then(|x| x[p].as_f64())
        .unwrap_or(f64::NAN)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rates: Vec<String> = args.iter().filter(|a| a.parse::<f64>().is_ok()).cloned().collect();
    let rates = if rates.is_empty() { ["100", "150", "200", "250", "300"].map(String::from).to_vec() } else { rates };
    let processes = if args.iter().any(|a| a == "per-call") { "per-call" } else { "per-host" };
    let bin = env!("CARGO_BIN_EXE_icelab");
    let file = format!("{}/loads/homes.toml", env!("CARGO_MANIFEST_DIR"));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("icelab load {file}: 5 s of arrivals per rate, cap 1024, peers {processes}, {cores} cores");
    let mut best: Option<f64> = None;
    for r in rates {
        let rate: f64 = r.parse().unwrap();
        let calls = ((rate * 5.0).round() as u64).max(2).to_string();
        let o = Command::new(bin)
            .args(["load", &file, "--rate", &r, "--calls", &calls, "--concurrency", "1024", "--duration-ms", "200"])
            .args(["--time-limit-s", "30", "--peer-processes", processes, "--json"])
            .output()
            .expect("icelab load");
        let v: serde_json::Value = match serde_json::from_slice(&o.stdout) {
            Ok(v) => v,
            Err(e) => {
                println!("  {r:>5}/s: no report ({e}): {}", String::from_utf8_lossy(&o.stderr));
                continue;
            }
        };
        let (passed, n) = (v["passed"].as_u64().unwrap_or(0), v["calls"].as_u64().unwrap_or(0));
        let p95_setup = stat(&v, "setup from arrival", "p95");
        let peers = &v["resources"]["peers"];
        let cpu_ms = peers["cpu_s"].as_f64().unwrap_or(f64::NAN) * 1e3 / v["started"].as_f64().unwrap_or(f64::NAN);
        println!(
            "  offered {r:>5}/s: achieved {:6.1}/s, {passed}/{n} connected, channel open p50/p95 {:.0}/{:.0} ms, setup from arrival p95 {:.0} ms, queue p95 {:.0} ms, peak {} at once, peers {} processes {cpu_ms:.1} CPU ms/call, failures {}",
            v["achieved_per_s"].as_f64().unwrap_or(f64::NAN),
            stat(&v, "channel open", "p50"),
            stat(&v, "channel open", "p95"),
            p95_setup,
            stat(&v, "queue (arrival -> start)", "p95"),
            v["peak_concurrency"],
            peers["processes"],
            v["failures"]
        );
        if passed == n && p95_setup < 1000.0 {
            best = Some(best.map_or(rate, |b: f64| b.max(rate)));
        }
    }
    match best {
        Some(b) => println!("highest sustained rate with p95 setup from arrival under 1 s: {b} setups/s"),
        None => println!("no rate kept p95 setup from arrival under 1 s"),
    }
}
