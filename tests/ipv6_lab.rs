//! Root tests: the bundled IPv6 scenarios, run by `icelab run`, and the root namespace
//! (IPv6 addresses, routes and rules included) untouched around an IPv6 lab. They fail
//! without root unless ICELAB_SKIP_ROOT_TESTS=1.

mod common;

use common::*;

/// Runs a bundled scenario, asserting it passes and leaves no namespace behind.
fn run_passes(file: &str, tag: &str) {
    let name = lab_name(tag);
    let o = icelab(&["run", &topology(file), "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{file}:\n{}{}", stdout(&o), stderr(&o));
    assert!(lab_namespaces(&name).is_empty(), "{file} left namespaces");
}

#[test]
fn dual_stack_homes_pick_an_ipv6_host_pair() {
    if !require_root() {
        return;
    }
    let before = root_snapshot();
    run_passes("call-ipv6-dual-stack.toml", "v6d");
    assert_eq!(before, root_snapshot(), "an IPv6 lab changed the root namespace");
}

#[test]
fn ipv6_firewalls_open_by_simultaneous_checks() {
    if !require_root() {
        return;
    }
    run_passes("call-ipv6-firewalls.toml", "v6f");
}

#[test]
fn ipv6_only_hosts_meet_through_the_relay() {
    if !require_root() {
        return;
    }
    run_passes("call-ipv6-relay.toml", "v6r");
}

/// IPv6 is on only in an IPv6 lab's namespaces, and its routers' firewalls drop
/// inbound new traffic: an IPv4 lab's hosts have no IPv6 at all.
#[test]
fn ipv6_is_on_only_where_the_lab_asks() {
    if !require_root() {
        return;
    }
    let v6 = lab_name("v6on");
    let o = icelab(&["up", &topology("call-ipv6-dual-stack.toml"), "--name", &v6]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _v6 = LabGuard(v6.clone());
    let v4 = lab_name("v4off");
    let o = icelab(&["up", &topology("two-home-routers.toml"), "--name", &v4]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _v4 = LabGuard(v4.clone());
    let sysctl = |lab: &str, node: &str| {
        sh(&format!("ip netns exec icelab-{lab}-{node} sysctl -n net.ipv6.conf.all.disable_ipv6")).trim().to_string()
    };
    assert_eq!(sysctl(&v6, "alice"), "0");
    assert_eq!(sysctl(&v4, "alice"), "1");
    let addrs = sh(&format!("ip -n icelab-{v6}-alice -6 -o addr show scope global"));
    assert!(addrs.contains("2001:db8:1:0:192:168:1:10/64"), "{addrs}");
    assert!(sh(&format!("ip -n icelab-{v4}-alice -6 -o addr show")).trim().is_empty());
    let fw = sh(&format!("ip netns exec icelab-{v6}-home1 nft list table ip6 icelab6"));
    assert!(fw.contains("iifname \"wan\" oifname \"lan\" drop"), "{fw}");
}

/// The v6-only carrier: DNS64 answers its hosts with addresses inside the NAT64 prefix
/// (and everyone else with the plain records), tayga carries a STUN request to the
/// IPv4-only relay, the host's own resolver file is bound only inside the lab, and the
/// bundled scenario passes with the root namespace untouched.
#[test]
fn a_v6_only_carrier_reaches_an_ipv4_relay_through_nat64_and_dns64() {
    if !require_root() {
        return;
    }
    let resolv_before = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let before = root_snapshot();
    let name = lab_name("v6n");
    let o = icelab(&["up", &topology("call-ipv6-nat64.toml"), "--name", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let guard = LabGuard(name.clone());
    let exec = |node: &str, cmd: &[&str]| {
        let mut args = vec!["exec", &name, node, "--"];
        args.extend(cmd);
        icelab(&args)
    };
    let alice = stdout(&exec("alice", &["getent", "ahosts", "relay.icelab.test"]));
    assert!(alice.starts_with("2001:db8:ffff:64::c633:640a"), "DNS64 answer: {alice}");
    assert!(!alice.contains("198.51.100.10"), "a v6-only host gets no A answer it could use: {alice}");
    let bob = stdout(&exec("bob", &["getent", "ahosts", "relay.icelab.test"]));
    assert!(bob.starts_with("198.51.100.10"), "plain answer: {bob}");
    // A binding request over NAT64 is answered by the IPv4-only relay.
    let o = exec("alice", &[env!("CARGO_BIN_EXE_icelab"), "wait-stun", "[2001:db8:ffff:64::c633:640a]:3478"]);
    assert!(o.status.success(), "STUN through NAT64: {}{}", stdout(&o), stderr(&o));
    let tayga = sh(&format!("ip -n icelab-{name}-carrier route show dev nat64"));
    assert!(tayga.contains("198.18.64.0/24"), "{tayga}");
    drop(guard);
    assert!(lab_namespaces(&name).is_empty());
    run_passes("call-ipv6-nat64.toml", "v6n");
    assert_eq!(resolv_before, std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
    assert_eq!(before, root_snapshot(), "a NAT64 lab changed the root namespace");
}

/// The field bug NAT64 labs exist for: without names (no DNS in the lab) the peers get
/// the relay's IPv4 literal, which a v6-only host cannot reach, so the call fails.
#[test]
fn a_v6_only_host_cannot_use_an_ipv4_literal_turn_url() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(topology("call-ipv6-nat64.toml")).unwrap();
    let edited =
        src.replace("[server.dns]\nservices = [\"dns\"]\n", "").replace("deadline-ms = 12000", "deadline-ms = 4000");
    assert_ne!(src, edited);
    let file = dir.path().join("literal.toml");
    std::fs::write(&file, edited).unwrap();
    let name = lab_name("v6l");
    let o = icelab(&["run", file.to_str().unwrap(), "--name", &name, "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["outcome"]["offerer"]["ok"], false, "{v:#}");
    // alice gathered her IPv6 host candidate and nothing from the IPv4-only relay.
    let types: Vec<&str> = v["outcome"]["offerer"]["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["candidate"]["candidate_type"].as_str())
        .collect();
    assert!(types.iter().all(|t| *t == "host") && !types.is_empty(), "{types:?}");
    assert!(lab_namespaces(&name).is_empty());
}

/// NPTv6 swaps the prefix 1:1 and keeps the host part (Chromium passes the bundled
/// scenario, see `tests/browser_peers.rs`); the built-in peer's known failure behind it
/// is kept as a reproduction: webrtc-rs reads the STUN server's 128-byte IPv6 answer
/// as a 120-byte segment, while a plain socket reads it whole. When this fails because
/// the call passes, the upstream bug is gone: give the file back to the built-in peer.
#[test]
fn nptv6_translates_the_prefix_and_webrtc_rs_still_splits_the_answer() {
    if !require_root() {
        return;
    }
    let name = lab_name("v6p");
    let o = icelab(&["up", &topology("call-ipv6-nptv6.toml"), "--name", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let guard = LabGuard(name.clone());
    let probe = "import socket;s=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM);s.settimeout(2);\
                 s.sendto(bytes.fromhex('000100002112a442')+b'abcdefghijkl',('2001:db8::198:51:100:10',3478));\
                 d,a=s.recvfrom(500);print(len(d),d.hex())";
    let o = icelab(&["exec", &name, "alice", "--", "python3", "-c", probe]);
    let out = stdout(&o);
    assert!(out.starts_with("128 "), "a plain socket reads the answer whole: {out}{}", stderr(&o));
    // XOR-MAPPED-ADDRESS (0x0020, family 2): alice's ULA host part under the public /64.
    let hex = out.split_whitespace().nth(1).unwrap();
    let at = hex.find("00200014").expect("an IPv6 XOR-MAPPED-ADDRESS");
    let xored: Vec<u8> =
        (0..16).map(|i| u8::from_str_radix(&hex[at + 16 + 2 * i..at + 18 + 2 * i], 16).unwrap()).collect();
    let key: Vec<u8> = [0x21, 0x12, 0xa4, 0x42].into_iter().chain(*b"abcdefghijkl").collect();
    let addr: Vec<u8> = xored.iter().zip(&key).map(|(x, k)| x ^ k).collect();
    let addr = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(addr).unwrap());
    assert_eq!(addr.to_string(), "2001:db8:1:0:192:168:1:10");
    // `icelab probe` from the IPv6-only host uses the STUN server's IPv6 address and
    // classifies the translation and the firewall (RFC 5780 over IPv6).
    let o = icelab(&["probe", &name, "alice", "--json"]);
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    assert_eq!(p["server"], "[2001:db8::198:51:100:10]:3478", "{p}");
    assert!(p["mapped"].as_str().unwrap().starts_with("[2001:db8:1:0:192:168:1:10]:"), "{p}");
    assert_eq!(
        (&p["mapping"], &p["filtering"]),
        (&"endpoint-independent".into(), &"address-and-port-dependent".into())
    );
    // The echo responder answers over IPv6 too.
    let o = icelab(&["exec", &name, "alice", "--", env!("CARGO_BIN_EXE_icelab"), "echo", "2001:db8::1"]);
    assert!(o.status.success() && stdout(&o).contains("3/3 replies"), "{}{}", stdout(&o), stderr(&o));
    drop(guard);
    let o = icelab(&["run", &topology("call-ipv6-nptv6.toml"), "--peers", "built-in", "--name", &name]);
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("buffer length 120 is less than 128"), "{all}");
    assert!(lab_namespaces(&name).is_empty());
}

/// TURN over TCP and TLS from IPv6-only hosts: the built-in peer's stream shim listens on
/// IPv6 loopback there and carries the allocation over an IPv6 stream to the relay.
#[test]
fn ipv6_only_hosts_relay_over_turn_tcp_and_tls() {
    if !require_root() {
        return;
    }
    let src = std::fs::read_to_string(topology("call-ipv6-relay.toml")).unwrap();
    for transport in ["tcp", "tls"] {
        let dir = tempfile::tempdir().unwrap();
        let edited = src
            .replace("turn-transports = [\"udp\"]", &format!("turn-transports = [\"{transport}\"]"))
            .replace("relay-transport = \"udp\"", &format!("relay-transport = \"{transport}\""));
        assert_ne!(src, edited);
        let file = dir.path().join(format!("v6-{transport}.toml"));
        std::fs::write(&file, edited).unwrap();
        let name = lab_name(&format!("v6{transport}"));
        let o = icelab(&["run", file.to_str().unwrap(), "--name", &name, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{transport}: {}{}", stdout(&o), stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let local = &v["outcome"]["offerer"]["selected_pair"]["local"];
        assert_eq!(local["relay_protocol"], transport, "{local}");
        let url = local["url"].as_str().unwrap();
        assert!(url.contains("[2001:db8::198:51:100:10]"), "allocated over IPv6: {url}");
        assert!(lab_namespaces(&name).is_empty());
    }
}
