//! Two in-process peers on loopback: host pair, TURN relay pair, and a timeout.

use std::time::{Duration, Instant};

use icelab::peer::{Outcome, PeerConfig, PeerOutcome, Role, call_pair};

fn loopback_cfg(role: Role) -> PeerConfig {
    PeerConfig {
        udp_bind: vec!["127.0.0.1:0".into()],
        data_duration_ms: 300,
        data_chunk_bytes: 16 * 1024,
        deadline_ms: 10_000,
        ..PeerConfig::new(role)
    }
}

fn assert_ordered(p: &PeerOutcome) {
    let g = p.gathering_complete_ms.expect("gathering complete");
    let ice = p.ice_connected_ms.expect("ice connected");
    let dtls = p.dtls_connected_ms.expect("dtls connected");
    let dc = p.data_channel_open_ms.expect("data channel open");
    assert!(g <= ice, "gathering {g} <= ice {ice}");
    assert!(ice <= dtls, "ice {ice} <= dtls {dtls}");
    assert!(dtls <= dc, "dtls {dtls} <= dc {dc}");
}

fn print(label: &str, o: &Outcome) {
    eprintln!("{label}: {}", serde_json::to_string_pretty(o).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_pair_on_loopback() {
    let o = call_pair(loopback_cfg(Role::Offerer), loopback_cfg(Role::Answerer), Duration::from_secs(15)).await;
    print("host", &o);
    assert!(o.ok(), "both peers done");
    for p in [&o.offerer, &o.answerer] {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert!(p.exit_error.is_none());
        let pair = p.selected_pair.as_ref().expect("selected pair");
        assert_eq!(pair.local.candidate_type, "host");
        assert_eq!(pair.remote.base_type, "host");
        assert_eq!(pair.local.protocol, "udp");
        assert!(!pair.relay_based);
        let data = p.data.as_ref().expect("data stats");
        assert!(data.bytes_received > 0 && data.recv_bytes_per_sec > 0.0);
        assert!(data.bytes_sent > 0 && data.send_bytes_per_sec > 0.0);
        assert_ordered(p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_offer_times_out() {
    use tokio::io::{AsyncBufReadExt, BufReader, duplex};
    let cfg = PeerConfig { deadline_ms: 800, ..loopback_cfg(Role::Offerer) };
    // Nobody ever writes to the peer's input, as if the answerer never answers.
    let (peer_in, _silent) = duplex(4096);
    let (peer_out, reader) = duplex(64 * 1024);
    let started = Instant::now();
    let res = icelab::peer::run_peer(cfg, BufReader::new(peer_in), peer_out).await;
    let elapsed = started.elapsed();
    assert!(res.is_err(), "must fail");
    assert!(elapsed >= Duration::from_millis(800) && elapsed < Duration::from_millis(800 + 700), "elapsed {elapsed:?}");
    let mut events = Vec::new();
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(l)) = lines.next_line().await {
        events.push(serde_json::from_str::<icelab::peer::PeerEvent>(&l).unwrap());
    }
    let out = PeerOutcome::from_events(&events);
    assert!(out.timed_out, "{:?}", out.errors);
    assert!(!out.ok);
    assert_eq!(out.errors.last().unwrap().phase, icelab::peer::Phase::Signaling);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_pair_through_builtin_turn() {
    use icelab::peer::{IceServer, TransportPolicy};
    use icelab::turn::{TurnServerConfig, serve_turn};
    let turn = serve_turn(TurnServerConfig {
        public_ip: "127.0.0.1".parse().unwrap(),
        bind_ip: "127.0.0.1".parse().unwrap(),
        udp_port: Some(0),
        tcp_port: None,
        tls_port: None,
        allowed_peer_subnets: vec!["127.0.0.0/8".parse().unwrap()],
        ..TurnServerConfig::default()
    })
    .await
    .unwrap();
    let url = format!("turn:{}?transport=udp", turn.udp_addr.unwrap());
    let relay_cfg = |role| PeerConfig {
        ice_servers: vec![IceServer {
            urls: vec![url.clone()],
            username: "icelab".into(),
            credential: "icelab".into(),
        }],
        transport_policy: TransportPolicy::Relay,
        // Relayed setup is slow with webrtc-rs 0.21 (see the report), so allow more time.
        deadline_ms: 25_000,
        data_chunk_bytes: 1024,
        ..loopback_cfg(role)
    };
    let o = call_pair(relay_cfg(Role::Offerer), relay_cfg(Role::Answerer), Duration::from_secs(30)).await;
    print("relay", &o);
    turn.stop().await.unwrap();
    assert!(o.ok(), "both peers done");
    for p in [&o.offerer, &o.answerer] {
        assert!(p.candidates.iter().all(|c| c.candidate.candidate_type == "relay"));
        let pair = p.selected_pair.as_ref().expect("selected pair");
        assert!(pair.relay_based, "{pair:?}");
        assert_eq!(pair.relay_protocol.as_deref(), Some("udp"));
        let data = p.data.as_ref().expect("data stats");
        assert!(data.bytes_received > 0 && data.recv_bytes_per_sec > 0.0);
    }
}

/// The offerer restarts ICE mid-call (test hook: the path stays healthy, loopback cannot
/// break); the answerer takes the re-offer, ICE reconnects and the data keeps flowing to
/// the end of the exchange over the same channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_restart_mid_call_keeps_the_call() {
    use icelab::peer::IceRestart;
    let cfg = |role| PeerConfig {
        data_duration_ms: 2500,
        data_rate_kbps: Some(2000),
        ice_restart: Some(IceRestart { after_disconnected_ms: 500, max_restarts: 2 }),
        test_restart_after_open_ms: Some(500),
        ..loopback_cfg(role)
    };
    let o = call_pair(cfg(Role::Offerer), cfg(Role::Answerer), Duration::from_secs(15)).await;
    print("restart", &o);
    assert!(o.ok(), "both peers done: {:?} {:?}", o.offerer.errors, o.answerer.errors);
    assert_eq!(o.offerer.ice_restarts, 1, "offerer restarted once");
    assert_eq!(o.answerer.ice_restarts, 1, "answerer took one re-offer");
    for p in [&o.offerer, &o.answerer] {
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        let data = p.data.as_ref().expect("data stats");
        // Data kept arriving well past the restart at +500 ms.
        assert!(data.recv_duration_ms > 2000.0, "{data:?}");
        assert!(p.selected_pair.is_some());
    }
}

/// One pool process's worth of peers (`icelab peer --pool`, here in-process): three
/// calls at once, both sides of each in the same pool, signaling routed by call number;
/// every call connects and exits cleanly, a bad config fails its call alone, and an
/// aborted call is answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_plays_many_calls_at_once() {
    use icelab::peer::pool_wire::{PoolIn, PoolOut};
    use icelab::peer::{PeerEvent, SignalMsg};
    use std::collections::HashMap;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, duplex};

    let (mut to_pool, pool_in) = duplex(1 << 20);
    let (pool_out, from_pool) = duplex(1 << 20);
    let pool = tokio::spawn(icelab::peer::run_pool(BufReader::new(pool_in), pool_out));
    let mut send = async |line: String| {
        to_pool.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    };
    // Calls 0/1, 2/3, 4/5: offerer and answerer; 6: a bad config; 7: silent, aborted.
    for pair in 0..3u64 {
        for (call, role) in [(2 * pair, Role::Offerer), (2 * pair + 1, Role::Answerer)] {
            let config = serde_json::to_string(&loopback_cfg(role)).unwrap();
            send(PoolIn::Start { call, config: &config }.encode()).await;
        }
    }
    send(PoolIn::Start { call: 6, config: "{\"role\":" }.encode()).await;
    let silent = PeerConfig { test_silent: true, ..loopback_cfg(Role::Answerer) };
    send(PoolIn::Start { call: 7, config: &serde_json::to_string(&silent).unwrap() }.encode()).await;
    send(PoolIn::Abort { call: 7 }.encode()).await;

    let mut events: HashMap<u64, Vec<PeerEvent>> = HashMap::new();
    let mut exits: HashMap<u64, Option<String>> = HashMap::new();
    let mut lines = BufReader::new(from_pool).lines();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    while exits.len() < 8 {
        let line = tokio::time::timeout_at(until, lines.next_line()).await.expect("pool output in time");
        let line = line.unwrap().expect("the pool is still running");
        match PoolOut::decode(&line).unwrap() {
            PoolOut::Event { call, event } => {
                let ev: PeerEvent = serde_json::from_str(event).unwrap();
                if let PeerEvent::Signal { signal, .. } = &ev {
                    let msg = serde_json::to_string::<SignalMsg>(signal).unwrap();
                    send(PoolIn::Signal { call: call ^ 1, msg: &msg }.encode()).await;
                }
                events.entry(call).or_default().push(ev);
            }
            PoolOut::Exit { call, error } => {
                assert!(exits.insert(call, error.map(str::to_string)).is_none(), "one exit per call");
            }
        }
    }
    for pair in 0..3u64 {
        let o = Outcome::from_events(&events[&(2 * pair)], &events[&(2 * pair + 1)]);
        assert!(o.ok(), "call pair {pair}: {}", serde_json::to_string_pretty(&o).unwrap());
        assert_ordered(&o.offerer);
        assert_eq!(exits[&(2 * pair)], None);
        assert_eq!(exits[&(2 * pair + 1)], None);
    }
    assert!(exits[&6].as_deref().unwrap().contains("bad peer config"), "{:?}", exits[&6]);
    assert!(exits[&7].as_deref().unwrap().contains("aborted"), "{:?}", exits[&7]);
    // Input closed: the pool ends once its calls have.
    drop(to_pool);
    tokio::time::timeout(Duration::from_secs(10), pool).await.expect("the pool ended").unwrap().unwrap();
}
