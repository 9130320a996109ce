//! The load report: pure, from one [`Sample`] per call. Offered vs achieved setups/s,
//! success and failures by reason, percentiles of every setup phase (queueing apart,
//! srflx and relay gathering apart, ICE / DTLS / channel open split by selected pair
//! type), throughput, per-second buckets, and for a population the relayed share by
//! pair of kinds against the matrix's expectations. Each call keeps its
//! [`crate::report::Call`] row: the per-call figures are the run report's.
//!
//! Clocks: `scheduled_ms`, `started_ms`, `ended_ms` are the load driver's, from the
//! first arrival. Phase times are the offerer peer's, from its offer (as in every
//! icelab report); "setup from start" is the offerer's own clock from its process start
//! to its channel open, so it includes the peer's start-up and the answerer's.

use std::collections::BTreeMap;

use serde::Serialize;

use super::schedule::Arrival;
use super::spec::LoadSpec;
use crate::call::RunReport;
use crate::matrix::Config;
use crate::scenario::{CallPair, PathClass, Timings, relay_transport};
use crate::servers::stats::{ServerFigures, ServerStats};

/// One call of a load, as the report needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// 0-based, in arrival order.
    pub index: usize,
    /// Who called whom.
    pub pair: CallPair,
    /// Population loads: both ends' kinds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kinds: Option<(Config, Config)>,
    /// Population loads: the path the matrix expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_path: Option<PathClass>,
    /// When it arrived (driver clock, ms after the first arrival).
    pub scheduled_ms: f64,
    /// When it got a slot and its peers were started; `None`: never started.
    pub started_ms: Option<f64>,
    /// When its peers were gone.
    pub ended_ms: Option<f64>,
    /// Its verdict passed (connected, and the lab file's `[expect]` if any).
    pub ok: bool,
    /// Why not, in a few words (the report counts calls by it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// The selected path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathClass>,
    /// The selected pair's types, local/remote (`srflx/prflx`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pair_type: Option<String>,
    /// TURN transport when relayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_transport: Option<String>,
    /// Offer -> gathering complete (offerer).
    pub gathering_ms: Option<f64>,
    /// Offer -> first srflx candidate (offerer): the STUN answer.
    pub srflx_ms: Option<f64>,
    /// Offer -> first relay candidate (offerer): the TURN allocation.
    pub relay_ms: Option<f64>,
    /// Offer -> ICE connected.
    pub ice_ms: Option<f64>,
    /// Offer -> DTLS up.
    pub dtls_ms: Option<f64>,
    /// Offer -> data channel open.
    pub open_ms: Option<f64>,
    /// Offerer process start -> data channel open (the offerer's clock).
    pub setup_from_start_ms: Option<f64>,
    /// Payload bytes both peers sent.
    pub bytes_sent: u64,
    /// Payload bytes both peers received.
    pub bytes_received: u64,
    /// Received payload rate, both directions summed, bytes/s (absent when no direction
    /// got two messages to time).
    pub recv_bytes_per_sec: Option<f64>,
    /// What the call's relayed ends (selected local candidate a relay) sent and got over
    /// their selected pairs, i.e. through their relays: DTLS datagrams, without ICE checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub via_relay: Option<crate::peer::TransportStats>,
    /// The call's row of the run report (absent when it never ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<crate::report::Call>,
}

impl Sample {
    /// Ran before its arrival's slot came, or not at all.
    pub fn not_started(a: &Arrival, why: &str) -> Sample {
        Sample {
            index: a.index,
            pair: a.pair.clone(),
            kinds: a.kinds,
            expected_path: a.expected_path,
            scheduled_ms: a.at_ms,
            started_ms: None,
            ended_ms: None,
            ok: false,
            failure: Some(why.into()),
            path: None,
            pair_type: None,
            relay_transport: None,
            gathering_ms: None,
            srflx_ms: None,
            relay_ms: None,
            ice_ms: None,
            dtls_ms: None,
            open_ms: None,
            setup_from_start_ms: None,
            bytes_sent: 0,
            bytes_received: 0,
            recv_bytes_per_sec: None,
            via_relay: None,
            call: None,
        }
    }

    /// A call that started but could not be placed (its peers did not start).
    pub fn not_placed(a: &Arrival, started_ms: f64, ended_ms: f64, error: &str) -> Sample {
        let first = error.split(':').next().unwrap_or(error);
        Sample {
            started_ms: Some(started_ms),
            ended_ms: Some(ended_ms),
            ..Sample::not_started(a, &format!("not placed: {first}"))
        }
    }

    /// A call that ran.
    pub fn from_run(a: &Arrival, started_ms: f64, ended_ms: f64, rep: &RunReport) -> Sample {
        let o = &rep.outcome;
        let p = &o.offerer;
        let t = Timings::from_outcome(o);
        let since_offer = |kind: &str| {
            let start = p.gathering_started_ms?;
            let c = p.candidates.iter().find(|c| c.candidate.candidate_type == kind)?;
            Some(c.t_ms - start)
        };
        let relay = relay_transport(o);
        let path =
            p.selected_pair.as_ref().map(|_| if relay.is_some() { PathClass::Relayed } else { PathClass::Direct });
        let data = [&o.offerer.data, &o.answerer.data];
        let sum = |f: fn(&crate::peer::DataStats) -> u64| data.iter().filter_map(|d| d.as_ref()).map(f).sum();
        // A direction that got one message has no rate (first to last message): left out.
        let rates: Vec<f64> =
            [t.forward_bytes_per_sec, t.reverse_bytes_per_sec].into_iter().flatten().filter(|r| *r > 0.0).collect();
        let call =
            crate::report::Call { name: format!("#{} {}", a.index + 1, a.pair), ..crate::report::Call::from_run(rep) };
        Sample {
            started_ms: Some(started_ms),
            ended_ms: Some(ended_ms),
            ok: rep.verdict.pass,
            failure: (!rep.verdict.pass).then(|| failure_reason(rep)),
            path,
            pair_type: call.pair.as_ref().map(|p| p.short()),
            relay_transport: relay,
            gathering_ms: t.gathering_ms,
            srflx_ms: since_offer("srflx"),
            relay_ms: since_offer("relay"),
            ice_ms: t.ice_ms,
            dtls_ms: t.dtls_ms,
            open_ms: t.connect_ms,
            setup_from_start_ms: p.data_channel_open_ms,
            bytes_sent: sum(|d| d.bytes_sent),
            bytes_received: sum(|d| d.bytes_received),
            recv_bytes_per_sec: (!rates.is_empty()).then(|| rates.iter().sum()),
            via_relay: via_relay(o),
            call: Some(call),
            ..Sample::not_started(a, "")
        }
    }

    /// Waiting for a slot: arrival -> start.
    pub fn queue_ms(&self) -> Option<f64> {
        Some(self.started_ms? - self.scheduled_ms)
    }

    /// Arrival -> data channel open: queueing plus setup from start.
    pub fn setup_from_arrival_ms(&self) -> Option<f64> {
        Some(self.queue_ms()? + self.setup_from_start_ms?)
    }

    /// When its channel opened on the driver's clock (start + setup from start).
    pub fn opened_at_ms(&self) -> Option<f64> {
        Some(self.started_ms? + self.setup_from_start_ms?)
    }
}

/// What the relayed ends' selected pairs carried (their DTLS datagrams), summed; `None`
/// when no end relays or one that does reported none.
fn via_relay(o: &crate::peer::Outcome) -> Option<crate::peer::TransportStats> {
    let relayed: Vec<_> = [&o.offerer, &o.answerer]
        .into_iter()
        .filter(|p| p.selected_pair.as_ref().is_some_and(|sp| sp.local.base_type == "relay"))
        .collect();
    if relayed.is_empty() {
        return None;
    }
    relayed.iter().try_fold(crate::peer::TransportStats::default(), |mut sum, p| {
        let t = p.data.as_ref()?.selected_pairs?;
        sum.packets_sent += t.packets_sent;
        sum.bytes_sent += t.bytes_sent;
        sum.packets_received += t.packets_received;
        sum.bytes_received += t.bytes_received;
        Some(sum)
    })
}

/// What the relays carried against what the relayed ends of the calls sent and got.
///
/// A relayed end's selected pairs carry its DTLS datagrams, all of them through its
/// relay; the ICE agent's checks (on every pair, all call long) are not in them. The
/// built-in relay counts its STUN datagrams (those checks) apart, so the two are set
/// side by side without them: what relayed ends sent against what the relays sent to
/// peers (`to_peers`), and what they got against what the relays got from peers
/// (`from_peers`), whether the other end is direct or relayed on the same server. What
/// no call's figures hold is the difference: datagrams after a peer read its figures,
/// and calls that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayAccounting {
    /// Calls with a relayed end and its figures.
    pub calls: usize,
    /// Calls with a relayed end that reported no transport figures (left out).
    pub calls_without_figures: usize,
    /// What is compared: `DTLS datagrams` (the relay's STUN left out) or `all datagrams`
    /// (a relay that does not split them, coturn: its checks are in the difference).
    pub counted: String,
    /// Bytes the relayed ends sent over their selected pairs.
    pub peers_sent_bytes: u64,
    /// Bytes the relays sent to peers, as counted.
    pub relay_to_peers_bytes: u64,
    /// Bytes the relayed ends received over their selected pairs.
    pub peers_received_bytes: u64,
    /// Bytes the relays received from peers, as counted.
    pub relay_from_peers_bytes: u64,
    /// The relays' STUN bytes left out (to peers, from peers), when split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_stun_bytes: Option<(u64, u64)>,
    /// |relay - peers| / peers, sent side, %.
    pub sent_diff_pct: f64,
    /// |relay - peers| / peers, received side, %.
    pub received_diff_pct: f64,
}

impl RelayAccounting {
    /// From the calls and the servers' figures; `None` without measured relay figures or
    /// without a relayed call.
    pub fn new(samples: &[Sample], side: &ServerSide) -> Option<RelayAccounting> {
        let turn: Vec<_> = side.servers.iter().filter(|f| f.service == crate::servers::ServiceKind::Turn).collect();
        if !side.measured || turn.is_empty() || turn.iter().any(|f| f.stats.unreported_allocations > 0) {
            return None;
        }
        let relayed = samples.iter().filter(|s| s.path == Some(PathClass::Relayed));
        let (with, without): (Vec<&Sample>, Vec<&Sample>) = relayed.partition(|s| s.via_relay.is_some());
        if with.is_empty() {
            return None;
        }
        let peers = |f: fn(&crate::peer::TransportStats) -> u64| -> u64 {
            with.iter().filter_map(|s| s.via_relay.as_ref()).map(f).sum()
        };
        let (sent, received) = (peers(|t| t.bytes_sent), peers(|t| t.bytes_received));
        let relay =
            |f: fn(&crate::servers::stats::ServerStats) -> u64| -> u64 { turn.iter().map(|t| f(&t.stats)).sum() };
        let (to, from) = (relay(|s| s.to_peers.bytes), relay(|s| s.from_peers.bytes));
        let split: Option<Vec<(u64, u64)>> =
            turn.iter().map(|t| Some((t.stats.to_peers_stun?.bytes, t.stats.from_peers_stun?.bytes))).collect();
        let stun = split.map(|v| v.iter().fold((0, 0), |(a, b), (x, y)| (a + x, b + y)));
        let (to, from, counted) = match stun {
            Some((ts, fs)) => (to.saturating_sub(ts), from.saturating_sub(fs), "DTLS datagrams"),
            None => (to, from, "all datagrams"),
        };
        let pct = |relay: u64, peers: u64| {
            if peers == 0 { 0.0 } else { relay.abs_diff(peers) as f64 * 100.0 / peers as f64 }
        };
        Some(RelayAccounting {
            calls: with.len(),
            calls_without_figures: without.len(),
            counted: counted.into(),
            peers_sent_bytes: sent,
            relay_to_peers_bytes: to,
            peers_received_bytes: received,
            relay_from_peers_bytes: from,
            relay_stun_bytes: stun,
            sent_diff_pct: pct(to, sent),
            received_diff_pct: pct(from, received),
        })
    }
}

/// The failure, in a few words: the peers' error kind and phase, or the check that failed.
fn failure_reason(rep: &RunReport) -> String {
    let o = &rep.outcome;
    if !o.ok() {
        let word = if o.offerer.timed_out || o.answerer.timed_out { "timeout" } else { "failed" };
        let first = [&o.offerer, &o.answerer]
            .into_iter()
            .filter(|p| !p.ok)
            .find_map(|p| p.errors.iter().find(|e| e.kind != crate::peer::ErrorKind::PeerGone).or(p.errors.first()));
        return match first {
            Some(e) => format!("{word}: {:?} in {:?}", e.kind, e.phase).to_lowercase(),
            None => format!("{word}: no result"),
        };
    }
    match rep.verdict.checks.iter().find(|c| !c.ok) {
        Some(c) => format!("{}: expected {}, got {}", c.name, c.expected, c.observed),
        None => "failed".into(),
    }
}

/// Percentiles of one figure (nearest rank).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    /// The figure.
    pub name: String,
    /// Calls that have it.
    pub count: usize,
    /// Median, ms.
    pub p50: f64,
    /// 95th percentile, ms.
    pub p95: f64,
    /// 99th percentile, ms.
    pub p99: f64,
}

/// Nearest-rank percentile of sorted, non-empty `v`.
pub fn nearest_rank(v: &[f64], p: f64) -> f64 {
    let rank = (p * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// p50/p95/p99 of `values`; `None` when there are none.
pub fn stat(name: &str, values: impl IntoIterator<Item = f64>) -> Option<Stat> {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(Stat {
        name: name.into(),
        count: v.len(),
        p50: nearest_rank(&v, 0.50),
        p95: nearest_rank(&v, 0.95),
        p99: nearest_rank(&v, 0.99),
    })
}

/// Calls that connected with one selected pair type, and their phases.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ByPairType {
    /// `local/remote` candidate types.
    pub pair_type: String,
    /// Direct or relayed.
    pub path: Option<PathClass>,
    /// Calls.
    pub calls: usize,
    /// ICE connected, DTLS up, channel open (ms after the offer).
    pub stats: Vec<Stat>,
}

/// One pair of kinds of a population.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KindPair {
    /// Offerer's kind.
    pub a: Config,
    /// Answerer's kind.
    pub b: Config,
    /// Calls placed between them.
    pub calls: usize,
    /// Of those, calls that connected.
    pub connected: usize,
    /// Of those, calls relayed.
    pub relayed: usize,
    /// What the matrix expects.
    pub expected: PathClass,
    /// Connected calls whose path was not the expected one.
    pub mismatched: usize,
}

/// The relayed share of a population load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelayShare {
    /// Connected calls that were relayed, over connected calls.
    pub observed: f64,
    /// What the drawn pairs predict (the matrix's expectation of each connected call).
    pub predicted_by_pairs: f64,
    /// What the mix predicts for an endless load (its weights, both ends drawn).
    pub predicted_by_mix: f64,
    /// Connected calls whose path was not the matrix's.
    pub mismatched: usize,
    /// By pair of kinds.
    pub by_kinds: Vec<KindPair>,
}

/// Calls started, opened and their setups in one second of the load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// Second since the first arrival.
    pub t_s: u64,
    /// Calls that arrived in it (the offered rate).
    pub offered: usize,
    /// Calls that started in it.
    pub started: usize,
    /// Calls whose channel opened in it (the achieved rate).
    pub opened: usize,
    /// p95 of setup from arrival of the calls that arrived in it.
    pub p95_setup_ms: Option<f64>,
}

/// Payload through the calls.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Throughput {
    /// Payload bytes sent, all calls, both ways.
    pub bytes_sent: u64,
    /// Payload bytes received, all calls, both ways.
    pub bytes_received: u64,
    /// Of which through a relay.
    pub relayed_bytes_received: u64,
    /// Per call: received payload rate, both ways summed, bytes/s.
    pub per_call_bytes_per_sec: Option<Stat>,
}

/// Server-side figures: the lab's TURN servers' own counters over the whole load
/// (bindings, allocations and refusals, permissions, datagrams and bytes relayed), as
/// every run reads them ([`crate::servers::stats`]), the request and relay rates
/// their samples give over time, and the built-in server's answer latencies by method.
/// Those are its own read-to-send time; what clients wait, network included, is in
/// [`LoadReport::setup`] (`srflx`/`relay` gathering). coturn does not time its answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSide {
    /// Whether the servers' counters were read.
    pub measured: bool,
    /// What is missing, or where the figures come from.
    pub note: String,
    /// Each TURN service's figures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<crate::servers::stats::ServerFigures>,
    /// Each server's request and relay rates, whole and over time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rates: Vec<crate::servers::stats::ServerRates>,
    /// Each server's answer latencies over the whole load, by method.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub latencies: Vec<ServerLatency>,
}

/// One server's answer latencies over the load: the server's own time from reading a
/// request off its socket to sending the answer (the network and the kernel's queues
/// excluded), so a rise is the server's doing, not the path's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerLatency {
    /// The server's name in the file.
    pub server: String,
    /// The service timed.
    pub service: crate::servers::ServiceKind,
    /// The program that ran it.
    pub implementation: crate::servers::Implementation,
    /// Whether it times its answers (the built-in server does, coturn does not).
    pub measured: bool,
    /// By request method: count and p50/p95/p99, ms.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<crate::servers::latency::MethodLatency>,
}

impl ServerLatency {
    fn of(f: &ServerFigures) -> ServerLatency {
        ServerLatency::over(f, &f.stats.answer_latency_us)
    }

    /// `f`'s server, with the answers in `by`.
    fn over(f: &ServerFigures, by: &crate::servers::latency::ByMethod) -> ServerLatency {
        ServerLatency {
            server: f.server.clone(),
            service: f.service,
            implementation: f.implementation,
            measured: ServerLatency::timed(f),
            methods: crate::servers::latency::summarize(by),
        }
    }

    /// Whether the server times its answers (the built-in one does, coturn does not).
    fn timed(f: &ServerFigures) -> bool {
        f.implementation == crate::servers::Implementation::BuiltIn
    }
}

impl ServerSide {
    /// The slot filled with the servers' figures (none read: still empty).
    pub fn from_figures(servers: Vec<crate::servers::stats::ServerFigures>) -> ServerSide {
        if servers.is_empty() {
            let note = "the lab has no TURN or STUN server to read".into();
            return ServerSide { measured: false, note, servers, rates: Vec::new(), latencies: Vec::new() };
        }
        let rates = servers.iter().filter_map(|f| f.rates()).collect();
        let latencies = servers.iter().map(ServerLatency::of).collect();
        let parts: Vec<String> = servers
            .iter()
            .map(|f| {
                let s = &f.stats;
                let note = f.note.as_ref().map_or(String::new(), |n| format!(" ({n})"));
                if f.service == crate::servers::ServiceKind::Stun {
                    return format!(
                        "{} ({} STUN): {} bindings{note}",
                        f.server,
                        f.implementation.name(),
                        s.stun_bindings
                    );
                }
                format!(
                    "{} ({}): {} bindings, {} allocations, {} B to peers, {} B from peers{}",
                    f.server,
                    f.implementation.name(),
                    s.stun_bindings,
                    s.allocations,
                    s.to_peers.bytes,
                    s.from_peers.bytes,
                    note
                )
            })
            .collect();
        ServerSide { measured: true, note: parts.join("; "), servers, rates, latencies }
    }
}

/// The calls that arrived between one lab change and the next: where setup degrades.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    /// What began it: `start`, or the event in words.
    pub cause: String,
    /// When it began, ms after the first arrival (an event's applied time).
    pub from_ms: f64,
    /// Why the event failed to apply, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Calls that arrived in it.
    pub calls: usize,
    /// Of them, passed.
    pub passed: usize,
    /// Setup from arrival and channel open of its connected calls.
    pub stats: Vec<Stat>,
    /// The servers' answer latencies over the phase's span of time (see
    /// [`add_server_latencies`]); empty for an event that never applied.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub server_latencies: Vec<ServerLatency>,
}

/// The load cut at each applied event (in time order): one phase before the first, one
/// after each.
pub fn phases(samples: &[Sample], events: &[crate::timeline::Applied]) -> Vec<Phase> {
    if events.is_empty() {
        return Vec::new();
    }
    let mut starts = vec![("start".to_string(), 0.0, None)];
    // An event that never applied begins no phase of its own, but is shown.
    starts.extend(events.iter().map(|a| (a.what.clone(), a.applied_ms.unwrap_or(f64::NAN), a.error.clone())));
    let bounds: Vec<f64> = starts.iter().map(|s| s.1).collect();
    starts
        .into_iter()
        .enumerate()
        .map(|(i, (cause, from_ms, error))| {
            let to = bounds[i + 1..].iter().copied().find(|b| !b.is_nan()).unwrap_or(f64::INFINITY);
            let inside: Vec<&Sample> = if from_ms.is_nan() {
                Vec::new()
            } else {
                samples.iter().filter(|s| s.scheduled_ms >= from_ms && s.scheduled_ms < to).collect()
            };
            let ok = || inside.iter().filter(|s| s.ok);
            Phase {
                cause,
                from_ms,
                error,
                calls: inside.len(),
                passed: ok().count(),
                stats: [
                    stat("setup from arrival", ok().filter_map(|s| s.setup_from_arrival_ms())),
                    stat("channel open", ok().filter_map(|s| s.open_ms)),
                ]
                .into_iter()
                .flatten()
                .collect(),
                server_latencies: Vec::new(),
            }
        })
        .collect()
}

/// Each timing server's answer latencies in each phase's span of time: from the phase's
/// start (the first reaches back to the server's start) to the next applied phase's
/// (the last runs to the server's last sample), so a method's counts over the phases add
/// up to the whole load's. A bound takes the server's last cumulative sample at or before
/// it, and the built-in server samples each second in which something changed, so an
/// answer counts up to a second late. Calls are in phases by arrival, answers by time.
pub fn add_server_latencies(phases: &mut [Phase], servers: &[ServerFigures], t0_unix_ms: u64) {
    let bounds: Vec<Option<u64>> =
        phases.iter().map(|p| (!p.from_ms.is_nan()).then(|| t0_unix_ms + p.from_ms.max(0.0) as u64)).collect();
    let zero = ServerStats::default();
    for (i, phase) in phases.iter_mut().enumerate() {
        if bounds[i].is_none() {
            continue;
        }
        let to = bounds[i + 1..].iter().flatten().next().copied();
        phase.server_latencies = servers
            .iter()
            .filter(|f| ServerLatency::timed(f))
            .map(|f| {
                let at = |t: u64| f.samples.iter().rev().find(|s| s.at_unix_ms <= t).unwrap_or(&zero);
                let from = if i == 0 { &zero } else { bounds[i].map_or(&zero, at) };
                let to = to.map_or_else(|| f.samples.last().unwrap_or(&zero), at);
                ServerLatency::over(f, &to.since(from).answer_latency_us)
            })
            .collect();
    }
}

/// A whole load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    /// The load file.
    pub source: String,
    /// The lab it ran in.
    pub lab: String,
    /// What was asked.
    pub spec: LoadSpec,
    /// Building the lab, ms (before the first arrival).
    pub lab_up_ms: f64,
    /// The built-in peers' ICE profile: its acceptance waits (webrtc-rs: srflx 500 ms,
    /// prflx 1000 ms, relay 2000 ms) are the stack's timers inside ICE connected.
    pub ice_profile: String,
    /// First arrival -> last call ended, s.
    pub wall_s: f64,
    /// Calls asked for.
    pub calls: usize,
    /// Calls that started (got a slot before the time bound).
    pub started: usize,
    /// Calls that passed.
    pub passed: usize,
    /// Passed over asked for.
    pub success_rate: f64,
    /// The rate asked for, calls/s.
    pub offered_per_s: f64,
    /// Calls that arrived over their arrival span (what the driver really offered).
    pub arrived_per_s: f64,
    /// Setups completed per second: connected calls over first -> last channel open.
    pub achieved_per_s: f64,
    /// Most calls running at once.
    pub peak_concurrency: usize,
    /// Failures by reason, most frequent first.
    pub failures: Vec<(String, usize)>,
    /// Queueing, setup from arrival and from start, gathering (srflx, relay apart).
    pub setup: Vec<Stat>,
    /// ICE / DTLS / channel open by selected pair type.
    pub by_pair_type: Vec<ByPairType>,
    /// Population loads: the relayed share, against the matrix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_share: Option<RelayShare>,
    /// Payload.
    pub throughput: Throughput,
    /// The servers' own figures.
    pub server_side: ServerSide,
    /// The relays' bytes against the relayed ends' (set with `server_side`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_accounting: Option<RelayAccounting>,
    /// CPU and memory of the lab's servers and of the peers.
    pub resources: crate::report::resources::Resources,
    /// Offered vs achieved per second, and the p95 setup of each second's arrivals.
    pub per_second: Vec<Second>,
    /// With `[[event]]`s: the load cut at each lab change (see [`phases`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<Phase>,
    /// Every call.
    pub samples: Vec<Sample>,
}

/// The load's report from its samples (any order; kept in arrival order).
pub fn build(
    source: &str,
    lab: &str,
    spec: &LoadSpec,
    (lab_up_ms, ice_profile): (f64, &str),
    mut samples: Vec<Sample>,
) -> LoadReport {
    samples.sort_by_key(|s| s.index);
    let calls = samples.len();
    let started = samples.iter().filter(|s| s.started_ms.is_some()).count();
    let passed = samples.iter().filter(|s| s.ok).count();
    let last_arrival = samples.iter().map(|s| s.scheduled_ms).fold(0.0, f64::max);
    let arrived_per_s = if calls > 1 && last_arrival > 0.0 { (calls - 1) as f64 * 1e3 / last_arrival } else { 0.0 };
    // The pace at which setups completed, first open to last: a constant setup time
    // does not lower it, a growing one (queueing) does.
    let opens: Vec<f64> = samples.iter().filter(|s| s.ok).filter_map(Sample::opened_at_ms).collect();
    let (first_open, last_open) = opens.iter().fold((f64::MAX, 0.0f64), |(a, b), t| (a.min(*t), b.max(*t)));
    let achieved_per_s = if opens.len() > 1 && last_open > first_open {
        (opens.len() - 1) as f64 * 1e3 / (last_open - first_open)
    } else {
        0.0
    };
    let wall_ms = samples.iter().filter_map(|s| s.ended_ms).fold(last_arrival, f64::max);

    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for s in samples.iter().filter(|s| !s.ok) {
        *failures.entry(s.failure.clone().unwrap_or_else(|| "failed".into())).or_default() += 1;
    }
    let mut failures: Vec<(String, usize)> = failures.into_iter().collect();
    failures.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));

    let ok = || samples.iter().filter(|s| s.ok);
    let setup: Vec<Stat> = [
        stat("queue (arrival -> start)", samples.iter().filter_map(Sample::queue_ms)),
        stat("setup from arrival", ok().filter_map(Sample::setup_from_arrival_ms)),
        stat("setup from start", ok().filter_map(|s| s.setup_from_start_ms)),
        stat("gathering", ok().filter_map(|s| s.gathering_ms)),
        stat("srflx gathered", ok().filter_map(|s| s.srflx_ms)),
        stat("relay gathered", ok().filter_map(|s| s.relay_ms)),
        stat("ice connected", ok().filter_map(|s| s.ice_ms)),
        stat("dtls connected", ok().filter_map(|s| s.dtls_ms)),
        stat("channel open", ok().filter_map(|s| s.open_ms)),
    ]
    .into_iter()
    .flatten()
    .collect();

    let mut groups: BTreeMap<String, Vec<&Sample>> = BTreeMap::new();
    for s in ok() {
        groups.entry(s.pair_type.clone().unwrap_or_else(|| "-".into())).or_default().push(s);
    }
    let by_pair_type = groups
        .into_iter()
        .map(|(pair_type, v)| ByPairType {
            path: v.first().and_then(|s| s.path),
            calls: v.len(),
            stats: [
                stat("ice connected", v.iter().filter_map(|s| s.ice_ms)),
                stat("dtls connected", v.iter().filter_map(|s| s.dtls_ms)),
                stat("channel open", v.iter().filter_map(|s| s.open_ms)),
            ]
            .into_iter()
            .flatten()
            .collect(),
            pair_type,
        })
        .collect();

    let relay_share = match &spec.lab {
        super::spec::LabSource::Population(pop) => Some(relay_share(&samples, pop.predicted_relayed_share())),
        super::spec::LabSource::File(_) => None,
    };

    let throughput = Throughput {
        bytes_sent: samples.iter().map(|s| s.bytes_sent).sum(),
        bytes_received: samples.iter().map(|s| s.bytes_received).sum(),
        relayed_bytes_received: samples
            .iter()
            .filter(|s| s.path == Some(PathClass::Relayed))
            .map(|s| s.bytes_received)
            .sum(),
        per_call_bytes_per_sec: stat("received per call", ok().filter_map(|s| s.recv_bytes_per_sec)),
    };

    let seconds = (wall_ms / 1e3).ceil().max(1.0) as u64;
    let per_second = (0..seconds)
        .map(|t| {
            let within = |ms: f64| (ms / 1e3).floor() as u64 == t;
            let arrivals: Vec<&Sample> = samples.iter().filter(|s| within(s.scheduled_ms)).collect();
            Second {
                t_s: t,
                offered: arrivals.len(),
                started: samples.iter().filter(|s| s.started_ms.is_some_and(within)).count(),
                opened: samples.iter().filter(|s| s.ok && s.opened_at_ms().is_some_and(within)).count(),
                p95_setup_ms: stat("", arrivals.iter().filter(|s| s.ok).filter_map(|s| s.setup_from_arrival_ms()))
                    .map(|s| s.p95),
            }
        })
        .collect();

    let peak_concurrency = peak(&samples);
    LoadReport {
        source: source.into(),
        lab: lab.into(),
        spec: spec.clone(),
        lab_up_ms,
        ice_profile: ice_profile.into(),
        wall_s: wall_ms / 1e3,
        calls,
        started,
        passed,
        success_rate: if calls == 0 { 0.0 } else { passed as f64 / calls as f64 },
        offered_per_s: spec.rate,
        arrived_per_s,
        achieved_per_s,
        peak_concurrency,
        failures,
        setup,
        by_pair_type,
        relay_share,
        throughput,
        server_side: ServerSide {
            measured: false,
            note: "not read (the driver fills it from the servers' own figures)".into(),
            servers: Vec::new(),
            rates: Vec::new(),
            latencies: Vec::new(),
        },
        relay_accounting: None,
        resources: crate::report::resources::Resources::unmeasured(),
        per_second,
        phases: Vec::new(),
        samples,
    }
}

/// Most calls running at once (start..end intervals).
fn peak(samples: &[Sample]) -> usize {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for s in samples {
        if let (Some(a), Some(b)) = (s.started_ms, s.ended_ms) {
            edges.push((a, 1));
            edges.push((b, -1));
        }
    }
    // Ends before starts at the same instant.
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in edges {
        now += d;
        most = most.max(now);
    }
    most as usize
}

fn relay_share(samples: &[Sample], predicted_by_mix: f64) -> RelayShare {
    let mut by: BTreeMap<(Config, Config), KindPair> = BTreeMap::new();
    for s in samples {
        let (Some((a, b)), Some(expected)) = (s.kinds, s.expected_path) else { continue };
        let row =
            by.entry((a, b)).or_insert(KindPair { a, b, calls: 0, connected: 0, relayed: 0, expected, mismatched: 0 });
        row.calls += 1;
        if s.ok {
            row.connected += 1;
            row.relayed += usize::from(s.path == Some(PathClass::Relayed));
            row.mismatched += usize::from(s.path != Some(expected));
        }
    }
    let connected: Vec<&Sample> = samples.iter().filter(|s| s.ok && s.expected_path.is_some()).collect();
    let share = |f: &dyn Fn(&Sample) -> bool| {
        if connected.is_empty() {
            0.0
        } else {
            connected.iter().filter(|s| f(s)).count() as f64 / connected.len() as f64
        }
    };
    RelayShare {
        observed: share(&|s| s.path == Some(PathClass::Relayed)),
        predicted_by_pairs: share(&|s| s.expected_path == Some(PathClass::Relayed)),
        predicted_by_mix,
        mismatched: by.values().map(|r| r.mismatched).sum(),
        by_kinds: by.into_values().collect(),
    }
}

/// The terminal summary.
pub fn render(r: &LoadReport) -> String {
    let mut s = String::new();
    let line = |s: &mut String, t: String| {
        s.push_str(&t);
        s.push('\n');
    };
    line(
        &mut s,
        format!(
            "load {} in lab {} (lab up {:.0} ms, ice profile {}, peers {})",
            r.source,
            r.lab,
            r.lab_up_ms,
            r.ice_profile,
            match r.spec.peer_processes {
                super::spec::PeerProcesses::PerHost => "pooled per host",
                super::spec::PeerProcesses::PerCall => "a process per side per call",
            }
        ),
    );
    line(
        &mut s,
        format!(
            "  calls {}: {} started, {} passed ({:.1} %) in {:.1} s; concurrency cap {}, peak {}",
            r.calls,
            r.started,
            r.passed,
            r.success_rate * 100.0,
            r.wall_s,
            r.spec.concurrency,
            r.peak_concurrency
        ),
    );
    line(
        &mut s,
        format!(
            "  setups/s: offered {:.2} (arrived {:.2}), achieved {:.2}",
            r.offered_per_s, r.arrived_per_s, r.achieved_per_s
        ),
    );
    for (why, n) in &r.failures {
        line(&mut s, format!("  failed {n:>4}: {why}"));
    }
    let row = |st: &Stat| {
        format!(
            "    {:<26} {:>4} calls  p50 {:>7.1}  p95 {:>7.1}  p99 {:>7.1} ms",
            st.name, st.count, st.p50, st.p95, st.p99
        )
    };
    line(&mut s, "  setup (connected calls; queue: every started call):".into());
    for st in &r.setup {
        line(&mut s, row(st));
    }
    for g in &r.by_pair_type {
        let path = g.path.map_or("-", |p| p.as_str());
        line(&mut s, format!("  selected pair {} ({path}), {} calls:", g.pair_type, g.calls));
        for st in &g.stats {
            line(&mut s, row(st));
        }
    }
    if !r.phases.is_empty() {
        line(&mut s, "  phases (calls by arrival, cut where an event changed the lab):".into());
        for p in &r.phases {
            let at = if p.from_ms.is_nan() { "never".to_string() } else { format!("{:.1} s", p.from_ms / 1e3) };
            let err = p.error.as_ref().map_or(String::new(), |e| format!(" (failed: {e})"));
            line(&mut s, format!("   from {at}: {}{err}: {} calls, {} passed", p.cause, p.calls, p.passed));
            for st in &p.stats {
                line(&mut s, row(st));
            }
            for l in &p.server_latencies {
                let methods = crate::servers::latency::compact(&l.methods);
                line(&mut s, format!("    {} answers in this span (p50/p95/p99 ms): {methods}", l.server));
            }
        }
    }
    if let Some(rs) = &r.relay_share {
        line(
            &mut s,
            format!(
                "  relayed: {:.1} % of connected calls; the pairs predict {:.1} %, the mix {:.1} %; {} off the matrix",
                rs.observed * 100.0,
                rs.predicted_by_pairs * 100.0,
                rs.predicted_by_mix * 100.0,
                rs.mismatched
            ),
        );
        for k in &rs.by_kinds {
            line(
                &mut s,
                format!(
                    "    {:>4} x {:<4} {:>4} calls, {:>4} connected, {:>4} relayed (matrix: {}){}",
                    k.a.label(),
                    k.b.label(),
                    k.calls,
                    k.connected,
                    k.relayed,
                    k.expected.as_str(),
                    if k.mismatched > 0 { format!(", {} off", k.mismatched) } else { String::new() }
                ),
            );
        }
    }
    let t = &r.throughput;
    let per_call = t.per_call_bytes_per_sec.as_ref().map_or("-".into(), |p| format!("p50 {:.0} B/s", p.p50));
    line(
        &mut s,
        format!(
            "  payload: {} B sent, {} B received ({} B relayed); per call {per_call}",
            t.bytes_sent, t.bytes_received, t.relayed_bytes_received
        ),
    );
    line(&mut s, format!("  server side: {}", r.server_side.note));
    for rt in &r.server_side.rates {
        line(&mut s, format!("    {}", rates_line(rt)));
    }
    if let Some(a) = &r.relay_accounting {
        line(
            &mut s,
            format!(
                "    relay vs the {} relayed calls' ends ({}): to peers {} B vs {} B sent ({:.2} %), from peers {} B vs {} B received ({:.2} %){}",
                a.calls,
                a.counted,
                a.relay_to_peers_bytes,
                a.peers_sent_bytes,
                a.sent_diff_pct,
                a.relay_from_peers_bytes,
                a.peers_received_bytes,
                a.received_diff_pct,
                if a.calls_without_figures > 0 {
                    format!("; {} relayed calls without figures", a.calls_without_figures)
                } else {
                    String::new()
                }
            ),
        );
    }
    for l in &r.server_side.latencies {
        if !l.measured {
            line(&mut s, format!("    {}: latency not measured ({})", l.server, l.implementation.name()));
            continue;
        }
        line(&mut s, format!("    {} answer latency ({}):", l.server, crate::servers::latency::LABEL));
        if l.methods.is_empty() {
            line(&mut s, "      no answer timed".into());
        }
        for m in &l.methods {
            line(
                &mut s,
                format!(
                    "      {:<24} {:>6} answers  p50 {:>8.3}  p95 {:>8.3}  p99 {:>8.3} ms",
                    m.method, m.count, m.p50_ms, m.p95_ms, m.p99_ms
                ),
            );
        }
    }
    line(&mut s, format!("  CPU and memory: {}", r.resources.note()));
    s
}

/// A server's rates in one line: whole run, busiest second, refusals by code.
pub fn rates_line(rt: &crate::servers::stats::ServerRates) -> String {
    let w = &rt.whole;
    let busiest = rt.busiest.as_ref().map_or(String::new(), |b| {
        format!("; busiest {:.1} s at {:.0} s: {:.1} answered/s", b.span_s, b.t_s, b.answered_per_s)
    });
    let refused: Vec<String> = rt.refused.iter().map(|(code, n)| format!("{code} x{n}")).collect();
    let refused = if refused.is_empty() { String::new() } else { format!(" ({})", refused.join(", ")) };
    if rt.service == crate::servers::ServiceKind::Stun {
        return format!(
            "{} (STUN) over {:.1} s: {:.1} bindings answered/s{busiest}",
            rt.server, w.span_s, w.answered_per_s
        );
    }
    format!(
        "{} over {:.1} s: {:.1} requests answered/s, {:.1} allocations/s, {:.1} refused/s{refused}; relayed {:.0} pkt/s, {:.0} B/s{busiest}",
        rt.server,
        w.span_s,
        w.answered_per_s,
        w.allocations_per_s,
        w.refused_per_s,
        w.relayed_packets_per_s,
        w.relayed_bytes_per_s
    )
}
