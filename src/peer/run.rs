//! [`run_peer`]: one WebRTC peer driven by JSON-lines signaling.
//!
//! A single task owns the peer connection and the output; webrtc-rs callbacks and the data
//! channel task feed it through a channel, so events are written in one place and in order.

use std::time::Duration;

use anyhow::anyhow;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite};
use tokio::sync::mpsc::unbounded_channel;
use webrtc::peer_connection::PeerConnection;

use super::candidate::KnownCandidates;
use super::config::{PeerConfig, Role};
use super::events::Clock;
use super::handler::Handler;
use super::output::Out;
use super::protocol::{ErrorKind, PeerEvent, Phase, SignalMsg};
use super::restart::{self, IceWatch};
use super::session::{Session, Step};
use super::setup::build_pc;
use super::turn_shim;

/// How often `getStats()` is read for the first successful check while ICE checks run.
const CHECK_POLL: Duration = Duration::from_millis(5);

/// Runs one peer to completion: signaling over `input`/`output` (JSON lines, see
/// [`super::protocol`]), ICE, DTLS, a data channel, a timed data exchange.
///
/// Returns `Ok` after writing `done`; on a timeout, failure or bad input it writes an
/// `error` event (and a `bye` signal for the other side) and returns `Err`, so a process
/// wrapper exits non-zero. The whole run is bounded by `cfg.deadline_ms`.
pub async fn run_peer(
    cfg: PeerConfig,
    input: impl AsyncBufRead + Unpin,
    output: impl AsyncWrite + Unpin,
) -> anyhow::Result<()> {
    let clock = Clock::default();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.deadline_ms);
    let mut out = Out { w: output, clock };
    let implementation = Some(super::setup::implementation_name(&cfg));
    out.emit(PeerEvent::Started { t_ms: clock.ms(), role: cfg.role, implementation }).await?;

    let (tx, mut rx) = unbounded_channel();
    // webrtc-rs gets the shims' local UDP URLs in place of TCP/TLS ones; they live as long
    // as the handler (owned by the peer connection), and at most a little past our deadline.
    let mut servers = cfg.ice_servers.clone();
    let built = async {
        let lifetime = Duration::from_millis(cfg.deadline_ms + 1000);
        let shims = turn_shim::install(&mut servers, &cfg.udp_bind, lifetime).await?;
        let pc = build_pc(&cfg, &servers, Handler { tx: tx.clone(), clock, shims: shims.clone() }).await?;
        anyhow::Ok((pc, shims))
    };
    let (pc, shims) = match built.await {
        Ok(v) => v,
        Err(e) => {
            let t_ms = clock.ms();
            out.emit(PeerEvent::Error {
                t_ms,
                kind: ErrorKind::Internal,
                phase: Phase::Signaling,
                message: format!("{e:#}"),
            })
            .await?;
            return Err(e);
        }
    };
    let watch = IceWatch::new(cfg.ice_restart, cfg.role);
    let mut s = Session {
        cfg,
        pc,
        out,
        clock,
        tx,
        phase: Phase::Signaling,
        remote_set: false,
        pending: Vec::new(),
        local_known: KnownCandidates::new(),
        remote_known: KnownCandidates::new(),
        channel: None,
        ice_connected: false,
        dtls_connected: false,
        gathering_started: false,
        first_success_ms: None,
        watch,
        shims,
    };

    let mut lines = input.lines();
    let mut input_open = true;
    let step = async {
        if s.cfg.role == Role::Offerer {
            s.start_offer().await?;
        }
        loop {
            let wake = s.watch.next_wake();
            let step = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => Step::Fail(
                    ErrorKind::Timeout,
                    format!("deadline of {} ms exceeded", s.cfg.deadline_ms),
                ),
                line = lines.next_line(), if input_open => match line? {
                    // Closed stdin is not fatal by itself; the deadline still bounds us.
                    None => { input_open = false; Step::Continue }
                    Some(l) if l.trim().is_empty() => Step::Continue,
                    Some(l) => match serde_json::from_str::<SignalMsg>(&l) {
                        Ok(msg) => s.on_signal(msg).await?,
                        Err(e) => Step::Fail(ErrorKind::Internal, format!("bad signal line {l:?}: {e}")),
                    },
                },
                Some(ev) = rx.recv() => s.on_internal(ev).await?,
                _ = restart::sleep_until(wake) => s.on_wake().await?,
                _ = tokio::time::sleep(CHECK_POLL), if s.watching_checks() => { s.poll_checks().await?; Step::Continue }
            };
            if !matches!(step, Step::Continue) {
                return anyhow::Ok(step);
            }
        }
    }
    .await;
    let step = step.unwrap_or_else(|e| Step::Fail(ErrorKind::Internal, format!("{e:#}")));

    let result = match step {
        Step::Finished => {
            let t_ms = clock.ms();
            // The linger before teardown came before the data's figures (Session::on_internal).
            s.out.emit(PeerEvent::Done { t_ms }).await?;
            Ok(())
        }
        Step::Fail(kind, message) => {
            let t_ms = clock.ms();
            let phase = s.phase;
            s.out.emit(PeerEvent::Error { t_ms, kind, phase, message: message.clone() }).await?;
            if kind != ErrorKind::PeerGone {
                let _ = s.out.signal(SignalMsg::Bye { reason: message.clone() }).await;
            }
            Err(anyhow!("{kind:?} in phase {phase:?}: {message}"))
        }
        Step::Continue => unreachable!("loop only exits on a final step"),
    };
    // Closing talks to the driver; never let it hang the exit.
    let _ = tokio::time::timeout(Duration::from_millis(500), s.pc.close()).await;
    result
}
