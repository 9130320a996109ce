//! One client releasing its allocation on the built-in TURN server's TCP listener (a
//! Refresh with LIFETIME 0, what a peer sends when it hangs up) must not cut the other
//! clients' streams: the `turn` crate closes the listener's `Conn` whenever an allocation
//! closes. Stopping the server still ends every stream.

use std::net::SocketAddr;
use std::time::Duration;

use icelab::turn::{TurnHandle, TurnServerConfig, serve_turn};
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::{CODE_UNAUTHORIZED, ErrorCodeAttribute};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_CREATE_PERMISSION, METHOD_REFRESH, Message,
    MessageType, Setter,
};
use stun::textattrs::{Nonce, Realm, Username};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use turn::proto::PROTO_UDP;
use turn::proto::lifetime::Lifetime;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::reqtrans::RequestedTransport;

const STEP: Duration = Duration::from_secs(3);

async fn server() -> TurnHandle {
    serve_turn(TurnServerConfig {
        public_ip: "127.0.0.1".parse().unwrap(),
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: None,
        tcp_port: Some(0),
        tls_port: None,
        allowed_peer_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        ..TurnServerConfig::default()
    })
    .await
    .unwrap()
}

fn msg(setters: Vec<Box<dyn Setter>>) -> Message {
    let mut m = Message::new();
    m.build(&setters).unwrap();
    m
}

/// Sends `m` and reads the STUN answer, bounded by [`STEP`]; `None` if the stream ended.
async fn transact(s: &mut TcpStream, m: &Message) -> Option<Message> {
    s.write_all(&m.raw).await.ok()?;
    let raw = tokio::time::timeout(STEP, async {
        let mut hdr = [0u8; 20];
        s.read_exact(&mut hdr).await.ok()?;
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let mut raw = hdr.to_vec();
        raw.resize(20 + len, 0);
        s.read_exact(&mut raw[20..]).await.ok()?;
        Some(raw)
    })
    .await
    .expect("an answer or the end of the stream in time")?;
    let mut res = Message::new();
    res.raw = raw;
    res.decode().unwrap();
    assert_eq!(res.transaction_id, m.transaction_id);
    Some(res)
}

/// A client with an allocation on the server's TCP listener.
struct Client {
    s: TcpStream,
    auth: Vec<Box<dyn Fn() -> Box<dyn Setter>>>,
}

impl Client {
    /// Connects; the unauthenticated Allocate must get 401 with realm and nonce.
    async fn connect(addr: SocketAddr) -> (TcpStream, Realm, Nonce) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let m = msg(vec![
            Box::new(TransactionId::new()),
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport { protocol: PROTO_UDP }),
        ]);
        let res = transact(&mut s, &m).await.expect("401 from a live listener");
        let mut code = ErrorCodeAttribute::default();
        code.get_from(&res).unwrap();
        assert!(code.code == CODE_UNAUTHORIZED, "{code}");
        (s, Realm::get_from_as(&res, ATTR_REALM).unwrap(), Nonce::get_from_as(&res, ATTR_NONCE).unwrap())
    }

    async fn allocate(addr: SocketAddr) -> Self {
        let (s, realm, nonce) = Self::connect(addr).await;
        let integrity = MessageIntegrity::new_long_term_integrity("icelab".into(), realm.text.clone(), "icelab".into());
        let user = Username::new(ATTR_USERNAME, "icelab".into());
        let mut c = Self {
            s,
            auth: vec![
                Box::new(move || Box::new(user.clone())),
                Box::new(move || Box::new(realm.clone())),
                Box::new(move || Box::new(nonce.clone())),
                Box::new(move || Box::new(integrity.clone())),
            ],
        };
        let res = c.request(METHOD_ALLOCATE, vec![Box::new(RequestedTransport { protocol: PROTO_UDP })]).await;
        assert_eq!(res.map(|r| r.typ), Some(MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)));
        c
    }

    /// An authenticated request; `None` if the stream ended instead of answering.
    async fn request(&mut self, method: stun::message::Method, attrs: Vec<Box<dyn Setter>>) -> Option<Message> {
        let mut v: Vec<Box<dyn Setter>> =
            vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, CLASS_REQUEST))];
        v.extend(attrs);
        v.extend(self.auth.iter().map(|a| a()));
        transact(&mut self.s, &msg(v)).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_allocation_leaves_other_streams_up() {
    let turn = server().await;
    let addr = turn.tcp_addr.unwrap();
    let mut alice = Client::allocate(addr).await;
    let mut bob = Client::allocate(addr).await;

    // Bob hangs up: his allocation goes, and with it the server closes its listener Conn.
    let res = bob.request(METHOD_REFRESH, vec![Box::new(Lifetime(Duration::ZERO))]).await;
    assert_eq!(res.map(|r| r.typ), Some(MessageType::new(METHOD_REFRESH, CLASS_SUCCESS_RESPONSE)));

    // Alice's stream still carries her transactions, and the listener still accepts.
    let peer = PeerAddress { ip: "127.0.0.1".parse().unwrap(), port: 9 };
    let res = alice.request(METHOD_CREATE_PERMISSION, vec![Box::new(peer)]).await;
    assert_eq!(
        res.map(|r| r.typ),
        Some(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE)),
        "alice's stream outlives bob's allocation"
    );
    let _carol = Client::allocate(addr).await;

    // Stopping the server still ends alice's stream.
    turn.stop().await.unwrap();
    let mut buf = [0u8; 1];
    let end = tokio::time::timeout(STEP, alice.s.read(&mut buf)).await.expect("stream ends in time");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
}
