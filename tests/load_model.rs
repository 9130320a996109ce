//! The load's pure core: load files (located mistakes), the schedule (open loop,
//! seeded), the generated population lab (through the file layer), and the report
//! (snapshots of the summary and the JSON, and its figures' consistency).

use icelab::load::report::{self, Sample};
use icelab::load::spec::PeerProcesses;
use icelab::load::{LabSource, LoadSpec, schedule};
use icelab::matrix::Config;
use icelab::scenario::PathClass;

fn parse(src: &str) -> LoadSpec {
    LoadSpec::parse("l.toml", src).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(src: &str) -> Vec<String> {
    let e = LoadSpec::parse("l.toml", src).expect_err("the load should be rejected");
    e.diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
}

fn assert_one(src: &str, line_col: &str, needle: &str) {
    let errs = errors(src);
    assert!(
        errs.iter().any(|e| e.starts_with(line_col) && e.contains(needle)),
        "wanted {line_col} `{needle}`, got {errs:#?}"
    );
}

const POP: &str = "calls = 12\nrate = 4.0\nseed = 3\n[population]\nmix = { PORT = 50, SYMM = 30, \"!UDP\" = 20 }\n";

#[test]
fn a_load_file_reads_with_defaults() {
    let s = parse("lab = \"x.toml\"\n");
    assert_eq!((s.calls, s.rate, s.concurrency, s.seed), (20, 5.0, 16, 1));
    assert_eq!(s.lab, LabSource::File("x.toml".into()));
    assert_eq!(s.peer_processes, PeerProcesses::PerHost, "built-in peers are pooled by default");
    let s = parse(POP);
    let LabSource::Population(p) = &s.lab else { panic!("a population") };
    let shares: Vec<(Config, f64)> = p.kinds.iter().map(|k| (k.config, k.share)).collect();
    assert_eq!(shares, [(Config::Port, 0.5), (Config::Symm, 0.3), (Config::NoUdp, 0.2)]);
}

#[test]
fn load_file_mistakes_are_located() {
    assert_one("calls = 0\nlab = \"x.toml\"\n", "1:9", "calls = 0 is out of range");
    assert_one("rate = -1.0\nlab = \"x.toml\"\n", "1:8", "rate = -1 is out of range");
    assert_one("lab = \"x.toml\"\narrivals = \"bursty\"\n", "2:12", "unknown arrivals `bursty`");
    assert_one("lab = \"x.toml\"\nrat = 3.0\n", "2:1", "unknown field `rat`");
    assert_one("calls = 3\n", "1:1", "the load names no lab");
    assert_one("lab = \"x.toml\"\n[population]\nmix = { PORT = 1 }\n", "1:7", "`lab` beside [population]");
    assert_one("[population]\nmix = { PORT = 1, CGNAT = 2 }\n", "2:27", "unknown kind `CGNAT`");
    assert_one("[population]\nmix = { PORT = 0.0 }\n", "2:16", "weight of PORT must be above 0");
    assert_one(
        "[population]\nhosts-per-kind = 99\nmix = { PORT = 1 }\n",
        "2:18",
        "hosts-per-kind = 99 is out of range",
    );
    assert_one("[population]\nmix = {}\n", "2:7", "the mix is empty");
    assert_one("lab = \"x.toml\"\nice-profile = \"chrome\"\n", "2:15", "unknown ice-profile `chrome`");
}

#[test]
fn the_schedule_is_open_loop_and_seeded() {
    let s = parse(POP);
    let LabSource::Population(p) = &s.lab else { panic!() };
    let a = schedule::from_population(&s, p);
    assert_eq!(a.len(), 12);
    // Uniform arrivals at 4/s: every 250 ms, whatever the lab does.
    assert!(a.iter().enumerate().all(|(i, x)| (x.at_ms - i as f64 * 250.0).abs() < 1e-9));
    // Offerers on the offering side, answerers on the answering side, kinds as drawn.
    for x in &a {
        let (ka, kb) = x.kinds.unwrap();
        assert!(x.pair.offerer.starts_with(&format!("{}-a", ka.word())), "{x:?}");
        assert!(x.pair.answerer.starts_with(&format!("{}-b", kb.word())), "{x:?}");
        assert_eq!(x.expected_path, Some(icelab::matrix::expect(ka, kb).path));
    }
    assert_eq!(a, schedule::from_population(&s, p), "same seed, same load");
    let other = LoadSpec { seed: 4, ..s.clone() };
    assert_ne!(a, schedule::from_population(&other, p), "another seed, another draw");
    // Poisson: exponential gaps with the same mean, seeded.
    let poisson =
        parse(&POP.replace("seed = 3", "seed = 3\narrivals = \"poisson\"\ncalls = 2000").replace("calls = 12\n", ""));
    let t = schedule::arrival_times(&poisson, &mut schedule::Rng::new(3));
    let mean_gap = t.last().unwrap() / (t.len() - 1) as f64;
    assert!((mean_gap - 250.0).abs() < 25.0, "mean gap {mean_gap}");
    assert!(t.windows(2).all(|w| w[1] >= w[0]));
}

#[test]
fn the_population_lab_goes_through_the_file_layer() {
    let s = parse(&POP.replace(
        "mix = {",
        "hosts-per-kind = 3\nmix = { OPEN = 1, 2CON = 1, SCON = 1, HTTP = 1, \"!TCP\" = 1, CONE = 1, ADDR = 1,",
    ));
    let LabSource::Population(p) = &s.lab else { panic!() };
    let text = p.lab_file(Some(700), Some(200));
    let spec = icelab::spec::parse_str("population", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Every kind of the matrix, three hosts on each side.
    assert_eq!(spec.topology.hosts.len(), 10 * 2 * 3);
    for k in &p.kinds {
        for side in ['a', 'b'] {
            for h in p.hosts(k.config, side) {
                assert!(spec.topology.hosts.iter().any(|x| x.name == h), "{h} missing");
            }
        }
    }
    let scn = spec.scenario.unwrap();
    assert_eq!((scn.data_ms, scn.data_rate_kbps), (700, Some(200)));
    assert_eq!(scn.turn.as_deref(), Some("relay"));
}

/// `relay = "coturn"` / `stun = "coturn"` put coturn behind the population's servers;
/// an unknown program is a located error that names the known ones.
#[test]
fn a_population_may_load_coturn() {
    use icelab::servers::{Implementation, ServiceKind};
    let s = parse(&format!("{POP}relay = \"coturn\"\nstun = \"coturn\"\n"));
    let LabSource::Population(p) = &s.lab else { panic!() };
    let text = p.lab_file(None, None);
    let spec = icelab::spec::parse_str("population", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for (server, kind) in [("relay", ServiceKind::Turn), ("stun", ServiceKind::Stun)] {
        let svc = spec.topology.servers.iter().find(|x| x.name == server).unwrap().services.clone();
        assert_eq!(svc.len(), 1, "{server}: {svc:?}");
        assert_eq!((svc[0].kind, svc[0].implementation), (kind, Implementation::Coturn), "{server}");
    }
    let built_in = parse(POP);
    let LabSource::Population(b) = &built_in.lab else { panic!() };
    assert!(!b.lab_file(None, None).contains("coturn"), "built-in by default");
    assert_one(&format!("{POP}relay = \"nginx\"\n"), "6:9", "unknown server program `nginx`");
    let errs = errors(&format!("{POP}stun = \"x\"\n"));
    assert!(errs.iter().any(|e| e.contains("stun = one of built-in, coturn") || e.contains("`x`")), "{errs:?}");
}

#[test]
fn a_population_slowdown_impairs_every_host() {
    let s = parse(&format!("{POP}impair = \"lte\"\n"));
    let LabSource::Population(p) = &s.lab else { panic!() };
    let text = p.lab_file(None, None);
    let spec = icelab::spec::parse_str("population", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(!spec.topology.hosts.is_empty());
    for h in &spec.topology.hosts {
        assert!(h.uplink.impair.is_some(), "{} is not impaired", h.name);
    }
    assert_one(&format!("{POP}impair = \"moon\"\n"), "6:10", "unknown impairment preset `moon`");
}

#[test]
fn a_starved_relay_is_the_relay_servers_cpu_limit() {
    let s = parse(&format!("{POP}relay-cpu = 0.1\n"));
    let LabSource::Population(p) = &s.lab else { panic!() };
    assert_eq!(p.relay_cpu, Some(0.1));
    let text = p.lab_file(None, None);
    let spec = icelab::spec::parse_str("population", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cpu = |name: &str| spec.topology.server(name).unwrap().cpu;
    assert_eq!((cpu("relay"), cpu("stun")), (Some(0.1), None), "only the relay is limited");
    // Whole cores are numbers too.
    let LabSource::Population(p) = parse(&format!("{POP}relay-cpu = 2\n")).lab else { panic!() };
    assert_eq!(p.relay_cpu, Some(2.0));
    assert_one(&format!("{POP}relay-cpu = 0.01\n"), "6:13", "relay-cpu = 0.01 is outside 0.05..=64 cores");
    assert_one(&format!("{POP}relay-cpu = 65.0\n"), "6:13", "relay-cpu = 65 is outside");
    assert_one(&format!("{POP}relay-cpu = \"fast\"\n"), "6:13", "");
    // The bundled starved-relay load reads, and so does its lab.
    let path = format!("{}/loads/slowdown-cpu.toml", env!("CARGO_MANIFEST_DIR"));
    let s = LoadSpec::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let LabSource::Population(p) = &s.lab else { panic!("a population") };
    assert!(p.relay_cpu.is_some_and(|c| c < 0.5), "{p:?}");
    icelab::spec::parse_str("population", &p.lab_file(None, None)).unwrap();
}

#[test]
fn a_load_may_choose_both_ends_peer() {
    assert_eq!(parse(&format!("peer = \"chromium\"\n{POP}")).peer.as_deref(), Some("chromium"));
    assert_one(&format!("peer = \"netscape\"\n{POP}"), "1:8", "unknown peer `netscape`");
    assert_eq!(parse(&format!("peer-processes = \"per-call\"\n{POP}")).peer_processes, PeerProcesses::PerCall);
    assert_one(&format!("peer-processes = \"shared\"\n{POP}"), "1:18", "unknown peer-processes `shared`");
}

#[test]
fn the_mix_predicts_the_relayed_share() {
    // PORT x PORT direct, PORT x SYMM and SYMM x SYMM relayed: 1 - 0.5 * 0.5.
    let s = parse("[population]\nmix = { PORT = 1, SYMM = 1 }\n");
    let LabSource::Population(p) = &s.lab else { panic!() };
    assert!((p.predicted_relayed_share() - 0.75).abs() < 1e-12);
}

/// A synthetic load: six calls, one of them failed, one never started, one queued.
fn synthetic() -> report::LoadReport {
    let s = parse("calls = 6\nrate = 2.0\nconcurrency = 2\nseed = 5\n[population]\nmix = { PORT = 1, SYMM = 1 }\n");
    let LabSource::Population(p) = &s.lab else { panic!() };
    let arrivals = schedule::from_population(&s, p);
    let ran = |i: usize, start: f64, setup: f64, relayed: bool| {
        let a = &arrivals[i];
        Sample {
            started_ms: Some(start),
            ended_ms: Some(start + setup + 1000.0),
            ok: true,
            failure: None,
            path: Some(if relayed { PathClass::Relayed } else { PathClass::Direct }),
            pair_type: Some(if relayed { "relay/srflx" } else { "srflx/srflx" }.into()),
            relay_transport: relayed.then(|| "udp".into()),
            gathering_ms: Some(20.0 + i as f64),
            srflx_ms: Some(3.0 + i as f64),
            relay_ms: Some(8.0 + i as f64),
            ice_ms: Some(setup - 200.0),
            dtls_ms: Some(setup - 100.0),
            open_ms: Some(setup - 40.0),
            setup_from_start_ms: Some(setup),
            bytes_sent: 125_000,
            bytes_received: 125_000,
            recv_bytes_per_sec: Some(125_000.0),
            ..Sample::not_started(a, "")
        }
    };
    let mut samples = Vec::new();
    for (i, a) in arrivals.iter().enumerate() {
        let relayed = a.expected_path == Some(PathClass::Relayed);
        samples.push(match i {
            3 => Sample {
                ended_ms: Some(a.at_ms + 13_000.0),
                ..Sample { failure: Some("timeout: timeout in ice".into()), ..Sample::not_started(a, "") }
            },
            4 => Sample::not_started(a, "not started: time bound"),
            // Queued for a slot: 700 ms.
            2 => ran(i, a.at_ms + 700.0, 900.0, relayed),
            _ => ran(i, a.at_ms, 400.0 + 100.0 * i as f64, relayed),
        });
    }
    // The failed call did start (and ran until its deadline).
    samples[3].started_ms = Some(samples[3].scheduled_ms);
    report::build("loads/synthetic.toml", "ldsnap", &s, (210.0, "webrtc-rs"), samples)
}

#[test]
fn the_report_matches_the_snapshots() {
    let r = synthetic();
    insta::assert_snapshot!("load-summary", report::render(&r));
    insta::assert_snapshot!("load-json", serde_json::to_string_pretty(&r).unwrap());
}

#[test]
fn the_report_figures_are_consistent() {
    let r = synthetic();
    assert_eq!((r.calls, r.started, r.passed), (6, 5, 4));
    assert_eq!(r.failures.iter().map(|f| f.1).sum::<usize>(), r.calls - r.passed);
    let queue = r.setup.iter().find(|s| s.name.starts_with("queue")).unwrap();
    assert_eq!((queue.count, queue.p99), (5, 700.0));
    let from_arrival = r.setup.iter().find(|s| s.name == "setup from arrival").unwrap();
    let from_start = r.setup.iter().find(|s| s.name == "setup from start").unwrap();
    assert!(from_arrival.p99 >= from_start.p99);
    assert_eq!(r.by_pair_type.iter().map(|g| g.calls).sum::<usize>(), r.passed);
    let rs = r.relay_share.as_ref().unwrap();
    assert_eq!(rs.mismatched, 0);
    assert_eq!(rs.observed, rs.predicted_by_pairs);
    assert_eq!(rs.by_kinds.iter().map(|k| k.calls).sum::<usize>(), r.calls);
    assert_eq!(r.per_second.iter().map(|s| s.offered).sum::<usize>(), r.calls);
    assert_eq!(r.per_second.iter().map(|s| s.opened).sum::<usize>(), r.passed);
    assert!(r.peak_concurrency >= 1 && r.peak_concurrency <= r.calls);
    assert!(!r.server_side.measured);
    assert!(!r.resources.measured, "the pure report reads no processes");
}

/// A TURN server's cumulative sample at `at` (Unix ms): `allocate_us` Allocate answers,
/// timed so.
fn allocate_sample(at: u64, allocate_us: &[u64]) -> icelab::servers::stats::ServerStats {
    let mut h = icelab::servers::latency::Histogram::default();
    allocate_us.iter().for_each(|us| h.record(*us));
    icelab::servers::stats::ServerStats {
        at_unix_ms: at,
        allocations: allocate_us.len() as u64,
        answer_latency_us: icelab::servers::latency::ByMethod::from([("Allocate".to_string(), h)]),
        ..Default::default()
    }
}

/// TURN server `relay`'s figures of `implementation` from its samples (the last: the run).
fn relay_figures(
    implementation: icelab::servers::Implementation,
    samples: &[icelab::servers::stats::ServerStats],
) -> icelab::servers::stats::ServerFigures {
    icelab::servers::stats::ServerFigures {
        server: "relay".into(),
        service: icelab::servers::ServiceKind::Turn,
        implementation,
        stats: samples.last().cloned().unwrap_or_default(),
        samples: samples.to_vec(),
        note: None,
    }
}

/// The servers' own figures in the report: the built-in server's answer latencies by
/// method, whole-run and per span (histograms differenced); coturn's said unmeasured.
#[test]
fn server_latencies_are_reported_by_method() {
    use icelab::servers::Implementation;
    use icelab::servers::stats::ServerFigures;
    let timed = [200, 200, 300, 40_000];
    let samples = [allocate_sample(1_000, &[]), allocate_sample(2_000, &timed[..3]), allocate_sample(3_000, &timed)];
    let built_in = relay_figures(Implementation::BuiltIn, &samples);
    let last_span = samples[2].since(&samples[1]).answer_latency_us;
    assert_eq!(last_span["Allocate"].count(), 1, "the span holds the one answer timed in it");
    let coturn = ServerFigures { server: "relay2".into(), implementation: Implementation::Coturn, ..built_in.clone() };
    let mut r = synthetic();
    r.server_side = report::ServerSide::from_figures(vec![built_in, coturn]);
    let l = &r.server_side.latencies;
    assert_eq!((l[0].measured, l[1].measured), (true, false));
    let a = &l[0].methods[0];
    assert_eq!((a.method.as_str(), a.count), ("Allocate", 4));
    assert!((a.p50_ms - 0.2).abs() < 0.01 && (a.p99_ms - 40.0).abs() < 2.0, "{a:?}");
    let text = report::render(&r);
    assert!(text.contains("relay answer latency (the server's own time"), "{text}");
    assert!(text.contains("Allocate") && text.contains("relay2: latency not measured (coturn)"), "{text}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["server_side"]["latencies"][0]["methods"][0]["count"], 4);
    let html = icelab::load::html::render(&r);
    assert!(html.contains("server relay: answer latency p50/p95/p99 ms") && html.contains("Allocate x4"), "{html}");
    assert!(html.contains("server relay2: latency not measured (coturn)"));
}

/// A phase holds the answers timed in its span of time: the first reaches back to the
/// server's start, the last to its last sample, a bound takes the last sample at or
/// before it, and a phase that never began holds none; the counts add up to the whole.
#[test]
fn phases_hold_the_server_answers_of_their_span() {
    use icelab::load::report::{Phase, add_server_latencies};
    use icelab::servers::Implementation;
    // Cumulative samples: 2 fast answers by 10.5 s, 4 by 12.1 s, 6 by 13.5 s (the last two slow).
    let all = [100, 100, 100, 100, 50_000, 50_000];
    let samples =
        [allocate_sample(10_500, &all[..2]), allocate_sample(12_100, &all[..4]), allocate_sample(13_500, &all)];
    let fig = |implementation| relay_figures(implementation, &samples);
    let phase = |cause: &str, from_ms: f64| Phase {
        cause: cause.into(),
        from_ms,
        error: None,
        calls: 0,
        passed: 0,
        stats: Vec::new(),
        server_latencies: Vec::new(),
    };
    // t0 at 10 s: phases from 0 (to 12.0 s: the 10.5 s sample), 2.0 s (12.0-12.5 s: the
    // 12.1 s sample's two), a never-applied event, and 2.5 s (to the end: the slow two).
    let mut p = vec![phase("start", 0.0), phase("a", 2000.0), phase("never", f64::NAN), phase("b", 2500.0)];
    add_server_latencies(&mut p, &[fig(Implementation::BuiltIn), fig(Implementation::Coturn)], 10_000);
    let counts: Vec<Vec<u64>> = p
        .iter()
        .map(|ph| ph.server_latencies.iter().flat_map(|l| l.methods.iter().map(|m| m.count)).collect())
        .collect();
    assert_eq!(counts, [vec![2], vec![2], vec![], vec![2]], "coturn does not time answers: {p:?}");
    assert!(p[1].server_latencies[0].methods[0].p99_ms < 0.2, "{:?}", p[1]);
    assert!((p[3].server_latencies[0].methods[0].p99_ms - 50.0).abs() < 3.0, "{:?}", p[3]);
    // A span with no answer still names its server.
    let mut quiet = vec![phase("start", 0.0), phase("late", 9000.0)];
    add_server_latencies(&mut quiet, &[fig(Implementation::BuiltIn)], 10_000);
    assert_eq!(quiet[1].server_latencies[0].methods, []);
    let r = report::LoadReport { phases: p, ..synthetic() };
    let text = report::render(&r);
    assert!(text.contains("relay answers in this span (p50/p95/p99 ms): Allocate x2"), "{text}");
    let html = icelab::load::html::render(&r);
    assert!(html.contains("<h3>from 2.5 s: b, 0 calls, 0 passed</h3>"), "{html}");
    assert!(html.contains("server relay answers in this span (p50/p95/p99 ms): Allocate x2"), "{html}");
}

fn icelab(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_icelab")).args(args).output().expect("run icelab")
}

/// Without root: a bad load file is bad input (exit 2, located), and `--dry-run` shows
/// the schedule of the shipped loads.
#[test]
fn the_cli_reads_load_files() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "calls = 3\nrate = 0.0\nlab = \"x.toml\"\n").unwrap();
    let o = icelab(&["load", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bad.toml:2:8") && err.contains("rate = 0 is out of range"), "{err}");
    for file in ["ci.toml", "mixed.toml", "homes.toml", "slowdown-cpu.toml", "slowdown-cpu-event.toml", "coturn.toml"] {
        let path = format!("{}/loads/{file}", env!("CARGO_MANIFEST_DIR"));
        let o = icelab(&["load", &path, "--dry-run", "--json", "--calls", "7"]);
        assert_eq!(o.status.code(), Some(0), "{file}: {}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["arrivals"].as_array().unwrap().len(), 7, "{file}");
        let hosts: Vec<&str> = v["hosts"].as_array().unwrap().iter().map(|h| h.as_str().unwrap()).collect();
        for a in v["arrivals"].as_array().unwrap() {
            assert!(hosts.contains(&a["pair"]["offerer"].as_str().unwrap()), "{file}: {a}");
            assert!(hosts.contains(&a["pair"]["answerer"].as_str().unwrap()), "{file}: {a}");
        }
    }
    let o = icelab(&["load", bad.to_str().unwrap(), "--rate", "5", "--dry-run"]);
    assert_eq!(o.status.code(), Some(2), "the file is checked before the flags");
}

/// The HTML report: self-contained, a dot per call that has a setup time, a pair of
/// bars per second, and it renders in headless Chromium (installed by `scripts/setup`).
#[test]
fn the_html_report_charts_setup_against_the_offered_rate() {
    let r = synthetic();
    let html = icelab::load::html::render(&r);
    for banned in ["<script", "src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(banned), "the page must fetch nothing: {banned}");
    }
    let with_setup = r.samples.iter().filter(|s| s.setup_from_arrival_ms().is_some()).count();
    assert_eq!(with_setup, 4, "the synthetic load's four connected calls");
    assert_eq!(html.matches("<circle class=\"call ok\"").count(), with_setup);
    assert_eq!(html.matches("<rect class=\"offered\"").count(), r.per_second.len());
    assert_eq!(html.matches("<rect class=\"opened\"").count(), r.per_second.len());
    assert!(html.contains("<polyline class=\"p95\""));
    assert!(html.contains("timeout: timeout in ice"), "the failures table");
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("load.html");
    std::fs::write(&page, &html).unwrap();
    let dom = std::process::Command::new("timeout")
        .args(["60", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("running chromium (install it: scripts/setup)");
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("id=\"setup-chart\""), "the page did not load: {dom:.300}");
    assert_eq!(dom.matches("class=\"call ok\"").count(), with_setup);
}

/// Phases cut the calls at each applied event by arrival time; an event that never
/// applied is shown with no calls of its own.
#[test]
fn phases_cut_the_calls_at_each_applied_event() {
    use icelab::load::report::{Sample, phases};
    let arrival = |i: usize, at: f64| icelab::load::Arrival {
        index: i,
        at_ms: at,
        pair: icelab::scenario::CallPair { offerer: "a".into(), answerer: "b".into() },
        kinds: None,
        expected_path: None,
    };
    let samples: Vec<Sample> = [0.0, 500.0, 1000.0, 1500.0]
        .iter()
        .enumerate()
        .map(|(i, at)| Sample::not_started(&arrival(i, *at), "x"))
        .collect();
    assert!(phases(&samples, &[]).is_empty());
    let applied = |index: usize, what: &str, applied_ms: Option<f64>, error: Option<&str>| icelab::timeline::Applied {
        index,
        at_ms: 900,
        what: what.into(),
        applied_ms,
        took_ms: None,
        ops: Vec::new(),
        error: error.map(str::to_string),
    };
    let events = vec![applied(1, "impair relay", Some(900.0), None), applied(2, "turn restart", None, Some("boom"))];
    let p = phases(&samples, &events);
    let got: Vec<(&str, usize)> = p.iter().map(|x| (x.cause.as_str(), x.calls)).collect();
    assert_eq!(got, [("start", 2), ("impair relay", 2), ("turn restart", 0)]);
    assert_eq!(p[2].error.as_deref(), Some("boom"));
}

/// A load file's `[[event]]`s are the timeline's actions against the load's lab, with
/// located errors; asking to judge one is an error (a load only changes the lab).
#[test]
fn load_events_are_checked_against_the_lab() {
    let lab = icelab::spec::parse_str(
        "lab.toml",
        "[host.a]\non = \"internet\"\n[host.b]\non = \"internet\"\n[server.relay]\nservices = [\"turn\"]\nimpair = \"wifi\"\n[scenario]\nofferer = \"a\"\nanswerer = \"b\"\n",
    )
    .unwrap();
    let ok = "calls = 4\nlab = \"lab.toml\"\n[[event]]\nat-ms = 100\nimpair = { node = \"relay\", impair = \"lte\" }\n";
    let events = icelab::spec::load_events("l.toml", ok, &lab.topology).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at_ms, 100);
    let judged = format!("{ok}expect = \"recovers\"\n");
    let e = icelab::spec::load_events("l.toml", &judged, &lab.topology).unwrap_err().to_string();
    assert!(e.contains("l.toml:6:10") && e.contains("a load's [[event]] is not judged"), "{e}");
    let unknown = ok.replace("\"relay\"", "\"nobody\"");
    let e = icelab::spec::load_events("l.toml", &unknown, &lab.topology).unwrap_err().to_string();
    assert!(e.contains("l.toml:5:") && e.contains("nobody"), "{e}");
    // The load file itself accepts the table.
    assert!(icelab::load::spec::LoadSpec::parse("l.toml", ok).is_ok());
}

/// The relay's bytes against the relayed calls' ends: its STUN (the peers' checks) left
/// out when it counts them apart, everything compared when it does not (coturn).
#[test]
fn relay_bytes_are_set_against_the_relayed_ends() {
    use icelab::peer::TransportStats;
    use icelab::servers::stats::{Flow, ServerFigures, ServerStats};
    use icelab::servers::{Implementation, ServiceKind};
    let mut r = synthetic();
    let ends = TransportStats { packets_sent: 100, bytes_sent: 100_000, packets_received: 90, bytes_received: 90_000 };
    for s in r.samples.iter_mut().filter(|s| s.path == Some(PathClass::Relayed)) {
        s.via_relay = Some(ends);
    }
    let relayed = r.samples.iter().filter(|s| s.via_relay.is_some()).count() as u64;
    assert!(relayed > 0);
    let stats = ServerStats {
        to_peers: Flow { packets: 0, bytes: relayed * 100_000 + 5_000 + 400 },
        from_peers: Flow { packets: 0, bytes: relayed * 90_000 + 3_000 },
        to_peers_stun: Some(Flow { packets: 50, bytes: 5_000 }),
        from_peers_stun: Some(Flow { packets: 30, bytes: 3_000 }),
        ..Default::default()
    };
    let fig = ServerFigures {
        server: "relay".into(),
        service: ServiceKind::Turn,
        implementation: Implementation::BuiltIn,
        stats: stats.clone(),
        samples: vec![stats.clone()],
        note: None,
    };
    r.server_side = report::ServerSide::from_figures(vec![fig.clone()]);
    let a = report::RelayAccounting::new(&r.samples, &r.server_side).expect("relayed calls and relay figures");
    assert_eq!((a.calls, a.counted.as_str()), (relayed as usize, "DTLS datagrams"));
    assert_eq!((a.relay_to_peers_bytes, a.peers_sent_bytes), (relayed * 100_000 + 400, relayed * 100_000));
    assert_eq!(a.received_diff_pct, 0.0);
    assert!((a.sent_diff_pct - 400.0 * 100.0 / (relayed as f64 * 100_000.0)).abs() < 1e-9, "{a:?}");
    r.relay_accounting = Some(a);
    assert!(report::render(&r).contains("relay vs the"), "{}", report::render(&r));
    // Without the STUN split, the checks stay in the relay's figures.
    let plain = ServerStats { to_peers_stun: None, from_peers_stun: None, ..stats };
    let coturn = ServerFigures { implementation: Implementation::Coturn, stats: plain, ..fig };
    let side = report::ServerSide::from_figures(vec![coturn]);
    let a = report::RelayAccounting::new(&r.samples, &side).unwrap();
    assert_eq!((a.counted.as_str(), a.relay_to_peers_bytes), ("all datagrams", relayed * 100_000 + 5_400));
    // No relay figures: nothing to set against.
    assert!(report::RelayAccounting::new(&r.samples, &synthetic().server_side).is_none());
}
