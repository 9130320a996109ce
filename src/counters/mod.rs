//! The built-in STUN and TURN servers' live counters ([`ServerCounters`]) and the stats
//! file they write ([`StatsFile`]): the [`ServerStats`] a run reads when its calls end.
//! TURN counts where its listener guard sends answers (bindings, allocations,
//! permissions, channel binds and their refusals, read from the answer's type and
//! ERROR-CODE; each answer timed from its request's read, see [`timing`]) and where the
//! filtered relay sockets exchange datagrams with peers; STUN where it reads requests and
//! sends answers. Samples are JSON lines, written periodically and on request (SIGUSR1).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stun::error_code::ErrorCodeAttribute;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, Message,
};

mod timing;

use crate::servers::stats::{Flow, ServerStats};
use timing::{Class, Pending};

/// Live counters of one built-in server (shared by its listeners and relay sockets).
pub struct ServerCounters {
    started_unix_ms: u64,
    /// Answers: rare, counted under a lock.
    answers: Mutex<ServerStats>,
    /// Requests read and not answered yet, to time their answers.
    pending: Mutex<Pending>,
    /// Relayed datagrams (packets, bytes) to and from peers: per packet, atomics.
    to_peers: [AtomicU64; 2],
    from_peers: [AtomicU64; 2],
    /// Of those, STUN messages (the peers' ICE checks).
    to_peers_stun: [AtomicU64; 2],
    from_peers_stun: [AtomicU64; 2],
}

impl std::fmt::Debug for ServerCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCounters").field("started_unix_ms", &self.started_unix_ms).finish_non_exhaustive()
    }
}

impl Default for ServerCounters {
    fn default() -> Self {
        ServerCounters {
            started_unix_ms: crate::servers::stats::now_unix_ms(),
            answers: Mutex::default(),
            pending: Mutex::default(),
            to_peers: Default::default(),
            from_peers: Default::default(),
            to_peers_stun: Default::default(),
            from_peers_stun: Default::default(),
        }
    }
}

impl ServerCounters {
    /// Notes a request read off a listener (now), to time its answer; anything else
    /// (ChannelData, indications) costs a few byte tests.
    pub(crate) fn on_request(&self, pkt: &[u8]) {
        if let Some((Class::Request, method, id)) = timing::header(pkt)
            && let Ok(mut p) = self.pending.lock()
        {
            p.note(id, method, Instant::now());
        }
    }

    /// Counts an answer the server (or its guard) sends a client, and times it when its
    /// request was noted; ChannelData and indications (relayed data) are not answers and
    /// cost a few byte tests.
    pub(crate) fn on_answer(&self, pkt: &[u8]) {
        let Some((Class::Success | Class::Error, _, id)) = timing::header(pkt) else {
            return;
        };
        let sent = Instant::now();
        let asked = self.pending.lock().ok().and_then(|mut p| p.answer(&id));
        if let Ok(mut s) = self.answers.lock() {
            count_answer(&mut s, pkt);
            if let Some((method, read)) = asked {
                let us = sent.saturating_duration_since(read).as_micros().min(u64::MAX as u128) as u64;
                s.answer_latency_us.entry(timing::method_name(method).into()).or_default().record(us);
            }
        }
    }

    /// Counts a datagram a relay socket sent to a peer.
    pub(crate) fn sent_to_peer(&self, datagram: &[u8]) {
        count(&self.to_peers, &self.to_peers_stun, datagram);
    }

    /// Counts a datagram a relay socket received from a peer.
    pub(crate) fn received_from_peer(&self, datagram: &[u8]) {
        count(&self.from_peers, &self.from_peers_stun, datagram);
    }

    /// The figures now.
    pub fn snapshot(&self) -> ServerStats {
        let mut s = self.answers.lock().map(|s| s.clone()).unwrap_or_default();
        let flow =
            |f: &[AtomicU64; 2]| Flow { packets: f[0].load(Ordering::Relaxed), bytes: f[1].load(Ordering::Relaxed) };
        s.to_peers = flow(&self.to_peers);
        s.from_peers = flow(&self.from_peers);
        s.to_peers_stun = Some(flow(&self.to_peers_stun));
        s.from_peers_stun = Some(flow(&self.from_peers_stun));
        s.at_unix_ms = crate::servers::stats::now_unix_ms();
        s.started_unix_ms = self.started_unix_ms;
        s
    }
}

/// Counts a relayed datagram, and apart the STUN ones: RFC 7983 demultiplexes by the
/// first byte, 0-3 for STUN (DTLS is 20-63).
fn count(all: &[AtomicU64; 2], stun: &[AtomicU64; 2], datagram: &[u8]) {
    let n = datagram.len() as u64;
    all[0].fetch_add(1, Ordering::Relaxed);
    all[1].fetch_add(n, Ordering::Relaxed);
    if datagram.first().is_some_and(|b| *b < 4) {
        stun[0].fetch_add(1, Ordering::Relaxed);
        stun[1].fetch_add(n, Ordering::Relaxed);
    }
}

/// Adds one answer (a STUN success or error response) to `s`.
fn count_answer(s: &mut ServerStats, pkt: &[u8]) {
    let mut m = Message::new();
    m.raw = pkt.to_vec();
    if m.decode().is_err() {
        return;
    }
    let method = m.typ.method;
    if m.typ.class == CLASS_SUCCESS_RESPONSE {
        match method {
            METHOD_BINDING => s.stun_bindings += 1,
            METHOD_ALLOCATE => s.allocations += 1,
            METHOD_CREATE_PERMISSION => s.permissions += 1,
            METHOD_CHANNEL_BIND => s.channel_binds += 1,
            _ => {}
        }
    } else if m.typ.class == CLASS_ERROR_RESPONSE {
        let mut code = ErrorCodeAttribute::default();
        let code = if code.get_from(&m).is_ok() { code.code.0 } else { 0 };
        let refused = match method {
            METHOD_ALLOCATE => &mut s.allocations_refused,
            METHOD_CREATE_PERMISSION => &mut s.permissions_refused,
            METHOD_CHANNEL_BIND => &mut s.channel_binds_refused,
            _ => return,
        };
        *refused.entry(code).or_default() += 1;
    }
}

/// Where and how often a server's figures are written.
pub struct StatsFile {
    /// The JSON-lines file (appended to).
    pub path: PathBuf,
    /// The server's counters.
    pub stats: Arc<ServerCounters>,
}

impl StatsFile {
    /// Appends the figures now.
    pub fn write_now(&self) -> std::io::Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_string(&self.stats.snapshot()).map_err(std::io::Error::other)?;
        line.push('\n');
        // One write of a whole line: a reader sees complete lines, or a partial last one.
        std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?.write_all(line.as_bytes())
    }

    /// Writes a sample at once, then every `period` in which something changed, and at
    /// once on SIGUSR1 (a run asking for the figures at the end of its call). Runs
    /// until dropped.
    pub async fn run(&self, period: Duration) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut tick = tokio::time::interval(period);
        let mut last: Option<ServerStats> = None;
        loop {
            let asked = tokio::select! {
                _ = tick.tick() => false,
                _ = usr1.recv() => true,
            };
            let now = self.stats.snapshot();
            let same = last.as_ref().is_some_and(|l| ServerStats { at_unix_ms: l.at_unix_ms, ..now.clone() } == *l);
            if asked || !same {
                if let Err(e) = self.write_now() {
                    tracing::warn!("server stats: writing {}: {e}", self.path.display());
                }
                last = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use stun::agent::TransactionId;
    use stun::message::{MessageType, Setter};

    use super::*;

    fn answer(method: stun::message::Method, class: stun::message::MessageClass, code: Option<u16>) -> Vec<u8> {
        let mut s: Vec<Box<dyn Setter>> =
            vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, class))];
        if let Some(c) = code {
            s.push(Box::new(ErrorCodeAttribute { code: stun::error_code::ErrorCode(c), reason: b"x".to_vec() }));
        }
        let mut m = Message::new();
        m.build(&s).unwrap();
        m.raw
    }

    #[test]
    fn answers_are_counted_by_method_and_code() {
        let t = ServerCounters::default();
        for pkt in [
            answer(METHOD_BINDING, CLASS_SUCCESS_RESPONSE, None),
            answer(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE, Some(401)),
            answer(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE, None),
            answer(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE, None),
            answer(METHOD_CREATE_PERMISSION, CLASS_ERROR_RESPONSE, Some(403)),
            answer(METHOD_CHANNEL_BIND, CLASS_SUCCESS_RESPONSE, None),
            answer(METHOD_CHANNEL_BIND, CLASS_ERROR_RESPONSE, Some(403)),
            answer(METHOD_ALLOCATE, stun::message::CLASS_REQUEST, None),
            vec![0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4],
        ] {
            t.on_answer(&pkt);
        }
        // A DTLS record (first byte 22) and a STUN check (0x00 0x01) relayed out, one in.
        t.sent_to_peer(&[22; 100]);
        t.sent_to_peer(&[0x00, 0x01].repeat(10));
        t.received_from_peer(&[23; 7]);
        let s = t.snapshot();
        assert_eq!((s.stun_bindings, s.allocations, s.permissions, s.channel_binds), (1, 1, 1, 1));
        assert_eq!(s.allocations_refused, [(401, 1)].into());
        assert_eq!((s.permissions_refused.get(&403), s.channel_binds_refused.get(&403)), (Some(&1), Some(&1)));
        assert_eq!((s.to_peers, s.from_peers), (Flow { packets: 2, bytes: 120 }, Flow { packets: 1, bytes: 7 }));
        assert_eq!((s.to_peers_stun, s.from_peers_stun), (Some(Flow { packets: 1, bytes: 20 }), Some(Flow::default())));
        assert!(s.at_unix_ms > 1_700_000_000_000);
    }

    /// A message of `class` with transaction id `id`, as the header test reads it.
    fn with_id(method: stun::message::Method, class: stun::message::MessageClass, id: u8) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[Box::new(TransactionId([id; 12])), Box::new(MessageType::new(method, class))]).unwrap();
        m.raw
    }

    #[test]
    fn answers_are_timed_from_their_request() {
        let t = ServerCounters::default();
        t.on_request(&with_id(METHOD_ALLOCATE, stun::message::CLASS_REQUEST, 1));
        t.on_request(&with_id(stun::message::METHOD_REFRESH, stun::message::CLASS_REQUEST, 2));
        t.on_request(&[0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4]);
        std::thread::sleep(Duration::from_millis(2));
        t.on_answer(&with_id(METHOD_ALLOCATE, CLASS_ERROR_RESPONSE, 1));
        t.on_answer(&with_id(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE, 1)); // no request: not timed
        t.on_answer(&with_id(stun::message::METHOD_REFRESH, CLASS_SUCCESS_RESPONSE, 2));
        t.on_answer(&with_id(METHOD_BINDING, CLASS_SUCCESS_RESPONSE, 3)); // never asked
        let s = t.snapshot();
        let counts: Vec<(&str, u64)> = s.answer_latency_us.iter().map(|(m, h)| (m.as_str(), h.count())).collect();
        assert_eq!(counts, [("Allocate", 1), ("Refresh", 1)]);
        let p50 = s.answer_latency_us["Allocate"].quantile(0.5).unwrap();
        assert!(p50 >= 1_900.0, "slept 2 ms: {p50} us");
    }
}
