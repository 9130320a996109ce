//! Loopback tests (no root): server on 127.0.0.1 / 127.0.0.2, ephemeral ports.

use icelab::stun::client::{Request, Timing, binding, recv_matching, retransmit};
use icelab::stun::{Behaviour, ProbeOptions, StunServer, StunServerConfig, probe};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

async fn server(alternate: bool) -> StunServer {
    StunServer::start(StunServerConfig {
        primary: A.parse().unwrap(),
        alternate: alternate.then(|| B.parse().unwrap()),
        port: 0,
        alt_port: 0,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn sock() -> UdpSocket {
    UdpSocket::bind((A.parse::<IpAddr>().unwrap(), 0)).await.unwrap()
}

#[tokio::test]
async fn probe_on_loopback_sees_no_nat() {
    let srv = server(true).await;
    let r = probe(srv.primary(), ProbeOptions::default()).await.unwrap();
    assert!(!r.nat, "{r}");
    assert_eq!(r.mapping, Some(Behaviour::EndpointIndependent));
    assert_eq!(r.filtering, Some(Behaviour::EndpointIndependent));
    assert_eq!(r.other_address, srv.other());
    assert!(r.port_preservation);
    let json: serde_json::Value = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mapping"], "endpoint-independent");
    assert_eq!(json["filtering"], "endpoint-independent");
    assert_eq!(json["nat"], false);
    assert!(json["lifetime_s"].is_null());
    assert!(json["hairpinning"].is_null());
    assert!(r.to_string().contains("mapping:           endpoint-independent"));
    srv.stop().await.unwrap();
}

#[tokio::test]
async fn change_request_answers_from_the_right_socket() {
    let srv = server(true).await;
    let a = srv.local_addrs().to_vec(); // [p:p, p:alt, alt:p, alt:alt]
    assert_eq!(a.len(), 4);
    let s = sock().await;
    for (ip, port, want) in [(false, false, a[0]), (false, true, a[1]), (true, false, a[2]), (true, true, a[3])] {
        let req = Request { change_ip: ip, change_port: port, ..Default::default() };
        let r = binding(&s, a[0], req, Timing::default()).await.unwrap().unwrap();
        assert_eq!(r.source, want, "change ip={ip} port={port}");
        assert_eq!(r.response_origin, Some(want));
        assert_eq!(r.other_address, Some(a[3]));
        assert_eq!(r.mapped, s.local_addr().unwrap());
    }
    // Requests to the alternate socket name the primary as OTHER-ADDRESS.
    let r = binding(&s, a[3], Request::default(), Timing::default()).await.unwrap().unwrap();
    assert_eq!(r.other_address, Some(a[0]));
    assert_eq!(r.source, a[3]);
}

#[tokio::test]
async fn single_address_server_answers_binding_and_rejects_change() {
    let srv = server(false).await;
    assert_eq!(srv.local_addrs().len(), 1);
    let s = sock().await;
    let r = binding(&s, srv.primary(), Request::default(), Timing::default()).await.unwrap().unwrap();
    assert_eq!(r.mapped, s.local_addr().unwrap());
    assert_eq!(r.other_address, None);
    let req = Request { change_port: true, ..Default::default() };
    let err = binding(&s, srv.primary(), req, Timing::default()).await.unwrap_err();
    assert!(err.to_string().contains("420"), "{err}");
    let r = probe(srv.primary(), ProbeOptions::default()).await.unwrap();
    assert_eq!((r.mapping, r.filtering), (None, None));
}

#[tokio::test]
async fn response_target_extension_delivers_to_target() {
    let srv = server(true).await;
    let (x, y) = (sock().await, sock().await);
    let target = x.local_addr().unwrap();
    let (tid, bytes) = Request { response_target: Some(target), ..Default::default() }.encode().unwrap();
    let t = Timing::default();
    let deadline = tokio::time::Instant::now() + t.deadline;
    let got = tokio::select! {
        r = recv_matching(&x, tid, deadline) => r,
        _ = retransmit(&y, srv.primary(), &bytes, t, deadline) => None,
    };
    let (msg, from) = got.expect("target received the response");
    assert_eq!(from, srv.primary());
    let r = icelab::stun::client::BindingResponse::parse(&msg, from).unwrap();
    // The mapped address is the requester's, the delivery went to the target.
    assert_eq!(r.mapped, y.local_addr().unwrap());
}

#[tokio::test]
async fn lifetime_without_nat_outlives_max() {
    let srv = server(true).await;
    let opts = ProbeOptions { lifetime_max: Some(Duration::from_secs(1)), ..Default::default() };
    let r = probe(srv.primary(), opts).await.unwrap();
    assert_eq!(r.lifetime_s, Some(1.0), "{r}");
    assert_eq!(r.lifetime_dead_s, None);
}

#[tokio::test]
async fn probe_of_dead_server_errors_within_deadline() {
    // A bound but silent socket: nothing answers, no ICMP either.
    let silent = sock().await;
    let dead: SocketAddr = silent.local_addr().unwrap();
    let opts = ProbeOptions {
        timing: Timing { initial_rto: Duration::from_millis(50), deadline: Duration::from_millis(600) },
        ..Default::default()
    };
    let start = Instant::now();
    let err = probe(dead, opts).await.unwrap_err();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(took >= Duration::from_millis(500), "took {took:?}");
    assert!(err.to_string().contains("no response"), "{err}");
    // Nothing bound at all (ICMP port unreachable) must also end in time.
    drop(silent);
    let start = Instant::now();
    assert!(probe(dead, ProbeOptions::default()).await.is_err());
    assert!(start.elapsed() < Duration::from_secs(3));
}

/// With counters, the server counts each Binding it answered and times it from the
/// request's read: the figures a lab's STUN server writes for the run's report.
#[tokio::test]
async fn a_counted_server_counts_and_times_its_bindings() {
    let counters = std::sync::Arc::new(icelab::counters::ServerCounters::default());
    let srv = StunServer::start(StunServerConfig {
        primary: A.parse().unwrap(),
        port: 0,
        alt_port: 0,
        counters: Some(counters.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let s = sock().await;
    for _ in 0..3 {
        binding(&s, srv.primary(), Request::default(), Timing::default()).await.unwrap().unwrap();
    }
    // A CHANGE-REQUEST this server cannot honour (no alternate) is answered with 420:
    // timed, but not a binding.
    let req = Request { change_ip: true, ..Default::default() };
    let _ = binding(&s, srv.primary(), req, Timing::default()).await;
    let snap = counters.snapshot();
    assert_eq!(snap.stun_bindings, 3, "{snap:?}");
    assert_eq!(snap.answer_latency_us["Binding"].count(), 4, "{snap:?}");
    assert_eq!((snap.allocations, snap.to_peers.packets), (0, 0));
    srv.stop().await.unwrap();
}
