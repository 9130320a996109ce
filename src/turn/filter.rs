//! Relay permission filter: a TURN relay may only talk to lab addresses.
//!
//! Permissions and channel bindings for peers the filter refuses are answered 403 by the
//! listener guard (`guard`). The `turn` crate has no permission hook, so the relay socket
//! enforces the same filter where it cannot be bypassed: datagrams to a refused peer are
//! dropped (the send reports success, like a firewall drop) and datagrams from one are
//! discarded.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use async_trait::async_trait;
use ipnet::IpNet;
use turn::relay::RelayAddressGenerator;
use webrtc_util::Conn;

/// Which peer addresses a relay may exchange data with: the allowed subnets (empty means
/// "any"), minus the denied addresses and endpoints; never an unspecified, multicast or
/// broadcast one.
#[derive(Debug, Clone, Default)]
pub struct PeerFilter {
    subnets: Vec<IpNet>,
    denied: Vec<IpAddr>,
    denied_endpoints: Vec<SocketAddr>,
}

impl PeerFilter {
    /// A filter allowing exactly the given subnets (all addresses if empty).
    pub fn new(subnets: Vec<IpNet>) -> Self {
        Self { subnets, ..Self::default() }
    }

    /// The same filter, also refusing these addresses (e.g. the server's own).
    pub fn deny(mut self, ips: impl IntoIterator<Item = IpAddr>) -> Self {
        self.denied.extend(ips);
        self
    }

    /// The same filter, also refusing these exact endpoints (e.g. the server's listeners).
    pub fn deny_endpoints(mut self, endpoints: impl IntoIterator<Item = SocketAddr>) -> Self {
        self.denied_endpoints.extend(endpoints);
        self
    }

    /// Whether the relay may talk to `peer` (address and port).
    pub fn allows_endpoint(&self, peer: SocketAddr) -> bool {
        self.allows(peer.ip()) && !self.denied_endpoints.contains(&peer)
    }

    /// Whether the relay may talk to `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let special = ip.is_unspecified() || ip.is_multicast() || matches!(ip, IpAddr::V4(v4) if v4.is_broadcast());
        !special
            && !self.denied.contains(&ip)
            && (self.subnets.is_empty() || self.subnets.iter().any(|n| n.contains(&ip)))
    }
}

/// A relay socket that enforces a [`PeerFilter`].
struct FilteredConn {
    inner: Arc<dyn Conn + Send + Sync>,
    filter: PeerFilter,
    stats: Arc<crate::counters::ServerCounters>,
}

#[async_trait]
impl Conn for FilteredConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            if self.filter.allows_endpoint(from) {
                self.stats.received_from_peer(&buf[..n]);
                return Ok((n, from));
            }
            tracing::debug!(%from, "relay: dropped datagram from outside the lab");
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !self.filter.allows_endpoint(target) {
            tracing::debug!(%target, "relay: dropped datagram to outside the lab");
            return Ok(buf.len());
        }
        let n = self.inner.send_to(buf, target).await?;
        self.stats.sent_to_peer(&buf[..n]);
        Ok(n)
    }
    fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
        self.inner.local_addr()
    }
    fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr()
    }
    async fn close(&self) -> webrtc_util::Result<()> {
        self.inner.close().await
    }
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}

/// Wraps a relay address generator so every relay socket it creates is filtered; with
/// `inner6`, a client that asks for an IPv6 relay (RFC 6156 REQUESTED-ADDRESS-FAMILY,
/// which the `turn` crate reads and passes on as `use_ipv4 = false`) gets one from it.
/// Without the attribute the relay is IPv4, whatever family the client came over (RFC 6156
/// §4.2); asking for IPv6 where the server has none fails the allocation (the crate answers
/// 508 Insufficient Capacity for any generator error: it has no way to say 440).
pub(crate) struct FilteredRelayGenerator<G> {
    pub(crate) inner: G,
    pub(crate) inner6: Option<G>,
    pub(crate) filter: PeerFilter,
    pub(crate) stats: Arc<crate::counters::ServerCounters>,
}

#[async_trait]
impl<G: RelayAddressGenerator + Send + Sync> RelayAddressGenerator for FilteredRelayGenerator<G> {
    fn validate(&self) -> Result<(), turn::Error> {
        self.inner.validate()
    }
    async fn allocate_conn(
        &self,
        use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let generator = match (use_ipv4, &self.inner6) {
            (true, _) => &self.inner,
            (false, Some(g)) => g,
            (false, None) => return Err(turn::Error::Other("this server has no IPv6 relay address".into())),
        };
        let (conn, addr) = generator.allocate_conn(use_ipv4, requested_port).await?;
        // The static generator binds a plain tokio socket (webrtc-util's native `Net`).
        if let Some(sock) = conn.as_any().downcast_ref::<tokio::net::UdpSocket>() {
            super::sockets::enlarge(sock, super::sockets::RELAY_BUFFER);
        }
        let conn: Arc<dyn Conn + Send + Sync> =
            Arc::new(FilteredConn { inner: conn, filter: self.filter.clone(), stats: self.stats.clone() });
        Ok((conn, addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_allows_only_lab_subnets() {
        let f = PeerFilter::new(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(f.allows("10.1.2.3".parse().unwrap()));
        assert!(!f.allows("192.168.1.1".parse().unwrap()));
        assert!(PeerFilter::default().allows("8.8.8.8".parse().unwrap()));
        assert!(!PeerFilter::default().allows("0.0.0.0".parse().unwrap()));
        let own = PeerFilter::new(vec!["192.0.2.0/24".parse().unwrap()]).deny(["192.0.2.5".parse().unwrap()]);
        assert!(own.allows("192.0.2.6".parse().unwrap()) && !own.allows("192.0.2.5".parse().unwrap()));
        let l = own.deny_endpoints(["192.0.2.6:3478".parse().unwrap()]);
        assert!(!l.allows_endpoint("192.0.2.6:3478".parse().unwrap()));
        assert!(l.allows_endpoint("192.0.2.6:50000".parse().unwrap()), "relay-to-relay on one server");
    }
}
