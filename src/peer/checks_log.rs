//! When a peer's first connectivity check succeeded, read from webrtc-rs's own log.
//! webrtc-rs 0.21 has no event for it and its `getStats()` only fills in the *selected*
//! pair's check counters, so before nomination nothing else can see it. Its ICE agent
//! logs every valid pair (`Found valid candidate pair: ... (local_addr A <-> remote_addr
//! B)`, trace level); a `log` logger installed in `icelab peer` notes when each local
//! address first had one and forwards every other record to `tracing` as usual.
//!
//! Keyed by local address, so one process can hold many peers (`icelab peer --pool`):
//! each peer asks for its own gathered candidates' addresses. The logger is installed
//! by the peer process only; in-process harnesses report no first-check time.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where the ICE agent logs its pair checks.
const SELECTOR_TARGET: &str = "rtc_ice::agent::agent_selector";
/// What it logs when a check got its success response.
const VALID_PAIR: &str = "Found valid candidate pair";

/// Notes kept at most this long once there are many (a pooled process places calls for
/// as long as a load lasts; a peer asks within its own deadline).
const KEEP: Duration = Duration::from_secs(300);
const MANY: usize = 4096;

/// When each local address (`ip:port`, `[ip]:port`) first had a valid pair.
static FIRST_VALID: OnceLock<Mutex<HashMap<String, Instant>>> = OnceLock::new();

/// When the first pair check from one of `local` (a peer's own candidates' addresses)
/// succeeded, if one has (and the watch is installed).
pub(crate) fn first_valid_pair<'a>(local: impl IntoIterator<Item = &'a str>) -> Option<Instant> {
    let notes = FIRST_VALID.get()?.lock().ok()?;
    local.into_iter().filter_map(|a| notes.get(a).copied()).min()
}

/// The local address of a `Found valid candidate pair` message.
fn local_addr(message: &str) -> Option<&str> {
    let rest = message.strip_prefix(VALID_PAIR)?;
    let (_, rest) = rest.split_once("(local_addr ")?;
    Some(rest.split_once(" <-> ")?.0)
}

fn note(local: &str, at: Instant) {
    let Ok(mut notes) = FIRST_VALID.get_or_init(Mutex::default).lock() else { return };
    if notes.len() >= MANY {
        notes.retain(|_, t| at.duration_since(*t) < KEEP);
    }
    notes.entry(local.to_string()).or_insert(at);
}

struct CheckWatch {
    /// Records at or above this level go on to `tracing` (the `ICELAB_LOG` filter decides there).
    forward: log::LevelFilter,
}

impl log::Log for CheckWatch {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.forward || m.target().starts_with(SELECTOR_TARGET)
    }

    fn log(&self, r: &log::Record<'_>) {
        if r.level() == log::Level::Trace && r.target().starts_with(SELECTOR_TARGET) {
            let message = r.args().to_string();
            if let Some(local) = local_addr(&message) {
                note(local, Instant::now());
            }
        }
        if r.level() <= self.forward {
            tracing_log::format_trace(r).ok();
        }
    }

    fn flush(&self) {}
}

/// Installs the watch as the process's `log` logger; `forward` is the most verbose level
/// passed on to `tracing`. Call once, before the peer starts.
pub fn install(forward: log::LevelFilter) -> Result<(), log::SetLoggerError> {
    log::set_boxed_logger(Box::new(CheckWatch { forward }))?;
    // Trace records must reach the watch; everything else is dropped in `log` unless forwarded.
    log::set_max_level(log::LevelFilter::Trace);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_local_address_is_read_from_both_messages() {
        let a = "Found valid candidate pair: prio 1 (local, prio 2) host 10.0.0.1:5000 <-> host 10.0.0.2:6000 \
                 (local_addr 10.0.0.1:5000 <-> remote_addr 10.0.0.2:6000), rtt: 1.000ms";
        assert_eq!(local_addr(a), Some("10.0.0.1:5000"));
        let b =
            "Found valid candidate pair: x (local_addr [2001:db8::1]:5000 <-> remote_addr [2001:db8::2]:1), p.state: x";
        assert_eq!(local_addr(b), Some("[2001:db8::1]:5000"));
        assert_eq!(local_addr("Ping STUN from 1 to 2"), None);
    }

    #[test]
    fn each_peer_sees_only_its_own_addresses() {
        let t0 = Instant::now();
        note("192.0.2.77:1", t0);
        note("192.0.2.77:2", t0 + Duration::from_millis(5));
        note("192.0.2.77:1", t0 + Duration::from_millis(9));
        assert_eq!(first_valid_pair(["192.0.2.77:1"]), Some(t0), "the first note stands");
        assert_eq!(first_valid_pair(["192.0.2.77:2", "192.0.2.77:3"]), Some(t0 + Duration::from_millis(5)));
        assert_eq!(first_valid_pair(["192.0.2.77:3"]), None);
    }
}
