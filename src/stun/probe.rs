//! RFC 5780 NAT behaviour discovery: mapping (§4.3), filtering (§4.4),
//! hairpinning (§4.5) and, opt-in, mapping lifetime (§4.6 via the icelab
//! extension, see [`lifetime`](super::lifetime)).

use super::behaviour::Behaviour;
use super::client::{BindingResponse, Request, Timing, binding, recv_matching, retransmit};
use super::lifetime;
use super::report::ProbeReport;
use anyhow::{Context, Result, anyhow};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::time::Instant;

pub use super::natdiscovery::parse_natdiscovery_output;

/// Knobs for [`probe`].
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Per-transaction retransmission timing (100 ms RTO, 1.5 s deadline).
    pub timing: Timing,
    /// Measure the mapping lifetime up to this long (takes about that long
    /// or a few times longer). None: skip.
    pub lifetime_max: Option<Duration>,
    /// Lifetime resolution (0.5 s).
    pub lifetime_resolution: Duration,
    /// Lifetime checks run in parallel per refinement round (7).
    pub lifetime_parallel: usize,
    /// Local IP to bind; None: the one the kernel routes to the server from.
    pub local_ip: Option<IpAddr>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            timing: Timing::default(),
            lifetime_max: None,
            lifetime_resolution: Duration::from_millis(500),
            lifetime_parallel: 7,
            local_ip: None,
        }
    }
}

/// The local IP used to reach `server` (a connected UDP socket sends nothing).
fn route_ip(server: SocketAddr) -> Result<IpAddr> {
    let s = std::net::UdpSocket::bind(crate::fabric::netns::wildcard_for(server))?;
    s.connect(server).with_context(|| format!("no route to {server}"))?;
    Ok(s.local_addr()?.ip())
}

/// Runs the RFC 5780 tests against `server` and classifies the NAT.
/// Errors if the server does not answer the first Binding request in time.
pub async fn probe(server: SocketAddr, opts: ProbeOptions) -> Result<ProbeReport> {
    let t = opts.timing;
    let ip = match opts.local_ip {
        Some(ip) => ip,
        None => route_ip(server)?,
    };
    let mut notes = Vec::new();
    let s1 = UdpSocket::bind((ip, 0)).await?;
    let local = s1.local_addr()?;
    let r1 = first(&s1, server, t).await?;
    let nat = r1.mapped != local;

    let mapping = match r1.other_address {
        None => {
            notes.push("server sent no OTHER-ADDRESS: no RFC 5780 tests".into());
            None
        }
        Some(other) => mapping_test(&s1, server, &r1, other, t, &mut notes).await?,
    };

    // Fresh socket: the mapping tests opened filters toward the alternate address.
    let s2 = UdpSocket::bind((ip, 0)).await?;
    let r2 = first(&s2, server, t).await?;
    let filtering = if r1.other_address.is_some() { Some(filtering_test(&s2, server, t).await?) } else { None };

    let hairpinning = if nat {
        hairpin_test(&s2, r2.mapped, ip, server, t).await?
    } else {
        notes.push("no NAT: hairpinning not applicable".into());
        None
    };

    let (mut lifetime_s, mut lifetime_dead_s) = (None, None);
    if let Some(max) = opts.lifetime_max {
        let par = opts.lifetime_parallel;
        match lifetime::measure(server, ip, max, opts.lifetime_resolution, par, t).await {
            Ok(l) => {
                lifetime_s = Some(l.alive_s);
                lifetime_dead_s = l.dead_s;
                if l.dead_s.is_none() {
                    notes.push(format!("mapping outlived lifetime_max ({} s)", max.as_secs_f64()));
                }
            }
            Err(e) => notes.push(format!("lifetime not measured: {e:#}")),
        }
    }

    Ok(ProbeReport {
        server,
        local,
        mapped: r1.mapped,
        nat,
        other_address: r1.other_address,
        mapping,
        filtering,
        hairpinning,
        lifetime_s,
        lifetime_dead_s,
        port_preservation: r1.mapped.port() == local.port(),
        software: r1.software,
        notes,
    })
}

async fn first(sock: &UdpSocket, server: SocketAddr, t: Timing) -> Result<BindingResponse> {
    binding(sock, server, Request::default(), t)
        .await?
        .ok_or_else(|| anyhow!("no response from STUN server {server} within {:?}", t.deadline))
}

/// §4.3: compare mapped addresses toward primary, alternate IP, alternate IP+port.
async fn mapping_test(
    s: &UdpSocket,
    server: SocketAddr,
    r1: &BindingResponse,
    other: SocketAddr,
    t: Timing,
    notes: &mut Vec<String>,
) -> Result<Option<Behaviour>> {
    if r1.mapped == s.local_addr()? {
        return Ok(Some(Behaviour::EndpointIndependent)); // no NAT
    }
    let alt_ip = SocketAddr::new(other.ip(), server.port());
    let Some(r2) = binding(s, alt_ip, Request::default(), t).await? else {
        notes.push(format!("mapping test II: no answer from {alt_ip}"));
        return Ok(None);
    };
    if r2.mapped == r1.mapped {
        return Ok(Some(Behaviour::EndpointIndependent));
    }
    let Some(r3) = binding(s, other, Request::default(), t).await? else {
        notes.push(format!("mapping test III: no answer from {other}"));
        return Ok(None);
    };
    Ok(Some(if r3.mapped == r2.mapped { Behaviour::AddressDependent } else { Behaviour::AddressAndPortDependent }))
}

/// §4.4: can the server reach us from its other IP+port, or other port only?
async fn filtering_test(s: &UdpSocket, server: SocketAddr, t: Timing) -> Result<Behaviour> {
    let both = Request { change_ip: true, change_port: true, ..Default::default() };
    if binding(s, server, both, t).await?.is_some() {
        return Ok(Behaviour::EndpointIndependent);
    }
    let port = Request { change_port: true, ..Default::default() };
    Ok(if binding(s, server, port, t).await?.is_some() {
        Behaviour::AddressDependent
    } else {
        Behaviour::AddressAndPortDependent
    })
}

/// §4.5: does a packet from a second local socket to A's mapped address reach A?
async fn hairpin_test(
    a: &UdpSocket,
    a_mapped: SocketAddr,
    ip: IpAddr,
    server: SocketAddr,
    t: Timing,
) -> Result<Option<bool>> {
    let b = UdpSocket::bind((ip, 0)).await?;
    let Some(rb) = binding(&b, server, Request::default(), t).await? else {
        return Ok(None);
    };
    // Open A's filter toward B's mapping, or a filtering NAT drops B's packet.
    let (_, opener) = Request::default().encode()?;
    a.send_to(&opener, rb.mapped).await?;
    let (tid, bytes) = Request::default().encode()?;
    let deadline = Instant::now() + t.deadline;
    Ok(Some(tokio::select! {
        r = recv_matching(a, tid, deadline) => r.is_some(),
        _ = retransmit(&b, a_mapped, &bytes, t, deadline) => false,
    }))
}
