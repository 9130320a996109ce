//! Command handlers: parse inputs, call the library, print text or JSON. Every handler
//! returns a [`CliResult`]; `main` turns it into the exit code (see [`error`]).

pub(crate) mod args;
pub(crate) mod bench;
pub(crate) mod browser;
pub(crate) mod doctor;
pub(crate) mod error;
pub(crate) mod labs;
pub(crate) mod load;
pub(crate) mod matrix;
pub(crate) mod out;
pub(crate) mod probe;
pub(crate) mod run;
pub(crate) mod verify;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use icelab::fabric::{Lab, registry};
use icelab::spec::{self, Spec};

use error::{CliError, CliResult, Done, Kind, OrKind};
use out::{errln, outln};

/// Parses an icelab file; its diagnostics become a bad-input error.
fn load(file: &Path) -> Result<Spec, CliError> {
    Ok(spec::parse_file(file)?)
}

/// Checks a lab name given by the user.
fn lab_name(name: &str) -> Result<(), CliError> {
    registry::check_name(name).or_kind(Kind::BadInput)
}

/// A name for a new lab: valid and not taken (a taken name is the user's to change).
fn new_lab_name(name: &str) -> Result<(), CliError> {
    lab_name(name)?;
    let taken = registry::lab_dir(name).exists()
        || !icelab::fabric::netns::list(&format!("{}-", registry::prefix_of(name))).is_empty();
    if taken {
        return Err(CliError::bad_input(format!(
            "lab `{name}` already exists; pick another --name, or `icelab down {name}`"
        )));
    }
    Ok(())
}

/// Commands that build or change namespaces need root; say so before trying.
fn require_root() -> Result<(), CliError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(CliError::could_not_run("this needs root (network namespaces); run it with sudo"))
    }
}

pub(crate) fn check(file: &Path, json: bool) -> CliResult {
    let spec = load(file)?;
    if json {
        out::json(&spec);
        return Ok(Done::Ok);
    }
    let topo = &spec.topology;
    outln!(
        "{}: ok ({} routers, {} hosts, {} servers)",
        file.display(),
        topo.routers.len(),
        topo.hosts.len(),
        topo.servers.len()
    );
    for r in &topo.routers {
        outln!("  router {:<12} wan {} lan {}", r.name, r.wan.subnet, r.lan);
    }
    for h in &topo.hosts {
        outln!("  host   {:<12} {}", h.name, h.uplink.subnet);
    }
    for s in &topo.servers {
        let a: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
        outln!(
            "  server {:<12} {} [{}]",
            s.name,
            a.join(", "),
            s.services.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        );
    }
    Ok(Done::Ok)
}

pub(crate) async fn up(
    file: &Path,
    name: Option<String>,
    dry_run: bool,
    verify: bool,
    (engine, seed): (Option<icelab::plan::ImpairEngine>, u64),
    json: bool,
) -> CliResult {
    let spec = load(file)?;
    let topo = &spec.topology;
    let opts = icelab::plan::PlanOptions {
        engine: engine.unwrap_or_else(|| icelab::fabric::default_options(topo).engine),
        seed,
    };
    let name = name.unwrap_or_else(registry::random_name);
    new_lab_name(&name)?;
    if dry_run {
        let plan = icelab::plan::plan_with(topo, &spec.events, &registry::prefix_of(&name), &opts);
        if json {
            out::json(&plan);
        } else {
            out::text(&plan.listing());
        }
        return Ok(Done::Ok);
    }
    icelab::servers::check_programs(topo).map_err(CliError::bad_input)?;
    require_root()?;
    // Handlers first: a signal that arrives before them would kill us with the lab half-built.
    let interrupted = Interrupts::install()?;
    let tty = std::io::stderr().is_terminal();
    let build = Lab::up_with(topo, &spec.events, &name, &opts, |i, step| {
        if tty {
            out::err_text(&format!("\r\x1b[K[{}] {step}", i + 1));
        }
    });
    // An interrupted build drops the half-built lab, which tears it down.
    let result = tokio::select! {
        r = build => r,
        s = interrupted.wait() => {
            if tty { errln!(); }
            return Err(CliError::could_not_run(format!("interrupted by {s}; nothing was left behind")));
        }
    };
    if tty {
        out::err_text("\r\x1b[K");
    }
    let (lab, report) = result.map_err(|e| CliError::could_not_run(format!("{e:#}; nothing was left behind")))?;
    let verified = if verify { Some(self::verify::after_up(topo, &lab, json).await?) } else { None };
    let rec = lab.keep().or_kind(Kind::CouldNotRun)?;
    self::verify::remember(&rec.name, file);
    if json {
        let mut v = serde_json::json!({
            "name": rec.name, "prefix": rec.prefix, "elapsed_ms": report.elapsed_ms, "nodes": rec.plan.nodes,
        });
        if let Some(r) = verified {
            v["verify"] = serde_json::to_value(&r).unwrap_or_default();
        }
        out::json(&v);
    } else {
        outln!("{}", rec.name);
        errln!(
            "lab {} is up ({} steps, {:.0} ms); `icelab exec {} NODE -- CMD`, `icelab down {}`",
            rec.name,
            report.steps,
            report.elapsed_ms,
            rec.name,
            rec.name
        );
    }
    Ok(Done::Ok)
}

/// A bar with ETA and a message (pass/fail counts) on a terminal, counting `unit`;
/// hidden otherwise, so pipes and CI logs get no control codes.
pub(crate) fn progress_bar(n: u64, unit: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(n);
    let style =
        indicatif::ProgressStyle::with_template(&format!("{{bar:30}} {{pos}}/{{len}} {unit}, ETA {{eta}} {{msg}}"))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    // Ticks keep the ETA moving while one long call or cell runs.
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    bar
}

/// SIGINT and SIGTERM, caught from the moment of `install` on.
pub(crate) struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub(crate) fn install() -> Result<Self, CliError> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler =
            |kind| signal(kind).map_err(|e| CliError::could_not_run(format!("cannot install signal handlers: {e}")));
        Ok(Interrupts { int: handler(SignalKind::interrupt())?, term: handler(SignalKind::terminate())? })
    }

    /// Resolves with the signal's name when one arrives.
    pub(crate) async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

pub(crate) fn export(file: &Path, name: &str, json: bool) -> CliResult {
    let spec = load(file)?;
    lab_name(name)?;
    let opts = icelab::plan::PlanOptions::default();
    let plan = icelab::plan::plan_with(&spec.topology, &spec.events, &registry::prefix_of(name), &opts);
    let script = icelab::plan::shell::render(&plan, &file.display().to_string());
    if json {
        out::json(&serde_json::json!({ "script": script }));
    } else {
        out::text(&script);
    }
    Ok(Done::Ok)
}

pub(crate) async fn echo(target: &str, tcp: bool, count: u32, timeout_ms: u64, json: bool) -> CliResult {
    let target: SocketAddr = match target.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match target.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, icelab::plan::ECHO_PORT),
            Err(_) => {
                return Err(CliError::bad_input(format!(
                    "`{target}` is not an address (e.g. 203.0.113.10 or 203.0.113.10:7)"
                )));
            }
        },
    };
    let timeout = Duration::from_millis(timeout_ms);
    let r = if tcp {
        icelab::echo::tcp_probe(target, count, timeout).await
    } else {
        icelab::echo::udp_probe(target, count, timeout).await
    };
    let r = r.or_kind(Kind::CouldNotRun)?;
    if r.received == 0 && json {
        // One JSON document: the error, with the probe's numbers as its details.
        let details = serde_json::to_value(&r).unwrap_or_default();
        return Err(CliError::failed(format!("no reply from {target}")).with_details(details));
    }
    if json {
        out::json(&r);
    } else {
        let rtts: Vec<String> = r.rtt_ms.iter().map(|x| format!("{x:.3}")).collect();
        outln!("{} {}: {}/{} replies, rtt ms [{}]", r.protocol, r.target, r.received, r.sent, rtts.join(", "));
    }
    if r.received == 0 {
        return Err(CliError::failed(format!("no reply from {target}")));
    }
    Ok(Done::Ok)
}

pub(crate) async fn echo_server(namespaces: &[String], port: u16) -> CliResult {
    icelab::echo::serve(namespaces, port).await.or_kind(Kind::CouldNotRun)?;
    Ok(Done::Ok)
}

pub(crate) fn impair_engine(links: &str, control: Option<&Path>) -> CliResult {
    let links: Vec<icelab::impair::TapLink> =
        serde_json::from_str(links).map_err(|e| CliError::bad_input(format!("bad --links: {e}")))?;
    let run = || -> anyhow::Result<()> {
        let engine = icelab::impair::Engine::start(links)?;
        if let Some(path) = control {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            engine.control().serve(path)?;
        }
        outln!("ready");
        engine.wait()
    };
    run().or_kind(Kind::CouldNotRun)?;
    Ok(Done::Ok)
}
