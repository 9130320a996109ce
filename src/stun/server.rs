//! Built-in STUN server: RFC 5389/8489 Binding plus RFC 5780 NAT behaviour
//! discovery (two IPs × two ports, OTHER-ADDRESS, RESPONSE-ORIGIN,
//! CHANGE-REQUEST), RFC 3489 compatibility for old clients, and the icelab
//! [`ICELAB_RESPONSE_TARGET`](super::wire::ICELAB_RESPONSE_TARGET) extension.

use super::wire::{self, CHANGED_ADDRESS, Decoded, SOURCE_ADDRESS};
use anyhow::{Context, Result, bail};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use stun_rs::attributes::discovery::{ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin};
use stun_rs::attributes::stun::{ErrorCode, MappedAddress, Software, UnknownAttributes, XorMappedAddress};
use stun_rs::methods::BINDING;
use stun_rs::{MessageClass, StunAttribute, StunMessage, StunMessageBuilder};
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::counters::ServerCounters;

/// Where and how the server listens.
#[derive(Debug, Clone)]
pub struct StunServerConfig {
    /// Primary IP address.
    pub primary: IpAddr,
    /// Alternate IP address; without it only `primary:port` is served and
    /// CHANGE-REQUEST with any flag set is answered with 420.
    pub alternate: Option<IpAddr>,
    /// Primary port (3478). 0 picks a free port usable on both IPs.
    pub port: u16,
    /// Alternate port (3479). 0 picks a free port usable on both IPs.
    pub alt_port: u16,
    /// SOFTWARE attribute value.
    pub software: String,
    /// Where answers are counted and timed (`icelab stun-server --stats`), if anywhere.
    pub counters: Option<Arc<ServerCounters>>,
}

impl Default for StunServerConfig {
    fn default() -> Self {
        Self {
            primary: IpAddr::V4(Ipv4Addr::LOCALHOST),
            alternate: None,
            port: 3478,
            alt_port: 3479,
            software: "icelab".into(),
            counters: None,
        }
    }
}

/// Sockets indexed `[ip][port]`: index 0 is primary, 1 alternate.
type Grid = Vec<Vec<Arc<UdpSocket>>>;

/// A running server; dropping it stops it too.
pub struct StunServer {
    addrs: Vec<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
}

impl StunServer {
    /// Binds all sockets and starts serving in the background.
    pub async fn start(cfg: StunServerConfig) -> Result<Self> {
        let grid = bind_grid(&cfg).await?;
        let addrs = grid.iter().flatten().map(|s| s.local_addr()).collect::<std::io::Result<Vec<_>>>()?;
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(run(cfg, grid, async {
            let _ = rx.await;
        }));
        Ok(Self { addrs, stop: Some(tx), task })
    }

    /// Bound addresses: primary:port, primary:alt_port, alternate:port, alternate:alt_port
    /// (only the first when there is no alternate IP).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The primary address clients should contact.
    pub fn primary(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The alternate IP and port (what OTHER-ADDRESS says for the primary), if any.
    pub fn other(&self) -> Option<SocketAddr> {
        self.addrs.get(3).copied()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await?
    }
}

impl Drop for StunServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves until `shutdown` completes.
pub async fn serve(cfg: StunServerConfig, shutdown: impl Future<Output = ()>) -> Result<()> {
    let grid = bind_grid(&cfg).await?;
    run(cfg, grid, shutdown).await
}

/// Blocking convenience: serves on a fresh runtime until Ctrl-C.
pub fn run_forever(cfg: StunServerConfig) -> Result<()> {
    tokio::runtime::Runtime::new()?.block_on(serve(cfg, async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

async fn bind_grid(cfg: &StunServerConfig) -> Result<Grid> {
    let ips: Vec<IpAddr> = std::iter::once(cfg.primary).chain(cfg.alternate).collect();
    if ips.len() == 1 {
        let s = UdpSocket::bind((cfg.primary, cfg.port))
            .await
            .with_context(|| format!("bind {}:{}", cfg.primary, cfg.port))?;
        return Ok(vec![vec![Arc::new(s)]]);
    }
    // With port 0 the same ephemeral port must be free on both IPs: retry.
    let mut used = Vec::new();
    let mut cols = Vec::new();
    for want in [cfg.port, cfg.alt_port] {
        let mut col = None;
        for _ in 0..50 {
            let first = UdpSocket::bind((ips[0], want)).await.with_context(|| format!("bind {}:{want}", ips[0]))?;
            let port = first.local_addr()?.port();
            if used.contains(&port) {
                continue;
            }
            match UdpSocket::bind((ips[1], port)).await {
                Ok(second) => {
                    used.push(port);
                    col = Some((first, second));
                    break;
                }
                Err(e) if want != 0 => bail!("bind {}:{port}: {e}", ips[1]),
                Err(_) => continue,
            }
        }
        cols.push(col.context("no port free on both IPs")?);
    }
    let (c, d) = cols.pop().context("alt port column")?;
    let (a, b) = cols.pop().context("port column")?;
    Ok(vec![vec![Arc::new(a), Arc::new(c)], vec![Arc::new(b), Arc::new(d)]])
}

async fn run(cfg: StunServerConfig, grid: Grid, shutdown: impl Future<Output = ()>) -> Result<()> {
    let grid = Arc::new(grid);
    let cfg = Arc::new(cfg);
    let mut set = JoinSet::new();
    for ip in 0..grid.len() {
        for port in 0..grid[ip].len() {
            let (grid, cfg) = (grid.clone(), cfg.clone());
            set.spawn(async move { recv_loop(&cfg, &grid, ip, port).await });
        }
    }
    tokio::select! {
        _ = shutdown => Ok(()),
        Some(r) = set.join_next() => r?,
    }
}

async fn recv_loop(cfg: &StunServerConfig, grid: &Grid, ip: usize, port: usize) -> Result<()> {
    let sock = &grid[ip][port];
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            // ICMP errors from earlier sends surface here on some systems.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e.into()),
        };
        let Ok(decoded) = wire::decode(&buf[..n]) else {
            continue;
        };
        if let Some(c) = &cfg.counters {
            c.on_request(&buf[..n]);
        }
        match handle(cfg, grid, ip, port, from, decoded) {
            Ok(Some((out_ip, out_port, to, bytes))) => match grid[out_ip][out_port].send_to(&bytes, to).await {
                Ok(_) => {
                    if let Some(c) = &cfg.counters {
                        c.on_answer(&bytes);
                    }
                }
                Err(e) => tracing::debug!("stun server send to {to}: {e}"),
            },
            Ok(None) => {}
            Err(e) => tracing::debug!("stun server: {from}: {e:#}"),
        }
    }
}

/// A reply: (socket ip index, socket port index, destination, bytes).
type Reply = (usize, usize, SocketAddr, Vec<u8>);

/// Builds the reply to one datagram, if any.
fn handle(
    cfg: &StunServerConfig,
    grid: &Grid,
    ip: usize,
    port: usize,
    from: SocketAddr,
    d: Decoded,
) -> Result<Option<Reply>> {
    let req = &d.msg;
    if req.class() != MessageClass::Request || req.method() != BINDING {
        return Ok(None);
    }
    let addr = |i: usize, j: usize| grid[i][j].local_addr();
    let reply = |msg: StunMessage| wire::encode(&msg, d.classic);
    let error = |code: u16, reason: &str, unknown: Vec<u16>| -> Result<Vec<u8>> {
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::ErrorResponse)
            .with_transaction_id(*req.transaction_id())
            .with_attribute(ErrorCode::new(stun_rs::ErrorCode::new(code, reason)?))
            .with_attribute(Software::new(cfg.software.as_str())?);
        if !unknown.is_empty() {
            let mut u = UnknownAttributes::default();
            unknown.into_iter().for_each(|t| u.add(t));
            b = b.with_attribute(u);
        }
        reply(b.build())
    };

    // RFC 8489 §6.3.1: unknown comprehension-required attributes -> 420.
    let unknown: Vec<u16> = req
        .attributes()
        .iter()
        .filter_map(|a| match a {
            StunAttribute::Unknown(u) if u.attribute_type().is_comprehension_required() => {
                Some(u.attribute_type().as_u16())
            }
            _ => None,
        })
        .collect();
    if !unknown.is_empty() {
        return Ok(Some((ip, port, from, error(420, "Unknown Attribute", unknown)?)));
    }

    let (change_ip, change_port) = req
        .get::<ChangeRequest>()
        .and_then(|a| a.as_change_request().ok())
        .map(|c| {
            let f = c.flags();
            (f.contains(ChangeRequestFlags::ChangeIp), f.contains(ChangeRequestFlags::ChangePort))
        })
        .unwrap_or_default();
    let has_alt = grid.len() == 2;
    // RFC 5780 §7.2: no alternate address -> CHANGE-REQUEST is an unknown attribute.
    if (change_ip || change_port) && !has_alt {
        return Ok(Some((ip, port, from, error(420, "Unknown Attribute", vec![0x0003])?)));
    }

    let target = wire::response_target(req)?;
    let (out_ip, out_port, to) = match target {
        Some(t) => (0, 0, t),
        None => (ip ^ change_ip as usize, port ^ change_port as usize, from),
    };
    let origin = addr(out_ip, out_port)?;
    let other = has_alt.then(|| addr(1 - ip, 1 - port)).transpose()?;

    let mut b =
        StunMessageBuilder::new(BINDING, MessageClass::SuccessResponse).with_transaction_id(*req.transaction_id());
    if d.classic.is_none() {
        b = b.with_attribute(XorMappedAddress::from(from));
    }
    b = b.with_attribute(MappedAddress::from(from)).with_attribute(ResponseOrigin::from(origin));
    if let Some(o) = other {
        b = b.with_attribute(OtherAddress::from(o));
    }
    if d.classic.is_none() {
        // RFC 3489 reads 0x8022 as SERVER-NAME with a length multiple of 4.
        b = b.with_attribute(Software::new(cfg.software.as_str())?);
    }
    let mut bytes = reply(b.build())?;
    if d.classic.is_some() {
        // RFC 3489 clients know these under their old names (same encoding).
        wire::retag(&mut bytes, 0x802B, SOURCE_ADDRESS);
        wire::retag(&mut bytes, 0x802C, CHANGED_ADDRESS);
    }
    Ok(Some((out_ip, out_port, to, bytes)))
}
