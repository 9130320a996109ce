//! TURN over TCP and TLS for the webrtc-rs TURN client, which only speaks UDP.
//!
//! For each `turn:...?transport=tcp` or `turns:` URL the peer starts a [`TurnShim`]: a UDP
//! socket on 127.0.0.1 that the TURN client is pointed at instead
//! (`turn:127.0.0.1:PORT?transport=udp`). Every local socket that talks to the shim gets
//! its own TCP (or TLS) connection to the real server, so each TURN client keeps its own
//! 5-tuple and allocation there. Datagrams are forwarded as stream frames (RFC 8656 §4.1,
//! RFC 6062: STUN messages delimit themselves by their length field; ChannelData has a
//! 4-byte header and is padded to a multiple of 4 on streams), and frames read from the
//! stream go back as datagrams, padding stripped.
//!
//! The gathering sockets are bound to the host's interface address; Linux delivers their
//! datagrams to 127.0.0.1 over `lo` (and a host firewall exempts `lo`), so nothing but
//! the stream to the server leaves the namespace.
//!
//! Checks through a stream relay wait for the other side to have the relay candidate: the
//! TURN client's permissions and data (CreatePermission, ChannelBind, Send, ChannelData)
//! are held, the allocation itself is not, until the peer learns by signaling
//! (`CandidateAdded`) that the other agent added this relay's candidate, or at most
//! [`HOLD_MAX`]. Otherwise a check from the relay can beat its trickled candidate, and
//! webrtc-rs makes such a check's source a prflx with peer-reflexive priority (it ignores
//! the PRIORITY attribute), ranking the relay above the direct srflx pairs.
//!
//! TLS accepts any server certificate (the handshake signature is still verified): the
//! lab's TURN server makes a self-signed certificate at start-up in its own process, there
//! is no CA to chain to and nothing to protect inside a namespace lab, and what the lab
//! measures is whether TLS on 443 gets through, not who holds the key.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use super::shim_gate::{HOLD_MAX, Released, held};
use crate::turn::{pad_frame, read_frame};

/// Bound on TCP connect, and separately on the TLS handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Datagrams queued per connection while it connects or the stream is slow; beyond this
/// they are dropped, as a congested UDP path would.
const QUEUE: usize = 256;
/// Stream transport to the TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamTransport {
    /// `turn:host:port?transport=tcp` (RFC 6062 framing over plain TCP).
    Tcp,
    /// `turns:host:port` (the same over TLS).
    Tls,
}

impl StreamTransport {
    /// The relay protocol word we report (`tcp` / `tls`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// Where a stream TURN URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamTarget {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) transport: StreamTransport,
}

/// `host:port` of a `stun:`/`turn:`/`turns:` URL (query stripped), as written.
pub(crate) fn host_port(url: &str) -> Option<&str> {
    let rest = url.trim().split_once(':')?.1;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The stream target of a URL the webrtc-rs client would skip: `turn:` with
/// `transport=tcp`, or `turns:` (TLS; default port 5349). `None` for anything UDP.
pub(crate) fn stream_target(url: &str) -> Option<StreamTarget> {
    let url = url.trim();
    let (transport, rest, default_port) = if let Some(r) = url.strip_prefix("turns:") {
        (StreamTransport::Tls, r, 5349)
    } else {
        let r = url.strip_prefix("turn:")?;
        let (_, q) = r.split_once('?')?;
        let tcp = q.split('&').any(|kv| kv.eq_ignore_ascii_case("transport=tcp"));
        if !tcp {
            return None;
        }
        (StreamTransport::Tcp, r, 3478)
    };
    if transport == StreamTransport::Tls
        && rest.split_once('?').is_some_and(|(_, q)| q.split('&').any(|kv| kv.eq_ignore_ascii_case("transport=udp")))
    {
        // turns + udp would be DTLS, which we do not do.
        return None;
    }
    let hp = rest.split('?').next()?;
    let (host, port) = if let Some(v6) = hp.strip_prefix('[') {
        let (h, p) = v6.split_once(']')?;
        (h, p.strip_prefix(':'))
    } else {
        match hp.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hp, None),
        }
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => default_port,
    };
    (!host.is_empty()).then(|| StreamTarget { host: host.to_string(), port, transport })
}

/// A running shim; dropping it stops it and closes its streams.
pub(crate) struct TurnShim {
    /// The local UDP address the TURN client is pointed at.
    pub(crate) local: SocketAddr,
    /// The URL to give webrtc-rs instead of the original.
    pub(crate) local_url: String,
    /// The URL from the configuration.
    pub(crate) original_url: String,
    /// TCP or TLS.
    pub(crate) transport: StreamTransport,
    released: Arc<Released>,
    task: JoinHandle<()>,
}

impl Drop for TurnShim {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

impl TurnShim {
    /// Binds `loopback`:0 and starts forwarding to `target`; the shim stops by itself
    /// after `lifetime` (the peer's own deadline bounds it anyway).
    pub(crate) async fn start(
        url: &str,
        target: StreamTarget,
        loopback: IpAddr,
        lifetime: Duration,
    ) -> anyhow::Result<Self> {
        let sock = Arc::new(UdpSocket::bind((loopback, 0)).await.context("binding TURN shim")?);
        let local = sock.local_addr()?;
        let tls = match target.transport {
            StreamTransport::Tls => Some(tls_connector()?),
            StreamTransport::Tcp => None,
        };
        let transport = target.transport;
        let released = Arc::new(Released::default());
        let r = released.clone();
        let task = tokio::spawn(async move {
            let _ = tokio::time::timeout(lifetime, forward(sock, target, tls, r)).await;
        });
        Ok(Self {
            local,
            local_url: format!("turn:{local}?transport=udp"),
            original_url: url.trim().to_string(),
            transport,
            released,
            task,
        })
    }

    /// Lets the TURN client at `client` (the relay candidate's base) send permissions and
    /// data: the other side has the relay's candidate. Unknown clients are ignored.
    pub(crate) fn release(&self, client: SocketAddr) {
        self.released.clients.lock().unwrap_or_else(|e| e.into_inner()).insert(client);
        self.released.changed.notify_waiters();
    }
}

/// Reads datagrams from the TURN client(s) and hands each to its source's connection.
async fn forward(sock: Arc<UdpSocket>, target: StreamTarget, tls: Option<TlsConnector>, released: Arc<Released>) {
    let mut conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { return };
                let tx = conns.entry(from).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    tasks.spawn(connection(sock.clone(), from, rx, target.clone(), tls.clone(), released.clone()));
                    tx
                });
                if tx.try_send(buf[..n].to_vec()).is_err() {
                    tracing::debug!(%from, "turn shim: queue full or stream gone, datagram dropped");
                }
            }
            Some(Ok(from)) = tasks.join_next() => {
                // A stream that ended is not reopened: its allocation is gone with it, and a
                // fresh 5-tuple would need a fresh Allocate the client will not send.
                tracing::debug!(%from, "turn shim: stream ended");
            }
        }
    }
}

/// One TURN client's stream to the server; returns the client address when it ends.
async fn connection(
    sock: Arc<UdpSocket>,
    client: SocketAddr,
    rx: mpsc::Receiver<Vec<u8>>,
    target: StreamTarget,
    tls: Option<TlsConnector>,
    released: Arc<Released>,
) -> SocketAddr {
    if let Err(e) = connect_and_pump(&sock, client, rx, &target, tls, &released).await {
        tracing::warn!(%client, host = %target.host, port = target.port, "turn shim: {e:#}");
    }
    client
}

async fn connect_and_pump(
    sock: &UdpSocket,
    client: SocketAddr,
    rx: mpsc::Receiver<Vec<u8>>,
    target: &StreamTarget,
    tls: Option<TlsConnector>,
    released: &Released,
) -> anyhow::Result<()> {
    let addr = resolve(&target.host, target.port).await?;
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("TCP connect to {addr} timed out"))?
        .with_context(|| format!("TCP connect to {addr}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => pump(tcp, sock, client, rx, released).await,
        Some(connector) => {
            let name = match target.host.parse::<IpAddr>() {
                Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
                Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())?,
            };
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| anyhow!("TLS handshake with {addr} timed out"))?
                .with_context(|| format!("TLS handshake with {addr}"))?;
            pump(stream, sock, client, rx, released).await
        }
    }
}

async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((ip, port).into());
    }
    let mut addrs = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| anyhow!("resolving {host} timed out"))??;
    addrs.next().ok_or_else(|| anyhow!("{host} has no address"))
}

/// Datagrams from `rx` go to the stream as frames; frames from the stream go to `client`.
async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    sock: &UdpSocket,
    client: SocketAddr,
    mut rx: mpsc::Receiver<Vec<u8>>,
    released: &Released,
) -> anyhow::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let up = async {
        let mut deadline = None;
        while let Some(mut d) = rx.recv().await {
            if held(&d) && !released.contains(client) {
                let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + HOLD_MAX);
                released.wait(client, until).await;
            }
            pad_frame(&mut d);
            wr.write_all(&d).await.context("writing to TURN server")?;
        }
        anyhow::Ok(())
    };
    let down = async {
        loop {
            // Waiting for the next frame is bounded by the shim's lifetime.
            let frame = read_frame(&mut rd).await.context("reading from TURN server")?;
            sock.send_to(&frame, client).await.context("forwarding to TURN client")?;
        }
    };
    tokio::select! {
        r = up => r,
        r = down => r,
    }
}

fn tls_connector() -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServerCert(provider.clone()));
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(cfg)))
}

/// Accepts any certificate (see the module docs for why) but checks that the server
/// signed the handshake with its key, so the session is real TLS.
#[derive(Debug)]
struct AnyServerCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Shims for every stream URL of `servers`, which are rewritten to point at them.
///
/// webrtc-rs's TURN client speaks to a URL only from local sockets of its family, so the
/// shim listens on IPv4 loopback when the peer has IPv4 sockets (`udp_bind`), else on
/// IPv6 loopback (an IPv6-only host).
pub(crate) async fn install(
    servers: &mut [super::config::IceServer],
    udp_bind: &[String],
    lifetime: Duration,
) -> anyhow::Result<Vec<Arc<TurnShim>>> {
    let v4 = udp_bind.iter().any(|b| b.parse::<SocketAddr>().map_or(true, |a| a.is_ipv4()));
    let loopback = if v4 { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(std::net::Ipv6Addr::LOCALHOST) };
    let mut shims = Vec::new();
    for s in servers {
        for url in &mut s.urls {
            if let Some(target) = stream_target(url) {
                let shim = TurnShim::start(url, target, loopback, lifetime).await?;
                *url = shim.local_url.clone();
                shims.push(Arc::new(shim));
            }
        }
    }
    Ok(shims)
}

/// Rewrites a candidate gathered through a shim: its URL becomes the configured one and its
/// relay protocol the stream transport to the server.
pub(crate) fn attribute(c: &mut super::protocol::CandidateInfo, shims: &[Arc<TurnShim>]) {
    if c.candidate_type != "relay" {
        return;
    }
    let Some(hp) = c.url.as_deref().and_then(host_port) else { return };
    if let Some(s) = shims.iter().find(|s| hp == s.local.to_string()) {
        c.url = Some(s.original_url.clone());
        c.relay_protocol = Some(s.transport.as_str().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_urls() {
        let t = stream_target("turn:10.0.0.1:3478?transport=tcp").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.transport), ("10.0.0.1", 3478, StreamTransport::Tcp));
        let t = stream_target("turns:relay.example:443").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.transport), ("relay.example", 443, StreamTransport::Tls));
        assert_eq!(stream_target("turns:x").unwrap().port, 5349);
        assert_eq!(stream_target("turns:x:443?transport=tcp").unwrap().transport, StreamTransport::Tls);
        assert_eq!(stream_target("turn:[::1]:3478?transport=tcp").unwrap().host, "::1");
        assert!(stream_target("turn:10.0.0.1:3478?transport=udp").is_none());
        assert!(stream_target("turn:10.0.0.1:3478").is_none());
        assert!(stream_target("stun:10.0.0.1:3478").is_none());
        assert_eq!(host_port("turn:127.0.0.1:5000?transport=udp"), Some("127.0.0.1:5000"));
    }
}
