//! `icelab run` (a topology's scenario, judged), and the processes it starts:
//! `icelab peer` and `icelab turn-server` (hidden).

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use icelab::counters::StatsFile;
use icelab::fabric::registry;
use icelab::peer::{IceProfile, PeerConfig, PeerKind, run_peer};
use icelab::report::{self, Report, table};
use icelab::turn::{TurnServerConfig, serve_turn};
use ipnet::IpNet;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::error::{CliError, CliResult, Done, Kind, OrKind};
use super::out::{self, errln, outln};
use super::{Interrupts, load};

/// Where to write the report besides the terminal.
#[derive(Default)]
pub(crate) struct ReportFiles {
    /// JUnit XML.
    pub junit: Option<PathBuf>,
    /// Self-contained HTML.
    pub html: Option<PathBuf>,
    /// The report model as JSON.
    pub json: Option<PathBuf>,
}

/// Options of `icelab run`.
pub(crate) struct RunArgs {
    /// Machine-readable output.
    pub json: bool,
    /// Prove the lab before the call.
    pub verify: bool,
    /// Number of runs.
    pub repeat: u32,
    /// Lab name (each run reuses it: runs are sequential).
    pub name: Option<String>,
    /// Keep the lab after the run.
    pub keep: bool,
    /// `--capture DIR`: a pcap per link and the peers' events.
    pub capture: Option<PathBuf>,
    /// Report files to write.
    pub files: ReportFiles,
    /// `--peers A[,B]`: the peer kinds for offerer and answerer.
    pub peers: Option<String>,
    /// `--ice-profile`: the built-in peer's ICE profile.
    pub ice_profile: Option<String>,
}

/// `--peers A[,B]` -> (offerer, answerer); a command peer's words are split on whitespace.
fn parse_peers(arg: &str) -> Result<(PeerKind, PeerKind), String> {
    let kinds: Vec<PeerKind> = arg.split(',').map(|w| PeerKind::from_name(w.trim())).collect::<Result<_, _>>()?;
    match kinds.as_slice() {
        [one] => Ok((one.clone(), one.clone())),
        [a, b] => Ok((a.clone(), b.clone())),
        _ => Err(format!("--peers takes one or two peer kinds, got `{arg}`")),
    }
}

pub(crate) async fn run(file: &Path, args: RunArgs) -> CliResult {
    let mut spec = load(file)?;
    let Some(scn) = spec.scenario.take() else {
        return Err(CliError::bad_input(format!("{}: no [scenario] to run", file.display())));
    };
    let scn = match args.peers.as_deref().map(parse_peers) {
        None => scn,
        Some(Ok((a, b))) => scn.with_peers(a, b),
        Some(Err(e)) => return Err(CliError::bad_input(e)),
    };
    let scn = match args.ice_profile.as_deref() {
        None => scn,
        Some("webrtc-rs") => scn.with_ice_profile(IceProfile::WebrtcRs),
        Some("browser-like") => scn.with_ice_profile(IceProfile::BrowserLike),
        Some(other) => {
            return Err(CliError::bad_input(format!("unknown --ice-profile `{other}`: use webrtc-rs or browser-like")));
        }
    };
    // A peer program that is missing here is bad input, found before any lab is built.
    scn.check_peers().map_err(CliError::bad_input)?;
    icelab::servers::check_programs(&spec.topology).map_err(CliError::bad_input)?;
    spec.scenario = Some(scn);
    if args.repeat == 0 || (args.keep && args.repeat > 1) {
        return Err(CliError::bad_input("--repeat must be >= 1, and --keep needs a single run"));
    }
    let name = args.name.unwrap_or_else(registry::random_name);
    super::new_lab_name(&name)?;
    super::require_root()?;
    // Handlers before the first build, so a signal never leaves a half-built lab.
    let interrupted = Interrupts::install()?.wait();
    tokio::pin!(interrupted);
    let tty = std::io::stderr().is_terminal();
    let style = table::Style::from_env(std::io::stdout().is_terminal(), std::env::var("NO_COLOR").ok().as_deref());
    let source = file.display().to_string();
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    // Every run places each of the scenario's calls.
    let asked = args.repeat * spec.scenario.as_ref().map_or(1, |s| s.calls.len() as u32);
    let options = |i: u32| {
        let capture = match &args.capture {
            Some(dir) if args.repeat > 1 => Some(dir.join(format!("run-{}", i + 1))),
            other => other.clone(),
        };
        icelab::call::RunOptions { keep: args.keep, verify: args.verify, capture }
    };
    for i in 0..args.repeat {
        let progress = |n: usize, step: &icelab::plan::Step| {
            if tty {
                out::err_text(&format!("\r\x1b[K[{}] {step}", n + 1));
            }
        };
        // Dropping the run (on a signal) drops its lab and peers, which tears them down.
        let r = tokio::select! {
            r = icelab::call::run_scenario(&spec, &name, options(i), progress) => r,
            s = &mut interrupted => {
                if tty { errln!(); }
                return Err(CliError::could_not_run(format!("interrupted by {s}; the lab was torn down")));
            }
        };
        if tty {
            out::err_text("\r\x1b[K");
        }
        match r {
            Ok(reps) => {
                if asked > 1 {
                    for rep in &reps {
                        let one = icelab::report::Call::from_run(rep);
                        let call = if reps.len() > 1 { format!(", {}", rep.pair) } else { String::new() };
                        errln!("run {}/{}{call}: {}", i + 1, args.repeat, table::one_line(&one, style));
                    }
                }
                runs.extend(reps);
            }
            Err(e) => {
                errln!("icelab: run {}/{}: {e:#}", i + 1, args.repeat);
                errors.push(format!("{e:#}"));
            }
        }
    }
    let model = Report::from_runs(&source, &runs, asked, errors.clone());
    write_files(&model, &args.files)?;
    if args.json {
        print_raw_json(&runs, &model, args.repeat);
    } else if !runs.is_empty() || asked > 1 {
        out::text(&table::render(&model, style));
        for c in model.calls.iter().filter(|_| asked == 1) {
            for s in &c.stderr {
                errln!("--- {} stderr (tail) ---\n{}", s.peer, s.text);
            }
        }
    }
    if let Some(dir) = args.capture.as_ref().filter(|_| !runs.is_empty()) {
        let files = runs[0].capture.len();
        errln!("captured: {files} pcap file(s) (one per link) and events.jsonl per run, in {}", dir.display());
    }
    // A failed expectation is a finding (1) even when other runs could not be done.
    if model.calls.iter().any(|c| !c.pass) {
        return Ok(Done::CheckFailed);
    }
    if !errors.is_empty() {
        let n = errors.len();
        let msg =
            if args.repeat == 1 { errors.remove(0) } else { format!("{n}/{} runs could not be done", args.repeat) };
        return Err(CliError::could_not_run(msg));
    }
    Ok(Done::Ok)
}

/// `--json`: one run's raw results (as before), or the runs with their summary.
fn print_raw_json(runs: &[icelab::call::RunReport], model: &Report, repeat: u32) {
    match (&model.summary, runs.first()) {
        (None, Some(rep)) => out::json(rep),
        (None, None) => {}
        (Some(s), _) => out::json(&serde_json::json!({
            "runs": runs,
            "repeat": repeat,
            "passed": s.passed,
            "errors": s.errors,
            "success_rate": s.passed as f64 / repeat as f64,
            "selected_pairs": s.selected_pairs.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
            "percentiles": s.timings,
        })),
    }
}

/// Writes the report files that were asked for.
fn write_files(model: &Report, files: &ReportFiles) -> Result<(), CliError> {
    type Renderer = fn(&Report) -> String;
    let outputs: [(&Option<PathBuf>, Renderer); 3] =
        [(&files.junit, report::junit::render), (&files.html, report::html::render), (&files.json, report::json)];
    for (path, render) in outputs {
        if let Some(p) = path {
            std::fs::write(p, render(model))
                .map_err(|e| CliError::could_not_run(format!("writing {}: {e}", p.display())))?;
        }
    }
    Ok(())
}

/// `icelab peer`: one WebRTC peer over stdin/stdout (the built-in side of the peer
/// contract). The config comes from `--config`, else `$ICELAB_PEER_CONFIG`, else the first
/// stdin line.
pub(crate) async fn peer(config: Option<String>, silent: bool) -> CliResult {
    let mut input = BufReader::new(tokio::io::stdin());
    let text = match config.or_else(|| std::env::var(icelab::peer::driver::CONFIG_ENV).ok()) {
        Some(c) => c,
        None => {
            let mut line = String::new();
            input
                .read_line(&mut line)
                .await
                .map_err(|e| CliError::bad_input(format!("reading the config line: {e}")))?;
            line
        }
    };
    let cfg: PeerConfig =
        serde_json::from_str(&text).map_err(|e| CliError::bad_input(format!("bad peer config: {e}")))?;
    if silent || cfg.test_silent {
        // Test hook: a peer that never answers; it runs until it is killed.
        let mut lines = input.lines();
        while let Ok(Some(_)) = lines.next_line().await {}
        std::future::pending::<()>().await;
        return Ok(Done::Ok);
    }
    // A failed call is exit 1 (the peer contract); its events say why.
    run_peer(cfg, input, tokio::io::stdout()).await.or_kind(Kind::Failed)?;
    Ok(Done::Ok)
}

/// `icelab peer --pool`: the built-in peer for many calls at once (`icelab::peer::pool_wire`).
pub(crate) async fn peer_pool() -> CliResult {
    raise_open_files();
    let input = BufReader::new(tokio::io::stdin());
    icelab::peer::run_pool(input, tokio::io::stdout()).await.or_kind(Kind::Failed)?;
    Ok(Done::Ok)
}

/// A pool holds a few sockets per call for hundreds of calls at once: the soft limit on
/// open files goes up to the hard one (often 1024 against 524288).
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        tracing::warn!("could not raise the open-file limit: {e}");
    }
}

/// `icelab turn-server`: TURN on UDP 3478, TCP 3478 and TLS 443 of `public_ip`.
pub(crate) async fn turn_server(
    (public_ip, public_ip6): (IpAddr, Option<IpAddr>),
    realm: String,
    user: String,
    password: String,
    allow: Vec<IpNet>,
    stats: Option<PathBuf>,
) -> CliResult {
    let cfg = TurnServerConfig {
        realm,
        username: user,
        password,
        public_ip,
        bind_ip: public_ip,
        public_ip6,
        allowed_peer_subnets: allow,
        ..Default::default()
    };
    // All three listeners or none: peers behind UDP-blocking firewalls rely on TCP/TLS,
    // so a half-started server would fail their calls for a reason nobody sees.
    let handle = serve_turn(cfg)
        .await
        .map_err(|e| CliError::could_not_run(format!("TURN server (UDP 3478, TCP 3478, TLS 443): {e:#}")))?;
    let file = stats.map(|path| StatsFile { path, stats: handle.stats.clone() });
    let done = ready_until_terminated(file.as_ref(), "TURN").await;
    drop(handle);
    done
}

/// A started built-in server's life: says `ready`, writes its figures to `file` (now,
/// each second in which they changed, and on SIGUSR1), and returns on SIGTERM after a
/// last sample. `what` names the server in errors.
pub(crate) async fn ready_until_terminated(file: Option<&StatsFile>, what: &str) -> CliResult {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = || CliError::could_not_run("cannot install signal handlers");
    if let Some(f) = file {
        f.write_now().map_err(|e| CliError::could_not_run(format!("{what} stats {}: {e}", f.path.display())))?;
        // Before `ready`: a run may ask for figures (SIGUSR1) as soon as it sees it,
        // and SIGUSR1's default action is to end the process.
        let _registered = signal(SignalKind::user_defined1()).map_err(|_| handlers())?;
    }
    let mut term = signal(SignalKind::terminate()).map_err(|_| handlers())?;
    outln!("ready");
    // Runs until the lab kills it; a SIGTERM gets a last sample first.
    let writer = async {
        if let Some(f) = file
            && let Err(e) = f.run(std::time::Duration::from_secs(1)).await
        {
            errln!("{what} stats: {e}");
        }
        std::future::pending::<()>().await
    };
    tokio::select! {
        _ = writer => {}
        _ = term.recv() => {}
    }
    if let Some(f) = file {
        let _ = f.write_now();
    }
    Ok(Done::Ok)
}
