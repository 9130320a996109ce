//! Answers of the built-in TURN server that RFC clients depend on (issue 9): a bad user,
//! a bad password or no credentials get 401 with REALM and NONCE (not 400), and a
//! permission or channel for a peer outside the lab gets 403 Forbidden (not a grant that
//! silently carries nothing). A raw client over UDP, in process, no root.

use std::net::SocketAddr;
use std::time::Duration;

use icelab::turn::{TurnHandle, TurnServerConfig, serve_turn};
use stun::agent::TransactionId;
use stun::attributes::{ATTR_NONCE, ATTR_REALM, ATTR_USERNAME};
use stun::error_code::{CODE_FORBIDDEN, CODE_UNAUTHORIZED, ErrorCodeAttribute};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_CHANNEL_BIND, METHOD_CREATE_PERMISSION,
    Message, MessageType, Method, Setter,
};
use stun::textattrs::{Nonce, Realm, Username};
use tokio::net::UdpSocket;
use turn::proto::PROTO_UDP;
use turn::proto::channum::ChannelNumber;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::reqtrans::RequestedTransport;

const STEP: Duration = Duration::from_secs(3);

/// A server on 127.0.0.1 whose relays may reach `allowed` (empty = anyone).
async fn server_allowing(allowed: &[&str]) -> TurnHandle {
    serve_turn(TurnServerConfig {
        public_ip: "127.0.0.1".parse().unwrap(),
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: Some(0),
        tcp_port: None,
        tls_port: None,
        allowed_peer_subnets: allowed.iter().map(|n| n.parse().unwrap()).collect(),
        ..TurnServerConfig::default()
    })
    .await
    .unwrap()
}

/// Lab-like: relays reach the simulated internet only.
async fn server() -> TurnHandle {
    server_allowing(&["192.0.2.0/24"]).await
}

struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    /// Realm and nonce from the first challenge (nonces live for minutes).
    creds: std::sync::Mutex<Option<(Realm, Nonce)>>,
}

impl Client {
    async fn new(server: SocketAddr) -> Self {
        Client { sock: UdpSocket::bind("127.0.0.1:0").await.unwrap(), server, creds: Default::default() }
    }

    async fn transact(&self, setters: Vec<Box<dyn Setter>>) -> Message {
        let mut m = Message::new();
        m.build(&setters).unwrap();
        self.sock.send_to(&m.raw, self.server).await.unwrap();
        let mut buf = [0u8; 1500];
        loop {
            let (n, _) =
                tokio::time::timeout(STEP, self.sock.recv_from(&mut buf)).await.expect("answer in time").unwrap();
            let mut res = Message::new();
            res.raw = buf[..n].to_vec();
            res.decode().unwrap();
            if res.transaction_id == m.transaction_id {
                return res;
            }
        }
    }

    /// The 401 challenge: (realm, nonce).
    async fn challenge(&self) -> (Realm, Nonce) {
        let res = self.transact(allocate()).await;
        assert_eq!(code(&res), Some(CODE_UNAUTHORIZED.0), "{res}");
        (Realm::get_from_as(&res, ATTR_REALM).unwrap(), Nonce::get_from_as(&res, ATTR_NONCE).unwrap())
    }

    /// A request signed as `user`/`pass` with the server's realm and nonce.
    async fn signed(&self, mut v: Vec<Box<dyn Setter>>, user: &str, pass: &str) -> Message {
        let known = self.creds.lock().unwrap().clone();
        let (realm, nonce) = match known {
            Some(c) => c,
            None => {
                let c = self.challenge().await;
                *self.creds.lock().unwrap() = Some(c.clone());
                c
            }
        };
        v.push(Box::new(Username::new(ATTR_USERNAME, user.into())));
        v.push(Box::new(realm.clone()));
        v.push(Box::new(nonce));
        v.push(Box::new(MessageIntegrity::new_long_term_integrity(user.into(), realm.text, pass.into())));
        self.transact(v).await
    }
}

fn allocate() -> Vec<Box<dyn Setter>> {
    vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(RequestedTransport { protocol: PROTO_UDP }),
    ]
}

fn request(method: Method, peer: &str, channel: Option<u16>) -> Vec<Box<dyn Setter>> {
    let a: SocketAddr = peer.parse().unwrap();
    let mut v: Vec<Box<dyn Setter>> =
        vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, CLASS_REQUEST))];
    if let Some(c) = channel {
        v.push(Box::new(ChannelNumber(c)));
    }
    v.push(Box::new(PeerAddress { ip: a.ip(), port: a.port() }));
    v
}

fn code(m: &Message) -> Option<u16> {
    let mut c = ErrorCodeAttribute::default();
    c.get_from(m).ok().map(|_| c.code.0)
}

fn assert_401_challenge(res: &Message, what: &str) {
    assert_eq!(code(res), Some(CODE_UNAUTHORIZED.0), "{what}: {res}");
    let realm = Realm::get_from_as(res, ATTR_REALM).unwrap_or_else(|_| panic!("{what}: 401 without REALM"));
    assert_eq!(realm.text, "icelab");
    assert!(!Nonce::get_from_as(res, ATTR_NONCE).expect("401 without NONCE").text.is_empty(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_or_missing_credentials_get_401_with_realm_and_nonce() {
    let turn = server().await;
    let c = Client::new(turn.udp_addr.unwrap()).await;
    assert_401_challenge(&c.transact(allocate()).await, "no credentials");
    assert_401_challenge(&c.signed(allocate(), "icelab", "wrong").await, "wrong password");
    assert_401_challenge(&c.signed(allocate(), "mallory", "icelab").await, "wrong user");
    // The retry an RFC client makes with the right password then succeeds.
    let ok = c.signed(allocate(), "icelab", "icelab").await;
    assert_eq!(ok.typ, MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE), "{ok}");
    // A bad password on a later request of the allocation is a 401 too.
    let res = c.signed(request(METHOD_CREATE_PERMISSION, "192.0.2.9:0", None), "icelab", "nope").await;
    assert_401_challenge(&res, "CreatePermission with a wrong password");
    let s = turn.stats.snapshot();
    assert_eq!(s.allocations, 1, "{s:?}");
    assert!(s.allocations_refused.get(&401).is_some_and(|n| *n >= 3), "three refused allocations: {s:?}");
    assert!(s.permissions_refused.get(&401).is_some_and(|n| *n >= 1), "{s:?}");
    turn.stop().await.unwrap();
}

async fn allocated(turn: &TurnHandle) -> Client {
    let c = Client::new(turn.udp_addr.unwrap()).await;
    let ok = c.signed(allocate(), "icelab", "icelab").await;
    assert_eq!(ok.typ, MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE), "{ok}");
    c
}

async fn assert_forbidden(c: &Client, peer: &str, channel: u16) {
    let res = c.signed(request(METHOD_CREATE_PERMISSION, peer, None), "icelab", "icelab").await;
    assert_eq!(code(&res), Some(CODE_FORBIDDEN.0), "CreatePermission {peer}: {res}");
    let res = c.signed(request(METHOD_CHANNEL_BIND, peer, Some(channel)), "icelab", "icelab").await;
    assert_eq!(code(&res), Some(CODE_FORBIDDEN.0), "ChannelBind {peer}: {res}");
}

async fn assert_granted(c: &Client, peer: &str, channel: u16) {
    let res = c.signed(request(METHOD_CREATE_PERMISSION, peer, None), "icelab", "icelab").await;
    assert_eq!(res.typ, MessageType::new(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE), "{peer}: {res}");
    let res = c.signed(request(METHOD_CHANNEL_BIND, peer, Some(channel)), "icelab", "icelab").await;
    assert_eq!(res.typ, MessageType::new(METHOD_CHANNEL_BIND, CLASS_SUCCESS_RESPONSE), "{peer}: {res}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_outside_the_lab_get_403() {
    let turn = server().await;
    let c = allocated(&turn).await;
    let listener = turn.udp_addr.unwrap().to_string();
    for (i, peer) in ["127.0.0.1:5000", "0.0.0.0:5000", "10.1.2.3:5000", &listener].into_iter().enumerate() {
        assert_forbidden(&c, peer, 0x4001 + i as u16).await;
    }
    assert_granted(&c, "192.0.2.20:5000", 0x4010).await;
    // The server's own figures count each answer by kind and code.
    let s = turn.stats.snapshot();
    assert_eq!((s.allocations, s.permissions, s.channel_binds), (1, 1, 1), "{s:?}");
    assert_eq!((s.permissions_refused.get(&403), s.channel_binds_refused.get(&403)), (Some(&4), Some(&4)), "{s:?}");
    turn.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_own_addresses_are_refused_even_when_anyone_is_allowed() {
    let turn = server_allowing(&[]).await;
    let c = allocated(&turn).await;
    // Its own listener, and every other address of its host (loopback apart: 127.0.0.1
    // is this server's relay address, and relay-to-relay on one server must work).
    assert_forbidden(&c, &turn.udp_addr.unwrap().to_string(), 0x4001).await;
    let others: Vec<std::net::IpAddr> = nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip())))
        .filter(|ip| !ip.is_loopback())
        .collect();
    for (i, ip) in others.iter().enumerate() {
        assert_forbidden(&c, &format!("{ip}:5000"), 0x4002 + i as u16).await;
    }
    assert_granted(&c, "127.0.0.1:5000", 0x4100).await;
    assert_granted(&c, "192.0.2.20:5000", 0x4101).await;
    turn.stop().await.unwrap();
}

/// RFC 6156: with an IPv6 address the server relays from it when the allocation asks
/// for REQUESTED-ADDRESS-FAMILY IPv6, and from its IPv4 address when it asks nothing,
/// whatever family the client came over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_address_family_picks_the_relay_family() {
    use turn::proto::relayaddr::RelayedAddress;
    use turn::proto::reqfamily::RequestedAddressFamily;
    let turn = serve_turn(TurnServerConfig {
        public_ip: "127.0.0.1".parse().unwrap(),
        bind_ip: "127.0.0.1".parse().unwrap(),
        public_ip6: Some("::1".parse().unwrap()),
        udp_port: Some(0),
        tcp_port: None,
        tls_port: None,
        ..TurnServerConfig::default()
    })
    .await
    .unwrap();
    let relayed = |m: &Message| {
        let mut a = RelayedAddress::default();
        a.get_from(m).unwrap_or_else(|e| panic!("no relayed address ({e}): {m}"));
        a.ip
    };
    for (family, want) in [(None, "127.0.0.1"), (Some(2u8), "::1"), (Some(1u8), "127.0.0.1")] {
        let c = Client::new(turn.udp_addr.unwrap()).await;
        let mut req = allocate();
        // RFC 6156 4.1.1: 0x01 IPv4, 0x02 IPv6.
        if let Some(f) = family {
            req.push(Box::new(RequestedAddressFamily(f)));
        }
        let ok = c.signed(req, "icelab", "icelab").await;
        assert_eq!(ok.typ, MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE), "{family:?}: {ok}");
        assert_eq!(relayed(&ok).to_string(), want, "{family:?}");
    }
    turn.stop().await.unwrap();
}
