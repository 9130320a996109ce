//! The built-in server's figures ([`ServerStats`]): counted where the listener guard
//! sends answers (bindings, allocations, permissions, channel binds and their refusals,
//! read from the answer's type and ERROR-CODE) and where the filtered relay sockets
//! exchange datagrams with peers; written as JSON lines to a stats file, periodically
//! and on request (SIGUSR1), so the run reads them when the call ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use stun::error_code::ErrorCodeAttribute;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_BINDING, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, Message,
};

use crate::servers::stats::{Flow, ServerStats};

/// Live counters of one server (shared by its listeners and relay sockets).
pub struct TurnStats {
    started_unix_ms: u64,
    /// Answers: rare, counted under a lock.
    answers: Mutex<ServerStats>,
    /// Relayed datagrams (packets, bytes) to and from peers: per packet, atomics.
    to_peers: [AtomicU64; 2],
    from_peers: [AtomicU64; 2],
}

impl Default for TurnStats {
    fn default() -> Self {
        TurnStats {
            started_unix_ms: unix_ms(),
            answers: Mutex::default(),
            to_peers: Default::default(),
            from_peers: Default::default(),
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl TurnStats {
    /// Counts an answer the server (or its guard) sends a client; ChannelData and
    /// indications (relayed data) are not answers and cost one byte test.
    pub(crate) fn on_answer(&self, pkt: &[u8]) {
        // STUN messages start with two zero bits; the class is in bits 4 and 8.
        if pkt.len() < 20 || pkt[0] & 0xC0 != 0 || pkt[0] & 0x01 == 0 {
            return;
        }
        if let Ok(mut s) = self.answers.lock() {
            count_answer(&mut s, pkt);
        }
    }

    /// Counts a datagram a relay socket sent to a peer.
    pub(crate) fn sent_to_peer(&self, bytes: usize) {
        self.to_peers[0].fetch_add(1, Ordering::Relaxed);
        self.to_peers[1].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// Counts a datagram a relay socket received from a peer.
    pub(crate) fn received_from_peer(&self, bytes: usize) {
        self.from_peers[0].fetch_add(1, Ordering::Relaxed);
        self.from_peers[1].fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The figures now.
    pub fn snapshot(&self) -> ServerStats {
        let mut s = self.answers.lock().map(|s| s.clone()).unwrap_or_default();
        let flow =
            |f: &[AtomicU64; 2]| Flow { packets: f[0].load(Ordering::Relaxed), bytes: f[1].load(Ordering::Relaxed) };
        s.to_peers = flow(&self.to_peers);
        s.from_peers = flow(&self.from_peers);
        s.at_unix_ms = unix_ms();
        s.started_unix_ms = self.started_unix_ms;
        s
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
    pub stats: Arc<TurnStats>,
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
                    tracing::warn!("TURN stats: writing {}: {e}", self.path.display());
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
        let t = TurnStats::default();
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
        t.sent_to_peer(100);
        t.sent_to_peer(20);
        t.received_from_peer(7);
        let s = t.snapshot();
        assert_eq!((s.stun_bindings, s.allocations, s.permissions, s.channel_binds), (1, 1, 1, 1));
        assert_eq!(s.allocations_refused, [(401, 1)].into());
        assert_eq!((s.permissions_refused.get(&403), s.channel_binds_refused.get(&403)), (Some(&1), Some(&1)));
        assert_eq!((s.to_peers, s.from_peers), (Flow { packets: 2, bytes: 120 }, Flow { packets: 1, bytes: 7 }));
        assert!(s.at_unix_ms > 1_700_000_000_000);
    }
}
