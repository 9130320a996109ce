//! Knowing that a started service that prints nothing is ready: a STUN binding request
//! to its UDP port, sent from inside its namespace, is answered (coturn); or the devices
//! it creates exist (tayga's TUN device).

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
    let any = super::netns::wildcard_for(addr);
    let sock = super::netns::run_in(ns, move || std::net::UdpSocket::bind(any))??;
    wait(sock, addr, deadline, alive).await
}

/// [`stun_answers`] from this process's own namespace (`icelab wait-stun`, for scripts).
pub async fn stun_answers_here(addr: SocketAddr, deadline: Duration) -> Result<()> {
    wait(std::net::UdpSocket::bind(super::netns::wildcard_for(addr))?, addr, deadline, || Ok(())).await
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

/// Waits until every device in `devices` exists in namespace `ns`; `alive` says why not
/// when the service has exited (checked between looks). Fails after `deadline`.
pub async fn devices_exist(
    ns: &OwnedFd,
    devices: &[&str],
    deadline: Duration,
    mut alive: impl FnMut() -> Result<()>,
) -> Result<()> {
    let names: Vec<String> = devices.iter().map(|d| d.to_string()).collect();
    let start = Instant::now();
    loop {
        alive()?;
        let wanted = names.clone();
        let missing: Vec<String> = super::netns::run_in(ns, move || {
            wanted.into_iter().filter(|d| nix::net::if_::if_nametoindex(d.as_str()).is_err()).collect()
        })?;
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("device {} not created within {deadline:?}", missing.join(", "));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
