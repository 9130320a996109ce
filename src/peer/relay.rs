//! Signaling relay between two peers' JSON-lines streams.
//!
//! Independent of what the streams are: in-process pipes ([`super::call_pair`]) or the
//! stdio of two child processes (the orchestrator).

use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};

use super::protocol::PeerEvent;

/// What a relay tells an observer as it goes (the timeline samples counters and notes
/// events with it), and when it may stop. [`Plain`] observes nothing.
pub trait RelayWatch {
    /// An event line of the offerer (`offerer`) or the answerer, as it arrived.
    fn on_event(&mut self, _offerer: bool, _ev: &PeerEvent) {}
    /// How often [`RelayWatch::on_tick`] runs; `None`: never.
    fn tick_every(&self) -> Option<Duration> {
        None
    }
    /// Timer work (e.g. sampling byte counters).
    fn on_tick(&mut self) {}
    /// Whether the relay may return once both peers reported `done` (without waiting for
    /// their outputs to close).
    fn stop_when_done(&self) -> bool {
        true
    }
}

/// A relay that only relays.
pub struct Plain;

impl RelayWatch for Plain {}

/// Copies each `signal` line one peer writes to the other peer's input, and collects
/// every event line of both peers. Returns when both peers reported `done`, both
/// outputs have closed (the peers exited) or `deadline` passed, whichever is first:
/// a finished call is not kept waiting for the processes' own shutdown.
///
/// `a_out`/`b_out` are the peers' outputs (their stdout), `a_in`/`b_in` their inputs
/// (their stdin). Lines that are not [`PeerEvent`]s are logged and skipped, so a stray
/// print in a child does not break the run. When a peer's output closes, the other
/// peer's input is shut down so it sees end-of-input instead of silence.
pub async fn relay_signaling(
    a_out: impl AsyncBufRead + Unpin,
    a_in: impl AsyncWrite + Unpin,
    b_out: impl AsyncBufRead + Unpin,
    b_in: impl AsyncWrite + Unpin,
    deadline: Duration,
) -> (Vec<PeerEvent>, Vec<PeerEvent>) {
    relay_watched(a_out, a_in, b_out, b_in, deadline, &mut Plain).await
}

/// [`relay_signaling`] with an observer that sees every event and gets timer ticks.
pub async fn relay_watched(
    a_out: impl AsyncBufRead + Unpin,
    mut a_in: impl AsyncWrite + Unpin,
    b_out: impl AsyncBufRead + Unpin,
    mut b_in: impl AsyncWrite + Unpin,
    deadline: Duration,
    watch: &mut impl RelayWatch,
) -> (Vec<PeerEvent>, Vec<PeerEvent>) {
    let until = tokio::time::Instant::now() + deadline;
    let (mut a_lines, mut b_lines) = (a_out.lines(), b_out.lines());
    let (mut a_open, mut b_open) = (true, true);
    let (mut a_events, mut b_events) = (Vec::new(), Vec::new());
    let every = watch.tick_every();
    let mut tick = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    let finished = |events: &[PeerEvent]| events.iter().any(|e| matches!(e, PeerEvent::Done { .. }));
    while (a_open || b_open) && !(watch.stop_when_done() && finished(&a_events) && finished(&b_events)) {
        tokio::select! {
            _ = tokio::time::sleep_until(until) => {
                tracing::warn!("signaling relay deadline reached");
                break;
            }
            _ = tick.tick(), if every.is_some() => watch.on_tick(),
            line = a_lines.next_line(), if a_open => {
                match line {
                    Ok(Some(l)) => if let Some(ev) = forward(&l, &mut b_in, "a").await {
                        watch.on_event(true, &ev);
                        a_events.push(ev);
                    },
                    _ => { a_open = false; let _ = b_in.shutdown().await; }
                }
            }
            line = b_lines.next_line(), if b_open => {
                match line {
                    Ok(Some(l)) => if let Some(ev) = forward(&l, &mut a_in, "b").await {
                        watch.on_event(false, &ev);
                        b_events.push(ev);
                    },
                    _ => { b_open = false; let _ = a_in.shutdown().await; }
                }
            }
        }
    }
    (a_events, b_events)
}

/// Parses one output line and, if it is a signal, writes it to the other peer.
async fn forward(line: &str, other_in: &mut (impl AsyncWrite + Unpin), side: &str) -> Option<PeerEvent> {
    if line.trim().is_empty() {
        return None;
    }
    let ev: PeerEvent = match serde_json::from_str(line) {
        Ok(ev) => ev,
        Err(e) => {
            tracing::warn!(side, %e, line, "skipping non-event line");
            return None;
        }
    };
    if let PeerEvent::Signal { signal, .. } = &ev {
        let mut msg = serde_json::to_vec(signal).expect("signal serializes");
        msg.push(b'\n');
        // The other peer may have exited already; its events tell why.
        if other_in.write_all(&msg).await.is_ok() {
            let _ = other_in.flush().await;
        }
    }
    Some(ev)
}
