//! Built-in TURN server for labs, on the webrtc-rs `turn` crate (0.17).
//!
//! Listeners (each optional):
//! * UDP (default 3478): the `turn` crate's native transport, one `SO_REUSEPORT` socket
//!   per core with big buffers so the relay holds load (see [`sockets`]).
//! * TCP (default 3478) and TLS (default 443): the crate only serves packet sockets, so
//!   [`stream`] adapts accepted streams into one packet `Conn` per listener (STUN /
//!   ChannelData framing, RFC 5766 §2.1). TLS uses a self-signed certificate generated at
//!   start-up with `rcgen` (clients cannot chain it to a CA: the peer's shim accepts any certificate). The relayed leg is always UDP.
//!
//! Authentication is long-term credentials (realm + user/password); a bad user or
//! password gets 401 with REALM and NONCE (see [`guard`]). Relay addresses are advertised
//! as `public_ip`. A relay only exchanges data with peers inside `allowed_peer_subnets`,
//! never with the server's other addresses or its own listeners (see [`filter`]);
//! permissions for any other peer get 403 Forbidden.

mod filter;
mod guard;
mod sockets;
mod stream;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::relay_static::RelayAddressGeneratorStatic;
use turn::server::Server;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::Conn;
use webrtc_util::vnet::net::Net;

pub use filter::PeerFilter;
pub(crate) use stream::{pad_frame, read_frame};

/// Port of the TLS listener (`turns:`): 443, so TCP-443-only networks get through.
pub const TLS_PORT: u16 = 443;

/// TURN server settings (serde, all but `public_ip` defaulted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TurnServerConfig {
    /// Long-term credential realm.
    pub realm: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Address advertised in relay candidates: the server's public (lab internet) IP.
    pub public_ip: IpAddr,
    /// Address the listeners and relay sockets bind to.
    pub bind_ip: IpAddr,
    /// The server's IPv6 address, when it has one: every listener listens there too, and
    /// allocations that ask for an IPv6 relay (RFC 6156) get one there.
    pub public_ip6: Option<IpAddr>,
    /// UDP listener port; `None` disables it.
    pub udp_port: Option<u16>,
    /// TCP listener port; `None` disables it.
    pub tcp_port: Option<u16>,
    /// TLS listener port; `None` disables it.
    pub tls_port: Option<u16>,
    /// Peers a relay may talk to; empty = anyone. The server's own addresses (but its
    /// relay address) and its own listeners are refused in any case.
    pub allowed_peer_subnets: Vec<IpNet>,
}

impl Default for TurnServerConfig {
    fn default() -> Self {
        Self {
            realm: crate::servers::LAB_CREDENTIALS.realm.into(),
            username: crate::servers::LAB_CREDENTIALS.user.into(),
            password: crate::servers::LAB_CREDENTIALS.password.into(),
            public_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            public_ip6: None,
            udp_port: Some(3478),
            tcp_port: Some(3478),
            tls_port: Some(TLS_PORT),
            allowed_peer_subnets: Vec::new(),
        }
    }
}

struct StaticAuth {
    keys: HashMap<String, Vec<u8>>,
}

impl AuthHandler for StaticAuth {
    fn auth_handle(&self, username: &str, _realm: &str, _src: SocketAddr) -> Result<Vec<u8>, turn::Error> {
        self.keys.get(username).cloned().ok_or(turn::Error::ErrNoSuchUser)
    }
}

/// A running server; [`TurnHandle::stop`] shuts it down.
pub struct TurnHandle {
    server: Server,
    /// The TCP and TLS listeners, which the server's close leaves open (see [`stream`]).
    streams: Vec<Arc<stream::StreamListener>>,
    /// Bound UDP listener, if enabled.
    pub udp_addr: Option<SocketAddr>,
    /// Bound TCP listener, if enabled.
    pub tcp_addr: Option<SocketAddr>,
    /// Bound TLS listener, if enabled.
    pub tls_addr: Option<SocketAddr>,
    /// DER of the TLS listener's self-signed certificate (for clients that want to pin it).
    pub tls_cert_der: Option<Vec<u8>>,
    /// What it answered and relayed so far.
    pub stats: Arc<crate::counters::ServerCounters>,
}

impl TurnHandle {
    /// Closes listeners and allocations.
    pub async fn stop(self) -> anyhow::Result<()> {
        let closed = self.server.close().await.context("closing TURN server");
        for s in &self.streams {
            s.shutdown();
        }
        closed
    }
}

/// The lab's run-time TLS certificate: self-signed, fresh each time, for `names`.
fn self_signed(names: Vec<String>) -> anyhow::Result<rcgen::CertifiedKey<rcgen::KeyPair>> {
    rcgen::generate_simple_self_signed(names).context("self-signed cert")
}

/// Writes a certificate like the built-in server's own to PEM files (the key readable by
/// its owner only), for servers that read it from files (coturn).
pub fn write_self_signed(names: Vec<String>, cert: &Path, key: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let ck = self_signed(names)?;
    std::fs::write(cert, ck.cert.pem()).with_context(|| format!("writing {}", cert.display()))?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(key)
        .with_context(|| format!("writing {}", key.display()))?;
    Ok(f.write_all(ck.signing_key.serialize_pem().as_bytes())?)
}

fn tls_acceptor(cfg: &TurnServerConfig) -> anyhow::Result<(TlsAcceptor, Vec<u8>)> {
    let mut names = vec![cfg.public_ip.to_string()];
    names.extend(cfg.public_ip6.map(|a| a.to_string()));
    names.push("localhost".into());
    let ck = self_signed(names)?;
    let cert = ck.cert.der().clone();
    let der = cert.to_vec();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)?;
    Ok((TlsAcceptor::from(Arc::new(tls)), der))
}

/// What the relay must never be pointed at on the server itself: every interface address
/// except the relay address (the other address, loopback), and the listeners on the relay
/// address. Relay-to-relay on this server (both peers' relays here) stays allowed.
fn own_endpoints(cfg: &TurnServerConfig, listeners: &[SocketAddr]) -> (Vec<IpAddr>, Vec<SocketAddr>) {
    let mut ips = vec![cfg.bind_ip];
    match nix::ifaddrs::getifaddrs() {
        Ok(addrs) => ips.extend(addrs.filter_map(|a| {
            let s = a.address?;
            s.as_sockaddr_in().map(|x| IpAddr::V4(x.ip())).or_else(|| s.as_sockaddr_in6().map(|x| IpAddr::V6(x.ip())))
        })),
        Err(e) => tracing::warn!("TURN: cannot list own addresses: {e}"),
    }
    ips.retain(|ip| !ip.is_unspecified() && *ip != cfg.public_ip && Some(*ip) != cfg.public_ip6);
    let relay_ips = std::iter::once(cfg.public_ip).chain(cfg.public_ip6);
    let endpoints = relay_ips.flat_map(|ip| listeners.iter().map(move |l| SocketAddr::new(ip, l.port()))).collect();
    (ips, endpoints)
}

/// The listeners of one address: UDP sockets (one per core), TCP, TLS.
struct Listeners {
    udp: Vec<tokio::net::UdpSocket>,
    tcp: Option<TcpListener>,
    tls: Option<TcpListener>,
}

async fn listen(cfg: &TurnServerConfig, ip: IpAddr) -> anyhow::Result<Listeners> {
    let (mut udp, mut tcp, mut tls) = (Vec::new(), None, None);
    if let Some(port) = cfg.udp_port {
        // One socket per core on the port, each read by its own task (see `sockets`).
        udp = sockets::udp_listeners(ip, port, sockets::listener_count())
            .with_context(|| format!("TURN udp bind {ip}:{port}"))?;
    }
    if let Some(port) = cfg.tcp_port {
        tcp = Some(TcpListener::bind((ip, port)).await.with_context(|| format!("TURN tcp bind {ip}:{port}"))?);
    }
    if let Some(port) = cfg.tls_port {
        tls = Some(TcpListener::bind((ip, port)).await.with_context(|| format!("TURN tls bind {ip}:{port}"))?);
    }
    Ok(Listeners { udp, tcp, tls })
}

/// Starts the server with the configured listeners (on `bind_ip`, and on `public_ip6`).
pub async fn serve_turn(cfg: TurnServerConfig) -> anyhow::Result<TurnHandle> {
    let mut all = vec![listen(&cfg, cfg.bind_ip).await?];
    if let Some(ip6) = cfg.public_ip6 {
        all.push(listen(&cfg, ip6).await?);
    }
    let udp_addr = all[0].udp.first().map(|s| s.local_addr()).transpose()?;
    let tcp_addr = all[0].tcp.as_ref().map(|l| l.local_addr()).transpose()?;
    let tls_addr = all[0].tls.as_ref().map(|l| l.local_addr()).transpose()?;
    let listeners: Vec<SocketAddr> = [udp_addr, tcp_addr, tls_addr].into_iter().flatten().collect();

    let (own_ips, own_listeners) = own_endpoints(&cfg, &listeners);
    let filter = PeerFilter::new(cfg.allowed_peer_subnets.clone()).deny(own_ips).deny_endpoints(own_listeners);
    let stats = Arc::new(crate::counters::ServerCounters::default());
    let guard = Arc::new(guard::Guard {
        realm: cfg.realm.clone(),
        username: cfg.username.clone(),
        password: cfg.password.clone(),
        peers: filter.clone(),
        stats: stats.clone(),
    });
    let guarded = |conn: Arc<dyn Conn + Send + Sync>| -> Arc<dyn Conn + Send + Sync> {
        Arc::new(guard::GuardedConn { inner: conn, guard: guard.clone() })
    };
    let generator = |relay_address: IpAddr, address: String| RelayAddressGeneratorStatic {
        relay_address,
        address,
        net: Arc::new(Net::new(None)),
    };
    let relay = || filter::FilteredRelayGenerator {
        inner: generator(cfg.public_ip, cfg.bind_ip.to_string()),
        // Bracketed: the crate appends `:port` and parses the result as a socket address.
        inner6: cfg.public_ip6.map(|ip6| generator(ip6, format!("[{ip6}]"))),
        filter: filter.clone(),
        stats: stats.clone(),
    };
    let mut conn_configs = Vec::new();
    let mut tls_cert_der = None;
    let mut streams = Vec::new();
    let mut acceptor = None;
    for l in all {
        for sock in l.udp {
            conn_configs.push(ConnConfig { conn: guarded(Arc::new(sock)), relay_addr_generator: Box::new(relay()) });
        }
        if let Some(l) = l.tcp {
            let conn = stream::StreamListener::start(l, None)?;
            streams.push(conn.clone());
            conn_configs.push(ConnConfig { conn: guarded(conn), relay_addr_generator: Box::new(relay()) });
        }
        if let Some(l) = l.tls {
            if acceptor.is_none() {
                let (a, der) = tls_acceptor(&cfg)?;
                tls_cert_der = Some(der);
                acceptor = Some(a);
            }
            let conn = stream::StreamListener::start(l, acceptor.clone())?;
            streams.push(conn.clone());
            conn_configs.push(ConnConfig { conn: guarded(conn), relay_addr_generator: Box::new(relay()) });
        }
    }

    let keys = HashMap::from([(cfg.username.clone(), generate_auth_key(&cfg.username, &cfg.realm, &cfg.password))]);
    let server = Server::new(ServerConfig {
        conn_configs,
        realm: cfg.realm.clone(),
        auth_handler: Arc::new(StaticAuth { keys }),
        channel_bind_timeout: std::time::Duration::from_secs(0),
        alloc_close_notify: None,
    })
    .await
    .context("starting TURN server")?;
    Ok(TurnHandle { server, streams, udp_addr, tcp_addr, tls_addr, tls_cert_der, stats })
}
