//! `icelab bench relay` (issue 11): a short run through both implementations yields every
//! figure, and the figures agree with each other. Not a performance test: the numbers
//! themselves are the benchmark's to print. Needs root (fails without it unless
//! ICELAB_SKIP_ROOT_TESTS=1) and coturn.

mod common;

use common::*;

#[test]
fn a_short_bench_reports_consistent_figures_for_both_implementations() {
    if !require_root() {
        return;
    }
    let name = lab_name("rb");
    let _lab = LabGuard(name.clone());
    let o = icelab(&[
        "bench",
        "relay",
        "--allocations",
        "5",
        "--rate",
        "50",
        "--size",
        "1200",
        "--duration",
        "2",
        "--json",
        "--name",
        &name,
    ]);
    assert!(o.status.success(), "bench failed: {}{}", stdout(&o), stderr(&o));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert!(lab_namespaces(&name).is_empty(), "the bench left namespaces");
    assert_eq!(rep["offered_pps"], 250);
    let results = rep["results"].as_array().expect("results");
    let impls: Vec<&str> = results.iter().filter_map(|r| r["implementation"].as_str()).collect();
    assert_eq!(impls, ["built-in", "coturn"]);
    for r in results {
        let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {r:#}"));
        let (sent, peer, received) = (n("sent"), n("peer_received"), n("received"));
        // 5 x 50 pkt/s for 2 s, paced: every packet is sent.
        assert_eq!(sent, 500.0, "{r:#}");
        assert!(received <= peer && peer <= sent && received > 0.0, "{r:#}");
        let loss = 100.0 * (sent - received) / sent;
        assert!((n("loss_pct") - loss).abs() < 1e-9, "loss {loss}: {r:#}");
        assert!((n("forward_loss_pct") - 100.0 * (sent - peer) / sent).abs() < 1e-9, "{r:#}");
        let window = n("send_window_s");
        assert!(window > 1.9 && window <= 2.0, "{r:#}");
        assert!((n("relayed_pps") - (peer + received) / window).abs() < 1e-6, "{r:#}");
        assert!((n("relayed_mbps") - n("relayed_pps") * 1200.0 * 8.0 / 1e6).abs() < 1e-9, "{r:#}");
        let (p50, p99) = (n("rtt_p50_ms"), n("rtt_p99_ms"));
        assert!(p50 > 0.0 && p50 <= p99 && p99 < 2000.0, "{r:#}");
        assert!(n("server_cpu_pct") >= 0.0, "{r:#}");
        assert!(r["server_rcvbuf_drops"].is_u64(), "{r:#}");
    }
    let ratio = rep["builtin_coturn_ratio"].as_f64().expect("ratio");
    let pps: Vec<f64> = results.iter().map(|r| r["relayed_pps"].as_f64().unwrap()).collect();
    assert!((ratio - pps[0] / pps[1]).abs() < 1e-9, "{ratio} vs {pps:?}");
}

#[test]
fn bad_bench_settings_are_bad_input() {
    for (args, says) in [
        (&["--allocations", "0"][..], "--allocations"),
        (&["--size", "9000"][..], "--size"),
        (&["--impl", "nginx"][..], "nginx"),
        (&["--duration", "0"][..], "--duration"),
    ] {
        let mut all = vec!["bench", "relay"];
        all.extend(args);
        let o = icelab(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
}
