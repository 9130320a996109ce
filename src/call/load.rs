//! Placing many calls in one lab at an open-loop arrival rate: each call arrives at
//! its fixed time whatever the lab does, waits for one of `concurrency` slots, then
//! runs as any scenario call does (its own two peer processes, signaling relayed,
//! bounded by the scenario's deadline). No call starts after the time bound; calls
//! running then end by their own deadlines, so the whole load is bounded.
//!
//! Teardown rides on [`Lab`]'s `Drop` and on the peers' `kill_on_drop`: dropping this
//! future (Ctrl-C in the CLI) kills every running call's peers and removes the lab.

use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::anyhow;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::pool::PeerPools;
use super::run::{CallRun, Peers, RunReport, call, relay_implementation};
use crate::fabric::Lab;
use crate::plan::{Plan, Step};
use crate::report::resources::{ChildrenUsage, Resources, parse_proc, peers as peers_usage, servers as servers_usage};
use crate::scenario::{CallPair, Expect, Scenario, Timings, judge};
use crate::spec::Spec;

/// One call of a load.
#[derive(Debug, Clone)]
pub struct LoadCall {
    /// When it arrives, ms after the first arrival.
    pub at_ms: f64,
    /// Who calls whom (hosts of the lab).
    pub pair: CallPair,
}

/// How to run a load.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Calls running at once at most; later arrivals wait (and their wait is measured).
    pub concurrency: usize,
    /// No call starts after this, from the first arrival.
    pub time_limit: Duration,
    /// Built-in peers of every call on one process per host ([`super::pool`]) rather
    /// than a process per side per call.
    pub pooled: bool,
}

/// What became of one call. Times are ms after the first arrival (the driver's clock).
#[derive(Debug, Clone)]
pub enum Placed {
    /// The time bound came before its start.
    NotStarted,
    /// Started, but its peers could not be started.
    Failed {
        /// When it got its slot.
        started_ms: f64,
        /// When it gave up.
        ended_ms: f64,
        /// Why.
        error: String,
    },
    /// Ran (and was judged).
    Ran {
        /// When it got its slot and its peers were started.
        started_ms: f64,
        /// When both peers were gone.
        ended_ms: f64,
        /// Its report, as `icelab run` makes one.
        report: Box<RunReport>,
    },
}

/// A whole load's calls, in arrival order.
#[derive(Debug)]
pub struct LoadRun {
    /// Building the lab, ms.
    pub lab_up_ms: f64,
    /// Every call, in the order given.
    pub placed: Vec<Placed>,
    /// Tearing the lab down, ms.
    pub teardown_ms: f64,
    /// The lab's TURN servers' own figures over the whole load, read when the calls ended.
    pub servers: Vec<crate::servers::stats::ServerFigures>,
    /// CPU and memory of the lab's processes and of the peers.
    pub resources: crate::report::resources::Resources,
    /// The load's `[[event]]`s as applied (times: ms after the first arrival).
    pub events: Vec<crate::timeline::Applied>,
    /// The first arrival's time, Unix ms: the servers' samples are stamped so.
    pub t0_unix_ms: u64,
}

/// Builds the lab of `spec` as `name` and places `calls` (sorted by `at_ms`) with the
/// file's scenario settings, `opts.concurrency` at once. `progress` sees each call as
/// it ends, with the number still running or waiting. Every call is judged against
/// the file's `[expect]` (empty: connected).
pub async fn run_load(
    spec: &Spec,
    name: &str,
    calls: &[LoadCall],
    opts: LoadOptions,
    build_progress: impl FnMut(usize, &Step),
    mut progress: impl FnMut(usize, &Placed, usize),
) -> anyhow::Result<LoadRun> {
    let topo = &spec.topology;
    let scn = spec.scenario.clone().ok_or_else(|| anyhow!("{} has no [scenario]", topo.file))?;
    let expect = spec.expect.clone().unwrap_or_default();
    let expect = expect.for_peers(&scn.offerer_peer.to_string(), &scn.answerer_peer.to_string());
    let fabric = crate::fabric::default_options(topo);
    // The load's events (`crate::spec::load_events`) change the lab at times from the
    // first arrival, played like a call's timeline on a thread of their own.
    let (lab, build) = Lab::up_with(topo, &spec.events, name, &fabric, build_progress).await?;
    // Every call is a task of its own on the runtime's threads: signaling, process
    // start-up and judging of many calls do not queue behind one another on one task.
    // The set aborts every task when dropped, and an aborted call kills its peers.
    let relay_impl = relay_implementation(topo, &scn);
    let shared = Arc::new(Shared {
        plan: lab.plan().clone(),
        servers: topo.servers.clone(),
        scn,
        expect,
        relay_impl,
        slots: Semaphore::new(opts.concurrency.max(1)),
        lab: name.to_string(),
        lab_up_ms: build.elapsed_ms,
        pools: opts.pooled.then(PeerPools::default),
    });
    let t0 = Instant::now();
    let t0_unix_ms = crate::servers::stats::now_unix_ms();
    let applied = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (t0_tx, t0_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let firings = lab.plan().events.clone();
    if !firings.is_empty() {
        super::drive::spawn_firing(name.to_string(), firings, t0_rx, stop_rx, applied.clone());
        let _ = t0_tx.send(t0);
    }
    let children_before = children_usage();
    let bound = t0 + opts.time_limit;
    let place = |i: usize, pair: CallPair| {
        let sh = Arc::clone(&shared);
        async move { (i, place_one(&sh, pair, t0, bound).await) }
    };
    let mut placed: Vec<Option<Placed>> = vec![None; calls.len()];
    let mut running = JoinSet::new();
    let mut next = 0;
    loop {
        let at = calls.get(next).map(|c| t0 + Duration::from_secs_f64(c.at_ms.max(0.0) / 1e3));
        if at.is_some_and(|at| at > bound) {
            // Open loop, bounded: arrivals after the bound are not placed at all.
            for (i, p) in placed.iter_mut().enumerate().skip(next) {
                *p = Some(Placed::NotStarted);
                progress(i, &Placed::NotStarted, running.len());
            }
            next = calls.len();
            continue;
        }
        if next == calls.len() && running.is_empty() {
            break;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(at.unwrap_or(bound).into()), if at.is_some() => {
                running.spawn(place(next, calls[next].pair.clone()));
                next += 1;
            }
            Some(done) = running.join_next(), if !running.is_empty() => {
                let (i, p) = done.map_err(|e| anyhow!("a call's task failed: {e}"))?;
                progress(i, &p, running.len());
                placed[i] = Some(p);
            }
        }
    }
    drop(running);
    let _ = stop_tx.send(());
    // Ended before the figures are read: their CPU counts once they are reaped.
    let pooled_processes = match &shared.pools {
        Some(p) => {
            p.close().await;
            Some(p.processes().await)
        }
        None => None,
    };
    let events = std::mem::take(&mut *applied.lock().map_err(|_| anyhow!("the timeline thread panicked"))?);
    let resources = resources(lab.plan(), &placed, pooled_processes, children_before, t0, build.elapsed_ms);
    let servers = super::figures::collect(topo, lab.plan()).await;
    let t = Instant::now();
    lab.down()?;
    let teardown_ms = t.elapsed().as_secs_f64() * 1e3;
    Ok(LoadRun {
        lab_up_ms: build.elapsed_ms,
        placed: placed.into_iter().map(|p| p.unwrap_or(Placed::NotStarted)).collect(),
        teardown_ms,
        servers,
        resources,
        events,
        t0_unix_ms,
    })
}

fn children_usage() -> ChildrenUsage {
    let (cpu_s, max_rss_kib) = crate::fabric::procs::reaped_children_usage();
    ChildrenUsage { cpu_s, max_rss_kib }
}

/// Read when every call has ended: what is still in the lab are its servers (since the
/// lab came up); the peers are reaped children of this process (over the calls).
fn resources(
    plan: &Plan,
    placed: &[Option<Placed>],
    pooled_processes: Option<usize>,
    before: ChildrenUsage,
    t0: Instant,
    lab_up_ms: f64,
) -> Resources {
    use crate::fabric::{netns, procs};
    let calls_s = t0.elapsed().as_secs_f64();
    let inodes = plan.namespaces().iter().filter_map(|n| netns::inode(n).ok()).collect();
    let samples: Vec<_> = procs::pids_in(&inodes)
        .into_iter()
        .filter_map(procs::proc_text)
        .filter_map(|(stat, status)| parse_proc(&stat, &status))
        .collect();
    let ran = placed.iter().filter(|p| matches!(p, Some(Placed::Ran { .. }))).count();
    let processes = pooled_processes.unwrap_or(2 * ran);
    Resources {
        measured: true,
        servers: Some(servers_usage(&samples, procs::clock_ticks_per_s(), calls_s + lab_up_ms / 1e3)),
        peers: Some(peers_usage(before, children_usage(), processes, calls_s)),
    }
}

/// What every call of a load shares.
struct Shared {
    plan: Plan,
    servers: Vec<crate::topology::Server>,
    scn: Scenario,
    expect: Expect,
    relay_impl: Option<String>,
    slots: Semaphore,
    lab: String,
    lab_up_ms: f64,
    /// The hosts' peer pools, when the load's peers are pooled.
    pools: Option<PeerPools>,
}

/// One call: wait for a slot (unless the bound has passed), place it, judge it.
async fn place_one(sh: &Shared, pair: CallPair, t0: Instant, bound: Instant) -> Placed {
    let ms = |t: Instant| t.duration_since(t0).as_secs_f64() * 1e3;
    // Closed only on drop; an error here cannot happen while `sh` lives.
    let Ok(_slot) = sh.slots.acquire().await else { return Placed::NotStarted };
    let start = Instant::now();
    if start > bound {
        return Placed::NotStarted;
    }
    let started_ms = ms(start);
    let peers = sh.pools.as_ref().map_or(Peers::Processes, Peers::Pooled);
    let r = call(&sh.plan, &sh.servers, &sh.scn, &pair, &sh.lab, Vec::new(), peers).await;
    let ended_ms = ms(Instant::now());
    let CallRun { outcome, stderrs: stderr, .. } = match r {
        Ok(x) => x,
        Err(e) => return Placed::Failed { started_ms, ended_ms, error: format!("{e:#}") },
    };
    let mut timings = Timings::from_outcome(&outcome);
    timings.lab_up_ms = Some(sh.lab_up_ms);
    timings.call_ms = Some(ended_ms - started_ms);
    let verdict = judge(&outcome, &timings, &sh.expect);
    let report = RunReport {
        lab: sh.lab.clone(),
        pair,
        scenario: sh.scn.clone(),
        outcome,
        timings,
        verdict,
        offerer_stderr: stderr.0,
        answerer_stderr: stderr.1,
        kept: false,
        events: Vec::new(),
        timeline: None,
        relay_implementation: sh.relay_impl.clone(),
        // The servers' figures are the whole load's: read once, in [`LoadRun::servers`].
        servers: Vec::new(),
        proof: None,
        capture: Vec::new(),
    };
    Placed::Ran { started_ms, ended_ms, report: Box::new(report) }
}
