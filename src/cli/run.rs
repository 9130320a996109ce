//! `icelab run` (a topology's scenario, judged), and the processes it starts:
//! `icelab peer` and `icelab turn-server` (hidden).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;

use icelab::fabric::registry;
use icelab::peer::{IceProfile, PeerConfig, PeerKind, SelectedPair, run_peer};
use icelab::scenario::{self, RunReport};
use icelab::turn::{TurnServerConfig, serve_turn};
use ipnet::IpNet;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{BAD_INPUT, FAILED, Interrupts, fail, load, print_json};

/// Options of `icelab run`.
pub struct RunArgs {
    /// Machine-readable output.
    pub json: bool,
    /// Number of runs.
    pub repeat: u32,
    /// Lab name (each run reuses it: runs are sequential).
    pub name: Option<String>,
    /// Keep the lab after the run.
    pub keep: bool,
    /// `--peers A[,B]`: the peer kinds for offerer and answerer.
    pub peers: Option<String>,
    /// `--ice-profile`: the built-in peer's ICE profile.
    pub ice_profile: Option<String>,
}

/// `--peers A[,B]` -> (offerer, answerer).
fn parse_peers(arg: &str) -> Result<(PeerKind, PeerKind), String> {
    let kinds: Vec<PeerKind> = arg.split(',').map(|w| PeerKind::from_name(w.trim())).collect::<Result<_, _>>()?;
    // `--peers A,B`: one or two kinds; a command peer's words are split on whitespace.
    match kinds.as_slice() {
        [one] => Ok((one.clone(), one.clone())),
        [a, b] => Ok((a.clone(), b.clone())),
        _ => Err(format!("--peers takes one or two peer kinds, got `{arg}`")),
    }
}

pub async fn run(file: &Path, args: RunArgs) -> ExitCode {
    let mut topo = match load(file, args.json) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let Some(scn) = topo.scenario.take() else {
        return fail(BAD_INPUT, format!("{}: no [scenario] to run", file.display()));
    };
    let scn = match args.peers.as_deref().map(parse_peers) {
        None => scn,
        Some(Ok((a, b))) => scn.with_peers(a, b),
        Some(Err(e)) => return fail(BAD_INPUT, e),
    };
    let scn = match args.ice_profile.as_deref() {
        None => scn,
        Some("webrtc-rs") => scn.with_ice_profile(IceProfile::WebrtcRs),
        Some("browser-like") => scn.with_ice_profile(IceProfile::BrowserLike),
        Some(other) => {
            return fail(BAD_INPUT, format!("unknown --ice-profile `{other}`: use webrtc-rs or browser-like"));
        }
    };
    // A peer program that is missing here is bad input, found before any lab is built.
    if let Err(e) = scn.check_peers() {
        return fail(BAD_INPUT, e);
    }
    topo.scenario = Some(scn);
    if args.repeat == 0 || (args.keep && args.repeat > 1) {
        return fail(BAD_INPUT, "--repeat must be >= 1, and --keep needs a single run");
    }
    let name = args.name.unwrap_or_else(registry::random_name);
    if let Err(e) = registry::check_name(&name) {
        return fail(BAD_INPUT, e);
    }
    // Handlers before the first build, so a signal never leaves a half-built lab.
    let interrupted = match Interrupts::install() {
        Ok(i) => i.wait(),
        Err(e) => return fail(FAILED, format!("cannot install signal handlers: {e}")),
    };
    tokio::pin!(interrupted);
    let tty = std::io::stderr().is_terminal();
    let mut reports = Vec::new();
    let mut errors = 0;
    for i in 0..args.repeat {
        let progress = |n: usize, step: &icelab::plan::Step| {
            if tty {
                eprint!("\r\x1b[K[{}] {step}", n + 1);
            }
        };
        // Dropping the run (on a signal) drops its lab and peers, which tears them down.
        let r = tokio::select! {
            r = scenario::run_scenario(&topo, &name, args.keep, progress) => r,
            s = &mut interrupted => {
                if tty { eprintln!(); }
                return fail(FAILED, format!("interrupted by {s}; the lab was torn down"));
            }
        };
        if tty {
            eprint!("\r\x1b[K");
        }
        match r {
            Ok(rep) => {
                if args.repeat > 1 {
                    eprintln!("run {}/{}: {}", i + 1, args.repeat, one_line(&rep));
                }
                reports.push(rep);
            }
            Err(e) => {
                errors += 1;
                eprintln!("icelab: run {}/{}: {e:#}", i + 1, args.repeat);
            }
        }
    }
    let passed = reports.iter().filter(|r| r.verdict.pass).count();
    if args.repeat == 1 {
        let Some(rep) = reports.first() else {
            return ExitCode::from(FAILED);
        };
        if args.json {
            print_json(rep);
        } else {
            print_report(file, rep);
        }
    } else {
        summarize(&reports, args.repeat, errors, args.json);
    }
    if passed == args.repeat as usize { ExitCode::SUCCESS } else { ExitCode::from(FAILED) }
}

fn pair_text(p: &SelectedPair, relay: Option<String>) -> String {
    let side = |c: &icelab::peer::CandidateInfo| {
        let real = if c.base_type != c.candidate_type { format!(" (really {})", c.base_type) } else { String::new() };
        format!("{}{real} {} {}:{}", c.candidate_type, c.protocol, c.address, c.port)
    };
    let relay = relay.map_or(String::new(), |r| format!("  [relayed over {r}]"));
    format!("{}  <->  {}{relay}", side(&p.local), side(&p.remote))
}

fn short_pair(rep: &RunReport) -> String {
    rep.outcome
        .offerer
        .selected_pair
        .as_ref()
        .map_or("no pair".into(), |p| format!("{}/{}", p.local.candidate_type, p.remote.candidate_type))
}

fn one_line(rep: &RunReport) -> String {
    let t = &rep.timings;
    let f = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    format!(
        "{} {} ice {} ms, open {} ms, total {} ms{}",
        if rep.verdict.pass { "PASS" } else { "FAIL" },
        short_pair(rep),
        f(t.ice_ms),
        f(t.connect_ms),
        f(t.total_ms),
        rep.verdict.failures().iter().map(|l| format!("\n    {l}")).collect::<String>()
    )
}

fn print_report(file: &Path, rep: &RunReport) {
    let s = &rep.scenario;
    let none = || "-".to_string();
    println!(
        "{}: {} -> {} (stun: {}, turn: {}, policy: {:?})",
        file.display(),
        s.offerer,
        s.answerer,
        if s.stun.is_empty() { none() } else { s.stun.join(", ") },
        s.turn.clone().unwrap_or_else(none),
        s.policy
    );
    println!("outcome: {}", scenario::describe_outcome(&rep.outcome));
    match &rep.outcome.offerer.selected_pair {
        Some(p) => {
            println!("selected pair (offerer's view): {}", pair_text(p, scenario::relay_transport(&rep.outcome)))
        }
        None => println!("selected pair: none"),
    }
    for (name, unit, v) in rep.timings.fields() {
        if let Some(v) = v {
            println!("  {name:<20} {v:>12.1} {unit}");
        }
    }
    print_events(rep);
    for c in &rep.verdict.checks {
        let mark = if c.ok { "ok  " } else { "FAIL" };
        println!("  {mark} {:<16} expected {}, observed {}", c.name, c.expected, c.observed);
    }
    if !rep.outcome.ok() {
        for (who, err) in [("offerer", &rep.offerer_stderr), ("answerer", &rep.answerer_stderr)] {
            if !err.trim().is_empty() {
                eprintln!("--- {who} stderr (tail) ---\n{}", err.trim_end());
            }
        }
    }
    if rep.kept {
        println!("lab {} kept; `icelab down {}` removes it", rep.lab, rep.lab);
    }
    if rep.verdict.pass {
        println!("PASS");
    } else {
        for l in rep.verdict.failures() {
            println!("FAIL: {l}");
        }
    }
}

/// One block per timeline event: when it was applied, what it did, how the call fared.
fn print_events(rep: &RunReport) {
    if rep.events.is_empty() {
        return;
    }
    println!("timeline (ms after the data channel opened):");
    for e in &rep.events {
        let at = e.applied_ms.map_or("   -".into(), |t| format!("{t:>6.0}"));
        println!("  #{} @{at} ms  {:<36} {}", e.index, e.what, e.observed());
        if let Some(s) = e.stall_ms {
            println!("        data stalled {s:.0} ms");
        }
        for l in &e.ice {
            println!("        ice: {l}");
        }
        for l in &e.ice_restarts {
            println!("        ice restart: {l}");
        }
        if let Some(p) = &e.selected_pair {
            let changed = if e.pair_changed == Some(true) { " (changed)" } else { "" };
            println!("        pair after: {}{changed}", pair_text(p, None));
        }
    }
}

fn summarize(reports: &[RunReport], repeat: u32, errors: usize, json: bool) {
    let passed = reports.iter().filter(|r| r.verdict.pass).count();
    let timings: Vec<_> = reports.iter().map(|r| r.timings.clone()).collect();
    let pct = scenario::percentiles(&timings);
    let mut pairs: BTreeMap<String, usize> = BTreeMap::new();
    for r in reports {
        *pairs.entry(short_pair(r)).or_default() += 1;
    }
    if json {
        print_json(&serde_json::json!({
            "runs": reports,
            "repeat": repeat,
            "passed": passed,
            "errors": errors,
            "success_rate": passed as f64 / repeat as f64,
            "selected_pairs": pairs,
            "percentiles": pct,
        }));
        return;
    }
    println!(
        "{passed}/{repeat} runs passed ({:.0}%){}",
        100.0 * passed as f64 / repeat as f64,
        if errors > 0 { format!(", {errors} could not run") } else { String::new() }
    );
    let pairs: Vec<String> = pairs.iter().map(|(p, n)| format!("{p} x{n}")).collect();
    println!("selected pairs (local/remote): {}", pairs.join(", "));
    println!("  {:<20} {:>10} {:>10} {:>5}", "timing", "p50", "p95", "n");
    for p in &pct {
        println!("  {:<20} {:>10.1} {:>10.1} {:>5}  {}", p.name, p.p50, p.p95, p.count, p.unit);
    }
}

/// `icelab peer`: one WebRTC peer over stdin/stdout (the built-in side of the peer
/// contract). The config comes from `--config`, else `$ICELAB_PEER_CONFIG`, else the first
/// stdin line.
pub async fn peer(config: Option<String>, silent: bool) -> ExitCode {
    let mut input = BufReader::new(tokio::io::stdin());
    let text = match config.or_else(|| std::env::var(icelab::peer::driver::CONFIG_ENV).ok()) {
        Some(c) => c,
        None => {
            let mut line = String::new();
            if let Err(e) = input.read_line(&mut line).await {
                return fail(BAD_INPUT, format!("reading the config line: {e}"));
            }
            line
        }
    };
    let cfg: PeerConfig = match serde_json::from_str(&text) {
        Ok(c) => c,
        Err(e) => return fail(BAD_INPUT, format!("bad peer config: {e}")),
    };
    if silent || cfg.test_silent {
        // Test hook: a peer that never answers; it runs until it is killed.
        let mut lines = input.lines();
        while let Ok(Some(_)) = lines.next_line().await {}
        std::future::pending::<()>().await;
        return ExitCode::SUCCESS;
    }
    match run_peer(cfg, input, tokio::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

/// `icelab turn-server`: TURN on UDP 3478, TCP 3478 and TLS 443 of `public_ip`.
pub async fn turn_server(
    public_ip: IpAddr,
    realm: String,
    user: String,
    password: String,
    allow: Vec<IpNet>,
) -> ExitCode {
    let cfg = TurnServerConfig {
        realm,
        username: user,
        password,
        public_ip,
        bind_ip: public_ip,
        allowed_peer_subnets: allow,
        ..Default::default()
    };
    // All three listeners or none: peers behind UDP-blocking firewalls rely on TCP/TLS,
    // so a half-started server would fail their calls for a reason nobody sees.
    let handle = match serve_turn(cfg).await {
        Ok(h) => h,
        Err(e) => return fail(FAILED, format!("TURN server (UDP 3478, TCP 3478, TLS 443): {e:#}")),
    };
    println!("ready");
    // Runs until the lab kills it.
    std::future::pending::<()>().await;
    drop(handle);
    ExitCode::SUCCESS
}
