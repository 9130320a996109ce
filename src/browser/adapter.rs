//! The adapter's main loop: config in, browser up, signaling relayed, events re-timed.

use std::io::{BufRead, Write};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::launch::{self, Browser};
use super::server::{self, FromPage, Inbox};
use crate::peer::driver::CONFIG_ENV;
use crate::peer::{PeerConfig, PeerEvent, Phase};

/// How often the loop looks at the browser process and the deadline between reports.
const TICK: Duration = Duration::from_millis(100);

/// Writes contract events to stdout, timed on the adapter's monotonic clock.
struct Out {
    start: Instant,
    phase: Phase,
}

impl Out {
    fn ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    fn write(&mut self, ev: Value) {
        if let Ok(e) = serde_json::from_value::<PeerEvent>(ev.clone()) {
            self.phase = advance(self.phase, &e);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{ev}");
        let _ = out.flush();
    }

    fn error(&mut self, kind: &str, message: &str) {
        let ev = json!({"event": "error", "t_ms": self.ms(), "kind": kind, "phase": self.phase, "message": message});
        self.write(ev);
    }
}

/// The phase after `e`, so a timeout says where the call was stuck.
fn advance(p: Phase, e: &PeerEvent) -> Phase {
    let next = match e {
        PeerEvent::IceState { state, .. } if state == "checking" => Phase::Ice,
        PeerEvent::IceState { state, .. } if state == "connected" || state == "completed" => Phase::Dtls,
        PeerEvent::DtlsConnected { .. } => Phase::DataChannel,
        PeerEvent::DataChannelOpen { .. } => Phase::Data,
        PeerEvent::Done { .. } => Phase::Done,
        _ => p,
    };
    next.max(p)
}

/// A page report as a contract event: `t_wall` becomes `t_ms`, `fatal` is dropped.
/// Returns the event and whether it ends the call (`done` or a fatal error).
pub fn retime(mut ev: Value, wall0: f64) -> (Value, Option<bool>) {
    let t = ev.get("t_wall").and_then(Value::as_f64).map_or(0.0, |w| (w - wall0).max(0.0));
    let fatal = ev.get("fatal").and_then(Value::as_bool);
    if let Some(o) = ev.as_object_mut() {
        o.remove("t_wall");
        o.remove("fatal");
        o.insert("t_ms".into(), json!((t * 1000.0).round() / 1000.0));
    }
    let end = match ev.get("event").and_then(Value::as_str) {
        Some("done") => Some(true),
        Some("error") if fatal != Some(false) => Some(false),
        _ => None,
    };
    (ev, end)
}

/// Runs one browser peer to the end; returns the exit code (0 done, 1 failed, 2 bad config).
pub fn run(browser: Browser) -> u8 {
    let start = Instant::now();
    let wall0 = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0;
    // The page reports wall-clock times (`performance.timeOrigin + performance.now()`);
    // subtracting the wall clock at our start puts them on our monotonic clock.
    let mut out = Out { start, phase: Phase::Signaling };
    let cfg: PeerConfig = match std::env::var(CONFIG_ENV)
        .map_err(|e| e.to_string())
        .and_then(|s| serde_json::from_str(&s).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("icelab browser-peer: ${CONFIG_ENV}: {e}");
            return 2;
        }
    };
    let deadline = start + Duration::from_millis(cfg.deadline_ms);
    out.write(json!({"event": "started", "t_ms": out.ms(), "role": cfg.role,
        "implementation": format!("{} (headless, icelab page)", browser.name())}));

    let inbox = Arc::new(Inbox::default());
    let (tx, rx) = mpsc::channel();
    let (url, srv) = match server::bind() {
        Ok(s) => s,
        Err(e) => {
            out.error("internal", &format!("{e:#}"));
            return 1;
        }
    };
    let cfg_json = serde_json::to_value(&cfg).unwrap_or(Value::Null);
    std::thread::spawn({
        let (inbox, tx) = (inbox.clone(), tx.clone());
        move || server::serve(srv, cfg_json, inbox, tx)
    });
    std::thread::spawn({
        let inbox = inbox.clone();
        move || {
            for line in std::io::stdin().lock().lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => inbox.push(v),
                    Err(e) => eprintln!("icelab browser-peer: skipping signaling line: {e}"),
                }
            }
            inbox.push(json!({"type": "eof"}));
        }
    });

    let launched = out.ms();
    let mut running = match launch::start(browser, &url) {
        Ok(r) => r,
        Err(e) => {
            out.error("internal", &format!("{e:#}"));
            return 1;
        }
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            out.error("timeout", &format!("no result from {} within {} ms", browser.name(), cfg.deadline_ms));
            return 1;
        }
        match rx.recv_timeout(left.min(TICK)) {
            Ok(FromPage::Loaded) => {}
            Ok(FromPage::Event(ev)) => {
                let (mut ev, end) = retime(ev, wall0);
                if ev.get("event").and_then(Value::as_str) == Some("browser_ready") {
                    let t = ev["t_ms"].as_f64().unwrap_or(0.0);
                    ev["startup_ms"] = json!(((t - launched) * 1000.0).round() / 1000.0);
                }
                match end {
                    Some(true) => {
                        // Let the last SCTP messages (our ack) reach the other side, then
                        // stop the browser and remove its profile before saying `done`:
                        // icelab kills a peer soon after its `done`.
                        std::thread::sleep(Duration::from_millis(cfg.linger_ms));
                        drop(running);
                        out.write(ev);
                        return 0;
                    }
                    Some(false) => {
                        out.write(ev);
                        return 1;
                    }
                    None => out.write(ev),
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                out.error("internal", "page server stopped");
                return 1;
            }
        }
        if let Some(status) = running.exited() {
            let profile = running.profile().display().to_string();
            out.error(
                "internal",
                &format!("{} exited ({status}) before the call finished (profile {profile})", browser.name()),
            );
            return 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_reports_move_to_the_adapter_clock() {
        let (ev, end) = retime(json!({"event": "ice_state", "state": "connected", "t_wall": 1500.25}), 1000.0);
        assert_eq!(ev, json!({"event": "ice_state", "state": "connected", "t_ms": 500.25}));
        assert_eq!(end, None);
        assert!(serde_json::from_value::<PeerEvent>(ev).is_ok());
        let (_, end) = retime(json!({"event": "done", "t_wall": 2000.0}), 1000.0);
        assert_eq!(end, Some(true));
        let e = json!({"event": "error", "kind": "internal", "phase": "ice", "message": "x", "fatal": false, "t_wall": 1.0});
        let (ev, end) = retime(e, 1000.0);
        assert_eq!((ev["t_ms"].as_f64(), ev.get("fatal"), end), (Some(0.0), None, None));
    }

    #[test]
    fn phases_only_move_forward() {
        let p = advance(Phase::Signaling, &PeerEvent::IceState { t_ms: 0.0, state: "checking".into() });
        assert_eq!(p, Phase::Ice);
        assert_eq!(advance(Phase::Data, &PeerEvent::IceState { t_ms: 0.0, state: "checking".into() }), Phase::Data);
    }
}
