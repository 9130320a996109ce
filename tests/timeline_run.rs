//! Root tests: every bundled `event-*.toml` through `icelab run --json`; each event's
//! recorded recovery must match its expectation. They fail without root unless
//! ICELAB_SKIP_ROOT_TESTS=1. Runs are serialized: on two cores, parallel calls would
//! measure each other's CPU starvation, not the events.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs one scenario and returns its events as (expectation, recovery status, observed).
fn run(file: &str) -> Vec<(String, String, serde_json::Value)> {
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = lab_name(&format!("tl{}", file.len() % 10));
    let _lab = LabGuard(name.clone());
    let t = Instant::now();
    let o = icelab(&["run", "--json", &topology(file), "--name", &name]);
    let took = t.elapsed();
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{file}: no JSON report ({e}):\n{}\n{}", stdout(&o), stderr(&o)));
    let events = rep["events"].as_array().cloned().unwrap_or_default();
    for e in &events {
        eprintln!(
            "{file} #{} {} @ {:?} ms: {} (stall {:?}, data back {:?}, ice back {:?}, ice {:?})",
            e["index"],
            e["what"],
            e["applied_ms"],
            e["recovery"]["status"],
            e["stall_ms"],
            e["data_resumed_ms"],
            e["ice_reconnected_ms"],
            e["ice"]
        );
    }
    assert!(took < Duration::from_secs(40), "{file} took {took:?}");
    assert_eq!(o.status.code(), Some(0), "{file}: verdict failed: {:#}", rep["verdict"]);
    assert!(lab_namespaces(&name).is_empty(), "{file} left namespaces");
    events
        .into_iter()
        .map(|e| {
            (
                e["expect"]["expect"].as_str().unwrap_or("").to_string(),
                e["recovery"]["status"].as_str().unwrap_or("").to_string(),
                e,
            )
        })
        .collect()
}

/// Every event with an expectation recorded a matching recovery.
fn check(file: &str, want: &[&str]) {
    if !require_root() {
        return;
    }
    let events = run(file);
    let got: Vec<&str> = events.iter().map(|(_, s, _)| s.as_str()).collect();
    assert_eq!(got.len(), want.len(), "{file}: {got:?}");
    for ((expect, status, e), w) in events.iter().zip(want) {
        let ok = match expect.as_str() {
            "breaks" => status == "broke",
            "recovers" => status == "never-broke" || status == "recovered",
            _ => true,
        };
        assert!(ok, "{file}: event {} expected {expect}, recorded {status}: {e:#}", e["index"]);
        assert!(w.split('|').any(|w| w == status), "{file}: event {} recorded {status}, wanted {w}", e["index"]);
    }
}

#[test]
fn link_down_breaks_and_link_up_recovers() {
    check("event-link-flap.toml", &["broke", "recovered"]);
}

#[test]
fn udp_blocked_recovers_by_ice_restart_onto_the_relay() {
    if !require_root() {
        return;
    }
    let events = run("event-udp-blocked.toml");
    assert_eq!(events[0].1, "recovered", "{:#}", events[0].2);
    let e = &events[0].2;
    // ICE noticed the outage, the offerer restarted, the answerer took the re-offer.
    assert!(e["ice"].to_string().contains("disconnected"), "{e:#}");
    let restarts = e["ice_restarts"].to_string();
    assert!(restarts.contains("offerer restart 1") && restarts.contains("answerer restart 1"), "{e:#}");
    assert!(e["ice_reconnected_ms"].is_number(), "{e:#}");
    // The call moved to a relay pair.
    assert_eq!(e["selected_pair"]["relay_based"], serde_json::json!(true), "{e:#}");
    assert_eq!(e["pair_changed"], serde_json::json!(true), "{e:#}");
    // Unblocking does not disturb the relayed call.
    assert!(events[1].1 == "never-broke" || events[1].1 == "recovered", "{:#}", events[1].2);
}

#[test]
fn nat_flush_keeping_ports_recovers() {
    check("event-nat-flush.toml", &["never-broke|recovered"]);
}

#[test]
fn nat_rebinding_recovers_by_ice_restart() {
    check("event-nat-rebind.toml", &["recovered"]);
}

#[test]
fn lte_impairment_recovers() {
    check("event-lte.toml", &["never-broke|recovered"]);
}

#[test]
fn turn_stop_and_restart_break_a_relayed_call() {
    check("event-turn-restart.toml", &["broke", "broke"]);
}

#[test]
fn nat_change_full_cone_recovers_symmetric_breaks() {
    check("event-nat-change.toml", &["never-broke|recovered", "broke"]);
}
