//! The report renderers (terminal table, JSON, JUnit XML, HTML) on fixed run results
//! built here: two calls, one that passes (with a timeline event) and one that times
//! out; and the summary of repeated runs. No root, no lab.

use icelab::call::RunReport;
use icelab::peer::{CandidateInfo, DataStats, Outcome, PeerOutcome, SelectedPair};
use icelab::report::{self, Report, table};
use icelab::scenario::{Timings, judge};
use icelab::servers::stats::{Flow, ServerFigures, ServerStats};
use icelab::servers::{Implementation, ServiceKind};
use icelab::timeline::{EventOutcome, Recovery};

const FILE: &str = r#"
[host.alice]
on = "internet"

[host.bob]
on = "internet"

[scenario]
offerer = "alice"
answerer = "bob"

[expect]
outcome = "connected"
local = "host"
max-connect-ms = 2000
"#;

fn cand(kind: &str, addr: &str, port: u16) -> CandidateInfo {
    CandidateInfo {
        candidate_type: kind.into(),
        base_type: kind.into(),
        protocol: "udp".into(),
        address: addr.into(),
        port,
        relay_protocol: None,
        related_address: None,
        url: None,
    }
}

fn peer(ok: bool, pair: Option<SelectedPair>) -> PeerOutcome {
    PeerOutcome {
        ok,
        timed_out: !ok,
        exit_error: (!ok).then(|| "no result by the scenario deadline; killed".to_string()),
        gathering_started_ms: Some(10.0),
        gathering_complete_ms: ok.then_some(40.0),
        ice_connected_ms: ok.then_some(210.5),
        dtls_connected_ms: ok.then_some(260.0),
        data_channel_open_ms: ok.then_some(300.25),
        selected_pair: pair,
        rtt_ms: ok.then_some(0.4),
        data: ok.then(|| DataStats { bytes_received: 75_000, recv_bytes_per_sec: 250_000.0, ..Default::default() }),
        ..Default::default()
    }
}

/// A TURN server's own figures, as the run reads them when the calls end.
fn relay_figures() -> ServerFigures {
    let stats = ServerStats {
        at_unix_ms: 1_764_655_209_000,
        started_unix_ms: 1_764_655_200_000,
        stun_bindings: 4,
        allocations: 2,
        allocations_refused: [(401, 2)].into(),
        permissions: 2,
        channel_binds: 2,
        to_peers: Flow { packets: 812, bytes: 161_200 },
        from_peers: Flow { packets: 812, bytes: 161_200 },
        ..Default::default()
    };
    ServerFigures {
        server: "relay".into(),
        service: ServiceKind::Turn,
        implementation: Implementation::Coturn,
        stats: stats.clone(),
        samples: vec![stats],
        note: None,
    }
}

/// One run's results, judged by the real judge against the file's `[expect]`.
fn run(lab: &str, connected: bool) -> RunReport {
    let topo = icelab::spec::parse_str("call.toml", FILE).expect("fixture parses");
    let pair = SelectedPair {
        local: cand("host", "203.0.113.10", 50_000),
        remote: CandidateInfo { base_type: "host".into(), ..cand("prflx", "203.0.113.11", 50_001) },
        relay_based: false,
        relay_protocol: None,
        rtt_ms: Some(0.4),
    };
    let outcome = if connected {
        Outcome { offerer: peer(true, Some(pair)), answerer: peer(true, None) }
    } else {
        Outcome { offerer: peer(false, None), answerer: peer(false, None) }
    };
    let mut timings = Timings::from_outcome(&outcome);
    timings.lab_up_ms = Some(120.0);
    timings.call_ms = Some(if connected { 900.0 } else { 5500.0 });
    timings.teardown_ms = Some(30.0);
    timings.total_ms = Some(if connected { 1050.0 } else { 5650.0 });
    let verdict = judge(&outcome, &timings, &topo.expect.clone().unwrap_or_default());
    let events = if connected {
        vec![EventOutcome {
            index: 1,
            what: "link home1 down for 2000 ms".into(),
            at_ms: 1000,
            applied_ms: Some(1003.0),
            ops: vec!["link down".into()],
            error: None,
            recovery: Recovery::Recovered { recovery_ms: 2400.0 },
            stall_ms: Some(2100.0),
            data_resumed_ms: Some(2400.0),
            ice_reconnected_ms: Some(2350.0),
            window_end_ms: 5000.0,
            ice: vec!["offerer disconnected @ +1500 ms".into()],
            ice_restarts: vec![],
            selected_pair: None,
            pair_changed: None,
            expect: None,
            expect_pair: None,
        }]
    } else {
        vec![]
    };
    RunReport {
        lab: lab.into(),
        pair: topo.scenario.as_ref().expect("fixture has a scenario").calls[0].clone(),
        scenario: topo.scenario.clone().expect("fixture has a scenario"),
        outcome,
        timings,
        verdict,
        offerer_stderr: if connected { String::new() } else { "offerer: waiting for <answer> & gave up\n".into() },
        answerer_stderr: String::new(),
        kept: false,
        // Real runs name it; the snapshots keep the setup line without it.
        relay_implementation: None,
        servers: if connected { vec![relay_figures()] } else { vec![] },
        proof: None,
        capture: Vec::new(),
        events,
        timeline: None,
    }
}

fn two_calls() -> Report {
    Report::from_runs("call.toml", &[run("c1", true), run("c2", false)], 1, vec![])
}

#[test]
fn model_holds_every_call() {
    let r = two_calls();
    assert_eq!(r.calls.len(), 2);
    assert!(r.calls[0].pass && !r.calls[1].pass && !r.pass);
    assert_eq!(r.calls[0].pair.as_ref().map(|p| p.short()), Some("host/prflx".into()));
    assert_eq!(r.calls[0].pair.as_ref().and_then(|p| p.remote.really.clone()), Some("host".into()));
    assert_eq!(r.calls[1].stderr.len(), 1, "a failed call keeps its peers' stderr");
    let failed: Vec<&str> = r.calls[1].checks.iter().filter(|c| !c.ok).map(|c| c.name.as_str()).collect();
    assert!(failed.contains(&"outcome"), "{failed:?}");
}

#[test]
fn table() {
    insta::assert_snapshot!("report-table", table::render(&two_calls(), table::Style::default()));
}

#[test]
fn table_colour_honours_no_color() {
    assert!(!table::Style::from_env(true, Some("1")).color);
    assert!(!table::Style::from_env(false, None).color);
    assert!(table::Style::from_env(true, None).color);
    let coloured = table::render(&two_calls(), table::Style { color: true });
    assert!(coloured.contains("\x1b[32mPASS\x1b[0m") && coloured.contains("\x1b[31mFAIL\x1b[0m"));
}

#[test]
fn summary_of_repeated_runs() {
    let r = Report::from_runs("call.toml", &[run("c1", true), run("c1", true)], 3, vec!["injected failure".into()]);
    insta::assert_snapshot!("report-summary", table::render(&r, table::Style::default()));
}

#[test]
fn json() {
    insta::assert_snapshot!("report-json", report::json(&two_calls()));
}

#[test]
fn junit() {
    let xml = report::junit::render(&two_calls());
    // One testcase per call, one failure per failed check.
    assert_eq!(xml.matches("<testcase ").count(), 2);
    let failed = two_calls().calls[1].checks.iter().filter(|c| !c.ok).count();
    assert_eq!(xml.matches("<failure ").count(), failed);
    insta::assert_snapshot!("report-junit", xml);
}

#[test]
fn html() {
    let page = report::html::render(&two_calls());
    // Self-contained: nothing to fetch.
    for external in ["http://", "https://", "<script", "<link", "src="] {
        assert!(!page.contains(external), "{external} in the page");
    }
    assert!(page.contains("&lt;answer&gt; &amp; gave up"), "stderr is escaped");
    insta::assert_snapshot!("report-html", page);
}
