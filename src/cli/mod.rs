//! Command handlers: parse inputs, call the library, print text or JSON, pick the exit code.
//!
//! Exit codes: 0 ok; 1 an operation or expectation failed; 2 bad usage or bad input.

pub mod probe;
pub mod run;
pub mod verify;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use icelab::fabric::{self, Lab, netns, procs, registry};
use icelab::topology::{self, Topology};

/// An operation failed.
pub(crate) const FAILED: u8 = 1;
/// The input (file, name, arguments) is wrong.
pub(crate) const BAD_INPUT: u8 = 2;

pub(crate) fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).expect("serializable"));
}

pub(crate) fn fail(code: u8, e: impl std::fmt::Display) -> ExitCode {
    eprintln!("icelab: {e}");
    ExitCode::from(code)
}

/// Parses a topology file, printing its diagnostics on failure.
fn load(file: &Path, json: bool) -> Result<Topology, ExitCode> {
    topology::parse_file(file).map_err(|e| {
        if json {
            print_json(&e);
        }
        eprintln!("{e}");
        ExitCode::from(BAD_INPUT)
    })
}

pub fn check(file: &Path, json: bool) -> ExitCode {
    let topo = match load(file, json) {
        Ok(t) => t,
        Err(c) => return c,
    };
    if json {
        print_json(&topo);
    } else {
        println!(
            "{}: ok ({} routers, {} hosts, {} servers)",
            file.display(),
            topo.routers.len(),
            topo.hosts.len(),
            topo.servers.len()
        );
        for r in &topo.routers {
            println!("  router {:<12} wan {} lan {}", r.name, r.wan.subnet, r.lan);
        }
        for h in &topo.hosts {
            println!("  host   {:<12} {}", h.name, h.uplink.subnet);
        }
        for s in &topo.servers {
            let a: Vec<String> = s.addresses.iter().map(|a| a.to_string()).collect();
            println!("  server {:<12} {} [{}]", s.name, a.join(", "), s.services.join(", "));
        }
    }
    ExitCode::SUCCESS
}

pub async fn up(
    file: &Path,
    name: Option<String>,
    dry_run: bool,
    verify: bool,
    (engine, seed): (Option<icelab::plan::ImpairEngine>, u64),
    json: bool,
) -> ExitCode {
    let topo = match load(file, json) {
        Ok(t) => t,
        Err(c) => return c,
    };
    let opts = icelab::plan::PlanOptions {
        engine: engine.unwrap_or_else(|| icelab::fabric::default_options(&topo).engine),
        seed,
    };
    let name = name.unwrap_or_else(registry::random_name);
    if let Err(e) = registry::check_name(&name) {
        return fail(BAD_INPUT, e);
    }
    if dry_run {
        let plan = icelab::plan::plan_with(&topo, &registry::prefix_of(&name), &opts);
        if json {
            print_json(&plan);
        } else {
            for (i, s) in plan.steps.iter().enumerate() {
                println!("{:>4}  {s}", i + 1);
            }
        }
        return ExitCode::SUCCESS;
    }
    // Handlers first: a signal that arrives before them would kill us with the lab half-built.
    let interrupted = match Interrupts::install() {
        Ok(i) => i,
        Err(e) => return fail(FAILED, format!("cannot install signal handlers: {e}")),
    };
    let tty = std::io::stderr().is_terminal();
    let build = Lab::up_with(&topo, &name, &opts, |i, step| {
        if tty {
            eprint!("\r\x1b[K[{}] {step}", i + 1);
        }
    });
    // An interrupted build drops the half-built lab, which tears it down.
    let result = tokio::select! {
        r = build => r,
        s = interrupted.wait() => {
            if tty { eprintln!(); }
            return fail(FAILED, format!("interrupted by {s}; nothing was left behind"));
        }
    };
    if tty {
        eprint!("\r\x1b[K");
    }
    match result {
        Ok((lab, report)) => {
            let mut verified = None;
            if verify {
                match self::verify::after_up(&topo, &lab, json).await {
                    Ok(r) => verified = Some(r),
                    Err(code) => return code,
                }
            }
            let rec = lab.keep();
            self::verify::remember(&rec.name, file);
            if json {
                print_json(
                    &serde_json::json!({ "name": rec.name, "prefix": rec.prefix, "elapsed_ms": report.elapsed_ms, "nodes": rec.plan.nodes, "verify": verified }),
                );
            } else {
                println!("{}", rec.name);
                eprintln!(
                    "lab {} is up ({} steps, {:.0} ms); `icelab exec {} NODE -- CMD`, `icelab down {}`",
                    rec.name, report.steps, report.elapsed_ms, rec.name, rec.name
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(FAILED, format!("{e:#}; nothing was left behind")),
    }
}

/// SIGINT and SIGTERM, caught from the moment of `install` on.
pub struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Interrupts {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Interrupts { int: signal(SignalKind::interrupt())?, term: signal(SignalKind::terminate())? })
    }

    /// Resolves with the signal's name when one arrives.
    pub async fn wait(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

pub fn down(name: &str, json: bool) -> ExitCode {
    if let Err(e) = registry::check_name(name) {
        return fail(BAD_INPUT, e);
    }
    if registry::load(name).is_err() && netns::list(&format!("{}-", registry::prefix_of(name))).is_empty() {
        return fail(FAILED, format!("no lab named `{name}` (see `icelab ls`)"));
    }
    match fabric::teardown(name) {
        Ok(r) => {
            if json {
                print_json(&r);
            } else {
                println!(
                    "lab {name} is down ({} namespaces, {} processes, {:.0} ms)",
                    r.namespaces, r.processes, r.elapsed_ms
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

pub fn ls(json: bool) -> ExitCode {
    let labs = registry::list();
    let mut orphans: Vec<String> = netns::list(registry::NS_PREFIX);
    orphans.retain(|ns| !labs.iter().any(|l| ns.starts_with(&format!("{}-", l.prefix))));
    if json {
        print_json(&serde_json::json!({ "labs": labs.iter().map(|l| serde_json::json!({
            "name": l.name, "topology": l.topology, "nodes": l.nodes.len(), "created_unix": l.created_unix,
            "builder_pid": l.builder_pid,
        })).collect::<Vec<_>>(), "orphaned_namespaces": orphans }));
    } else {
        if labs.is_empty() {
            println!("no labs");
        }
        for l in &labs {
            println!("{:<12} {:>3} nodes  {}", l.name, l.nodes.len(), l.topology);
        }
        if !orphans.is_empty() {
            println!("orphaned namespaces (remove with `icelab cleanup`): {}", orphans.join(" "));
        }
    }
    ExitCode::SUCCESS
}

pub fn cleanup(json: bool) -> ExitCode {
    match fabric::cleanup() {
        Ok(r) => {
            if json {
                print_json(&r);
            } else {
                println!("removed {} namespaces, killed {} processes", r.namespaces, r.processes);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

pub fn exec(name: &str, node: &str, command: &[String]) -> ExitCode {
    let rec = match registry::load(name) {
        Ok(r) => r,
        Err(e) => return fail(BAD_INPUT, format!("{e:#}")),
    };
    let Some((_, ns)) = rec.nodes.iter().find(|(n, _)| n == node) else {
        let known: Vec<&str> = rec.nodes.iter().map(|(n, _)| n.as_str()).collect();
        return fail(BAD_INPUT, format!("lab {name} has no node `{node}`; nodes: {}", known.join(", ")));
    };
    let fd = match netns::open(ns) {
        Ok(fd) => fd,
        Err(e) => return fail(FAILED, format!("{e:#}")),
    };
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    if let Err(e) = procs::enter_netns(&mut cmd, &fd) {
        return fail(FAILED, e);
    }
    match cmd.status() {
        Ok(st) => {
            use std::os::unix::process::ExitStatusExt;
            let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            ExitCode::from(code as u8)
        }
        Err(e) => fail(FAILED, format!("cannot run `{}`: {e}", command[0])),
    }
}

pub fn export(file: &Path, name: &str) -> ExitCode {
    let topo = match load(file, false) {
        Ok(t) => t,
        Err(c) => return c,
    };
    if let Err(e) = registry::check_name(name) {
        return fail(BAD_INPUT, e);
    }
    let plan = icelab::plan::plan(&topo, &registry::prefix_of(name));
    print!("{}", icelab::plan::shell::render(&plan, &file.display().to_string()));
    ExitCode::SUCCESS
}

pub async fn echo(target: &str, tcp: bool, count: u32, timeout_ms: u64, json: bool) -> ExitCode {
    let target: SocketAddr = match target.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match target.parse::<std::net::IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, icelab::plan::ECHO_PORT),
            Err(_) => {
                return fail(BAD_INPUT, format!("`{target}` is not an address (e.g. 203.0.113.10 or 203.0.113.10:7)"));
            }
        },
    };
    let timeout = Duration::from_millis(timeout_ms);
    let r = if tcp {
        icelab::echo::tcp_probe(target, count, timeout).await
    } else {
        icelab::echo::udp_probe(target, count, timeout).await
    };
    match r {
        Ok(r) => {
            if json {
                print_json(&r);
            } else {
                let rtts: Vec<String> = r.rtt_ms.iter().map(|x| format!("{x:.3}")).collect();
                println!(
                    "{} {}: {}/{} replies, rtt ms [{}]",
                    r.protocol,
                    r.target,
                    r.received,
                    r.sent,
                    rtts.join(", ")
                );
            }
            if r.received == 0 { ExitCode::from(FAILED) } else { ExitCode::SUCCESS }
        }
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

pub async fn echo_server(namespaces: &[String], port: u16) -> ExitCode {
    match icelab::echo::serve(namespaces, port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

pub fn impair_engine(links: &str, control: Option<&Path>) -> ExitCode {
    let links: Vec<icelab::impair::TapLink> = match serde_json::from_str(links) {
        Ok(l) => l,
        Err(e) => return fail(BAD_INPUT, format!("bad --links: {e}")),
    };
    let run = || -> anyhow::Result<()> {
        let engine = icelab::impair::Engine::start(links)?;
        if let Some(path) = control {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            engine.control().serve(path)?;
        }
        println!("ready");
        engine.wait()
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}
