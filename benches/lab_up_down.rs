//! Lab build and teardown times (needs root):
//! `cargo bench --bench lab_up_down [-- ITERATIONS]`.
//!
//! Prints median and p95 of `up`, `down` and `up+down` for the bundled double-NAT
//! topology (CGNAT + home router) and the two-home-routers topology, and for a
//! generated topology of 200 namespaces.

use std::time::Instant;

use icelab::fabric::Lab;
use icelab::spec::{parse_file, parse_str};
use icelab::topology::{Topology, generate};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn measure(label: &str, topo: &Topology, iterations: usize) {
    let (mut ups, mut downs, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let mut namespaces = 0;
    for i in 0..iterations {
        let name = format!("bench{i}");
        let t0 = Instant::now();
        let (lab, _) = Lab::up(topo, &name, |_, _| {}).await.expect("lab up");
        let up = t0.elapsed().as_secs_f64() * 1e3;
        namespaces = lab.plan().nodes.len();
        let t1 = Instant::now();
        lab.down().expect("lab down");
        let down = t1.elapsed().as_secs_f64() * 1e3;
        ups.push(up);
        downs.push(down);
        totals.push(up + down);
    }
    println!(
        "{label:<28} {namespaces:>4} ns  up p50 {:>8.1} ms p95 {:>8.1} | down p50 {:>7.1} ms p95 {:>7.1} | up+down p50 {:>8.1} ms p95 {:>8.1}  (n={iterations})",
        percentile(&mut ups, 0.5),
        percentile(&mut ups, 0.95),
        percentile(&mut downs, 0.5),
        percentile(&mut downs, 0.95),
        percentile(&mut totals, 0.5),
        percentile(&mut totals, 0.95),
    );
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("lab_up_down: needs root (network namespaces)");
        std::process::exit(1);
    }
    // SAFETY: set before any thread is started.
    unsafe { std::env::set_var("ICELAB_BIN", env!("CARGO_BIN_EXE_icelab")) };
    let iterations: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(20);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        for file in ["cgnat-double-nat.toml", "two-home-routers.toml"] {
            let topo = parse_file(&dir.join(file)).unwrap().topology;
            measure(file, &topo, iterations).await;
        }
        // 66 routers x (router + 2 hosts) + server + internet = 200 namespaces.
        let big = parse_str("generated", &generate::home_routers(66, 2)).unwrap().topology;
        measure("generated-200", &big, iterations.min(5)).await;
    });
}
