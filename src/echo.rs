//! UDP and TCP echo: a responder serving many namespaces from one process, and a
//! client that proves who can reach whom.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::fabric::netns;

/// Binds UDP and TCP echo sockets on `port` inside each namespace and serves them
/// forever. Prints `ready` on stdout once every socket is bound.
pub async fn serve(namespaces: &[String], port: u16) -> Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for name in namespaces {
        let fd = netns::open(name)?;
        // Sockets keep the namespace they were created in, whichever thread uses them later.
        // One dual-stack socket of each kind (`[::]` takes IPv4 too, as IPv4-mapped
        // addresses), so IPv6 labs are echoed as well; IPv4 alone where `[::]` cannot bind.
        let (udp, tcp) = netns::run_in(&fd, move || -> std::io::Result<(UdpSocket, TcpListener)> {
            let dual = SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, port));
            match (UdpSocket::bind(dual), TcpListener::bind(dual)) {
                (Ok(u), Ok(t)) => Ok((u, t)),
                _ => {
                    let any = SocketAddr::from(([0, 0, 0, 0], port));
                    Ok((UdpSocket::bind(any)?, TcpListener::bind(any)?))
                }
            }
        })?
        .with_context(|| format!("binding echo port {port} in {name}"))?;
        udp.set_nonblocking(true)?;
        tcp.set_nonblocking(true)?;
        let udp = tokio::net::UdpSocket::from_std(udp)?;
        let tcp = tokio::net::TcpListener::from_std(tcp)?;
        tasks.spawn(serve_udp(udp));
        tasks.spawn(serve_tcp(tcp));
    }
    println!("ready");
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}

async fn serve_udp(sock: tokio::net::UdpSocket) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await?;
        let _ = sock.send_to(&buf[..n], from).await;
    }
}

async fn serve_tcp(l: tokio::net::TcpListener) -> Result<()> {
    loop {
        let (mut s, _) = l.accept().await?;
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16384];
            // Bounded: a silent client is dropped after 30 s.
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Result of an echo exchange.
#[derive(Debug, Clone, Serialize)]
pub struct EchoReport {
    /// Where probes went.
    pub target: SocketAddr,
    /// `udp` or `tcp`.
    pub protocol: &'static str,
    /// Probes sent.
    pub sent: u32,
    /// Replies received.
    pub received: u32,
    /// Round-trip times of the replies, in milliseconds.
    pub rtt_ms: Vec<f64>,
    /// Local address used (as seen by this host, before any NAT).
    pub local: Option<SocketAddr>,
}

/// Sends `count` UDP probes, each waiting up to `timeout` for its echo.
pub async fn udp_probe(target: SocketAddr, count: u32, timeout: Duration) -> Result<EchoReport> {
    let sock = tokio::net::UdpSocket::bind(netns::wildcard_for(target)).await?;
    let mut report =
        EchoReport { target, protocol: "udp", sent: 0, received: 0, rtt_ms: Vec::new(), local: sock.local_addr().ok() };
    let mut buf = [0u8; 2048];
    for seq in 0..count {
        let payload = format!("icelab-echo {seq} {}", std::process::id());
        let t0 = Instant::now();
        sock.send_to(payload.as_bytes(), target).await?;
        report.sent += 1;
        let deadline = t0 + timeout;
        // Skip stale replies to earlier probes; stop at the deadline.
        while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline.into(), sock.recv_from(&mut buf)).await {
            if &buf[..n] == payload.as_bytes() {
                report.received += 1;
                report.rtt_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                break;
            }
        }
    }
    Ok(report)
}

/// Connects over TCP within `timeout`, then echoes `count` messages.
pub async fn tcp_probe(target: SocketAddr, count: u32, timeout: Duration) -> Result<EchoReport> {
    let mut report = EchoReport { target, protocol: "tcp", sent: 0, received: 0, rtt_ms: Vec::new(), local: None };
    let mut s = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        Ok(Err(_)) | Err(_) => {
            report.sent = count;
            return Ok(report);
        }
    };
    report.local = s.local_addr().ok();
    for seq in 0..count {
        let payload = format!("icelab-echo {seq}\n");
        let t0 = Instant::now();
        s.write_all(payload.as_bytes()).await?;
        report.sent += 1;
        let mut buf = vec![0u8; payload.len()];
        match tokio::time::timeout(timeout, s.read_exact(&mut buf)).await {
            Ok(Ok(_)) if buf == payload.as_bytes() => {
                report.received += 1;
                report.rtt_ms.push(t0.elapsed().as_secs_f64() * 1e3);
            }
            Ok(Ok(_)) => bail!("echo from {target} did not match what was sent"),
            _ => break,
        }
    }
    Ok(report)
}
