//! Runs a [`VerifyPlan`]'s probes: every namespace's probes concurrently on one thread
//! inside it, all namespaces in parallel.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use super::derive::{Action, Place, VerifyPlan};
use super::report::{FwObservation, NatObservation};
use super::server::CALLBACK_HELLO;
use crate::fabric::netns;
use crate::plan::Plan;
use crate::stun::ProbeOptions;
use crate::stun::client::{Request, Timing, binding, retransmit};

/// How long a UDP probe waits for its answer (RFC 5389 retransmissions inside).
pub const UDP_DEADLINE: Duration = Duration::from_millis(1500);
/// How long a TCP probe waits; above the 1 s SYN retransmission, so one lost SYN on
/// an impaired link is not a drop.
pub const TCP_DEADLINE: Duration = Duration::from_millis(2500);

fn timing() -> Timing {
    Timing { initial_rto: Duration::from_millis(100), deadline: UDP_DEADLINE }
}

enum Job {
    Nat(usize, SocketAddr, ProbeOptions),
    Fw(usize, usize, Action),
}

enum Done {
    Nat(usize, NatObservation),
    Fw(usize, usize, FwObservation),
}

fn ms(t: Instant) -> String {
    format!("{:.1} ms", t.elapsed().as_secs_f64() * 1e3)
}

/// A UDP socket of `to`'s family.
async fn udp_towards(to: SocketAddr) -> std::io::Result<UdpSocket> {
    UdpSocket::bind(netns::wildcard_for(to)).await
}

async fn stun_once(to: SocketAddr, req: Request) -> Result<Option<(SocketAddr, Instant)>> {
    let sock = udp_towards(to).await?;
    let t0 = Instant::now();
    Ok(binding(&sock, to, req, timing()).await?.map(|r| (r.mapped, t0)))
}

async fn tcp(to: SocketAddr) -> FwObservation {
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + TCP_DEADLINE;
    let drop = |detail: String| FwObservation { pass: false, detail };
    let mut s = match tokio::time::timeout_at(deadline, TcpStream::connect(to)).await {
        Err(_) => return drop(format!("no connection within {:.1} s", TCP_DEADLINE.as_secs_f64())),
        Ok(Err(e)) => return drop(format!("connect: {e}")),
        Ok(Ok(s)) => s,
    };
    let msg = b"icelab-verify\n";
    let mut buf = [0u8; 14];
    match tokio::time::timeout_at(deadline, async {
        s.write_all(msg).await?;
        s.read_exact(&mut buf).await
    })
    .await
    {
        Ok(Ok(_)) if &buf == msg => FwObservation { pass: true, detail: format!("echoed in {}", ms(t0)) },
        Ok(Ok(_)) => drop("connected, but the echo was wrong".into()),
        Ok(Err(e)) => drop(format!("connected, then {e}")),
        Err(_) => drop("connected, but no echo in time".into()),
    }
}

async fn udp_echo(to: SocketAddr) -> Result<FwObservation> {
    let sock = udp_towards(to).await?;
    let payload = format!("icelab-verify {}", std::process::id());
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + UDP_DEADLINE;
    let mut buf = [0u8; 256];
    let got = tokio::select! {
        r = async {
            loop {
                match sock.recv_from(&mut buf).await {
                    Ok((n, _)) if &buf[..n] == payload.as_bytes() => return true,
                    // Refused (ICMP) or stray datagrams: keep listening until the deadline.
                    _ => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        } => r,
        _ = retransmit(&sock, to, payload.as_bytes(), timing(), deadline) => false,
    };
    Ok(if got {
        FwObservation { pass: true, detail: format!("echoed in {}", ms(t0)) }
    } else {
        FwObservation { pass: false, detail: format!("no echo within {:.1} s", UDP_DEADLINE.as_secs_f64()) }
    })
}

/// Unsolicited TCP to a mapping: a connection to the call-back service at `via` from a
/// port that also listens (SO_REUSEPORT, as in TCP hole punching), then waiting for the
/// service's connection from its other address to arrive on that listener.
async fn tcp_unsolicited(via: SocketAddr) -> Result<FwObservation> {
    let drop = |detail: String| Ok(FwObservation { pass: false, detail });
    let socket = || -> Result<TcpSocket> {
        let s = TcpSocket::new_v4()?;
        s.set_reuseaddr(true)?;
        s.set_reuseport(true)?;
        Ok(s)
    };
    let listener = socket()?;
    listener.bind(SocketAddr::from(([0, 0, 0, 0], 0)))?;
    let local = listener.local_addr()?;
    let listener = listener.listen(4)?;
    let out = socket()?;
    out.bind(local)?;
    let mut c = match tokio::time::timeout(TCP_DEADLINE, out.connect(via)).await {
        Err(_) => {
            return drop(format!("no mapping: no connection to {via} within {:.1} s", TCP_DEADLINE.as_secs_f64()));
        }
        Ok(Err(e)) => return drop(format!("no mapping: connect {via}: {e}")),
        Ok(Ok(c)) => c,
    };
    c.write_all(CALLBACK_HELLO).await?;
    let t0 = Instant::now();
    let mut buf = [0u8; 128];
    match tokio::time::timeout(TCP_DEADLINE, listener.accept()).await {
        Ok(Ok((mut s, peer))) => {
            let n = CALLBACK_HELLO.len();
            match tokio::time::timeout(TCP_DEADLINE, s.read_exact(&mut buf[..n])).await {
                Ok(Ok(_)) if &buf[..n] == CALLBACK_HELLO => {
                    Ok(FwObservation { pass: true, detail: format!("arrived from {peer} in {}", ms(t0)) })
                }
                _ => drop(format!("a connection from {peer} arrived, but not the call-back's greeting")),
            }
        }
        Ok(Err(e)) => drop(format!("accept: {e}")),
        Err(_) => {
            // The service says why its call did not get through (it gives up first).
            let said = match tokio::time::timeout(Duration::from_millis(300), c.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => format!(" (probe server: {})", String::from_utf8_lossy(&buf[..n]).trim()),
                _ => String::new(),
            };
            drop(format!("nothing arrived within {:.1} s{said}", TCP_DEADLINE.as_secs_f64()))
        }
    }
}

async fn fw(action: Action) -> FwObservation {
    let secs = UDP_DEADLINE.as_secs_f64();
    let r: Result<FwObservation> = async {
        Ok(match action {
            Action::Stun { to } => match stun_once(to, Request::default()).await {
                Ok(Some((_, t0))) => FwObservation { pass: true, detail: format!("answered in {}", ms(t0)) },
                Ok(None) => FwObservation { pass: false, detail: format!("no answer within {secs:.1} s") },
                // An error response still crossed the firewall both ways.
                Err(e) => FwObservation { pass: true, detail: format!("answered: {e}") },
            },
            Action::StunMapped { to, mapped } => match stun_once(to, Request::default()).await {
                Ok(Some((seen, t0))) if seen.ip() == mapped => {
                    FwObservation { pass: true, detail: format!("answered in {}, seen as {seen}", ms(t0)) }
                }
                Ok(Some((seen, _))) => FwObservation { pass: false, detail: format!("answered, but seen as {seen}") },
                Ok(None) => FwObservation { pass: false, detail: format!("no answer within {secs:.1} s") },
                Err(e) => FwObservation { pass: false, detail: format!("probe error: {e:#}") },
            },
            Action::Tcp { to } => tcp(to).await,
            Action::UdpEcho { to } => udp_echo(to).await?,
            Action::UnsolicitedTcp { via } => tcp_unsolicited(via).await?,
            Action::Unsolicited { via } => {
                let sock = udp_towards(via).await?;
                if binding(&sock, via, Request::default(), timing()).await?.is_none() {
                    return Ok(FwObservation { pass: false, detail: format!("no mapping: {via} did not answer") });
                }
                let change = Request { change_ip: true, change_port: true, ..Default::default() };
                match binding(&sock, via, change, timing()).await? {
                    Some(r) => FwObservation { pass: true, detail: format!("arrived from {}", r.source) },
                    None => FwObservation { pass: false, detail: format!("nothing arrived within {secs:.1} s") },
                }
            }
        })
    }
    .await;
    r.unwrap_or_else(|e| FwObservation { pass: false, detail: format!("probe error: {e:#}") })
}

async fn run_job(job: Job) -> Done {
    match job {
        Job::Nat(i, server, opts) => Done::Nat(i, crate::stun::probe(server, opts).await.map_err(|e| format!("{e:#}"))),
        Job::Fw(i, j, a) => Done::Fw(i, j, fw(a).await),
    }
}

/// Observations per NAT check and per firewall probe (see [`super::report::assemble`]).
pub type Observations = (Vec<Option<NatObservation>>, Vec<Vec<Option<super::report::FwObservation>>>);

/// Runs every probe of `vp` in the lab of `plan`; `probe_ns` is the probe server's namespace.
pub fn run_all(
    plan: &Plan,
    vp: &VerifyPlan,
    probe_ns: Option<&str>,
    lifetime: Option<Duration>,
) -> Result<Observations> {
    let ns_of = |p: &Place| -> Result<String> {
        match p {
            Place::Node(n) => {
                Ok(plan.node(n).with_context(|| format!("node `{n}` is not in the lab's plan"))?.ns.clone())
            }
            Place::ProbeServer => probe_ns.map(str::to_string).context("the probe server is not running"),
        }
    };
    let mut groups: BTreeMap<String, Vec<Job>> = BTreeMap::new();
    for (i, n) in vp.nats.iter().enumerate() {
        if let (Some(v), Some(server)) = (&n.vantage, n.server) {
            let opts = ProbeOptions { lifetime_max: lifetime, ..Default::default() };
            groups.entry(ns_of(&Place::Node(v.clone()))?).or_default().push(Job::Nat(i, server, opts));
        }
    }
    for (i, f) in vp.firewalls.iter().enumerate() {
        for (j, p) in f.probes.iter().enumerate() {
            groups.entry(ns_of(&p.from)?).or_default().push(Job::Fw(i, j, p.action.clone()));
        }
    }
    let mut nats: Vec<Option<NatObservation>> = vec![None; vp.nats.len()];
    let mut fws: Vec<Vec<Option<FwObservation>>> = vp.firewalls.iter().map(|f| vec![None; f.probes.len()]).collect();
    let results: Vec<Result<Vec<Done>>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|(ns, jobs)| {
                s.spawn(move || -> Result<Vec<Done>> {
                    let fd = netns::open(&ns)?;
                    netns::run_in(&fd, move || -> Result<Vec<Done>> {
                        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                        Ok(rt.block_on(futures::future::join_all(jobs.into_iter().map(run_job))))
                    })?
                    .with_context(|| format!("probing from {ns}"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().map_err(|_| anyhow!("probe thread panicked"))?).collect()
    });
    for r in results {
        for d in r? {
            match d {
                Done::Nat(i, o) => nats[i] = Some(o),
                Done::Fw(i, j, o) => fws[i][j] = Some(o),
            }
        }
    }
    Ok((nats, fws))
}
