//! TURN over TCP and TLS (RFC 5766 §2.1) for the `turn` crate, which only serves packet
//! connections (`ConnConfig` takes a `Conn`, i.e. a UDP-like socket).
//!
//! [`StreamListener`] accepts streams and presents all of them to the server as one
//! packet `Conn`: each STUN message or ChannelData frame read from a stream becomes one
//! datagram "from" the client's address, and datagrams the server sends to that address
//! are written back to its stream. The relayed leg stays UDP, as RFC 5766 requires.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use webrtc_util::Conn;

type Writers = Arc<Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>>;

/// A TCP (optionally TLS) listener that looks like one packet socket to the TURN server.
pub(crate) struct StreamListener {
    local: SocketAddr,
    inbound: Mutex<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
    writers: Writers,
    closed: watch::Sender<bool>,
}

impl StreamListener {
    /// Starts accepting on `listener`; with `tls`, every stream is TLS-wrapped first.
    pub(crate) fn start(listener: TcpListener, tls: Option<TlsAcceptor>) -> std::io::Result<Arc<Self>> {
        let local = listener.local_addr()?;
        let (in_tx, in_rx) = mpsc::channel(1024);
        let (closed, closed_rx) = watch::channel(false);
        let me = Arc::new(Self { local, inbound: Mutex::new(in_rx), writers: Writers::default(), closed });
        let writers = me.writers.clone();
        tokio::spawn(async move {
            let mut stop = closed_rx.clone();
            loop {
                let (tcp, peer) = tokio::select! {
                    _ = stop.changed() => return,
                    r = listener.accept() => match r {
                        Ok(x) => x,
                        Err(e) => { tracing::warn!(%e, "turn stream accept"); continue; }
                    },
                };
                let _ = tcp.set_nodelay(true);
                let (in_tx, writers, stop, tls) = (in_tx.clone(), writers.clone(), closed_rx.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, peer, in_tx, writers, stop).await,
                        Some(acc) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acc.accept(tcp)).await {
                            Ok(Ok(s)) => serve(s, peer, in_tx, writers, stop).await,
                            Ok(Err(e)) => tracing::debug!(%peer, %e, "turn tls handshake failed"),
                            Err(_) => tracing::debug!(%peer, "turn tls handshake timed out"),
                        },
                    }
                });
            }
        });
        Ok(me)
    }

    /// Stops accepting and ends every stream (the server is stopping).
    pub(crate) fn shutdown(&self) {
        let _ = self.closed.send(true);
    }
}

/// Bound on a client's TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Once a frame header arrived, the rest of the frame must follow within this.
const FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Length of the frame starting with `hdr` as (length, length on the stream): STUN (top
/// bits 00) is 20 + length; ChannelData (01) is 4 + length, padded to 4 bytes on streams
/// (RFC 8656 §12.5). Anything else is not TURN.
pub(crate) fn frame_len(hdr: [u8; 4]) -> Option<(usize, usize)> {
    let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
    match hdr[0] >> 6 {
        0 => Some((20 + len, 20 + len)),
        1 => Some((4 + len, (4 + len).div_ceil(4) * 4)),
        _ => None,
    }
}

/// Reads the next STUN message or ChannelData frame from a stream, padding stripped.
/// Waiting for a frame is unbounded (an idle client may wait); a frame once started must
/// arrive whole within [`FRAME_TIMEOUT`].
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R) -> std::io::Result<Vec<u8>> {
    let mut hdr = [0u8; 4];
    rd.read_exact(&mut hdr).await?;
    let Some((len, padded)) = frame_len(hdr) else {
        return Err(std::io::Error::other("not STUN or ChannelData"));
    };
    let mut frame = vec![0u8; padded];
    frame[..4].copy_from_slice(&hdr);
    tokio::time::timeout(FRAME_TIMEOUT, rd.read_exact(&mut frame[4..]))
        .await
        .map_err(|_| std::io::Error::other("stalled mid-frame"))??;
    frame.truncate(len);
    Ok(frame)
}

/// Pads a ChannelData frame to a multiple of 4 for a stream; STUN is already aligned.
pub(crate) fn pad_frame(frame: &mut Vec<u8>) {
    if frame.first().is_some_and(|b| b >> 6 == 1) {
        frame.resize(frame.len().div_ceil(4) * 4, 0);
    }
}

/// Frames queued per stream towards its client; beyond this the stream is too slow and
/// frames are dropped (see `send_to`).
const OUT_QUEUE: usize = 1024;

async fn serve<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    peer: SocketAddr,
    in_tx: mpsc::Sender<(Vec<u8>, SocketAddr)>,
    writers: Writers,
    mut stop: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(OUT_QUEUE);
    writers.lock().await.insert(peer, out_tx);
    let mut writer = tokio::spawn(async move {
        while let Some(mut frame) = out_rx.recv().await {
            pad_frame(&mut frame);
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let reader = async {
        loop {
            let frame = read_frame(&mut rd).await?;
            if in_tx.send((frame, peer)).await.is_err() {
                return Ok::<(), std::io::Error>(());
            }
        }
    };
    // A writer that failed ends the connection too, so no dead queue stays in `writers`.
    tokio::select! {
        r = reader => if let Err(e) = r { tracing::debug!(%peer, %e, "turn stream closed") },
        _ = &mut writer => tracing::debug!(%peer, "turn stream write failed"),
        _ = stop.changed() => {}
    }
    writers.lock().await.remove(&peer);
    writer.abort();
}

#[async_trait]
impl Conn for StreamListener {
    async fn connect(&self, _addr: SocketAddr) -> webrtc_util::Result<()> {
        Err(webrtc_util::Error::Other("stream listener cannot connect".into()))
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        let mut stop = self.closed.subscribe();
        if *stop.borrow() {
            return Err(webrtc_util::Error::ErrUseClosedNetworkConn);
        }
        let mut rx = self.inbound.lock().await;
        tokio::select! {
            m = rx.recv() => match m {
                Some((frame, from)) => {
                    let n = frame.len().min(buf.len());
                    buf[..n].copy_from_slice(&frame[..n]);
                    Ok((n, from))
                }
                None => Err(webrtc_util::Error::ErrUseClosedNetworkConn),
            },
            _ = stop.changed() => Err(webrtc_util::Error::ErrUseClosedNetworkConn),
        }
    }
    async fn send(&self, _buf: &[u8]) -> webrtc_util::Result<usize> {
        Err(webrtc_util::Error::Other("stream listener needs a target".into()))
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        let tx = self.writers.lock().await.get(&target).cloned();
        let Some(tx) = tx else { return Err(webrtc_util::Error::Other(format!("no stream to {target}"))) };
        // Never wait here: the TURN server answers every client from one read loop, so one
        // slow stream must not stall the rest. A full queue drops the frame, as a full UDP
        // socket buffer would.
        match tx.try_send(buf.to_vec()) {
            Ok(()) => Ok(buf.len()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!(%target, "turn stream queue full: frame dropped");
                Ok(buf.len())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Err(webrtc_util::Error::Other(format!("stream to {target} closed")))
            }
        }
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        Ok(self.local)
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Does nothing: the `turn` crate closes its listener `Conn` from every
    /// `Allocation::close` (a Refresh with LIFETIME 0, an expiry), and on UDP that is a
    /// no-op. Here it would end every client's stream and the accept loop, so one peer
    /// hanging up cut the other peer's relay. The owner stops it with [`Self::shutdown`].
    async fn close(&self) -> webrtc_util::Result<()> {
        Ok(())
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::frame_len;

    #[test]
    fn frames() {
        assert_eq!(frame_len([0x00, 0x01, 0x00, 0x08]), Some((28, 28)));
        assert_eq!(frame_len([0x40, 0x00, 0x00, 0x05]), Some((9, 12)));
        assert_eq!(frame_len([0xC0, 0, 0, 0]), None);
    }
}
