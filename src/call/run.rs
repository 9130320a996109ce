//! Orchestration of one run: build the lab, start two `icelab peer` processes in the
//! host namespaces, relay their signaling, collect the outcome, judge, tear down.
//!
//! Teardown rides on [`Lab`]'s `Drop`: returning early with `?`, panicking, or having
//! this future dropped (the CLI does that on SIGINT/SIGTERM) all remove the lab.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow};
use serde::Serialize;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use super::drive::relay_with_timeline;
use crate::check::Check;
use crate::fabric::capture::{Capture, CaptureFile};
use crate::fabric::{Lab, netns, procs};
use crate::peer::{Outcome, PeerConfig, PeerEvent, PeerKind, PeerOutcome, Role, relay_signaling};
use crate::plan::{Plan, PlannedEvent, Step};
use crate::scenario::{CallPair, Scenario, Timings, Verdict, judge};
use crate::spec::Spec;
use crate::timeline::{EventOutcome, TimelineLog};

/// Time the peers get after their own deadline to report it and exit before we kill them.
const EXIT_GRACE: Duration = Duration::from_millis(500);
/// Time a peer that reported `done` gets to close its connection and exit (it lingers
/// 50 ms, then closes within 500 ms).
const HANG_UP: Duration = Duration::from_millis(800);
/// Bytes of each peer's stderr kept for the report.
const STDERR_TAIL: usize = 4096;

/// Everything one call of a run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Lab name.
    pub lab: String,
    /// Which of the scenario's calls this is.
    pub pair: CallPair,
    /// The scenario the call belongs to.
    pub scenario: Scenario,
    /// What the peers reported.
    pub outcome: Outcome,
    /// How long things took.
    pub timings: Timings,
    /// The judgement against `[expect]` (an empty `[expect]` means "connected").
    pub verdict: Verdict,
    /// Last lines of the offerer's stderr.
    pub offerer_stderr: String,
    /// Last lines of the answerer's stderr.
    pub answerer_stderr: String,
    /// The lab was kept running (`--keep`).
    pub kept: bool,
    /// What each `[[event]]` did to the call (times are ms after the data channel opened).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventOutcome>,
    /// The raw timeline: operations, byte-counter samples, peer state changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineLog>,
    /// The implementation of the scenario's TURN server (`built-in`, `coturn`), when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_implementation: Option<String>,
    /// The lab's TURN servers' own figures over the run (all of its calls): what they
    /// answered and relayed, read from each server when the calls ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<crate::servers::stats::ServerFigures>,
    /// The lab's proof before the call (`--verify`): every NAT and firewall as declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<Proof>,
    /// The lab's capture files (`--capture`), one per link.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capture: Vec<CaptureFile>,
}

/// How a lab's proof went ([`crate::verify::verify_lab`]), in brief.
#[derive(Debug, Clone, Serialize)]
pub struct Proof {
    /// Nothing mismatched.
    pub ok: bool,
    /// Lines as declared.
    pub as_declared: usize,
    /// Lines that mismatched.
    pub mismatches: usize,
    /// Wall time of the proof.
    pub elapsed_ms: f64,
}

/// How to run a scenario.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Keep the lab afterwards (on success and on a failed verdict).
    pub keep: bool,
    /// Prove the lab (`icelab verify`) after building it and before the calls; a lab
    /// that is not as declared fails every call's verdict.
    pub verify: bool,
    /// Capture every link into this directory (`<node>.pcap`, one per link) and write
    /// both peers' events of every call to `events.jsonl` there.
    pub capture: Option<PathBuf>,
}

/// Runs the file's scenario in a new lab named `name`: every call of it at once, one
/// report per call, in the scenario's order. `progress` sees each build step.
pub async fn run_scenario(
    spec: &Spec,
    name: &str,
    run: RunOptions,
    progress: impl FnMut(usize, &Step),
) -> anyhow::Result<Vec<RunReport>> {
    let keep = run.keep;
    let topo = &spec.topology;
    let scn = spec.scenario.clone().ok_or_else(|| anyhow!("{} has no [scenario]", topo.file))?;
    let expect = spec.expect.clone().unwrap_or_default();
    let expect = expect.for_peers(&scn.offerer_peer.to_string(), &scn.answerer_peer.to_string());
    let start = Instant::now();
    let opts = crate::fabric::default_options(topo);
    let (lab, build) = Lab::up_with(topo, &spec.events, name, &opts, progress).await?;
    let proof = if run.verify { Some(prove(topo, lab.plan()).await?) } else { None };
    // Started after the proof, so the files hold the calls alone.
    let capture = run.capture.as_deref().map(|dir| Capture::start(lab.plan(), dir)).transpose()?;
    // The file layer allows events only with a single call: they act on the lab, and
    // the timeline reads one pair of peers.
    let firings = lab.plan().events.clone();
    let (plan, scn_ref) = (lab.plan(), &scn);
    let placed = scn.calls.iter().map(|pair| {
        let firings = if scn_ref.calls.len() == 1 { firings.clone() } else { Vec::new() };
        async move {
            let t = Instant::now();
            call(plan, &topo.servers, scn_ref, pair, name, firings, Peers::Processes).await.map(|r| (r, ms(t)))
        }
    });
    // Every call ends by its own deadline, so this wait is bounded; the first that could
    // not be placed fails the run (and dropping the lab tears it down).
    let results: Vec<_> = futures::future::join_all(placed).await.into_iter().collect::<anyhow::Result<_>>()?;
    // The peers have hung up (released their allocations): what did the relays carry?
    let servers = super::figures::collect(topo, lab.plan()).await;
    let captured = match (capture, &run.capture) {
        (Some(c), Some(dir)) => {
            write_events(&dir.join("events.jsonl"), &scn.calls, &results)?;
            c.stop()?
        }
        _ => Vec::new(),
    };
    let teardown_ms = if keep {
        lab.keep()?;
        None
    } else {
        let t = Instant::now();
        lab.down()?;
        Some(ms(t))
    };
    let total_ms = ms(start);
    let relay_implementation = relay_implementation(topo, &scn);
    let reports = scn.calls.iter().zip(results).map(|(pair, (placed, call_ms))| {
        let CallRun { outcome, stderrs: stderr, log, .. } = placed;
        let mut timings = Timings::from_outcome(&outcome);
        timings.lab_up_ms = Some(build.elapsed_ms);
        timings.call_ms = Some(call_ms);
        timings.teardown_ms = teardown_ms;
        timings.total_ms = Some(total_ms);
        let mut verdict = judge(&outcome, &timings, &expect);
        let events = log.as_ref().map(|l| crate::timeline::analyze(&spec.events, l, scn.data_ms)).unwrap_or_default();
        for e in &events {
            let check = e.check().or_else(|| {
                let error = e.error.clone()?;
                Some(Check {
                    name: format!("event {}", e.index),
                    expected: "applied".into(),
                    observed: error,
                    ok: false,
                })
            });
            verdict.checks.extend(check);
        }
        if let Some(p) = &proof {
            let observed = format!("{} lines as declared, {} mismatched", p.as_declared, p.mismatches);
            verdict
                .checks
                .insert(0, Check { name: "lab proven".into(), expected: "as declared".into(), observed, ok: p.ok });
        }
        verdict.pass = verdict.checks.iter().all(|c| c.ok);
        RunReport {
            lab: name.to_string(),
            pair: pair.clone(),
            scenario: scn.clone(),
            outcome,
            timings,
            verdict,
            offerer_stderr: stderr.0,
            answerer_stderr: stderr.1,
            kept: keep,
            events,
            timeline: log,
            relay_implementation: relay_implementation.clone(),
            servers: servers.clone(),
            proof: proof.clone(),
            capture: captured.clone(),
        }
    });
    Ok(reports.collect())
}

/// The name of the implementation that served the scenario's TURN server.
/// Proves the lab before any call: the same proof as `icelab verify`.
async fn prove(topo: &crate::topology::Topology, plan: &Plan) -> anyhow::Result<Proof> {
    let (topo, plan) = (topo.clone(), plan.clone());
    let opts = crate::verify::VerifyOptions::default();
    let r = tokio::task::spawn_blocking(move || crate::verify::verify_lab(&topo, &plan, &opts))
        .await
        .context("the proof's thread")?
        .context("proving the lab")?;
    Ok(Proof { ok: r.ok, as_declared: r.as_declared, mismatches: r.mismatches, elapsed_ms: r.elapsed_ms })
}

pub(super) fn relay_implementation(topo: &crate::topology::Topology, scn: &Scenario) -> Option<String> {
    let server = topo.server(scn.turn.as_deref()?)?;
    let svc = server.services.iter().find(|s| s.kind == crate::servers::ServiceKind::Turn)?;
    Some(svc.implementation.name().to_string())
}

/// One line of `events.jsonl`: a peer's event in a call, with its wall-clock time
/// (approximate: the peer's clock starts when it was spawned) to match the pcaps.
#[derive(Serialize)]
struct EventLine<'a> {
    call: usize,
    offerer: &'a str,
    answerer: &'a str,
    peer: &'static str,
    unix_ms: f64,
    event: &'a PeerEvent,
}

/// Writes every call's events, in time order per call.
fn write_events(path: &std::path::Path, pairs: &[CallPair], placed: &[(CallRun, f64)]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?);
    for (call, (pair, (p, _))) in pairs.iter().zip(placed).enumerate() {
        let base = p.started.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1e3;
        let sides = [("offerer", &p.events.0), ("answerer", &p.events.1)];
        let mut lines: Vec<EventLine> = sides
            .iter()
            .flat_map(|(peer, evs)| {
                evs.iter().map(move |event| EventLine {
                    call,
                    offerer: &pair.offerer,
                    answerer: &pair.answerer,
                    peer,
                    unix_ms: base + event.t_ms(),
                    event,
                })
            })
            .collect();
        lines.sort_by(|a, b| a.unix_ms.total_cmp(&b.unix_ms));
        for l in lines {
            serde_json::to_writer(&mut out, &l)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Stderr tails of both peers.
pub(super) type Stderrs = (String, String);

/// What placing one call gave.
pub(super) struct CallRun {
    /// What the peers reported, judged.
    pub outcome: Outcome,
    /// Their stderr tails.
    pub stderrs: Stderrs,
    /// The timeline's log, when events were played.
    pub log: Option<TimelineLog>,
    /// Both peers' raw events (offerer, answerer), for `events.jsonl`.
    pub events: (Vec<PeerEvent>, Vec<PeerEvent>),
    /// When the peers were started (their events' `t_ms` count from about then).
    pub started: SystemTime,
}

/// Places the call: two peer processes, signaling relayed, bounded by the deadline; with
/// `firings`, the timeline is played during it and its log returned.
pub(super) async fn call(
    plan: &Plan,
    servers: &[crate::topology::Server],
    scn: &Scenario,
    pair: &CallPair,
    lab: &str,
    firings: Vec<PlannedEvent>,
    peers: Peers<'_>,
) -> anyhow::Result<CallRun> {
    let servers = crate::servers::ice_servers(plan, servers, scn)?;
    // Browser start-up is not the call's time: browser peers get it on top of the deadline.
    let startup = scn.offerer_peer.startup_allowance_ms().max(scn.answerer_peer.startup_allowance_ms());
    let config = |role| PeerConfig {
        ice_servers: servers.clone(),
        transport_policy: scn.policy,
        data_duration_ms: scn.data_ms,
        data_rate_kbps: scn.data_rate_kbps,
        deadline_ms: scn.deadline_ms + startup,
        ice_check_interval_ms: Some(scn.ice_check_ms),
        ice_restart: scn.ice_restart,
        ice_timeouts: scn.ice_timeouts,
        ice_profile: scn.ice_profile,
        ice_acceptance_ms: scn.ice_acceptance_ms,
        linger_ms: 50,
        ..PeerConfig::new(role)
    };
    let ns_of =
        |host: &str| plan.node(host).map(|n| n.ns.clone()).ok_or_else(|| anyhow!("host `{host}` is not in the plan"));
    let offerer_cfg = PeerConfig { udp_bind: udp_bind(plan, &pair.offerer), ..config(Role::Offerer) };
    let answerer_cfg = PeerConfig {
        test_silent: scn.silent_answerer,
        udp_bind: udp_bind(plan, &pair.answerer),
        ..config(Role::Answerer)
    };
    let started = SystemTime::now();
    let (a_ns, b_ns) = (ns_of(&pair.offerer)?, ns_of(&pair.answerer)?);
    let until = Duration::from_millis(scn.deadline_ms + startup) + EXIT_GRACE;
    if let Some(pools) = peers.pools(scn)
        && firings.is_empty()
    {
        let mut a = pools.open(&a_ns, plan.resolv_conf(&a_ns), &offerer_cfg).await?;
        let mut b = pools.open(&b_ns, plan.resolv_conf(&b_ns), &answerer_cfg).await?;
        let (a_ev, b_ev) = {
            let (a_out, a_in, b_out, b_in) = (&mut a.events, &mut a.input, &mut b.events, &mut b.input);
            relay_signaling(a_out, a_in, b_out, b_in, until).await
        };
        let mut outcome = Outcome::from_events(&a_ev, &b_ev);
        a.finish(&mut outcome.offerer, HANG_UP, EXIT_GRACE).await;
        b.finish(&mut outcome.answerer, HANG_UP, EXIT_GRACE).await;
        // A pool's stderr is the host's, not one call's: it is logged when the pool fails.
        let stderrs = (String::new(), String::new());
        return Ok(CallRun { outcome, stderrs, log: None, events: (a_ev, b_ev), started });
    }
    let mut a = spawn_peer(&scn.offerer_peer, (&a_ns, plan.resolv_conf(&a_ns)), &offerer_cfg)?;
    let mut b = spawn_peer(&scn.answerer_peer, (&b_ns, plan.resolv_conf(&b_ns)), &answerer_cfg)?;
    let a_err = tokio::spawn(tail(a.stderr.take().unwrap()));
    let b_err = tokio::spawn(tail(b.stderr.take().unwrap()));
    let (a_out, a_in) = (BufReader::new(a.stdout.take().unwrap()), a.stdin.take().unwrap());
    let (b_out, b_in) = (BufReader::new(b.stdout.take().unwrap()), b.stdin.take().unwrap());
    let (a_ev, b_ev, log) = if firings.is_empty() {
        let (a_ev, b_ev) = relay_signaling(a_out, a_in, b_out, b_in, until).await;
        (a_ev, b_ev, None)
    } else {
        let pids = (a.id().unwrap_or(0), b.id().unwrap_or(0));
        let (a_ev, b_ev, log) = relay_with_timeline(a_out, a_in, b_out, b_in, until, pids, lab, firings).await;
        (a_ev, b_ev, Some(log))
    };
    let mut outcome = Outcome::from_events(&a_ev, &b_ev);
    reap(&mut a, &mut outcome.offerer).await;
    reap(&mut b, &mut outcome.answerer).await;
    let a_err = a_err.await.unwrap_or_default();
    let b_err = b_err.await.unwrap_or_default();
    Ok(CallRun { outcome, stderrs: (a_err, b_err), log, events: (a_ev, b_ev), started })
}

/// How a call's peers are run.
#[derive(Clone, Copy)]
pub(super) enum Peers<'a> {
    /// A process per side per call, of the scenario's peer kinds.
    Processes,
    /// Built-in sides on their host's pool ([`super::pool`]); other kinds as processes.
    Pooled(&'a super::pool::PeerPools),
}

impl<'a> Peers<'a> {
    /// The pools, when both of the scenario's sides can be pooled.
    fn pools(self, scn: &Scenario) -> Option<&'a super::pool::PeerPools> {
        match self {
            Peers::Pooled(p) if scn.offerer_peer == PeerKind::BuiltIn && scn.answerer_peer == PeerKind::BuiltIn => {
                Some(p)
            }
            _ => None,
        }
    }
}

/// The wildcards a peer on `host` gathers host candidates from: one per address family
/// the host has (webrtc-rs expands each into the interface addresses of its family; a
/// wildcard of a family the host lacks would be bound as is, a useless candidate).
fn udp_bind(plan: &Plan, host: &str) -> Vec<String> {
    let Some(n) = plan.node(host) else { return PeerConfig::default().udp_bind };
    let v4 = (!n.addresses.is_empty()).then(|| "0.0.0.0:0".to_string());
    let v6 = (!n.addresses6.is_empty()).then(|| "[::]:0".to_string());
    v4.into_iter().chain(v6).collect()
}

/// Starts the peer process of `kind` inside namespace `ns` (resolving names with
/// `resolv_conf` when the lab has a DNS) with piped stdio.
fn spawn_peer(kind: &PeerKind, (ns, resolv_conf): (&str, Option<String>), cfg: &PeerConfig) -> anyhow::Result<Child> {
    spawn_on_host(kind.command(cfg)?, ns, resolv_conf.as_deref(), &format!("the {kind} peer"))
}

/// Starts `cmd` inside namespace `ns` (resolving with `resolv_conf`), stdio piped, killed
/// with us whatever happens (the lab teardown would also find it). `what` names it in
/// the error.
pub(super) fn spawn_on_host(
    mut cmd: std::process::Command,
    ns: &str,
    resolv_conf: Option<&str>,
    what: &str,
) -> anyhow::Result<Child> {
    let fd = netns::open(ns)?;
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    procs::enter_netns_resolving(&mut cmd, &fd, resolv_conf)?;
    let mut cmd = Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd.spawn().with_context(|| format!("starting {what} in {ns}"))
}

/// Waits (bounded) for a peer to exit, kills it if it does not, and records why it
/// ended when its events do not say.
async fn reap(child: &mut Child, o: &mut PeerOutcome) {
    // A peer that reported `done` hangs up (closing its connection releases its TURN
    // allocations, so the relay's figures are complete) and exits: bounded by HANG_UP.
    let grace = if o.ok { HANG_UP } else { EXIT_GRACE };
    let status = match tokio::time::timeout(grace, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) if o.ok => {
            let _ = child.kill().await;
            return;
        }
        Err(_) => {
            let _ = child.kill().await;
            if !o.ok && o.errors.is_empty() {
                o.timed_out = true;
                o.exit_error = Some("no result by the scenario deadline; killed".into());
            }
            return;
        }
    };
    if !o.ok
        && o.exit_error.is_none()
        && let Some(s) = status
    {
        o.exit_error = Some(format!("peer exited with {s}"));
    }
}

/// The last [`STDERR_TAIL`] bytes of a stream.
pub(super) async fn tail(mut r: impl tokio::io::AsyncRead + Unpin) -> String {
    let mut keep = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        keep.extend_from_slice(&buf[..n]);
        if keep.len() > 2 * STDERR_TAIL {
            keep.drain(..keep.len() - STDERR_TAIL);
        }
    }
    if keep.len() > STDERR_TAIL {
        keep.drain(..keep.len() - STDERR_TAIL);
    }
    String::from_utf8_lossy(&keep).into_owned()
}
