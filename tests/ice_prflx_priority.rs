//! The one fix icelab carries in webrtc-rs's ICE agent (vendor/rtc-ice/ICELAB-PATCH.md):
//! a check from an address the agent does not know makes a peer-reflexive candidate whose
//! priority is the PRIORITY attribute of that check (RFC 8445 section 7.3.1.3), so a check
//! that came over the peer's TURN relay ranks as low as the relay it came from instead of
//! tying with a direct path. Driven through the agent's sans-IO API, no network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_ice::attributes::{control::AttrControlled, priority::PriorityAttr};
use rtc_ice::candidate::candidate_host::CandidateHostConfig;
use rtc_ice::candidate::{CandidateConfig, CandidateType};
use rtc_ice::{Agent, AgentConfig};
use rtc_shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc_stun::attributes::ATTR_USERNAME;
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{BINDING_REQUEST, Message, TransactionId};
use rtc_stun::textattrs::Username;
use sansio::Protocol;

const LOCAL: &str = "192.168.1.10:5000";
const REMOTE_UFRAG: &str = "remoteufrag";
const REMOTE_PWD: &str = "remotepasswordremotepassword";

/// A controlling agent with one host candidate, checking against a peer it has no candidate of.
fn agent() -> Agent {
    let crypto = rtc_ice::crypto::default_provider().expect("a crypto provider");
    let mut a = Agent::new(Instant::now(), Arc::new(AgentConfig::default()), crypto).expect("agent");
    let host = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".into(),
            address: "192.168.1.10".into(),
            port: 5000,
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .expect("host candidate");
    a.add_local_candidate(host).expect("add host");
    a.start_connectivity_checks(Instant::now(), true, REMOTE_UFRAG.into(), REMOTE_PWD.into()).expect("start");
    a
}

/// The peer's binding request, as its agent sends it from a candidate of `priority`.
fn check(a: &Agent, from: SocketAddr, priority: u32) -> TaggedBytesMut {
    let local = a.get_local_credentials().clone();
    let crypto = rtc_ice::crypto::default_provider().expect("a crypto provider");
    let mut m = Message::new();
    m.build(&[
        Box::new(BINDING_REQUEST),
        Box::new(TransactionId::new()),
        Box::new(Username::new(ATTR_USERNAME, format!("{}:{REMOTE_UFRAG}", local.ufrag))),
        Box::new(AttrControlled(7)),
        Box::new(PriorityAttr(priority)),
        Box::new(MessageIntegrity::new_short_term_integrity_with_provider(local.pwd, crypto.crypto())),
        Box::new(FINGERPRINT),
    ])
    .expect("binding request");
    TaggedBytesMut {
        now: Instant::now(),
        transport: TransportContext {
            local_addr: LOCAL.parse().unwrap(),
            peer_addr: from,
            transport_protocol: TransportProtocol::UDP,
            ecn: None,
        },
        message: BytesMut::from(&m.raw[..]),
    }
}

fn prflx_priority(a: &Agent, addr: SocketAddr) -> u32 {
    let c = a
        .get_remote_candidates()
        .iter()
        .find(|c| c.addr() == addr)
        .unwrap_or_else(|| panic!("no remote candidate learned for {addr}"));
    assert_eq!(c.candidate_type(), CandidateType::PeerReflexive);
    c.priority()
}

#[test]
fn a_prflx_takes_the_priority_its_check_carried() {
    let mut a = agent();
    // Relay-type (0) and host-type (126) priorities, as webrtc-rs puts them in its checks.
    let (relay_prio, host_prio) = (16_777_215u32, 2_130_706_431u32);
    let over_relay: SocketAddr = "198.51.100.12:40830".parse().unwrap();
    let direct: SocketAddr = "203.0.113.11:36054".parse().unwrap();
    // The relayed check arrives first, as in the race it fixes.
    a.handle_read(check(&a, over_relay, relay_prio)).expect("relayed check");
    a.handle_read(check(&a, direct, host_prio)).expect("direct check");
    assert_eq!(prflx_priority(&a, over_relay), relay_prio);
    assert_eq!(prflx_priority(&a, direct), host_prio);
    assert!(prflx_priority(&a, direct) > prflx_priority(&a, over_relay), "the direct path must rank first");
}
