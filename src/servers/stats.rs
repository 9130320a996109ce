//! Server-side figures: what a lab's STUN/TURN server answered and relayed, the same
//! model for every implementation (pure).
//!
//! A [`ServerStats`] is one sample: counters cumulative since the server started, taken
//! at `at_unix_ms`. The built-in server writes one per line (JSON) to its stats file
//! ([`stats_file`]); coturn's figures are read from its log ([`parse_coturn_log`]).
//! Samples add ([`ServerStats::add`]: several servers, several runs) and subtract
//! ([`ServerStats::since`]: what happened between two samples, over their
//! [`ServerStats::span_ms`] for rates), which is what a load report aggregates.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::latency;
use super::{Implementation, ServiceKind};

/// Packets and bytes one way. Bytes are UDP payload bytes on the relay sockets: the
/// datagrams exchanged with peers, without any TURN framing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Datagrams.
    pub packets: u64,
    /// Their payload bytes.
    pub bytes: u64,
}

impl Flow {
    /// Counts one datagram of `bytes`.
    pub fn count(&mut self, bytes: usize) {
        self.packets += 1;
        self.bytes += bytes as u64;
    }

    fn add(&mut self, o: Flow) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }

    fn since(self, o: Flow) -> Flow {
        Flow { packets: self.packets.saturating_sub(o.packets), bytes: self.bytes.saturating_sub(o.bytes) }
    }
}

/// Refused requests by STUN error code (401 includes the challenge every long-term
/// credential client meets on its first request).
pub type Refusals = BTreeMap<u16, u64>;

/// The clock samples are stamped with ([`ServerStats::at_unix_ms`]): Unix ms, now.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One sample of a server's figures, cumulative since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerStats {
    /// When it was taken, Unix ms (coturn's log stamps whole seconds).
    pub at_unix_ms: u64,
    /// When the server that counted started, Unix ms (0: not known). A server restarted
    /// by the timeline counts from zero again; the readers add its instances up.
    pub started_unix_ms: u64,
    /// STUN Binding requests answered with success.
    pub stun_bindings: u64,
    /// Allocations created.
    pub allocations: u64,
    /// Allocate requests refused, by error code.
    pub allocations_refused: Refusals,
    /// CreatePermission requests granted.
    pub permissions: u64,
    /// CreatePermission requests refused, by error code.
    pub permissions_refused: Refusals,
    /// ChannelBind requests granted.
    pub channel_binds: u64,
    /// ChannelBind requests refused, by error code.
    pub channel_binds_refused: Refusals,
    /// Relayed from clients to peers: datagrams the relay sockets sent.
    pub to_peers: Flow,
    /// Relayed from peers to clients: datagrams the relay sockets received from peers.
    pub from_peers: Flow,
    /// Of `to_peers`, the STUN messages (RFC 7983's first byte 0-3): the peers' ICE
    /// checks with each other. The rest is what their WebRTC transports carried (DTLS).
    /// Counted by the built-in server; coturn's log does not tell them apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_peers_stun: Option<Flow>,
    /// Of `from_peers`, the STUN messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_peers_stun: Option<Flow>,
    /// Allocations whose relayed traffic is not in `to_peers`/`from_peers` yet (coturn
    /// logs a session's usage when it closes).
    pub unreported_allocations: u64,
    /// How long the server took to answer each request, by method: the built-in
    /// server's own time from reading the request off its socket to handing the answer
    /// to it (the network and the kernel's queues are outside). coturn's log has no
    /// such figure: empty.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub answer_latency_us: latency::ByMethod,
}

/// A STUN share is known for a sum only when it is for every part.
fn add_split(a: Option<Flow>, b: Option<Flow>) -> Option<Flow> {
    let (mut a, b) = (a?, b?);
    a.add(b);
    Some(a)
}

fn add_refusals(a: &mut Refusals, b: &Refusals) {
    for (code, n) in b {
        *a.entry(*code).or_default() += n;
    }
}

fn refusals_since(a: &Refusals, b: &Refusals) -> Refusals {
    a.iter()
        .map(|(code, n)| (*code, n.saturating_sub(b.get(code).copied().unwrap_or(0))))
        .filter(|(_, n)| *n > 0)
        .collect()
}

impl ServerStats {
    /// Adds `o`'s counters (e.g. several servers of a lab, or several runs); the
    /// timestamp becomes the later one.
    pub fn add(&mut self, o: &ServerStats) {
        self.at_unix_ms = self.at_unix_ms.max(o.at_unix_ms);
        self.started_unix_ms = self.started_unix_ms.max(o.started_unix_ms);
        self.stun_bindings += o.stun_bindings;
        self.allocations += o.allocations;
        add_refusals(&mut self.allocations_refused, &o.allocations_refused);
        self.permissions += o.permissions;
        add_refusals(&mut self.permissions_refused, &o.permissions_refused);
        self.channel_binds += o.channel_binds;
        add_refusals(&mut self.channel_binds_refused, &o.channel_binds_refused);
        self.to_peers.add(o.to_peers);
        self.from_peers.add(o.from_peers);
        self.to_peers_stun = add_split(self.to_peers_stun, o.to_peers_stun);
        self.from_peers_stun = add_split(self.from_peers_stun, o.from_peers_stun);
        self.unreported_allocations += o.unreported_allocations;
        latency::add_methods(&mut self.answer_latency_us, &o.answer_latency_us);
    }

    /// What happened between `earlier` and this sample (same server); keeps this
    /// sample's timestamp and its unreported allocations.
    pub fn since(&self, earlier: &ServerStats) -> ServerStats {
        ServerStats {
            at_unix_ms: self.at_unix_ms,
            started_unix_ms: self.started_unix_ms,
            stun_bindings: self.stun_bindings.saturating_sub(earlier.stun_bindings),
            allocations: self.allocations.saturating_sub(earlier.allocations),
            allocations_refused: refusals_since(&self.allocations_refused, &earlier.allocations_refused),
            permissions: self.permissions.saturating_sub(earlier.permissions),
            permissions_refused: refusals_since(&self.permissions_refused, &earlier.permissions_refused),
            channel_binds: self.channel_binds.saturating_sub(earlier.channel_binds),
            channel_binds_refused: refusals_since(&self.channel_binds_refused, &earlier.channel_binds_refused),
            to_peers: self.to_peers.since(earlier.to_peers),
            from_peers: self.from_peers.since(earlier.from_peers),
            to_peers_stun: self.to_peers_stun.map(|f| f.since(earlier.to_peers_stun.unwrap_or_default())),
            from_peers_stun: self.from_peers_stun.map(|f| f.since(earlier.from_peers_stun.unwrap_or_default())),
            unreported_allocations: self.unreported_allocations,
            answer_latency_us: latency::methods_since(&self.answer_latency_us, &earlier.answer_latency_us),
        }
    }

    /// Milliseconds from `earlier` to this sample (for rates of [`ServerStats::since`]).
    pub fn span_ms(&self, earlier: &ServerStats) -> u64 {
        self.at_unix_ms.saturating_sub(earlier.at_unix_ms)
    }

    /// Every refused request, whatever its kind.
    pub fn refused(&self) -> u64 {
        [&self.allocations_refused, &self.permissions_refused, &self.channel_binds_refused]
            .iter()
            .flat_map(|r| r.values())
            .sum()
    }
}

/// One server's figures over a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFigures {
    /// The server's name in the file.
    pub server: String,
    /// The service the figures are of.
    pub service: ServiceKind,
    /// The program that ran it.
    pub implementation: Implementation,
    /// The last sample: the whole run.
    pub stats: ServerStats,
    /// Every sample, oldest first (the last is `stats`).
    pub samples: Vec<ServerStats>,
    /// Why the figures are missing or partial, when they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A server's rates over one span between two of its samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRate {
    /// Start of the span, s after the server's first sample (taken when it started).
    pub t_s: f64,
    /// Length of the span, s.
    pub span_s: f64,
    /// Requests answered with success (bindings, allocations, permissions, channel
    /// binds) per second.
    pub answered_per_s: f64,
    /// Allocations created per second.
    pub allocations_per_s: f64,
    /// Requests refused per second, whatever the code (401 included: the challenge).
    pub refused_per_s: f64,
    /// Datagrams relayed per second, both ways.
    pub relayed_packets_per_s: f64,
    /// Payload bytes relayed per second, both ways.
    pub relayed_bytes_per_s: f64,
}

impl ServerRate {
    /// The rates of `later.since(earlier)`; `None` when no time passed between them.
    pub fn between(first: &ServerStats, earlier: &ServerStats, later: &ServerStats) -> Option<ServerRate> {
        let span_s = later.span_ms(earlier) as f64 / 1000.0;
        if span_s <= 0.0 {
            return None;
        }
        let d = later.since(earlier);
        let per_s = |n: u64| n as f64 / span_s;
        Some(ServerRate {
            t_s: earlier.span_ms(first) as f64 / 1000.0,
            span_s,
            answered_per_s: per_s(d.stun_bindings + d.allocations + d.permissions + d.channel_binds),
            allocations_per_s: per_s(d.allocations),
            refused_per_s: per_s(d.refused()),
            relayed_packets_per_s: per_s(d.to_peers.packets + d.from_peers.packets),
            relayed_bytes_per_s: per_s(d.to_peers.bytes + d.from_peers.bytes),
        })
    }
}

/// A server's request and relay rates: over its whole run, over each span between
/// two samples (the built-in server samples every second in which something changed),
/// and its busiest span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerRates {
    /// The server's name in the file.
    pub server: String,
    /// The service counted.
    pub service: ServiceKind,
    /// First sample to last.
    pub whole: ServerRate,
    /// Sample to sample, oldest first.
    pub over_time: Vec<ServerRate>,
    /// The span with the most requests answered.
    pub busiest: Option<ServerRate>,
    /// Refusals over the run, by error code.
    pub refused: Refusals,
}

impl ServerFigures {
    /// The rates its samples give; `None` with fewer than two samples over some time
    /// (coturn's log, which stamps whole seconds, may give one).
    pub fn rates(&self) -> Option<ServerRates> {
        let (first, last) = (self.samples.first()?, self.samples.last()?);
        let whole = ServerRate::between(first, first, last)?;
        let over_time: Vec<ServerRate> =
            self.samples.windows(2).filter_map(|w| ServerRate::between(first, &w[0], &w[1])).collect();
        let busiest = over_time.iter().max_by(|a, b| a.answered_per_s.total_cmp(&b.answered_per_s)).cloned();
        let d = last.since(first);
        let mut refused = d.allocations_refused.clone();
        add_refusals(&mut refused, &d.permissions_refused);
        add_refusals(&mut refused, &d.channel_binds_refused);
        Some(ServerRates { server: self.server.clone(), service: self.service, whole, over_time, busiest, refused })
    }
}

/// A built-in server's stats file for its service `kind` in namespace `ns` (JSON lines of
/// [`ServerStats`]), in the lab's state directory `state`: `turn-stats-<ns>.jsonl`, ...
pub fn stats_file(state: &str, kind: ServiceKind, ns: &str) -> String {
    format!("{state}/{}-stats-{ns}.jsonl", kind.name())
}

/// The samples of a stats file, oldest first, cumulative over the run: a server
/// restarted by the timeline appends to the same file from zero, so each instance's
/// samples get the earlier instances' last figures added. A line that does not parse
/// (the last one while it is being written) is skipped.
pub fn parse_stats_lines(text: &str) -> Vec<ServerStats> {
    // Earlier instances' last figures; none before the first restart, so what only some
    // samples say (the STUN share of the relayed flows) stays known.
    let mut base: Option<ServerStats> = None;
    let mut last: Option<ServerStats> = None;
    let mut out = Vec::new();
    for s in text.lines().filter_map(|l| serde_json::from_str::<ServerStats>(l).ok()) {
        if let Some(l) = last.as_ref().filter(|l| l.started_unix_ms != s.started_unix_ms) {
            match base.as_mut() {
                Some(b) => b.add(l),
                None => base = Some(l.clone()),
            }
        }
        let mut total = base.clone().unwrap_or_else(|| s.clone());
        if base.is_some() {
            total.add(&s);
        }
        total.started_unix_ms = s.started_unix_ms;
        out.push(total);
        last = Some(s);
    }
    out
}

/// One coturn session (an allocation's 5-tuple) as its log tells it.
#[derive(Default)]
struct Session {
    allocated: bool,
    closed: bool,
}

/// `rp=1, rb=2, sp=3, sb=4` -> (received, sent).
fn usage(text: &str) -> Option<(Flow, Flow)> {
    let field = |name: &str| -> Option<u64> {
        let at = text.find(&format!(" {name}="))? + name.len() + 2;
        text[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some((Flow { packets: field("rp")?, bytes: field("rb")? }, Flow { packets: field("sp")?, bytes: field("sb")? }))
}

/// The leading timestamp of a coturn line as Unix ms: the config sets
/// `new-log-timestamp-format=%s` (Unix seconds). Anything else gives `None`.
fn timestamp(line: &str) -> Option<u64> {
    let head = line.split(": ").next()?.trim();
    head.parse::<u64>().ok().filter(|s| *s > 1_000_000_000).map(|s| s * 1000)
}

/// coturn's figures from its log (`verbose`, `log-binding`): one cumulative sample per
/// logged second that changed something, oldest first.
///
/// Read lines: `incoming packet <METHOD> processed, success` / `, error <code>` (an
/// error on the unnamed `message` of a session with no allocation yet is its Allocate
/// being refused), `peer usage: ... rp=, rb=, sp=, sb=` (relay-socket traffic since the
/// session's previous usage line: logged every few seconds of traffic and when the session
/// closes, counters reset each time) and `closed`. A session that
/// allocated and has not closed is counted in `unreported_allocations`.
pub fn parse_coturn_log(text: &str) -> Vec<ServerStats> {
    parse_coturn(text).0
}

/// Allocations of the running coturn (the log's last instance) that have not closed yet.
pub fn coturn_open_allocations(text: &str) -> u64 {
    parse_coturn(text).1
}

fn parse_coturn(text: &str) -> (Vec<ServerStats>, u64) {
    let mut sessions: HashMap<&str, Session> = HashMap::new();
    let mut s = ServerStats::default();
    let mut samples: Vec<ServerStats> = Vec::new();
    // Allocations of earlier instances (killed by a timeline `turn = "stop"`) that never
    // closed: their usage was never logged.
    let mut lost = 0;
    let open =
        |sessions: &HashMap<&str, Session>| sessions.values().filter(|x| x.allocated && !x.closed).count() as u64;
    for line in text.lines() {
        // Each start writes its pid file first; session ids start over.
        if line.contains("pid file created") {
            lost += open(&sessions);
            sessions.clear();
            s.started_unix_ms = timestamp(line).unwrap_or(0);
            continue;
        }
        let Some((id, rest)) = line.split_once("session ").and_then(|(_, r)| r.split_once(": ")) else {
            continue;
        };
        let changed = if let Some(r) = rest.split_once("incoming packet ").map(|(_, r)| r) {
            let Some((method, result)) = r.split_once(" processed, ") else { continue };
            let refused = result
                .strip_prefix("error ")
                .and_then(|e| e.split(|c: char| !c.is_ascii_digit()).next()?.parse::<u16>().ok());
            let ok = result.starts_with("success");
            let sess = sessions.entry(id).or_default();
            match (method, ok, refused) {
                ("BINDING", true, _) => s.stun_bindings += 1,
                ("ALLOCATE", true, _) => {
                    s.allocations += 1;
                    sess.allocated = true;
                }
                ("CREATE_PERMISSION", true, _) => s.permissions += 1,
                ("CHANNEL_BIND", true, _) => s.channel_binds += 1,
                ("CREATE_PERMISSION", _, Some(c)) => *s.permissions_refused.entry(c).or_default() += 1,
                ("CHANNEL_BIND", _, Some(c)) => *s.channel_binds_refused.entry(c).or_default() += 1,
                ("ALLOCATE", _, Some(c)) => *s.allocations_refused.entry(c).or_default() += 1,
                ("message", _, Some(c)) if !sess.allocated => *s.allocations_refused.entry(c).or_default() += 1,
                _ => continue,
            }
            true
        } else if let Some(u) = rest.strip_prefix("peer usage: ") {
            // Each line is the traffic since the session's previous line (coturn resets its
            // counters when it logs them), so they add up.
            let Some((received, sent)) = usage(u) else { continue };
            s.from_peers =
                Flow { packets: s.from_peers.packets + received.packets, bytes: s.from_peers.bytes + received.bytes };
            s.to_peers = Flow { packets: s.to_peers.packets + sent.packets, bytes: s.to_peers.bytes + sent.bytes };
            true
        } else if rest.starts_with("closed") {
            sessions.entry(id).or_default().closed = true;
            true
        } else {
            continue;
        };
        if changed {
            s.unreported_allocations = lost + open(&sessions);
            let at = timestamp(line).unwrap_or(0);
            s.at_unix_ms = at;
            match samples.last_mut() {
                Some(last) if last.at_unix_ms == at => *last = s.clone(),
                _ => samples.push(s.clone()),
            }
        }
    }
    let still_open = open(&sessions);
    (samples, still_open)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relay-only call through coturn 4.6.1 as its log shows it (`new-log-timestamp-format=%s`,
    /// trimmed), with a
    /// refused permission and a wrong password added.
    const LOG: &str = "\
1764655201: log file opened: /run/icelab/x/coturn-icelab-x-relay.log
1764655201: pid file created: /run/icelab/x/coturn-icelab-x-relay.pid
1764655201: session 001000000000000002: realm <icelab> user <>: incoming packet message processed, error 401: Unauthorized
1764655201: session 001000000000000002: new, realm=<icelab>, username=<icelab>, lifetime=600
1764655201: session 001000000000000002: realm <icelab> user <icelab>: incoming packet ALLOCATE processed, success
1764655201: session 001000000000000003: realm <icelab> user <>: incoming packet message processed, error 401: Unauthorized
1764655201: session 001000000000000003: realm <icelab> user <icelab>: incoming packet ALLOCATE processed, success
1764655202: session 001000000000000003: realm <icelab> user <icelab>: incoming packet BINDING processed, success
1764655202: session 001000000000000003: realm <icelab> user <icelab>: incoming packet CREATE_PERMISSION processed, success
1764655202: session 001000000000000002: realm <icelab> user <icelab>: incoming packet CREATE_PERMISSION processed, error 403: Forbidden IP
1764655202: session 001000000000000002: realm <icelab> user <icelab>: incoming packet CHANNEL_BIND processed, success
1764655202: session 001000000000000002: realm <icelab> user <icelab>: incoming packet REFRESH processed, success
1764655203: session 001000000000000004: realm <icelab> user <icelab>: incoming packet message processed, error 401: Unauthorized
1764655209: session 001000000000000002: usage: realm=<icelab>, username=<icelab>, rp=28, rb=4896, sp=28, sb=4772
1764655209: session 001000000000000002: peer usage: realm=<icelab>, username=<icelab>, rp=20, rb=4000, sp=21, sb=4100
1764655209: session 001000000000000002: closed (2nd stage), user <icelab> realm <icelab> origin <>, local 198.51.100.10:3478, remote 203.0.113.10:53078, reason: allocation timeout
";

    #[test]
    fn coturn_log_samples() {
        let samples = parse_coturn_log(LOG);
        insta::assert_snapshot!(serde_json::to_string_pretty(&samples).unwrap());
        let last = samples.last().unwrap();
        assert_eq!((last.allocations, last.unreported_allocations), (2, 1), "session 3 never closed");
        assert_eq!(last.to_peers, Flow { packets: 21, bytes: 4100 });
        assert_eq!(last.allocations_refused, Refusals::from([(401, 3)]));
        assert_eq!(coturn_open_allocations(LOG), 1);
    }

    #[test]
    fn a_restarted_server_adds_up() {
        // coturn killed with an allocation open, started again: the new instance's
        // session 2 is another allocation; the lost one stays unreported.
        let log = format!("{LOG}1764655300: pid file created: x\n{}", LOG.lines().nth(4).unwrap());
        let last = parse_coturn_log(&log).pop().unwrap();
        assert_eq!((last.allocations, last.unreported_allocations, last.started_unix_ms), (3, 2, 1_764_655_300_000));
        assert_eq!(coturn_open_allocations(&log), 1);
        // The built-in server appends to its stats file from zero again.
        let one = |started, allocations| ServerStats { started_unix_ms: started, allocations, ..Default::default() };
        let lines: Vec<String> =
            [one(1, 1), one(1, 2), one(5, 1)].iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        let totals: Vec<u64> = parse_stats_lines(&lines.join("\n")).iter().map(|s| s.allocations).collect();
        assert_eq!(totals, [1, 2, 3]);
    }

    #[test]
    fn periodic_usage_lines_add_up() {
        // As coturn 4.6.1 logs a 3 s call: a line per interval, each since the last.
        let log = "\
1764655300: session 7: realm <r> user <u>: incoming packet ALLOCATE processed, success
1764655301: session 7: peer usage: realm=<r>, username=<u>, rp=1023, rb=1068464, sp=1021, sb=1062144
1764655303: session 7: peer usage: realm=<r>, username=<u>, rp=998, rb=1057334, sp=1050, sb=1082898
1764655304: session 7: peer usage: realm=<r>, username=<u>, rp=273, rb=291641, sp=246, sb=261758
1764655304: session 7: closed (2nd stage), user <u>
";
        let s = parse_coturn_log(log);
        assert_eq!(s.len(), 4, "one sample per second that changed something");
        assert_eq!(s[3].from_peers, Flow { packets: 2294, bytes: 2_417_439 });
        assert_eq!(s[3].to_peers, Flow { packets: 2317, bytes: 2_406_800 });
        assert_eq!(s[2].since(&s[1]).from_peers, Flow { packets: 998, bytes: 1_057_334 });
        assert_eq!((s[3].span_ms(&s[0]), s[3].unreported_allocations), (4000, 0));
    }

    #[test]
    fn samples_add_and_subtract() {
        let a = ServerStats {
            at_unix_ms: 10,
            allocations: 2,
            allocations_refused: Refusals::from([(401, 2)]),
            to_peers: Flow { packets: 3, bytes: 300 },
            answer_latency_us: latency::ByMethod::from([("Allocate".into(), latency::Histogram([(50, 2)].into()))]),
            ..Default::default()
        };
        let mut b =
            ServerStats { at_unix_ms: 20, allocations_refused: Refusals::from([(401, 1), (403, 1)]), ..a.clone() };
        b.add(&a);
        assert_eq!((b.at_unix_ms, b.allocations, b.refused()), (20, 4, 4));
        assert_eq!(b.to_peers, Flow { packets: 6, bytes: 600 });
        let d = b.since(&a);
        assert_eq!((d.allocations, d.allocations_refused.clone()), (2, Refusals::from([(401, 1), (403, 1)])));
        assert_eq!(b.answer_latency_us["Allocate"].0, [(50, 4)].into(), "histograms add bucket-wise");
        assert_eq!(d.answer_latency_us["Allocate"].0, [(50, 2)].into(), "and subtract bucket-wise");
        assert!(a.since(&a).answer_latency_us.is_empty(), "nothing new: no method");
        let line = serde_json::to_string(&b).unwrap();
        assert_eq!(parse_stats_lines(&format!("{line}\n{line}\n{{\"at_un")), vec![b.clone(), b]);
    }

    #[test]
    fn rates_come_from_consecutive_samples() {
        let at = |ms: u64, allocations: u64, bytes: u64| ServerStats {
            at_unix_ms: ms,
            allocations,
            allocations_refused: Refusals::from([(401, allocations)]),
            permissions: 2 * allocations,
            to_peers: Flow { packets: bytes / 100, bytes },
            ..Default::default()
        };
        let samples = vec![at(1_000, 0, 0), at(2_000, 4, 1_000), at(4_000, 10, 5_000)];
        let f = ServerFigures {
            server: "relay".into(),
            service: ServiceKind::Turn,
            implementation: Implementation::BuiltIn,
            stats: samples[2].clone(),
            samples,
            note: None,
        };
        let r = f.rates().unwrap();
        assert_eq!((r.whole.t_s, r.whole.span_s), (0.0, 3.0));
        assert_eq!(
            (r.whole.allocations_per_s, r.whole.answered_per_s, r.whole.refused_per_s),
            (10.0 / 3.0, 10.0, 10.0 / 3.0)
        );
        assert_eq!(r.whole.relayed_bytes_per_s, 5_000.0 / 3.0);
        let spans: Vec<(f64, f64, f64)> = r.over_time.iter().map(|x| (x.t_s, x.span_s, x.allocations_per_s)).collect();
        assert_eq!(spans, [(0.0, 1.0, 4.0), (1.0, 2.0, 3.0)]);
        assert_eq!(r.busiest.unwrap().t_s, 0.0, "12 answered/s beats 9");
        assert_eq!(r.refused, Refusals::from([(401, 10)]));
        // One sample has no span to rate.
        let one = ServerFigures { samples: vec![at(1_000, 1, 0)], ..f };
        assert!(one.rates().is_none());
    }
}
