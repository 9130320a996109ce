//! Root test: coturn, as the lab configures it, refuses what the built-in server refuses
//! (tests/turn_answers.rs): a wrong password gets 401, and a permission or channel for a
//! peer outside the lab's subnets gets 403 (loopback, a private address no lab LAN uses,
//! the host's own addresses), while lab peers (the internet, a LAN, the relay itself) are
//! granted. A raw client over UDP from inside a host of the lab. Fails without root unless
//! ICELAB_SKIP_ROOT_TESTS=1.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;
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

/// A TURN client on a socket in namespace `ns`, talking to `server`.
struct Client {
    sock: UdpSocket,
    server: SocketAddr,
    creds: std::sync::Mutex<Option<(Realm, Nonce)>>,
}

impl Client {
    fn new(ns: &str, server: SocketAddr) -> Self {
        let fd = icelab::fabric::netns::open(ns).unwrap();
        let std_sock = icelab::fabric::netns::run_in(&fd, || std::net::UdpSocket::bind("0.0.0.0:0")).unwrap().unwrap();
        std_sock.set_nonblocking(true).unwrap();
        Client { sock: UdpSocket::from_std(std_sock).unwrap(), server, creds: Default::default() }
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

    /// A request signed as `user`/`pass` with the realm and nonce of the first challenge
    /// (nonces live for minutes; once allocated, an unsigned Allocate gets 437, not 401).
    async fn signed(&self, mut v: Vec<Box<dyn Setter>>, user: &str, pass: &str) -> Message {
        let known = self.creds.lock().unwrap().clone();
        let (realm, nonce) = match known {
            Some(c) => c,
            None => {
                let res = self.transact(allocate()).await;
                assert_eq!(code(&res), Some(CODE_UNAUTHORIZED.0), "no credentials: {res}");
                let c = (Realm::get_from_as(&res, ATTR_REALM).unwrap(), Nonce::get_from_as(&res, ATTR_NONCE).unwrap());
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

fn request(method: Method, peer: IpAddr, channel: Option<u16>) -> Vec<Box<dyn Setter>> {
    let mut v: Vec<Box<dyn Setter>> =
        vec![Box::new(TransactionId::new()), Box::new(MessageType::new(method, CLASS_REQUEST))];
    if let Some(c) = channel {
        v.push(Box::new(ChannelNumber(c)));
    }
    v.push(Box::new(PeerAddress { ip: peer, port: 5000 }));
    v
}

fn code(m: &Message) -> Option<u16> {
    let mut c = ErrorCodeAttribute::default();
    c.get_from(m).ok().map(|_| c.code.0)
}

/// The host's own IPv4 addresses outside the lab's ranges (loopback apart).
fn host_addresses() -> Vec<IpAddr> {
    let lab: Vec<ipnet::Ipv4Net> = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "192.168.0.0/16"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    nix::ifaddrs::getifaddrs()
        .unwrap()
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| s.ip()))
        .filter(|ip| !ip.is_loopback() && !lab.iter().any(|n| n.contains(ip)))
        .map(IpAddr::V4)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_refuses_bad_credentials_and_peers_outside_the_lab() {
    if !require_root() {
        return;
    }
    let name = lab_name("c11f");
    let o = icelab(&["up", &topology("call-relay-coturn.toml"), "--name", &name]);
    assert!(o.status.success(), "up failed: {}", stderr(&o));
    let _lab = LabGuard(name.clone());
    let c = Client::new(&format!("icelab-{name}-alice"), "198.51.100.10:3478".parse().unwrap());

    let res = c.signed(allocate(), "icelab", "wrong").await;
    assert_eq!(code(&res), Some(CODE_UNAUTHORIZED.0), "wrong password: {res}");
    let res = c.signed(allocate(), "icelab", "icelab").await;
    assert_eq!(res.typ, MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE), "allocate: {res}");

    let mut outside: Vec<IpAddr> = ["127.0.0.1", "0.0.0.0", "10.1.2.3", "100.64.0.1", "172.16.0.1", "8.8.8.8"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let host = host_addresses();
    outside.extend(&host);
    for (i, peer) in outside.iter().enumerate() {
        let res = c.signed(request(METHOD_CREATE_PERMISSION, *peer, None), "icelab", "icelab").await;
        assert_eq!(code(&res), Some(CODE_FORBIDDEN.0), "CreatePermission {peer}: {res}");
        let res = c.signed(request(METHOD_CHANNEL_BIND, *peer, Some(0x4001 + i as u16)), "icelab", "icelab").await;
        assert_eq!(code(&res), Some(CODE_FORBIDDEN.0), "ChannelBind {peer}: {res}");
    }
    // The internet, the other home's LAN, and the relay itself (relay-to-relay calls).
    for (i, peer) in ["192.0.2.20", "192.168.2.10", "198.51.100.10"].into_iter().enumerate() {
        let peer: IpAddr = peer.parse().unwrap();
        let res = c.signed(request(METHOD_CREATE_PERMISSION, peer, None), "icelab", "icelab").await;
        assert_eq!(res.typ, MessageType::new(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE), "{peer}: {res}");
        let res = c.signed(request(METHOD_CHANNEL_BIND, peer, Some(0x4100 + i as u16)), "icelab", "icelab").await;
        assert_eq!(res.typ, MessageType::new(METHOD_CHANNEL_BIND, CLASS_SUCCESS_RESPONSE), "{peer}: {res}");
    }
    // A host address inside a documentation range (a CI box on 192.0.2.0/24) is the lab's
    // simulated address from inside the lab, not the host's: the namespaces are apart.
    eprintln!("refused {outside:?} (host addresses outside the lab's ranges: {host:?})");

    // coturn's log, as the run reads it, counts the same answers by kind and code.
    let log = icelab::fabric::registry::lab_dir(&name).join(format!("coturn-icelab-{name}-relay.log"));
    let want = outside.len() as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let s = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let s = icelab::servers::stats::parse_coturn_log(&text).pop().unwrap_or_default();
        if s.channel_binds == 3 || std::time::Instant::now() >= deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((s.allocations, s.permissions, s.channel_binds), (1, 3, 3), "{s:?}");
    assert_eq!(
        (s.permissions_refused.get(&403), s.channel_binds_refused.get(&403)),
        (Some(&want), Some(&want)),
        "{s:?}"
    );
    assert!(s.allocations_refused.get(&401).is_some_and(|n| *n >= 1), "the wrong password: {s:?}");
}
