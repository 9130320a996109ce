//! The data phase: both sides push binary chunks for a fixed time, then close the
//! exchange with a `fin`/`ack` text handshake so each side knows the other has seen all
//! of its data before the connection is torn down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::data_channel::{DataChannel, DataChannelEvent};

use super::events::{Clock, Internal};
use super::protocol::DataStats;

const FIN: &str = "fin";
const ACK: &str = "ack";

/// How much data to push.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataPlan {
    pub duration: Duration,
    pub chunk_bytes: usize,
    /// Pace to this many bytes/s; `None` floods (as fast as the send buffer allows).
    pub rate_bytes_per_s: Option<u64>,
}

/// What the sending half reports back.
struct Sent {
    bytes: u64,
    messages: u64,
    duration: Duration,
}

async fn send_for(dc: Arc<dyn DataChannel>, plan: DataPlan) -> webrtc::error::Result<Sent> {
    let chunk = BytesMut::from(&vec![0xA5u8; plan.chunk_bytes.max(1)][..]);
    let start = Instant::now();
    let (mut bytes, mut messages) = (0u64, 0u64);
    while start.elapsed() < plan.duration {
        // `send` blocks on the send-buffer limit set at build time, which paces a flood.
        dc.send(chunk.clone()).await?;
        bytes += chunk.len() as u64;
        messages += 1;
        // A paced sender (a media-like load) waits until its budget allows the next chunk.
        if let Some(rate) = plan.rate_bytes_per_s.filter(|r| *r > 0) {
            let due = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            tokio::time::sleep_until(due.min(start + plan.duration).into()).await;
        }
    }
    let duration = start.elapsed();
    dc.send_text(FIN).await?;
    Ok(Sent { bytes, messages, duration })
}

/// Longest a finished side waits for SCTP to acknowledge what it sent last.
const DELIVERY_WAIT: Duration = Duration::from_secs(2);

/// Waits (bounded) until SCTP has acknowledged everything this side sent: our last `ack`
/// may still be in flight, or lost and due for a retransmission, when we are finished,
/// and closing then would leave the other side waiting for it until its deadline (seen
/// over TURN/TCP relays under load). A peer that already went away leaves it unacked:
/// the wait ends at [`DELIVERY_WAIT`].
async fn delivered(dc: &dyn DataChannel) {
    let until = tokio::time::Instant::now() + DELIVERY_WAIT;
    while dc.outstanding_bytes().await.unwrap_or(0) > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn rate(bytes: u64, d: Duration) -> f64 {
    if d.is_zero() { 0.0 } else { bytes as f64 / d.as_secs_f64() }
}

/// Drives one data channel: reports open, exchanges data, reports the stats. Runs until
/// the exchange finishes or the channel closes; the caller's deadline bounds it.
pub(crate) async fn drive_channel(
    dc: Arc<dyn DataChannel>,
    plan: DataPlan,
    clock: Clock,
    tx: UnboundedSender<Internal>,
) {
    let mut sender: Option<tokio::task::JoinHandle<webrtc::error::Result<Sent>>> = None;
    let mut sent: Option<Sent> = None;
    let (mut rx_bytes, mut rx_msgs) = (0u64, 0u64);
    let (mut first_rx, mut last_rx): (Option<Instant>, Option<Instant>) = (None, None);
    let (mut peer_fin, mut got_ack) = (false, false);

    loop {
        let event = tokio::select! {
            ev = dc.poll() => ev,
            res = async { sender.as_mut().unwrap().await }, if sender.is_some() && sent.is_none() => {
                match res {
                    Ok(Ok(s)) => sent = Some(s),
                    Ok(Err(e)) => { let _ = tx.send(Internal::DataError(format!("send failed: {e}"))); return; }
                    Err(e) => { let _ = tx.send(Internal::DataError(format!("sender task: {e}"))); return; }
                }
                continue;
            }
        };
        let Some(event) = event else {
            let _ = tx.send(Internal::DataError("data channel closed".into()));
            return;
        };
        match event {
            DataChannelEvent::OnOpen => {
                let _ = tx.send(Internal::DcOpen(clock.ms()));
                if sender.is_none() {
                    sender = Some(tokio::spawn(send_for(dc.clone(), plan)));
                }
            }
            DataChannelEvent::OnMessage(msg) if msg.is_string => match &msg.data[..] {
                b"fin" => {
                    peer_fin = true;
                    if let Err(e) = dc.send_text(ACK).await {
                        let _ = tx.send(Internal::DataError(format!("ack failed: {e}")));
                        return;
                    }
                }
                b"ack" => got_ack = true,
                _ => {}
            },
            DataChannelEvent::OnMessage(msg) => {
                let now = Instant::now();
                first_rx.get_or_insert(now);
                last_rx = Some(now);
                rx_bytes += msg.data.len() as u64;
                rx_msgs += 1;
            }
            DataChannelEvent::OnClose | DataChannelEvent::OnError => {
                let _ = tx.send(Internal::DataError(format!("data channel {event:?} before the exchange finished")));
                return;
            }
            _ => {}
        }
        // Our ack arrives only after our fin, i.e. after the sender finished.
        if peer_fin && got_ack {
            if sent.is_none()
                && let Some(h) = sender.take()
            {
                sent = h.await.ok().and_then(Result::ok);
            }
            let s = sent.take().unwrap_or(Sent { bytes: 0, messages: 0, duration: Duration::ZERO });
            let recv_d = match (first_rx, last_rx) {
                (Some(a), Some(b)) => b - a,
                _ => Duration::ZERO,
            };
            let stats = DataStats {
                bytes_sent: s.bytes,
                bytes_received: rx_bytes,
                messages_sent: s.messages,
                messages_received: rx_msgs,
                send_duration_ms: s.duration.as_secs_f64() * 1000.0,
                recv_duration_ms: recv_d.as_secs_f64() * 1000.0,
                send_bytes_per_sec: rate(s.bytes, s.duration),
                recv_bytes_per_sec: rate(rx_bytes, recv_d),
                transport: None,
                selected_pairs: None,
            };
            delivered(dc.as_ref()).await;
            let _ = tx.send(Internal::DataDone(stats));
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markers_differ() {
        assert_ne!(super::FIN, super::ACK);
    }
}
