//! The built-in TURN server over TCP and TLS: a raw client (Allocate with long-term auth,
//! CreatePermission, Send/Data, ChannelBind/ChannelData with stream padding), and two
//! in-process peers where one can only reach the server over TCP or TLS (the peer's shim).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use icelab::peer::{IceServer, PeerConfig, Role, TransportPolicy, call_pair};
use icelab::turn::{TurnHandle, TurnServerConfig, serve_turn};
use stun::agent::TransactionId;
use stun::attributes::ATTR_NONCE;
use stun::attributes::ATTR_REALM;
use stun::error_code::{CODE_UNAUTHORIZED, ErrorCodeAttribute};
use stun::integrity::MessageIntegrity;
use stun::message::{
    CLASS_INDICATION, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, Getter, METHOD_ALLOCATE, METHOD_CHANNEL_BIND,
    METHOD_CREATE_PERMISSION, METHOD_DATA, METHOD_SEND, Message, MessageType, Setter,
};
use stun::textattrs::{Nonce, Realm, Username};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::rustls;
use turn::proto::PROTO_UDP;
use turn::proto::channum::ChannelNumber;
use turn::proto::data::Data;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::relayaddr::RelayedAddress;
use turn::proto::reqtrans::RequestedTransport;

const STEP: Duration = Duration::from_secs(3);

async fn server() -> TurnHandle {
    serve_turn(TurnServerConfig {
        public_ip: "127.0.0.1".parse().unwrap(),
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: None,
        tcp_port: Some(0),
        tls_port: Some(0),
        allowed_peer_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        ..TurnServerConfig::default()
    })
    .await
    .unwrap()
}

/// Reads one frame (STUN, or ChannelData with its stream padding), bounded by [`STEP`];
/// returns it without padding.
async fn read_frame(s: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    tokio::time::timeout(STEP, async {
        let mut hdr = [0u8; 4];
        s.read_exact(&mut hdr).await.unwrap();
        let len = u16::from_be_bytes([hdr[2], hdr[3]]) as usize;
        let (len, padded) = match hdr[0] >> 6 {
            0 => (20 + len, 20 + len),
            1 => (4 + len, (4 + len).div_ceil(4) * 4),
            _ => panic!("not a TURN frame: {hdr:?}"),
        };
        let mut f = vec![0u8; padded];
        f[..4].copy_from_slice(&hdr);
        s.read_exact(&mut f[4..]).await.unwrap();
        f.truncate(len);
        f
    })
    .await
    .expect("frame from the server in time")
}

fn msg(setters: Vec<Box<dyn Setter>>) -> Message {
    let mut m = Message::new();
    m.build(&setters).unwrap();
    m
}

async fn transact(s: &mut (impl AsyncRead + AsyncWrite + Unpin), m: &Message) -> Message {
    s.write_all(&m.raw).await.unwrap();
    let mut res = Message::new();
    res.raw = read_frame(s).await;
    res.decode().unwrap();
    assert_eq!(res.transaction_id, m.transaction_id);
    res
}

async fn recv_peer(peer: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 1500];
    let (n, from) = tokio::time::timeout(STEP, peer.recv_from(&mut buf)).await.expect("datagram in time").unwrap();
    (buf[..n].to_vec(), from)
}

/// The whole raw TURN exchange over one stream.
async fn raw_client(mut s: impl AsyncRead + AsyncWrite + Unpin) {
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let pa = || Box::new(PeerAddress { ip: peer_addr.ip(), port: peer_addr.port() });

    // Allocate without credentials: 401 with realm and nonce.
    let m = msg(vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(RequestedTransport { protocol: PROTO_UDP }),
    ]);
    let res = transact(&mut s, &m).await;
    let mut code = ErrorCodeAttribute::default();
    code.get_from(&res).unwrap();
    assert!(code.code == CODE_UNAUTHORIZED, "{code}");
    let nonce = Nonce::get_from_as(&res, ATTR_NONCE).unwrap();
    let realm = Realm::get_from_as(&res, ATTR_REALM).unwrap();
    let user = Username::new(stun::attributes::ATTR_USERNAME, "icelab".into());
    let integrity = MessageIntegrity::new_long_term_integrity("icelab".into(), realm.text.clone(), "icelab".into());
    let auth = |mut v: Vec<Box<dyn Setter>>| {
        v.push(Box::new(user.clone()));
        v.push(Box::new(realm.clone()));
        v.push(Box::new(nonce.clone()));
        v.push(Box::new(integrity.clone()));
        msg(v)
    };

    // Allocate with long-term credentials.
    let m = auth(vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
        Box::new(RequestedTransport { protocol: PROTO_UDP }),
    ]);
    let res = transact(&mut s, &m).await;
    assert_eq!(res.typ, MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE), "{res}");
    let mut relayed = RelayedAddress::default();
    relayed.get_from(&res).unwrap();
    let relay: SocketAddr = (relayed.ip, relayed.port).into();

    // CreatePermission, then Send -> the peer; the peer's answer comes back as Data.
    let m = auth(vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
        pa(),
    ]);
    let res = transact(&mut s, &m).await;
    assert_eq!(res.typ, MessageType::new(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE), "{res}");
    let m = msg(vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_SEND, CLASS_INDICATION)),
        pa(),
        Box::new(Data(b"hello".to_vec())),
    ]);
    s.write_all(&m.raw).await.unwrap();
    assert_eq!(recv_peer(&peer).await, (b"hello".to_vec(), relay));
    peer.send_to(b"world", relay).await.unwrap();
    let mut ind = Message::new();
    ind.raw = read_frame(&mut s).await;
    ind.decode().unwrap();
    assert_eq!(ind.typ, MessageType::new(METHOD_DATA, CLASS_INDICATION));
    let mut data = Data::default();
    data.get_from(&ind).unwrap();
    assert_eq!(data.0, b"world");

    // ChannelBind, then ChannelData both ways with odd lengths (padding on the stream).
    let m = auth(vec![
        Box::new(TransactionId::new()),
        Box::new(MessageType::new(METHOD_CHANNEL_BIND, CLASS_REQUEST)),
        Box::new(ChannelNumber(0x4000)),
        pa(),
    ]);
    let res = transact(&mut s, &m).await;
    assert_eq!(res.typ, MessageType::new(METHOD_CHANNEL_BIND, CLASS_SUCCESS_RESPONSE), "{res}");
    s.write_all(&[0x40, 0x00, 0x00, 0x05, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]).await.unwrap();
    assert_eq!(recv_peer(&peer).await, (b"abcde".to_vec(), relay));
    for payload in [&b"xyz"[..], &b"12345"[..]] {
        peer.send_to(payload, relay).await.unwrap();
        let f = read_frame(&mut s).await;
        assert_eq!(&f[..4], &[0x40, 0x00, 0x00, payload.len() as u8], "{f:?}");
        assert_eq!(&f[4..], payload);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_over_tcp() {
    let turn = server().await;
    let tcp = TcpStream::connect(turn.tcp_addr.unwrap()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    raw_client(tcp).await;
    turn.stop().await.unwrap();
}

/// Pins the server's certificate (the test knows it; lab peers cannot, see turn_shim).
#[derive(Debug)]
struct Pinned(Vec<u8>, Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.0.as_slice() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("certificate is not the pinned one".into()))
        }
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.1.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.1.signature_verification_algorithms.supported_schemes()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_client_over_tls() {
    let turn = server().await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned(turn.tls_cert_der.clone().unwrap(), provider)))
        .with_no_client_auth();
    let tcp = TcpStream::connect(turn.tls_addr.unwrap()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let name = rustls::pki_types::ServerName::IpAddress("127.0.0.1".parse::<std::net::IpAddr>().unwrap().into());
    let tls = tokio::time::timeout(STEP, tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp))
        .await
        .expect("handshake in time")
        .unwrap();
    raw_client(tls).await;
    turn.stop().await.unwrap();
}

/// Offerer: relay-only, its one ICE server a stream URL; answerer: plain loopback host.
async fn call_through(url: String, want: &str) {
    let base = |role| PeerConfig {
        udp_bind: vec!["127.0.0.1:0".into()],
        data_duration_ms: 300,
        data_chunk_bytes: 1024,
        // Paced like media: an unpaced flood through a relay overruns buffers and SCTP then
        // stalls on its retransmission timer (as in the bundled relay scenarios).
        data_rate_kbps: Some(2000),
        // Relayed setup is slow with webrtc-rs 0.21 (see peer_loopback).
        deadline_ms: 25_000,
        ..PeerConfig::new(role)
    };
    let offerer = PeerConfig {
        ice_servers: vec![IceServer {
            urls: vec![url.clone()],
            username: "icelab".into(),
            credential: "icelab".into(),
        }],
        transport_policy: TransportPolicy::Relay,
        ..base(Role::Offerer)
    };
    let o = call_pair(offerer, base(Role::Answerer), Duration::from_secs(30)).await;
    eprintln!("{url}: {}", serde_json::to_string_pretty(&o).unwrap());
    assert!(o.ok(), "both peers done");
    let relays: Vec<_> = o.offerer.candidates.iter().map(|c| &c.candidate).collect();
    assert!(!relays.is_empty());
    for c in &relays {
        assert_eq!(c.candidate_type, "relay");
        assert_eq!(c.relay_protocol.as_deref(), Some(want), "{c:?}");
        assert_eq!(c.url.as_deref(), Some(url.as_str()));
    }
    let pair = o.offerer.selected_pair.as_ref().expect("selected pair");
    assert!(pair.relay_based, "{pair:?}");
    assert_eq!(pair.local.base_type, "relay");
    assert_eq!(pair.relay_protocol.as_deref(), Some(want), "{pair:?}");
    assert_eq!(pair.local.url.as_deref(), Some(url.as_str()));
    assert!(o.offerer.data.as_ref().is_some_and(|d| d.bytes_received > 0), "data crossed the relay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_relayed_over_tcp() {
    let turn = server().await;
    call_through(format!("turn:{}?transport=tcp", turn.tcp_addr.unwrap()), "tcp").await;
    turn.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_relayed_over_tls() {
    let turn = server().await;
    call_through(format!("turns:{}", turn.tls_addr.unwrap()), "tls").await;
    turn.stop().await.unwrap();
}
