//! Call setup of two in-process webrtc-rs peers on loopback, without a lab:
//! `cargo bench --bench peer_setup` (set `ICE_CHECK_MS` to try other check intervals).
//! It separates the peer stack's own setup time from what a lab adds
//! (`icelab run FILE --repeat N` measures the whole call in a lab).

use std::time::Duration;

use icelab::peer::{PeerConfig, Role, call_pair};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(10);
    let interval = std::env::var("ICE_CHECK_MS").ok().and_then(|v| v.parse().ok()).or(Some(50));
    let cfg = |role| PeerConfig {
        ice_check_interval_ms: interval,
        udp_bind: vec!["127.0.0.1:0".into()],
        data_duration_ms: 100,
        data_rate_kbps: Some(2000),
        deadline_ms: 10_000,
        ..PeerConfig::new(role)
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (mut ice, mut dtls, mut dc) = (vec![], vec![], vec![]);
    rt.block_on(async {
        for _ in 0..runs {
            let o = call_pair(cfg(Role::Offerer), cfg(Role::Answerer), Duration::from_secs(15)).await;
            assert!(o.ok(), "call failed: {o:?}");
            ice.push(o.offerer.ice_connected_ms.unwrap());
            dtls.push(o.offerer.dtls_connected_ms.unwrap());
            dc.push(o.offerer.data_channel_open_ms.unwrap());
        }
    });
    println!("loopback call setup, offerer, n={runs}, ICE check interval {interval:?} ms");
    println!("  ice connected      median {:>7.1} ms", median(ice));
    println!("  dtls connected     median {:>7.1} ms", median(dtls));
    println!("  data channel open  median {:>7.1} ms", median(dc));
}
