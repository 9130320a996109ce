//! When the first connectivity check of a peer process succeeded, read from webrtc-rs's
//! own log. webrtc-rs 0.21 has no event for it and its `getStats()` only fills in the
//! *selected* pair's check counters, so before nomination nothing else can see it. Its ICE
//! agent logs every valid pair (`Found valid candidate pair`, trace level); a `log` logger
//! installed in `icelab peer` notes the first one and forwards every other record to
//! `tracing` as usual.
//!
//! The note is process-wide, so it is only installed where one process holds one peer
//! (`icelab peer`); in-process harnesses report no first-check time.

use std::sync::OnceLock;
use std::time::Instant;

/// Where the ICE agent logs its pair checks.
const SELECTOR_TARGET: &str = "rtc_ice::agent::agent_selector";
/// What it logs when a check got its success response.
const VALID_PAIR: &str = "Found valid candidate pair";

static FIRST_VALID_PAIR: OnceLock<Instant> = OnceLock::new();

/// When the first pair check succeeded in this process, if one has (and the watch is installed).
pub(crate) fn first_valid_pair() -> Option<Instant> {
    FIRST_VALID_PAIR.get().copied()
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
        if FIRST_VALID_PAIR.get().is_none()
            && r.level() == log::Level::Trace
            && r.target().starts_with(SELECTOR_TARGET)
            && r.args().to_string().starts_with(VALID_PAIR)
        {
            let _ = FIRST_VALID_PAIR.set(Instant::now());
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
