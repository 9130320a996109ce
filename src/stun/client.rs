//! Client side: Binding request building and a request/response transaction
//! with RFC 5389 §7.2.1 retransmission, transaction-id matching and a hard
//! deadline, so a missing server is an error or `None`, never a hang.

use super::wire;
use anyhow::{Result, anyhow};
use std::net::SocketAddr;
use std::time::Duration;
use stun_rs::attributes::discovery::{ChangeRequest, ChangeRequestFlags, OtherAddress, ResponseOrigin};
use stun_rs::attributes::stun::{ErrorCode, MappedAddress, Software, XorMappedAddress};
use stun_rs::methods::BINDING;
use stun_rs::{MessageClass, StunMessage, StunMessageBuilder, TransactionId};
use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until, timeout_at};

/// Retransmission timing for one transaction.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// First retransmission timeout; doubles after each send (RFC 5389 RTO).
    pub initial_rto: Duration,
    /// Hard limit for the whole transaction.
    pub deadline: Duration,
}

impl Default for Timing {
    /// Lab defaults: 100 ms initial RTO, 1.5 s per transaction.
    fn default() -> Self {
        Self { initial_rto: Duration::from_millis(100), deadline: Duration::from_millis(1500) }
    }
}

/// What a Binding request asks of the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    /// CHANGE-REQUEST "change IP".
    pub change_ip: bool,
    /// CHANGE-REQUEST "change port".
    pub change_port: bool,
    /// icelab extension: deliver the response to this address instead.
    pub response_target: Option<SocketAddr>,
}

impl Request {
    /// Encodes the request with a fresh transaction id.
    pub fn encode(&self) -> Result<(TransactionId, Vec<u8>)> {
        let tid = TransactionId::default();
        let mut b = StunMessageBuilder::new(BINDING, MessageClass::Request).with_transaction_id(tid);
        if self.change_ip || self.change_port {
            let flags = match (self.change_ip, self.change_port) {
                (true, true) => ChangeRequestFlags::ChangeIp | ChangeRequestFlags::ChangePort,
                (true, false) => ChangeRequestFlags::ChangeIp.into(),
                _ => ChangeRequestFlags::ChangePort.into(),
            };
            b = b.with_attribute(ChangeRequest::new(Some(flags)));
        }
        let mut bytes = wire::encode(&b.build(), None)?;
        if let Some(t) = self.response_target {
            wire::append_response_target(&mut bytes, tid, t)?;
        }
        Ok((tid, bytes))
    }
}

/// The useful content of a Binding success response.
#[derive(Debug, Clone)]
pub struct BindingResponse {
    /// Where the response actually came from (UDP source).
    pub source: SocketAddr,
    /// XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from old servers.
    pub mapped: SocketAddr,
    /// RESPONSE-ORIGIN, if present.
    pub response_origin: Option<SocketAddr>,
    /// OTHER-ADDRESS, if present.
    pub other_address: Option<SocketAddr>,
    /// SOFTWARE, if present.
    pub software: Option<String>,
}

impl BindingResponse {
    /// Extracts the attributes; error responses become errors.
    pub fn parse(msg: &StunMessage, source: SocketAddr) -> Result<Self> {
        if msg.class() == MessageClass::ErrorResponse {
            let e = msg.get::<ErrorCode>().and_then(|a| a.as_error_code().ok());
            return Err(match e {
                Some(e) => {
                    anyhow!("STUN error {} {} from {source}", e.error_code().error_code(), e.error_code().reason())
                }
                None => anyhow!("STUN error response from {source}"),
            });
        }
        let xor = msg.get::<XorMappedAddress>().and_then(|a| a.as_xor_mapped_address().ok());
        let plain = msg.get::<MappedAddress>().and_then(|a| a.as_mapped_address().ok());
        let mapped = xor
            .map(|a| *a.socket_address())
            .or(plain.map(|a| *a.socket_address()))
            .ok_or_else(|| anyhow!("Binding response from {source} without mapped address"))?;
        Ok(Self {
            source,
            mapped,
            response_origin: msg
                .get::<ResponseOrigin>()
                .and_then(|a| a.as_response_origin().ok())
                .map(|a| *a.socket_address()),
            other_address: msg
                .get::<OtherAddress>()
                .and_then(|a| a.as_other_address().ok())
                .map(|a| *a.socket_address()),
            software: msg.get::<Software>().and_then(|a| a.as_software().ok()).map(|s| s.as_str().to_string()),
        })
    }
}

/// Sends `bytes` to `to` on the RFC 5389 schedule (t = 0, RTO, 3·RTO, 7·RTO, …)
/// until `deadline`.
pub async fn retransmit(sock: &UdpSocket, to: SocketAddr, bytes: &[u8], t: Timing, deadline: Instant) {
    let mut next = Instant::now();
    let mut rto = t.initial_rto;
    while next < deadline {
        if let Err(e) = sock.send_to(bytes, to).await {
            tracing::debug!("send to {to}: {e}");
        }
        next += rto;
        rto *= 2;
        sleep_until(next.min(deadline)).await;
    }
}

/// Waits on `sock` for a STUN message with transaction id `tid` until
/// `deadline`; other datagrams are ignored.
pub async fn recv_matching(
    sock: &UdpSocket,
    tid: TransactionId,
    deadline: Instant,
) -> Option<(StunMessage, SocketAddr)> {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Err(_) => return None,
            Ok(Err(e)) => {
                // e.g. ECONNREFUSED from an ICMP error: keep waiting until the deadline.
                tracing::debug!("recv: {e}");
                sleep_until((Instant::now() + Duration::from_millis(10)).min(deadline)).await;
                continue;
            }
            Ok(Ok(x)) => x,
        };
        if let Ok(d) = wire::decode(&buf[..n])
            && *d.msg.transaction_id() == tid
        {
            return Some((d.msg, from));
        }
    }
}

/// One Binding transaction: `Ok(None)` when nothing matching arrived in time
/// (an expected outcome in filtering tests), `Err` on an error response.
pub async fn binding(sock: &UdpSocket, to: SocketAddr, req: Request, t: Timing) -> Result<Option<BindingResponse>> {
    let (tid, bytes) = req.encode()?;
    let deadline = Instant::now() + t.deadline;
    let got = tokio::select! {
        r = recv_matching(sock, tid, deadline) => r,
        _ = retransmit(sock, to, &bytes, t, deadline) => None,
    };
    match got {
        None => Ok(None),
        Some((msg, from)) => BindingResponse::parse(&msg, from).map(Some),
    }
}
