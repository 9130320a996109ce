//! The answers the `turn` crate gets wrong, fixed in front of it.
//!
//! Every listener socket is wrapped in a [`GuardedConn`] that looks at each request before
//! the server does:
//! * a request with USERNAME, REALM, NONCE and MESSAGE-INTEGRITY whose user is unknown or
//!   whose integrity does not check (wrong password or realm) has its MESSAGE-INTEGRITY
//!   removed, so the server answers 401 with a fresh NONCE and its REALM, as RFC 8489
//!   §9.2.4 and RFC 8656 require (the crate itself answers 400, and RFC clients only retry
//!   on 401). A request with no credentials at all already gets that 401.
//! * an authenticated CreatePermission or ChannelBind naming a peer outside the lab
//!   ([`PeerFilter`]) is answered 403 Forbidden here and never reaches the server, as
//!   coturn's `denied-peer-ip` does (the crate grants it and the data vanishes later).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use stun::attributes::{
    ATTR_FINGERPRINT, ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME,
    ATTR_XOR_PEER_ADDRESS,
};
use stun::error_code::{CODE_FORBIDDEN, ErrorCodeAttribute};
use stun::fingerprint::FINGERPRINT;
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_ERROR_RESPONSE, CLASS_REQUEST, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION, Message, MessageType,
};
use stun::textattrs::TextAttribute;
use stun::xoraddr::XorMappedAddress;
use webrtc_util::Conn;

use super::PeerFilter;

/// Credentials and peer policy the guard enforces.
pub(crate) struct Guard {
    pub(crate) realm: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) peers: PeerFilter,
    /// The server's figures: every answer to a client is counted on its way out.
    pub(crate) stats: Arc<crate::counters::ServerCounters>,
}

/// What to do with one inbound datagram.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Hand it to the server unchanged.
    Pass,
    /// Hand the server this instead.
    Rewrite(Vec<u8>),
    /// Answer with this and drop the request.
    Reply(Vec<u8>),
}

impl Guard {
    fn integrity(&self) -> MessageIntegrity {
        MessageIntegrity::new_long_term_integrity(self.username.clone(), self.realm.clone(), self.password.clone())
    }

    fn inspect(&self, pkt: &[u8]) -> Verdict {
        if !stun::message::is_message(pkt) {
            return Verdict::Pass; // ChannelData
        }
        let mut m = Message::new();
        m.raw = pkt.to_vec();
        if m.decode().is_err() || m.typ.class != CLASS_REQUEST || !m.contains(ATTR_MESSAGE_INTEGRITY) {
            return Verdict::Pass;
        }
        let text = |t| TextAttribute::get_from_as(&m, t).ok().map(|a| a.text);
        let (Some(user), Some(realm), Some(_nonce)) = (text(ATTR_USERNAME), text(ATTR_REALM), text(ATTR_NONCE)) else {
            return Verdict::Pass; // RFC 8489 §9.2.4: incomplete credentials are a 400
        };
        let good = user == self.username && realm == self.realm && self.integrity().check(&mut m.clone()).is_ok();
        if !good {
            return Verdict::Rewrite(strip_integrity(&m));
        }
        let method = m.typ.method;
        if method != METHOD_CREATE_PERMISSION && method != METHOD_CHANNEL_BIND {
            return Verdict::Pass;
        }
        match peers(&m).into_iter().find(|p| !self.peers.allows_endpoint(*p)) {
            Some(p) => {
                tracing::debug!(peer = %p, "TURN: refused a permission for a peer outside the lab");
                self.forbidden(&m).map_or(Verdict::Pass, Verdict::Reply)
            }
            None => Verdict::Pass,
        }
    }

    /// A 403 for `req`, signed with the long-term key like the server's own answers.
    fn forbidden(&self, req: &Message) -> Option<Vec<u8>> {
        let mut res = Message::new();
        res.build(&[
            Box::new(req.transaction_id),
            Box::new(MessageType::new(req.typ.method, CLASS_ERROR_RESPONSE)),
            Box::new(ErrorCodeAttribute { code: CODE_FORBIDDEN, reason: b"Forbidden: peer outside the lab".to_vec() }),
            Box::new(self.integrity()),
            Box::new(FINGERPRINT),
        ])
        .ok()?;
        Some(res.raw)
    }
}

/// Every XOR-PEER-ADDRESS of a request (CreatePermission may carry several).
fn peers(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| {
            let mut one = Message::new();
            one.transaction_id = m.transaction_id;
            one.write_header();
            one.add(a.typ, &a.value);
            let mut x = XorMappedAddress::default();
            x.get_from_as(&one, ATTR_XOR_PEER_ADDRESS).ok()?;
            Some(SocketAddr::new(x.ip, x.port))
        })
        .collect()
}

/// `m` re-encoded without its integrity and fingerprint attributes.
fn strip_integrity(m: &Message) -> Vec<u8> {
    let mut out = Message::new();
    out.typ = m.typ;
    out.transaction_id = m.transaction_id;
    out.write_header();
    for a in &m.attributes.0 {
        if ![ATTR_MESSAGE_INTEGRITY, ATTR_MESSAGE_INTEGRITY_SHA256, ATTR_FINGERPRINT].contains(&a.typ) {
            out.add(a.typ, &a.value);
        }
    }
    out.raw
}

/// A listener socket with the [`Guard`] in front of the server.
pub(crate) struct GuardedConn {
    pub(crate) inner: Arc<dyn Conn + Send + Sync>,
    pub(crate) guard: Arc<Guard>,
}

#[async_trait]
impl Conn for GuardedConn {
    async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
        self.inner.connect(addr).await
    }
    async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
        self.inner.recv(buf).await
    }
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.inner.recv_from(buf).await?;
            // Timed from here: the server's own time, queues before this read excluded.
            self.guard.stats.on_request(&buf[..n]);
            match self.guard.inspect(&buf[..n]) {
                Verdict::Pass => return Ok((n, from)),
                // Stripping only shortens the message, so it fits where it came from.
                Verdict::Rewrite(v) => {
                    buf[..v.len()].copy_from_slice(&v);
                    return Ok((v.len(), from));
                }
                Verdict::Reply(r) => {
                    self.guard.stats.on_answer(&r);
                    if let Err(e) = self.inner.send_to(&r, from).await {
                        tracing::debug!(%from, "TURN: could not send 403: {e}");
                    }
                }
            }
        }
    }
    async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
        self.inner.send(buf).await
    }
    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        self.guard.stats.on_answer(buf);
        self.inner.send_to(buf, target).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use stun::agent::TransactionId;
    use stun::message::{BINDING_REQUEST, Getter, Setter};
    use stun::textattrs::{Nonce, Realm, Username};

    fn guard() -> Guard {
        Guard {
            realm: "icelab".into(),
            username: "icelab".into(),
            password: "icelab".into(),
            peers: PeerFilter::new(vec!["192.0.2.0/24".parse().unwrap()]),
            stats: Default::default(),
        }
    }

    fn request(method: stun::message::Method, user: &str, pass: &str, peer: Option<&str>) -> Vec<u8> {
        let mut s: Vec<Box<dyn Setter>> = vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(method, CLASS_REQUEST)),
            Box::new(Username::new(ATTR_USERNAME, user.into())),
            Box::new(Realm::new(ATTR_REALM, "icelab".into())),
            Box::new(Nonce::new(ATTR_NONCE, "n".into())),
        ];
        if let Some(p) = peer {
            let a: SocketAddr = p.parse().unwrap();
            s.push(Box::new(turn::proto::peeraddr::PeerAddress { ip: a.ip(), port: a.port() }));
        }
        s.push(Box::new(MessageIntegrity::new_long_term_integrity(user.into(), "icelab".into(), pass.into())));
        let mut m = Message::new();
        m.build(&s).unwrap();
        m.raw
    }

    #[test]
    fn bad_credentials_lose_their_integrity() {
        let g = guard();
        for (u, p) in [("icelab", "wrong"), ("mallory", "icelab")] {
            let Verdict::Rewrite(v) = g.inspect(&request(METHOD_CREATE_PERMISSION, u, p, None)) else {
                panic!("{u}/{p} passed")
            };
            let mut m = Message::new();
            m.raw = v;
            m.decode().unwrap();
            assert!(!m.contains(ATTR_MESSAGE_INTEGRITY) && m.contains(ATTR_USERNAME));
        }
        assert_eq!(g.inspect(&request(METHOD_CREATE_PERMISSION, "icelab", "icelab", None)), Verdict::Pass);
    }

    #[test]
    fn permission_outside_the_lab_is_forbidden() {
        let g = guard();
        assert_eq!(
            g.inspect(&request(METHOD_CREATE_PERMISSION, "icelab", "icelab", Some("192.0.2.20:0"))),
            Verdict::Pass
        );
        let Verdict::Reply(r) = g.inspect(&request(METHOD_CHANNEL_BIND, "icelab", "icelab", Some("127.0.0.1:9")))
        else {
            panic!("granted")
        };
        let mut m = Message::new();
        m.raw = r;
        m.decode().unwrap();
        let mut code = ErrorCodeAttribute::default();
        code.get_from(&m).unwrap();
        assert_eq!(code.code.0, CODE_FORBIDDEN.0);
        assert!(g.integrity().check(&mut m).is_ok(), "403 must be signed");
    }

    #[test]
    fn binding_and_channel_data_pass() {
        let mut m = Message::new();
        m.build(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)]).unwrap();
        assert_eq!(guard().inspect(&m.raw), Verdict::Pass);
        assert_eq!(guard().inspect(&[0x40, 0x00, 0x00, 0x00]), Verdict::Pass);
    }
}
