//! The call with a timeline: relays signaling like [`crate::peer::relay_signaling`],
//! and meanwhile watches the peers' events live, fires each planned event's steps
//! (through [`crate::fabric::Applier`], attached to the lab) at its time after the data
//! channel opened, and samples how many bytes reach the two hosts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncWrite};

use crate::fabric::Applier;
use crate::peer::{PeerEvent, RelayWatch, relay_watched};
use crate::plan::PlannedEvent;
use crate::timeline::{Applied, SAMPLE_EVERY, TimelineLog};

/// Deadline of one event's steps together.
const FIRING_DEADLINE: Duration = Duration::from_secs(10);

/// Bytes received on the non-loopback interfaces of process `pid`'s namespace.
fn rx_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(
        text.lines()
            .skip(2)
            .filter_map(|l| {
                let (name, rest) = l.split_once(':')?;
                (name.trim() != "lo").then(|| rest.split_whitespace().next()?.parse::<u64>().ok())?
            })
            .sum(),
    )
}

/// UDP datagrams delivered to sockets in process `pid`'s namespace (`Udp: InDatagrams`).
/// ICMP errors (e.g. port unreachable from a killed server) count in the bytes, not here.
fn udp_in(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/snmp")).ok()?;
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let i = names.split_whitespace().position(|n| n == "InDatagrams")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Relays signaling between the peers (stdout -> other's stdin) until both outputs
/// close or `deadline` passes, firing the planned events `firings` along the way. `pids` are the peer
/// processes, whose namespaces' byte counters are sampled.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn relay_with_timeline(
    a_out: impl AsyncBufRead + Unpin,
    a_in: impl AsyncWrite + Unpin,
    b_out: impl AsyncBufRead + Unpin,
    b_in: impl AsyncWrite + Unpin,
    deadline: Duration,
    pids: (u32, u32),
    lab: &str,
    firings: Vec<PlannedEvent>,
) -> (Vec<PeerEvent>, Vec<PeerEvent>, TimelineLog) {
    let (t0_tx, t0_rx) = tokio::sync::oneshot::channel::<Instant>();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let applied = Arc::new(Mutex::new(Vec::new()));
    spawn_firing(lab.to_string(), firings.clone(), t0_rx, stop_rx, applied.clone());
    let mut watch = Watch { base: Instant::now(), pids, log: TimelineLog::default(), t0_tx: Some(t0_tx) };
    let (a_events, b_events) = relay_watched(a_out, a_in, b_out, b_in, deadline, &mut watch).await;
    let mut log = watch.log;
    // Events not yet due are dropped; one being applied finishes within its deadlines.
    let _ = stop_tx.send(());
    let done = applied.lock().map(|v| v.clone()).unwrap_or_default();
    log.applied = firings
        .iter()
        .map(|f| {
            done.iter().find(|a: &&Applied| a.index == f.index).cloned().unwrap_or_else(|| Applied {
                index: f.index,
                at_ms: f.at_ms,
                what: f.what.clone(),
                applied_ms: None,
                took_ms: None,
                ops: Vec::new(),
                error: Some(if let Some(p) = &f.problem {
                    format!("not applied: {p}")
                } else if log.t0_ms.is_none() {
                    "not applied: the data channel never opened".into()
                } else {
                    "not applied: the call ended first".into()
                }),
            })
        })
        .collect();
    (a_events, b_events, log)
}

/// Events the outcome analysis needs (state, pair, restart, end), with their arrival time.
fn keep(v: &mut Vec<(f64, PeerEvent)>, t: f64, ev: &PeerEvent) {
    if matches!(
        ev,
        PeerEvent::IceState { .. }
            | PeerEvent::SelectedPair { .. }
            | PeerEvent::IceRestart { .. }
            | PeerEvent::Error { .. }
            | PeerEvent::Done { .. }
    ) {
        v.push((t, ev.clone()));
    }
}

/// The timeline's view of the relay: byte counters every [`SAMPLE_EVERY`], the events
/// the analysis needs, and the moment the offerer's channel opened (the timeline's zero).
struct Watch {
    base: Instant,
    pids: (u32, u32),
    log: TimelineLog,
    t0_tx: Option<tokio::sync::oneshot::Sender<Instant>>,
}

impl Watch {
    fn ms(&self) -> f64 {
        self.base.elapsed().as_secs_f64() * 1e3
    }
}

impl RelayWatch for Watch {
    fn on_event(&mut self, offerer: bool, ev: &PeerEvent) {
        let t = self.ms();
        if offerer
            && matches!(ev, PeerEvent::DataChannelOpen { .. })
            && let Some(tx) = self.t0_tx.take()
        {
            self.log.t0_ms = Some(t);
            let _ = tx.send(Instant::now());
        }
        keep(if offerer { &mut self.log.offerer } else { &mut self.log.answerer }, t, ev);
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(SAMPLE_EVERY)
    }

    fn on_tick(&mut self) {
        let (a, b) = self.pids;
        if let (Some(x), Some(y), Some(u), Some(v)) = (rx_bytes(a), rx_bytes(b), udp_in(a), udp_in(b)) {
            let t = self.ms();
            self.log.samples.push((t, x + y, u + v));
        }
    }

    /// Events may still be due after both peers are done; the outputs closing ends it.
    fn stop_when_done(&self) -> bool {
        false
    }
}

/// Fires on a thread of its own with its own runtime: the applier's blocking work
/// (nft, service starts) must not stall the relay's sampling, and its netlink
/// connections live on the runtime that made them.
pub(crate) fn spawn_firing(
    lab: String,
    firings: Vec<PlannedEvent>,
    t0: tokio::sync::oneshot::Receiver<Instant>,
    stop: tokio::sync::oneshot::Receiver<()>,
    out: Arc<Mutex<Vec<Applied>>>,
) {
    std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::error!(%e, "no runtime for the timeline"),
        };
        rt.block_on(async {
            tokio::select! {
                _ = stop => {}
                _ = fire_all(&lab, firings, t0, out) => {}
            }
        });
    });
}

/// Waits for the timeline's zero, then applies each event's steps at its time, in order.
async fn fire_all(
    lab: &str,
    firings: Vec<PlannedEvent>,
    t0: tokio::sync::oneshot::Receiver<Instant>,
    out: Arc<Mutex<Vec<Applied>>>,
) {
    let mut applier = Applier::attach(lab);
    // Namespaces and netlink sockets are opened before the call is up, not at the first event.
    for step in firings.iter().flat_map(|f| &f.steps) {
        if let Err(e) = applier.open_existing(step.ns()) {
            tracing::warn!("{e:#}");
        }
    }
    let Ok(t0) = t0.await else { return };
    for f in firings.into_iter().filter(|f| f.problem.is_none()) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(t0 + Duration::from_millis(f.at_ms))).await;
        let start = Instant::now();
        let applied_ms = (start - t0).as_secs_f64() * 1e3;
        let work = async {
            for step in &f.steps {
                applier.apply(step).await.map_err(|e| format!("{e:#}"))?;
            }
            applier.finish().map_err(|e| format!("{e:#}"))
        };
        let error = match tokio::time::timeout(FIRING_DEADLINE, work).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!("steps did not finish within {FIRING_DEADLINE:?}")),
        };
        let took_ms = Some(start.elapsed().as_secs_f64() * 1e3);
        tracing::info!(event = f.index, at_ms = applied_ms, ?error, "{}", f.what);
        let rec = Applied {
            index: f.index,
            at_ms: f.at_ms,
            what: f.what.clone(),
            applied_ms: Some(applied_ms),
            took_ms,
            ops: f.steps.iter().map(|s| s.to_string()).collect(),
            error,
        };
        if let Ok(mut v) = out.lock() {
            v.push(rec);
        }
    }
}
