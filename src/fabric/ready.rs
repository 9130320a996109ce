//! Knowing that a started service that prints nothing (coturn) is ready: a STUN binding
//! request to its UDP port, sent from inside its namespace, is answered.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::stun::client::{Request, Timing, binding};

/// One try (sends at 0, 10 and 30 ms): short, so a server is seen within ~20 ms of coming up.
const TRY: Timing = Timing { initial_rto: Duration::from_millis(10), deadline: Duration::from_millis(40) };

/// Waits until `addr` answers a binding request from a socket in namespace `ns`; `alive`
/// says why not when the service has exited (checked between tries). Fails after `deadline`.
pub async fn stun_answers(
    ns: &OwnedFd,
    addr: SocketAddr,
    deadline: Duration,
    alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let sock = super::netns::run_in(ns, || std::net::UdpSocket::bind("0.0.0.0:0"))??;
    wait(sock, addr, deadline, alive).await
}

/// [`stun_answers`] from this process's own namespace (`icelab wait-stun`, for scripts).
pub async fn stun_answers_here(addr: SocketAddr, deadline: Duration) -> Result<()> {
    wait(std::net::UdpSocket::bind("0.0.0.0:0")?, addr, deadline, || Ok(())).await
}

async fn wait(
    sock: std::net::UdpSocket,
    addr: SocketAddr,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    sock.set_nonblocking(true)?;
    let sock = tokio::net::UdpSocket::from_std(sock).context("STUN readiness socket")?;
    let start = Instant::now();
    loop {
        alive()?;
        if let Ok(Some(_)) = binding(&sock, addr, Request::default(), TRY).await {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("no STUN answer from {addr} within {deadline:?}");
        }
    }
}
