//! Runs [`Op`]s against a running lab. Each op is blocking work on its own thread, and
//! every wait on a child process, the kernel or a lab service has a deadline.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};

use super::actions::Op;
use crate::fabric::{netns, procs, registry};
use crate::impair::engine::{ControlReply, ControlRequest};

/// Deadline of one tool run (`ip`, `nft`) and of a service becoming ready.
const TOOL_DEADLINE: Duration = Duration::from_secs(5);
/// How long a killed service may take to disappear.
const KILL_DEADLINE: Duration = Duration::from_secs(2);

/// Runs one op in lab `lab`.
pub fn run_op(lab: &str, op: &Op) -> Result<()> {
    match op {
        Op::SetLink { ns, dev, up } => {
            tool("ip", &["-n", ns, "link", "set", "dev", dev, if *up { "up" } else { "down" }])
        }
        Op::ReplaceRoute { ns, dst, via } => {
            tool("ip", &["-n", ns, "route", "replace", &dst.to_string(), "via", &via.to_string()])
        }
        Op::Nftables { ns, ruleset, .. } => crate::fabric::load_nft(&netns::open(ns)?, ruleset),
        Op::FlushConntrack { ns } => super::conntrack::flush(ns),
        Op::StopService { ns, args, .. } => stop_service(ns, args),
        Op::StartService { ns, service, args } => start_service(lab, ns, service, args),
        // Unseeded: iproute2 before 6.5 rejects `seed`, and a mid-call change need not replay.
        Op::Netem { ns, dev, impairment } => crate::impair::netem::apply(ns, dev, impairment),
        Op::EngineSet { control, link, dir, impairment } => {
            let req = ControlRequest::Set { link: *link, dir: *dir, impairment: impairment.clone() };
            let path = std::path::PathBuf::from(control);
            match within(TOOL_DEADLINE, move || crate::impair::engine::request(&path, &req))?? {
                ControlReply::Ok => Ok(()),
                other => bail!("impair engine refused: {other:?}"),
            }
        }
    }
}

/// Runs `f` on a thread and gives up waiting after `d` (the thread is left to finish).
fn within<T: Send + 'static>(d: Duration, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(d).map_err(|_| anyhow!("no result within {d:?}"))
}

fn tool(program: &str, args: &[&str]) -> Result<()> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            bail!("{program} {}: {}", args.join(" "), err.trim());
        }
        if start.elapsed() > TOOL_DEADLINE {
            let _ = child.kill();
            bail!("{program} {} did not finish within {TOOL_DEADLINE:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// PIDs in namespace `ns` whose arguments (after the program) are exactly `args`.
fn service_pids(ns: &str, args: &[String]) -> Result<Vec<i32>> {
    let inodes = [netns::inode(ns)?].into_iter().collect();
    Ok(procs::pids_in(&inodes)
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let words: Vec<String> =
                    c.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into()).collect();
                words.len() == args.len() + 1 && words[1..] == *args
            })
        })
        .collect())
}

fn stop_service(ns: &str, args: &[String]) -> Result<()> {
    let pids = service_pids(ns, args)?;
    if pids.is_empty() {
        bail!("the service is not running in {ns}");
    }
    for p in &pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*p), nix::sys::signal::Signal::SIGKILL);
    }
    let start = Instant::now();
    // Gone means no /proc entry or a zombie (its sockets are closed either way).
    let alive = |p: &i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| !r.trim_start().starts_with('Z')))
    };
    while pids.iter().any(alive) {
        if start.elapsed() > KILL_DEADLINE {
            bail!("the service in {ns} survived SIGKILL for {KILL_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Starts `icelab ARGS` in `ns` the way the lab build does and waits for `ready`.
fn start_service(lab: &str, ns: &str, service: &str, args: &[String]) -> Result<()> {
    let log = registry::lab_dir(lab).join(format!("{service}-{ns}.restart.log"));
    crate::fabric::spawn_service(&netns::open(ns)?, args, &log)
}
