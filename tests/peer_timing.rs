//! Loopback timing measurement (ignored by default; run with `--ignored --nocapture`).

use std::time::Duration;

use icelab::peer::{PeerConfig, Role, call_pair};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, prints numbers"]
async fn loopback_setup_times() {
    let interval = std::env::var("ICE_CHECK_MS").ok().and_then(|v| v.parse().ok());
    let cfg = |role| PeerConfig {
        ice_check_interval_ms: interval,
        udp_bind: vec!["127.0.0.1:0".into()],
        data_duration_ms: 100,
        deadline_ms: 10_000,
        ..PeerConfig::new(role)
    };
    let (mut ice, mut dtls, mut dc) = (vec![], vec![], vec![]);
    for _ in 0..5 {
        let o = call_pair(cfg(Role::Offerer), cfg(Role::Answerer), Duration::from_secs(15)).await;
        assert!(o.ok());
        ice.push(o.offerer.ice_connected_ms.unwrap());
        dtls.push(o.offerer.dtls_connected_ms.unwrap());
        dc.push(o.offerer.data_channel_open_ms.unwrap());
    }
    eprintln!("offerer ice connected ms: {ice:?} median {:.1}", median(ice.clone()));
    eprintln!("offerer dtls connected ms: {dtls:?} median {:.1}", median(dtls.clone()));
    eprintln!("offerer data channel open ms: {dc:?} median {:.1}", median(dc.clone()));
}
