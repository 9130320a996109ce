//! Root tests: a short load over a small mixed population (loads/ci.toml: 60 calls at
//! 10/s, 64 at once at most, bounded, pooled peers), every figure of its report present and
//! consistent, every call connected, the relayed share what the matrix expects of the drawn
//! pairs and the relay's bytes the relayed ends'; a load in a lab file's lab (count = N
//! hosts, a process per call); browser peers under load; a killed peer pool; and Ctrl-C
//! during a load.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn load_file(name: &str) -> String {
    format!("{}/loads/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn f(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn stat<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list.as_array().unwrap().iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no `{name}` in {list}"))
}

/// Every figure is there and agrees with the others (whatever the calls' fate);
/// `turn`: the lab has a TURN server, so relay candidates are gathered.
fn check_consistent(r: &serde_json::Value, calls: u64, turn: bool) {
    assert_eq!(r["calls"].as_u64(), Some(calls));
    let (started, passed) = (r["started"].as_u64().unwrap(), r["passed"].as_u64().unwrap());
    assert!(passed <= started && started <= calls);
    let failures: u64 = r["failures"].as_array().unwrap().iter().map(|x| x[1].as_u64().unwrap()).sum();
    assert_eq!(failures, calls - passed, "failures by reason add up: {}", r["failures"]);
    assert!((f(&r["success_rate"]) - passed as f64 / calls as f64).abs() < 1e-9);
    assert!(f(&r["offered_per_s"]) > 0.0 && f(&r["arrived_per_s"]) > 0.0 && f(&r["achieved_per_s"]) > 0.0);
    // Open loop: the driver offered what was asked (uniform arrivals, to the ms).
    assert!((f(&r["arrived_per_s"]) - f(&r["offered_per_s"])).abs() < 0.05, "{}", r["arrived_per_s"]);
    let peak = r["peak_concurrency"].as_u64().unwrap();
    assert!(peak >= 1 && peak <= r["spec"]["concurrency"].as_u64().unwrap(), "peak {peak} over the cap");
    for name in [
        "queue (arrival -> start)",
        "setup from arrival",
        "setup from start",
        "gathering",
        "srflx gathered",
        "relay gathered",
        "ice connected",
        "dtls connected",
        "channel open",
    ] {
        if name == "relay gathered" && !turn {
            continue;
        }
        let s = stat(&r["setup"], name);
        assert!(s["count"].as_u64().unwrap() > 0, "{name}");
        let (p50, p95, p99) = (f(&s["p50"]), f(&s["p95"]), f(&s["p99"]));
        assert!(0.0 <= p50 && p50 <= p95 && p95 <= p99, "{name}: {s}");
    }
    // Phases in order, and setup from arrival is queueing plus setup from start.
    let p50 = |n: &str| f(&stat(&r["setup"], n)["p50"]);
    // A browser page sees DTLS through its transport's `statechange`, an event that the
    // page may be handed a moment after the channel's `open`: a few ms of slack there.
    let (ice, dtls, open) = (p50("ice connected"), p50("dtls connected"), p50("channel open"));
    assert!(ice <= dtls && dtls <= open + 5.0, "p50 ice {ice} dtls {dtls} channel open {open}");
    for s in r["samples"].as_array().unwrap().iter().filter(|s| s["ok"] == true) {
        let queue = f(&s["started_ms"]) - f(&s["scheduled_ms"]);
        assert!(queue >= 0.0, "started before its arrival: {s}");
        assert!(f(&s["setup_from_start_ms"]) >= f(&s["open_ms"]), "setup from start covers the offer's phases");
        assert!(f(&s["ended_ms"]) >= f(&s["started_ms"]) + f(&s["setup_from_start_ms"]) - 50.0);
        assert!(s["pair_type"].is_string() && s["path"].is_string() && s["call"]["pair"].is_object());
        assert!(s["bytes_received"].as_u64().unwrap() > 0, "data flowed: {}", s["pair"]);
    }
    let groups: u64 = r["by_pair_type"].as_array().unwrap().iter().map(|g| g["calls"].as_u64().unwrap()).sum();
    assert_eq!(groups, passed, "every connected call is in one pair type");
    let seconds = r["per_second"].as_array().unwrap();
    assert_eq!(seconds.iter().map(|s| s["offered"].as_u64().unwrap()).sum::<u64>(), calls);
    assert_eq!(seconds.iter().map(|s| s["opened"].as_u64().unwrap()).sum::<u64>(), passed);
    assert!(r["throughput"]["bytes_received"].as_u64().unwrap() > 0);
    // CPU and memory from the kernel's accounting: one pooled peer process per host that
    // placed a call (or two processes per started call), each of which used CPU and
    // memory, and the lab's servers still running at the end.
    let res = &r["resources"];
    assert_eq!(res["measured"], true, "{res}");
    let peers = &res["peers"];
    let started: Vec<&serde_json::Value> =
        r["samples"].as_array().unwrap().iter().filter(|s| !s["started_ms"].is_null()).collect();
    let processes = match r["spec"]["peer_processes"].as_str() {
        Some("per-host") => {
            let hosts: std::collections::BTreeSet<&str> = started
                .iter()
                .flat_map(|s| [&s["pair"]["offerer"], &s["pair"]["answerer"]])
                .filter_map(|h| h.as_str())
                .collect();
            hosts.len()
        }
        Some("per-call") => 2 * started.len(),
        other => panic!("peer_processes {other:?}"),
    };
    assert_eq!(peers["processes"].as_u64().unwrap(), processes as u64, "{res}");
    assert!(f(&peers["cpu_s"]) > 0.0 && f(&peers["peak_rss_mib"]) > 1.0, "{res}");
    let servers = &res["servers"];
    if turn {
        assert!(servers["processes"].as_u64().unwrap() >= 1 && f(&servers["cpu_s"]) > 0.0, "{res}");
        assert!(f(&servers["peak_rss_mib"]) > 1.0, "{res}");
    }
    // The servers' own figures: read from the lab's TURN server when it has one (first),
    // and from its built-in STUN server.
    let side = &r["server_side"];
    let figures = side["servers"].as_array().cloned().unwrap_or_default();
    assert_eq!(figures.first().is_some_and(|f| f["service"] == "turn"), turn, "{side}");
    if let Some(stun) = figures.iter().find(|f| f["service"] == "stun" && f["implementation"] == "built-in") {
        // At least one binding answered for every call that gathered a srflx, each timed.
        let srflx = stat(&r["setup"], "srflx gathered")["count"].as_u64().unwrap();
        let bindings = stun["stats"]["stun_bindings"].as_u64().unwrap();
        assert!(bindings >= srflx && srflx > 0, "{bindings} bindings, {srflx} calls with a srflx: {stun}");
        let lat = side["latencies"].as_array().unwrap().iter().find(|l| l["service"] == "stun").expect("stun timed");
        let binding = lat["methods"].as_array().unwrap().iter().find(|m| m["method"] == "Binding").expect("Binding");
        assert!(binding["count"].as_u64().unwrap() >= bindings, "{lat}");
        assert!(
            side["note"]
                .as_str()
                .unwrap()
                .contains(&format!("{} (built-in STUN): {bindings} bindings", stun["server"].as_str().unwrap()))
        );
    }
    if turn {
        let stats = &side["servers"][0]["stats"];
        assert!(stats["allocations"].as_u64().unwrap() > 0, "{side}");
        let relayed = r["throughput"]["relayed_bytes_received"].as_u64().unwrap();
        if relayed > 0 {
            // Wire bytes (DTLS, SCTP) through the relay cover the payload the relayed calls got.
            let through = stats["to_peers"]["bytes"].as_u64().unwrap() + stats["from_peers"]["bytes"].as_u64().unwrap();
            assert!(through >= relayed, "the relay carried {through} B, the relayed calls received {relayed} B");
        }
        // The built-in server times its answers: every call allocated, so Allocate is there.
        let lat = &side["latencies"][0];
        if lat["implementation"] == "built-in" {
            assert_eq!(lat["measured"], true, "{lat}");
            let methods = lat["methods"].as_array().unwrap_or_else(|| panic!("no methods: {lat}"));
            let alloc = methods.iter().find(|m| m["method"] == "Allocate").unwrap_or_else(|| panic!("{lat}"));
            assert!(alloc["count"].as_u64().unwrap() > 0, "{alloc}");
            for m in methods {
                let (p50, p95, p99) = (f(&m["p50_ms"]), f(&m["p95_ms"]), f(&m["p99_ms"]));
                assert!(0.0 < p50 && p50 <= p95 && p95 <= p99, "{m}");
            }
        }
    }
}

/// Why a run is not the clean result: not every call connected, or a path off the matrix.
fn shortfall(r: &serde_json::Value) -> Option<String> {
    if r["passed"] != r["calls"] {
        let failed: Vec<String> = r["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["ok"] != true)
            .map(|s| format!("#{} {} ({}): {}", s["index"], s["kinds"], s["relay_transport"], s["failure"]))
            .collect();
        return Some(format!("{} of {} passed: {}", r["passed"], r["calls"], failed.join("; ")));
    }
    let rs = &r["relay_share"];
    if rs["mismatched"] != 0 || f(&rs["observed"]) != f(&rs["predicted_by_pairs"]) {
        let off: Vec<String> = rs["by_kinds"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["mismatched"] != 0)
            .map(|k| {
                format!(
                    "{} x {}: {} of {} relayed, matrix {}",
                    k["a"], k["b"], k["relayed"], k["connected"], k["expected"]
                )
            })
            .collect();
        return Some(format!(
            "relayed {} vs predicted {}: {}",
            rs["observed"],
            rs["predicted_by_pairs"],
            off.join("; ")
        ));
    }
    None
}

/// Up to `tries` loads, as the matrix retries a cell: each `attempt` checks its report
/// (asserting what must always hold) and returns why it fell short ([`shortfall`]), or
/// `None` once one is whole. Misses are printed; when every load missed, the test fails.
fn loads_until_whole(what: &str, tries: u32, mut attempt: impl FnMut(u32) -> Option<String>) {
    let mut misses = Vec::new();
    for n in 1..=tries {
        match attempt(n) {
            None => {
                eprintln!("{what}: attempt {n} whole; earlier attempts: {misses:?}");
                return;
            }
            Some(why) => {
                eprintln!("{what}, attempt {n} missed: {why}");
                misses.push(why);
            }
        }
    }
    panic!("{what}: all {tries} loads missed: {misses:#?}");
}

/// The CI load: every figure present and consistent in every attempt; all calls
/// connected and the relayed share exactly the pairs' prediction. Up to three attempts,
/// as the matrix retries a cell: under a burst of load on this shared machine about one
/// direct call in thirty has webrtc-rs nominate its relay pair first (the race of issue
/// 9); the attempts that missed are printed. Its !UDP and HTTP kinds relay over TURN/TCP
/// and TLS.
#[test]
fn a_short_mixed_load_connects_every_call_and_relays_what_the_matrix_predicts() {
    if !require_root() {
        return;
    }
    loads_until_whole("ci load", 3, |attempt| {
        let name = lab_name("ldci");
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("load.html");
        let o =
            icelab(&["load", &load_file("ci.toml"), "--name", &name, "--json", "--html", &html.display().to_string()]);
        let r: serde_json::Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
        assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
        // The HTML report charts every call that opened its channel.
        let page = std::fs::read_to_string(&html).expect("--html wrote the report");
        let dots = page.matches("<circle class=\"call ").count();
        assert_eq!(
            dots as u64,
            r["samples"].as_array().unwrap().iter().filter(|s| !s["setup_from_start_ms"].is_null()).count() as u64
        );
        check_consistent(&r, 60, true);
        // The relay's rates, whole and over time, add up to its counters.
        let rates = &r["server_side"]["rates"][0];
        let allocations = f(&r["server_side"]["servers"][0]["stats"]["allocations"]);
        let whole = f(&rates["whole"]["allocations_per_s"]) * f(&rates["whole"]["span_s"]);
        assert!((whole - allocations).abs() < 0.5, "{whole} allocations from the rate, {allocations} counted: {rates}");
        let spans: f64 =
            rates["over_time"].as_array().unwrap().iter().map(|x| f(&x["allocations_per_s"]) * f(&x["span_s"])).sum();
        assert!((spans - allocations).abs() < 0.5, "{spans} allocations over time, {allocations} counted");
        // What the relay carried for the relayed calls (its ICE checks left out) is what
        // their relayed ends sent and got over their selected pairs, within 1 %.
        let acc = &r["relay_accounting"];
        assert_eq!(acc["counted"], "DTLS datagrams", "{acc}");
        assert!(acc["calls"].as_u64().unwrap() > 0 && acc["calls_without_figures"] == 0, "{acc}");
        assert!(acc["peers_sent_bytes"].as_u64().unwrap() > 100_000, "the relayed calls carried data: {acc}");
        assert!(f(&acc["sent_diff_pct"]) <= 1.0 && f(&acc["received_diff_pct"]) <= 1.0, "{acc}");
        let rs = &r["relay_share"];
        assert!(f(&rs["predicted_by_pairs"]) > 0.2, "the population must relay some calls: {rs}");
        assert!(f(&rs["predicted_by_mix"]) > 0.0);
        if let Some(why) = shortfall(&r) {
            return Some(why);
        }
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        eprintln!(
            "ci load, attempt {attempt}: 60/60 connected, {:.1} % relayed as predicted; relay vs relayed ends {:.3} % / {:.3} %; achieved {:.2} setups/s of {:.2}; p95 setup from arrival {:.0} ms",
            f(&rs["observed"]) * 100.0,
            f(&acc["sent_diff_pct"]),
            f(&acc["received_diff_pct"]),
            f(&r["achieved_per_s"]),
            f(&r["offered_per_s"]),
            f(&stat(&r["setup"], "setup from arrival")["p95"])
        );
        None
    });
}

/// A population load against coturn (loads/coturn.toml, shortened to 24 calls): every
/// call connects and relays what the pairs predict, through coturn; the report reads
/// coturn's log (allocations and their 401 challenges, rates), says coturn does not time
/// its answers, and counts all it relayed, checks included, so at least what the relayed
/// ends' selected pairs carried. Two attempts, as the CI load's race may need.
#[test]
fn a_population_load_runs_against_coturn() {
    if !require_root() {
        return;
    }
    loads_until_whole("coturn load", 2, |_| {
        let name = lab_name("ldct");
        let o = icelab(&["load", &load_file("coturn.toml"), "--name", &name, "--calls", "24", "--json"]);
        let r: serde_json::Value =
            serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
        assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
        check_consistent(&r, 24, true);
        assert_eq!(r["spec"]["lab"]["population"]["relay"], "coturn");
        let server = &r["server_side"]["servers"][0];
        assert_eq!(server["implementation"], "coturn", "{server}");
        let stats = &server["stats"];
        assert!(f(&stats["allocations"]) > 0.0 && f(&stats["allocations_refused"]["401"]) > 0.0, "{stats}");
        assert!(f(&r["server_side"]["rates"][0]["whole"]["allocations_per_s"]) > 0.0);
        assert_eq!(r["server_side"]["latencies"][0]["measured"], false);
        // coturn as the STUN server: its bindings from its log, untimed.
        let stun = r["server_side"]["servers"].as_array().unwrap().iter().find(|f| f["service"] == "stun").cloned();
        let stun = stun.unwrap_or_else(|| panic!("no STUN figures: {}", r["server_side"]));
        assert_eq!(stun["implementation"], "coturn");
        assert!(f(&stun["stats"]["stun_bindings"]) > 0.0, "{stun}");
        let acc = &r["relay_accounting"];
        assert_eq!(acc["counted"], "all datagrams", "{acc}");
        // Every allocation closed and logged its usage before the figures were read.
        assert_eq!(stats["unreported_allocations"], 0, "{stats}");
        let (sent, relayed) = (f(&acc["peers_sent_bytes"]), f(&acc["relay_to_peers_bytes"]));
        assert!(sent > 50_000.0 && relayed >= 0.99 * sent, "{acc}");
        let why = shortfall(&r);
        if why.is_none() {
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        why
    });
}

/// A load in a lab file's lab: four hosts behind one NAT (count = 4) calling an open
/// host in turn, at 10/s.
#[test]
fn a_load_in_a_lab_file_uses_its_pairs_in_turn() {
    if !require_root() {
        return;
    }
    let name = lab_name("ldhm");
    // Two processes per call here: the other loads cover the pooled peers.
    let o = icelab(&[
        "load",
        &load_file("homes.toml"),
        "--name",
        &name,
        "--calls",
        "20",
        "--peer-processes",
        "per-call",
        "--json",
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    check_consistent(&r, 20, false);
    assert!(r.get("relay_share").is_none());
    let offerers: Vec<&str> =
        r["samples"].as_array().unwrap().iter().map(|s| s["pair"]["offerer"].as_str().unwrap()).collect();
    assert_eq!(&offerers[..5], ["caller-1", "caller-2", "caller-3", "caller-4", "caller-1"]);
    assert_eq!(r["passed"], 20, "{}", r["failures"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
}

/// A lab change mid-load (loads/slowdown.toml, shortened): the event is applied near its
/// time from the first arrival, and the report cuts the calls into a phase before it and
/// one after it, which together hold every call. Whether the later calls are slower is
/// the benchmark's question, not a test's.
#[test]
fn an_event_during_a_load_cuts_the_report_into_phases() {
    if !require_root() {
        return;
    }
    let name = lab_name("ldev");
    let o = icelab(&["load", &load_file("slowdown.toml"), "--name", &name, "--calls", "32", "--json"]);
    let r: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    check_consistent(&r, 32, true);
    let phases = r["phases"].as_array().unwrap_or_else(|| panic!("no phases: {r}"));
    assert_eq!(phases.len(), 2, "{phases:?}");
    assert_eq!(phases[0]["cause"], "start");
    assert!(phases[1]["cause"].as_str().unwrap().contains("relay"), "{}", phases[1]);
    assert!(phases[1].get("error").is_none(), "the event failed: {}", phases[1]);
    let at = f(&phases[1]["from_ms"]);
    assert!((3000.0..3500.0).contains(&at), "applied at {at} ms, planned at 3000");
    let calls: u64 = phases.iter().map(|p| p["calls"].as_u64().unwrap()).sum();
    assert_eq!(calls, 32, "every call is in one phase: {phases:?}");
    // At 8 calls/s the first 24 arrive before 3 s, the last 8 after the change.
    let before = r["samples"].as_array().unwrap().iter().filter(|s| f(&s["scheduled_ms"]) < at).count() as u64;
    assert_eq!(phases[0]["calls"].as_u64(), Some(before));
    assert!((24..32).contains(&before), "{before} calls before the change");
    assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
}

/// Browser peers under load (loads/browsers.toml: 8 calls at 1/s, two headless Chromiums
/// each, 4 at once): every call connects, and the peers' memory is a browser's.
#[test]
fn a_load_of_browser_peers_connects_every_call() {
    if !require_root() {
        return;
    }
    let name = lab_name("ldbr");
    let o = icelab(&["load", &load_file("browsers.toml"), "--name", &name, "--json"]);
    let r: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    check_consistent(&r, 8, false);
    assert_eq!(r["passed"], 8, "{}", r["failures"]);
    assert_eq!(r["ice_profile"], "chromium's own", "the report says whose timers ran");
    // A built-in peer peaks near 16 MiB; the reaped browser's processes count as the
    // adapter's children, far above.
    let rss = f(&r["resources"]["peers"]["peak_rss_mib"]);
    assert!(rss > 64.0, "{rss} MiB: were these browsers?");
    assert_eq!(o.status.code(), Some(0));
    assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
}

/// Processes in the lab's `dave` namespace: its pooled peer, or every call's answering peer.
fn lab_pids(name: &str) -> Vec<String> {
    lab_namespaces(name)
        .iter()
        .filter(|ns| ns.ends_with("-dave"))
        .flat_map(|ns| sh(&format!("ip netns pids {ns}")).lines().map(String::from).collect::<Vec<_>>())
        .collect()
}

/// Ctrl-C in the middle of a load: every call's peers stopped, the lab gone, exit 3.
#[test]
fn ctrl_c_during_a_load_tears_everything_down() {
    if !require_root() {
        return;
    }
    let name = lab_name("ldint");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["load", &load_file("homes.toml"), "--name", &name, "--calls", "200"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (bounded) until calls are running: the answering host's pooled peer is up.
    let until = Instant::now() + Duration::from_secs(10);
    let mut pids = Vec::new();
    while Instant::now() < until {
        pids = lab_pids(&name);
        if !pids.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!pids.is_empty(), "no calls running in the lab");
    let status = signal_and_wait(&mut child, nix::sys::signal::Signal::SIGINT, "icelab load");
    assert_eq!(status.code(), Some(3));
    assert!(lab_namespaces(&name).is_empty(), "lab left behind");
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || sh(&format!("cat /proc/{pid}/stat")).contains(" Z "),
            "peer {pid} still running"
        );
    }
}

/// A pooled peer process killed mid-load (SIGKILL to the answering host's pool): the
/// calls it held fail, the next call on that host starts a new pool, the load
/// goes on to its end, and the report counts both processes.
#[test]
fn a_killed_peer_pool_costs_only_its_calls() {
    if !require_root() {
        return;
    }
    let name = lab_name("ldkill");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["load", &load_file("homes.toml"), "--name", &name, "--calls", "40", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until dave's pool is up and holding calls, then kill it.
    let until = Instant::now() + Duration::from_secs(10);
    let mut pids = Vec::new();
    while Instant::now() < until && pids.is_empty() {
        pids = lab_pids(&name);
        std::thread::sleep(Duration::from_millis(20));
    }
    // The pool starts at its host's first call, which it then holds: killing it now
    // ends at least that call.
    assert_eq!(pids.len(), 1, "one pooled peer in dave's namespace: {pids:?}");
    sh(&format!("kill -9 {}", pids[0]));
    let o = child.wait_with_output().unwrap();
    let r: serde_json::Value =
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    assert!(lab_namespaces(&name).is_empty(), "the load left its lab behind");
    let (passed, calls) = (r["passed"].as_u64().unwrap(), r["calls"].as_u64().unwrap());
    let failed: Vec<&serde_json::Value> = r["samples"].as_array().unwrap().iter().filter(|s| s["ok"] != true).collect();
    assert!(!failed.is_empty() && passed >= calls / 2, "{passed}/{calls} passed: {failed:#?}");
    // The calls after the kill ran on a new pool: the last arrivals all connected.
    let samples = r["samples"].as_array().unwrap();
    assert!(samples[samples.len() - 10..].iter().all(|s| s["ok"] == true), "{:#}", r["failures"]);
    // Four callers' pools, dave's first and its replacement.
    assert_eq!(r["resources"]["peers"]["processes"], 6, "{}", r["resources"]);
    assert_eq!(o.status.code(), Some(1), "a load with failed calls exits 1");
}
