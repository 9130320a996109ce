//! `icelab load FILE`: many calls in one lab at an open-loop rate ([`icelab::load`]),
//! a live bar (setups/s, success %, p95 setup), the load report. Ctrl-C drops the
//! load, which kills every running call's peers and tears the lab down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use icelab::call::{LoadCall, LoadOptions, Placed};
use icelab::fabric::registry;
use icelab::load::{self, LabSource, LoadSpec, Sample, schedule};

use super::Interrupts;
use super::args::LoadArgs;
use super::error::{CliError, CliResult, Done};
use super::out::{self, errln};

fn overridden(mut s: LoadSpec, a: &LoadArgs) -> Result<LoadSpec, CliError> {
    if let Some(n) = a.calls {
        if n == 0 || n > load::spec::MAX_LOAD_CALLS {
            return Err(CliError::bad_input(format!("--calls is from 1 to {}", load::spec::MAX_LOAD_CALLS)));
        }
        s.calls = n;
    }
    if let Some(r) = a.rate {
        if !(r > 0.0 && r <= 10_000.0) {
            return Err(CliError::bad_input("--rate is above 0 and at most 10000 calls/s"));
        }
        s.rate = r;
    }
    if let Some(c) = a.concurrency {
        if c == 0 {
            return Err(CliError::bad_input("--concurrency is at least 1"));
        }
        s.concurrency = c;
    }
    if let Some(t) = a.time_limit_s {
        if !(t > 0.0 && t <= 86_400.0) {
            return Err(CliError::bad_input("--time-limit-s is above 0 and at most 86400"));
        }
        s.time_limit_s = t;
    }
    s.duration_ms = a.duration_ms.or(s.duration_ms);
    s.data_rate_kbps = a.data_rate_kbps.or(s.data_rate_kbps);
    s.seed = a.seed.unwrap_or(s.seed);
    if let Some(w) = &a.peer_processes {
        s.peer_processes = load::spec::PeerProcesses::from_name(w)
            .ok_or_else(|| CliError::bad_input(format!("--peer-processes `{w}`: use per-host or per-call")))?;
    }
    Ok(s)
}

/// The load's lab (parsed) and its schedule.
fn lab_and_schedule(file: &Path, spec: &LoadSpec) -> Result<(icelab::spec::Spec, Vec<load::Arrival>), CliError> {
    let (mut lab, arrivals) = match &spec.lab {
        LabSource::File(p) => {
            let path = file.parent().map_or_else(|| PathBuf::from(p), |d| d.join(p));
            let lab = super::load(&path)?;
            let Some(scn) = &lab.scenario else {
                return Err(CliError::bad_input(format!(
                    "{}: no [scenario]: the load takes its pairs from it",
                    path.display()
                )));
            };
            if !lab.events.is_empty() {
                return Err(CliError::bad_input(format!(
                    "{}: a load does not play [[event]]s (they act on a single call); remove them",
                    path.display()
                )));
            }
            let arrivals = schedule::from_pairs(spec, &scn.calls);
            (lab, arrivals)
        }
        LabSource::Population(pop) => {
            let name = format!("{} (population)", file.display());
            let text = pop.lab_file(spec.duration_ms, spec.data_rate_kbps);
            let lab = icelab::spec::parse_str(&name, &text)
                .map_err(|e| CliError::could_not_run(format!("the generated population lab is wrong (a bug):\n{e}")))?;
            (lab, schedule::from_population(spec, pop))
        }
    };
    if let Some(scn) = lab.scenario.as_mut() {
        match spec.ice_profile.as_deref() {
            Some("browser-like") => scn.ice_profile = icelab::peer::IceProfile::BrowserLike,
            Some(_) => scn.ice_profile = icelab::peer::IceProfile::WebrtcRs,
            None => {}
        }
        if let Some(name) = &spec.peer {
            let kind = icelab::peer::PeerKind::from_name(name).map_err(CliError::bad_input)?;
            (scn.offerer_peer, scn.answerer_peer) = (kind.clone(), kind);
        }
        scn.data_ms = spec.duration_ms.unwrap_or(scn.data_ms);
        scn.data_rate_kbps = spec.data_rate_kbps.or(scn.data_rate_kbps);
    }
    Ok((lab, arrivals))
}

/// `icelab load FILE`.
pub(crate) async fn load(file: &Path, args: LoadArgs) -> CliResult {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::bad_input(format!("{}: cannot read file: {e}", file.display())))?;
    let spec = LoadSpec::parse(&file.display().to_string(), &text)?;
    let mut spec = overridden(spec, &args)?;
    let (mut lab, arrivals) = lab_and_schedule(file, &spec)?;
    // Only the built-in peer pools; browsers and commands are a process per side per call,
    // and the report says what ran.
    if let Some(scn) = &lab.scenario
        && [&scn.offerer_peer, &scn.answerer_peer].iter().any(|p| **p != icelab::peer::PeerKind::BuiltIn)
    {
        spec.peer_processes = load::spec::PeerProcesses::PerCall;
    }
    lab.events = icelab::spec::load_events(&file.display().to_string(), &text, &lab.topology)?;
    if args.dry_run {
        return dry_run(&spec, &lab, &arrivals, args.json);
    }
    if let Some(scn) = &lab.scenario {
        scn.check_peers().map_err(CliError::bad_input)?;
    }
    icelab::servers::check_programs(&lab.topology).map_err(CliError::bad_input)?;
    let name = args.name.clone().unwrap_or_else(registry::random_name);
    super::new_lab_name(&name)?;
    super::require_root()?;
    let interrupted = Interrupts::install()?.wait();
    tokio::pin!(interrupted);

    let calls: Vec<LoadCall> = arrivals.iter().map(|a| LoadCall { at_ms: a.at_ms, pair: a.pair.clone() }).collect();
    let opts = LoadOptions {
        concurrency: spec.concurrency,
        time_limit: Duration::from_secs_f64(spec.time_limit_s),
        pooled: spec.peer_processes == load::spec::PeerProcesses::PerHost,
    };
    let bar = super::progress_bar(calls.len() as u64, "calls");
    let mut live = Live::default();
    let (bar_ref, arrivals_ref) = (&bar, &arrivals);
    let build =
        |i: usize, step: &icelab::plan::Step| bar_ref.set_message(format!("building the lab: [{}] {step}", i + 1));
    let on_call = |i: usize, p: &Placed, running: usize| {
        live.add(sample(&arrivals_ref[i], p));
        bar_ref.inc(1);
        bar_ref.set_message(live.message(running));
    };
    let run = icelab::call::run_load(&lab, &name, &calls, opts, build, on_call);
    let r = tokio::select! {
        r = run => r,
        s = &mut interrupted => {
            bar.abandon();
            return Err(CliError::could_not_run(format!("interrupted by {s}; every call's peers were stopped and the lab was torn down")));
        }
    };
    bar.finish_and_clear();
    let run = r.map_err(|e| CliError::could_not_run(format!("{e:#}")))?;
    let samples: Vec<Sample> = arrivals.iter().zip(&run.placed).map(|(a, p)| sample(a, p)).collect();
    // The ICE profile is the built-in peers'; other peers bring their own stack's timers.
    let profile = lab.scenario.as_ref().map_or("-".to_string(), |s| {
        let peers = [&s.offerer_peer, &s.answerer_peer];
        match peers.iter().find(|p| !matches!(p, icelab::peer::PeerKind::BuiltIn)) {
            Some(other) => format!("{other}'s own"),
            None => profile_name(s.ice_profile),
        }
    });
    let mut report = load::report::build(&file.display().to_string(), &name, &spec, (run.lab_up_ms, &profile), samples);
    report.server_side = load::report::ServerSide::from_figures(run.servers);
    report.relay_accounting = load::report::RelayAccounting::new(&report.samples, &report.server_side);
    report.resources = run.resources;
    report.phases = load::report::phases(&report.samples, &run.events);
    load::report::add_server_latencies(&mut report.phases, &report.server_side.servers, run.t0_unix_ms);
    if let Some(path) = &args.html {
        std::fs::write(path, load::html::render(&report))
            .map_err(|e| CliError::could_not_run(format!("writing {}: {e}", path.display())))?;
    }
    if args.json {
        out::json(&report);
    } else {
        out::text(&load::report::render(&report));
    }
    if report.passed == report.calls { Ok(Done::Ok) } else { Ok(Done::CheckFailed) }
}

fn sample(a: &load::Arrival, p: &Placed) -> Sample {
    match p {
        Placed::NotStarted => Sample::not_started(a, "not started: time bound"),
        Placed::Failed { started_ms, ended_ms, error } => Sample::not_placed(a, *started_ms, *ended_ms, error),
        Placed::Ran { started_ms, ended_ms, report } => Sample::from_run(a, *started_ms, *ended_ms, report),
    }
}

/// What the bar shows: setups/s over the last 5 s, success %, p95 setup from arrival.
#[derive(Default)]
struct Live {
    done: Vec<Sample>,
}

impl Live {
    fn add(&mut self, s: Sample) {
        self.done.push(s);
    }

    fn message(&self, running: usize) -> String {
        let now = self.done.iter().filter_map(|s| s.ended_ms).fold(0.0, f64::max);
        let window = 5000.0f64.min(now.max(1.0));
        let recent = self.done.iter().filter(|s| s.ok && s.opened_at_ms().is_some_and(|t| t > now - window)).count();
        let ok = self.done.iter().filter(|s| s.ok).count();
        let p95 = load::report::stat("", self.done.iter().filter(|s| s.ok).filter_map(Sample::setup_from_arrival_ms))
            .map_or("-".into(), |s| format!("{:.0} ms", s.p95));
        format!(
            "{:.1} setups/s, {:.0} % ok, p95 setup {p95}, {running} running or waiting",
            recent as f64 * 1e3 / window,
            ok as f64 * 100.0 / self.done.len().max(1) as f64
        )
    }
}

/// `--dry-run`: the lab and the schedule, nothing built.
fn dry_run(spec: &LoadSpec, lab: &icelab::spec::Spec, arrivals: &[load::Arrival], json: bool) -> CliResult {
    let hosts: Vec<&str> = lab.topology.hosts.iter().map(|h| h.name.as_str()).collect();
    if json {
        out::json(&serde_json::json!({ "spec": spec, "hosts": hosts, "arrivals": arrivals }));
        return Ok(Done::Ok);
    }
    out::outln!(
        "{} calls at {} calls/s ({:?}), {} at once, time limit {} s; lab: {} hosts",
        spec.calls,
        spec.rate,
        spec.arrivals,
        spec.concurrency,
        spec.time_limit_s,
        hosts.len()
    );
    if let LabSource::Population(p) = &spec.lab {
        errln!("the mix predicts {:.1} % of calls relayed", p.predicted_relayed_share() * 100.0);
        out::text(&p.lab_file(spec.duration_ms, spec.data_rate_kbps));
    }
    for a in arrivals.iter().take(20) {
        let kinds = a.kinds.map_or(String::new(), |(x, y)| format!(" ({x} x {y})"));
        out::outln!("  {:>8.1} ms  {}{kinds}", a.at_ms, a.pair);
    }
    if arrivals.len() > 20 {
        out::outln!("  ... {} more", arrivals.len() - 20);
    }
    Ok(Done::Ok)
}

fn profile_name(p: icelab::peer::IceProfile) -> String {
    serde_json::to_value(p).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_else(|| format!("{p:?}"))
}
