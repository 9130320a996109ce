//! The relay benchmark's load generator and echo peer.
//!
//! Every allocation is one UDP socket in the client's namespace. Its control plane
//! (Allocate with the 401 challenge, ChannelBind to the peer) is built with the `stun`
//! crate's messages and the `turn` crate's attributes; its data is ChannelData framed by
//! `turn::proto::chandata`. One paced sender thread spreads `allocations x rate` packets
//! a second over the sockets; each socket's receiver (a tokio task) matches echoes and
//! takes their round trip from the send time carried in the payload. The echo peer, one
//! socket in the peer's namespace on its own thread, sends every datagram back to where it
//! came from (the relay address).
//!
//! Payload: allocation index (u32), sequence number (u64), send time (u64 ns after the
//! run's start), zeros up to the size.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::{CODE_UNAUTHORIZED, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_REFRESH, Message,
    MessageType, Method, Setter,
};
use stun::textattrs::{Nonce, Realm, Username};
use tokio::net::UdpSocket;
use turn::proto::PROTO_UDP;
use turn::proto::chandata::ChannelData;
use turn::proto::channum::ChannelNumber;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;

use super::relay::Tally;
use crate::fabric::netns;
use crate::servers::LAB_CREDENTIALS;

/// UDP port of the echo peer.
pub const PEER_PORT: u16 = 40_000;
/// The channel every allocation binds to the peer (channels are per allocation).
const CHANNEL: u16 = 0x4000;
/// Socket buffers of the generator and the peer, so neither is where packets drop.
const ENDPOINT_BUFFER: usize = 4 << 20;
/// How long the receivers wait for stragglers after the last send.
const DRAIN: Duration = Duration::from_secs(2);
/// A control request is sent this many times before giving up, first `RTO` apart, then
/// twice as long each time (RFC 8489 §6.2.1), at most `RTO_MAX`.
const ATTEMPTS: u32 = 5;
const RTO: Duration = Duration::from_millis(500);
const RTO_MAX: Duration = Duration::from_secs(4);
/// Allocations set up at a time (a burst of hundreds would time itself out on two cores).
const SETUP_AT_ONCE: usize = 16;

/// Where the bench's parties are.
pub struct Endpoints {
    /// The client's namespace.
    pub client_ns: OwnedFd,
    /// The echo peer's namespace.
    pub peer_ns: OwnedFd,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The echo peer's address.
    pub peer_ip: IpAddr,
}

/// Sets forced (beyond `rmem_max`, needs CAP_NET_ADMIN) receive and send buffers; on
/// failure the socket keeps its default ones.
pub(crate) fn force_buffers(fd: &impl AsFd, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    if let Err(e) = setsockopt(fd, sockopt::RcvBufForce, &bytes) {
        tracing::debug!("SO_RCVBUFFORCE: {e}");
    }
    if let Err(e) = setsockopt(fd, sockopt::SndBufForce, &bytes) {
        tracing::debug!("SO_SNDBUFFORCE: {e}");
    }
}

/// The echo peer: running until [`Echo::stop`] (or drop).
struct Echo {
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Echo {
    fn start(ep: &Endpoints) -> anyhow::Result<Echo> {
        let addr = SocketAddr::new(ep.peer_ip, PEER_PORT);
        let sock = netns::run_in(&ep.peer_ns, move || -> std::io::Result<std::net::UdpSocket> {
            let s = std::net::UdpSocket::bind(addr)?;
            force_buffers(&s, ENDPOINT_BUFFER);
            s.set_read_timeout(Some(Duration::from_millis(50)))?;
            Ok(s)
        })?
        .with_context(|| format!("echo peer: bind {addr}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let (s, r) = (stop.clone(), received.clone());
        let thread = std::thread::Builder::new().name("bench-echo".into()).spawn(move || {
            let mut buf = vec![0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                match sock.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        r.fetch_add(1, Ordering::Relaxed);
                        let _ = sock.send_to(&buf[..n], from);
                    }
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(e) => {
                        tracing::warn!("echo peer: {e}");
                        break;
                    }
                }
            }
        })?;
        Ok(Echo { stop, received, thread: Some(thread) })
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One request/answer with retransmissions; the answer with the request's transaction id.
async fn transact(sock: &UdpSocket, setters: &[Box<dyn Setter>]) -> anyhow::Result<Message> {
    let mut req = Message::new();
    req.build(setters).map_err(|e| anyhow!("building a request: {e}"))?;
    let mut buf = vec![0u8; 2048];
    let mut rto = RTO;
    for _ in 0..ATTEMPTS {
        sock.send(&req.raw).await.context("sending a TURN request")?;
        let deadline = tokio::time::Instant::now() + rto;
        rto = (rto * 2).min(RTO_MAX);
        while let Ok(r) = tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            let n = r.context("reading a TURN answer")?;
            let mut res = Message::new();
            res.raw = buf[..n].to_vec();
            if res.decode().is_ok() && res.transaction_id == req.transaction_id {
                return Ok(res);
            }
        }
    }
    bail!("no answer from the TURN server after {ATTEMPTS} tries")
}

fn request(method: Method) -> Vec<Box<dyn Setter>> {
    vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, CLASS_REQUEST))]
}

fn error_code(m: &Message) -> Option<u16> {
    let mut c = ErrorCodeAttribute::default();
    c.get_from(m).ok().map(|_| c.code.0)
}

/// "error 437 (Allocation Mismatch)" or the message, for errors.
fn answer(m: &Message) -> String {
    let mut c = ErrorCodeAttribute::default();
    match c.get_from(m) {
        Ok(()) => format!("error {} ({})", c.code.0, String::from_utf8_lossy(&c.reason)),
        Err(_) => m.to_string(),
    }
}

/// What a later request of an allocation needs: the server's realm and nonce.
#[derive(Clone)]
struct Credentials {
    realm: Realm,
    nonce: Nonce,
}

impl Credentials {
    /// `v` signed with the lab's long-term credentials.
    fn sign(&self, mut v: Vec<Box<dyn Setter>>) -> Vec<Box<dyn Setter>> {
        let c = LAB_CREDENTIALS;
        v.push(Box::new(Username::new(ATTR_USERNAME, c.user.into())));
        v.push(Box::new(self.realm.clone()));
        v.push(Box::new(self.nonce.clone()));
        v.push(Box::new(MessageIntegrity::new_long_term_integrity(
            c.user.into(),
            self.realm.text.clone(),
            c.password.into(),
        )));
        v.push(Box::new(FINGERPRINT));
        v
    }
}

/// Releases the allocation (Refresh with LIFETIME 0), so rounds do not pile them up on
/// the server. Best effort: the lab's end removes the server anyway.
async fn release(sock: &UdpSocket, creds: &Credentials) {
    let mut v = request(METHOD_REFRESH);
    v.push(Box::new(Lifetime(Duration::ZERO)));
    if let Err(e) = transact(sock, &creds.sign(v)).await {
        tracing::debug!("releasing an allocation: {e:#}");
    }
}

/// Allocates a relay on `sock`'s server and binds [`CHANNEL`] to `peer`.
async fn allocate_and_bind(sock: &UdpSocket, peer: SocketAddr) -> anyhow::Result<Credentials> {
    let mut alloc = request(METHOD_ALLOCATE);
    alloc.push(Box::new(RequestedTransport { protocol: PROTO_UDP }));
    let challenge = transact(sock, &alloc).await?;
    if error_code(&challenge) != Some(CODE_UNAUTHORIZED.0) {
        bail!("Allocate without credentials was answered {}, not 401", answer(&challenge));
    }
    let realm = Realm::get_from_as(&challenge, ATTR_REALM).map_err(|e| anyhow!("401 without REALM: {e}"))?;
    let nonce = Nonce::get_from_as(&challenge, ATTR_NONCE).map_err(|e| anyhow!("401 without NONCE: {e}"))?;
    let creds = Credentials { realm, nonce };
    let mut alloc = request(METHOD_ALLOCATE);
    alloc.push(Box::new(RequestedTransport { protocol: PROTO_UDP }));
    let res = transact(sock, &creds.sign(alloc)).await?;
    if res.typ != MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE) {
        bail!("Allocate failed: {}", answer(&res));
    }
    let mut relayed = RelayedAddress::default();
    relayed.get_from(&res).map_err(|e| anyhow!("Allocate success without XOR-RELAYED-ADDRESS: {e}"))?;
    let mut bind = request(METHOD_CHANNEL_BIND);
    bind.push(Box::new(ChannelNumber(CHANNEL)));
    bind.push(Box::new(PeerAddress { ip: peer.ip(), port: peer.port() }));
    let res = transact(sock, &creds.sign(bind)).await?;
    if res.typ != MessageType::new(METHOD_CHANNEL_BIND, CLASS_SUCCESS_RESPONSE) {
        bail!("ChannelBind to {peer} failed: {}", answer(&res));
    }
    Ok(creds)
}

/// A bench of one implementation, set up and ready to send.
pub struct Session {
    socks: Vec<(std::net::UdpSocket, Arc<UdpSocket>)>,
    creds: Vec<Credentials>,
    echo: Echo,
    allocations: u32,
    rate: u32,
    size: usize,
    duration: Duration,
}

impl Session {
    /// Starts the echo peer and sets up `allocations` relays on `server`, all bound to it.
    pub async fn setup(
        ep: &Endpoints,
        server: SocketAddr,
        (allocations, rate, size, duration): (u32, u32, usize, Duration),
    ) -> anyhow::Result<Session> {
        let echo = Echo::start(ep)?;
        let client_ip = ep.client_ip;
        let std_socks = netns::run_in(&ep.client_ns, move || -> std::io::Result<Vec<std::net::UdpSocket>> {
            (0..allocations)
                .map(|_| {
                    let s = std::net::UdpSocket::bind((client_ip, 0))?;
                    force_buffers(&s, ENDPOINT_BUFFER);
                    s.connect(server)?;
                    s.set_nonblocking(true)?;
                    Ok(s)
                })
                .collect()
        })?
        .context("client sockets")?;
        let mut socks = Vec::new();
        for s in std_socks {
            let tokio_side = Arc::new(UdpSocket::from_std(s.try_clone()?)?);
            socks.push((s, tokio_side));
        }
        let peer = SocketAddr::new(ep.peer_ip, PEER_PORT);
        use futures::StreamExt;
        let binds = socks.iter().map(|(_, t)| allocate_and_bind(t, peer));
        let done: Vec<_> = futures::stream::iter(binds).buffered(SETUP_AT_ONCE).collect().await;
        let mut creds = Vec::new();
        for (i, r) in done.into_iter().enumerate() {
            creds.push(r.with_context(|| format!("allocation {i} on {server}"))?);
        }
        Ok(Session { socks, creds, echo, allocations, rate, size, duration })
    }

    /// Sends the load, waits (bounded) for the echoes, and counts.
    pub async fn run(self) -> anyhow::Result<Tally> {
        let base = Instant::now();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let received = Arc::new(AtomicU64::new(0));
        let size = self.size;
        let receivers: Vec<_> = self
            .socks
            .iter()
            .enumerate()
            .map(|(i, (_, sock))| {
                let (sock, mut stop, received) = (sock.clone(), stop_rx.clone(), received.clone());
                tokio::spawn(async move {
                    let mut rtts = Vec::new();
                    let mut buf = vec![0u8; 2048];
                    let mut cd = ChannelData::default();
                    loop {
                        let n = tokio::select! {
                            r = sock.recv(&mut buf) => match r { Ok(n) => n, Err(_) => continue },
                            _ = stop.changed() => break,
                        };
                        let now = base.elapsed().as_nanos() as u64;
                        cd.raw.clear();
                        cd.raw.extend_from_slice(&buf[..n]);
                        if !ChannelData::is_channel_data(&cd.raw) || cd.decode().is_err() {
                            continue; // a late control answer
                        }
                        let d = &cd.data;
                        if cd.number.0 != CHANNEL || d.len() != size || read_u32(d, 0) as usize != i {
                            continue;
                        }
                        let sent_ns = read_u64(d, 12);
                        rtts.push((now.saturating_sub(sent_ns) / 1000).min(u64::from(u32::MAX)) as u32);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    rtts
                })
            })
            .collect();

        let senders: Vec<std::net::UdpSocket> =
            self.socks.iter().map(|(s, _)| s.try_clone()).collect::<std::io::Result<_>>()?;
        let (rate, duration) = (self.rate, self.duration);
        let stopping = Arc::new(AtomicBool::new(false));
        let sender_stop = StopOnDrop(stopping.clone());
        let sender = tokio::task::spawn_blocking(move || send_paced(&senders, rate, size, duration, base, &stopping));
        let (sent, window) = sender.await.context("sender thread")??;
        drop(sender_stop);

        // The echoes of the last sends are in flight: wait for them, bounded.
        let drain_until = tokio::time::Instant::now() + DRAIN;
        while received.load(Ordering::Relaxed) < sent && tokio::time::Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop_tx.send(true);
        let mut rtt_us = Vec::new();
        for r in receivers {
            rtt_us.extend(r.await.context("receiver task")?);
        }
        let peer_received = self.echo.received();
        drop(self.echo);
        let releases = self.socks.iter().zip(&self.creds).map(|((_, sock), creds)| release(sock, creds));
        futures::future::join_all(releases).await;
        debug_assert!(self.allocations as usize == self.socks.len());
        Ok(Tally {
            sent,
            peer_received,
            received: rtt_us.len() as u64,
            rtt_us,
            send_window: window,
            ..Tally::default()
        })
    }
}

/// Sets the flag when dropped (a cancelled run stops its sender thread).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn read_u32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(d[at..at + 4].try_into().expect("4 bytes"))
}

fn read_u64(d: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(d[at..at + 8].try_into().expect("8 bytes"))
}

/// Sends `rate` packets a second on every socket for `duration`, round robin, each at its
/// due time (`base`-relative send times in the payload). Packets the socket cannot take
/// (its buffer full) are retried briefly, then not counted as sent. Returns the count sent
/// and the time from the first send to the last.
fn send_paced(
    socks: &[std::net::UdpSocket],
    rate: u32,
    size: usize,
    duration: Duration,
    base: Instant,
    stop: &AtomicBool,
) -> anyhow::Result<(u64, Duration)> {
    let n = socks.len() as u64;
    let total_rate = n * u64::from(rate);
    let total = (total_rate as f64 * duration.as_secs_f64()).round() as u64;
    let mut frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut data = vec![0u8; size];
            data[0..4].copy_from_slice(&(i as u32).to_be_bytes());
            let mut cd = ChannelData { data, number: ChannelNumber(CHANNEL), raw: Vec::new() };
            cd.encode();
            cd.raw
        })
        .collect();
    // The payload starts after ChannelData's 4-byte header.
    const AT: usize = 4;
    let start = Instant::now();
    let mut first = None;
    let mut last = start;
    let mut sent = 0u64;
    let mut k = 0u64;
    while k < total && !stop.load(Ordering::Relaxed) {
        let due = ((start.elapsed().as_nanos() * total_rate as u128 / 1_000_000_000) as u64 + 1).min(total);
        while k < due {
            let i = (k % n) as usize;
            let frame = &mut frames[i];
            frame[AT + 4..AT + 12].copy_from_slice(&(k / n).to_be_bytes());
            let now = Instant::now();
            frame[AT + 12..AT + 20].copy_from_slice(&(now.duration_since(base).as_nanos() as u64).to_be_bytes());
            let mut tries = 0;
            loop {
                match socks[i].send(frame) {
                    Ok(_) => {
                        sent += 1;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // ICMP errors from an earlier datagram surface on a later send.
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
                    Err(e) => return Err(e).context("sending ChannelData"),
                }
            }
            first.get_or_insert(now);
            last = now;
            k += 1;
        }
        if k < total {
            let next = start + Duration::from_nanos((k as u128 * 1_000_000_000 / total_rate as u128) as u64);
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok((sent, first.map_or(Duration::ZERO, |f| last.duration_since(f))))
}
