//! The default NAT matrix's wall time (needs root): `cargo bench --bench matrix [-- JOBS...]`.
//!
//! Runs `icelab matrix --json` at each `--jobs` given (default 2 and 4) and prints the
//! wall time, cells passed, and the p50/p95 of ICE connected over the cells, split by
//! direct and relayed, so what limits the wall time is visible: the relayed cells wait
//! out webrtc-rs's 2 s relay acceptance timer before they can connect.

use std::process::Command;

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let jobs: Vec<String> = std::env::args().skip(1).filter(|a| a.parse::<usize>().is_ok()).collect();
    let jobs = if jobs.is_empty() { vec!["2".to_string(), "4".to_string()] } else { jobs };
    let bin = env!("CARGO_BIN_EXE_icelab");
    println!("default NAT matrix (100 cells), built-in peers and servers");
    for j in jobs {
        let o = Command::new(bin).args(["matrix", "--jobs", &j, "--json"]).output().expect("icelab matrix");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("matrix JSON");
        let cells = v["cells"].as_array().expect("cells");
        let passed = cells.iter().filter(|c| c["call"]["pass"] == true).count();
        let failed: Vec<String> = cells
            .iter()
            .filter(|c| c["call"]["pass"] != true)
            .map(|c| format!("{} x {}", c["a"].as_str().unwrap_or("?"), c["b"].as_str().unwrap_or("?")))
            .collect();
        let (mut direct, mut relayed) = (Vec::new(), Vec::new());
        for c in cells {
            let ice = c["call"]["timings"]
                .as_array()
                .and_then(|t| t.iter().find(|x| x["name"] == "ice connected").and_then(|x| x["value"].as_f64()));
            if let Some(ms) = ice {
                if c["expect"]["path"] == "relayed" { relayed.push(ms) } else { direct.push(ms) }
            }
        }
        println!(
            "  --jobs {j:>2}: {:6.1} s wall, {passed}/100 passed; ICE connected p50/p95 direct {:.0}/{:.0} ms ({} cells), relayed {:.0}/{:.0} ms ({} cells)",
            v["wall_s"].as_f64().unwrap_or(f64::NAN),
            pct(&mut direct, 0.5),
            pct(&mut direct, 0.95),
            direct.len(),
            pct(&mut relayed, 0.5),
            pct(&mut relayed, 0.95),
            relayed.len()
        );
        if !failed.is_empty() {
            println!("             failed on the first try: {}", failed.join(", "));
        }
    }
}
