//! Proves the generated rulesets on real network namespaces (needs root).
//!
//! Lab per test: `lan` (192.168.1.10) -- `router` (192.168.1.1 | 203.0.113.2)
//! -- `inet` (203.0.113.1 | 198.51.100.1) -- `srv` (198.51.100.10 and .20).
//! The router's `lan0` is a veth, or with [`Lab::bridged`] a bridge with one
//! veth port (as `icelab up` builds LANs) and br_netfilter's
//! `bridge-nf-call-iptables` on when the host has that module loaded.
//! Sockets are created inside a namespace on a helper thread (`setns`) and then
//! used from the test thread: a socket stays in the namespace it was made in.
//! Fails when not root unless `ICELAB_SKIP_ROOT_TESTS=1`.

use icelab::firewall::{self, FirewallCtx, FirewallPreset, FirewallSpec, FwRole};
use icelab::nat::{self, Filtering, Mapping, NatBehaviour, NatMode, NatPreset, PortPreservation, RouterNat};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

const WAN: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 2);
const NEGATIVE_WAIT: Duration = Duration::from_millis(500);

/// Namespaces of one lab (`icelab-<claim>-<tag>-<node>`); deleted on drop, even when
/// the test panics. The claim, dropped last, makes a crashed test's namespaces leftovers
/// that `icelab cleanup` removes, and keeps a concurrent cleanup off live ones.
struct Lab {
    prefix: String,
    made: Vec<String>,
    _claim: icelab::fabric::registry::Claim,
}

/// A lab name unique on this machine: `n<pid>x<counter>`.
fn claim() -> icelab::fabric::registry::Claim {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    icelab::fabric::registry::Claim::new(&format!("n{}x{n}", std::process::id())).expect("claim a lab name")
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.made {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Lab {
    /// Builds the lab, or returns None when skipping is allowed for non-root.
    fn new(tag: &str) -> Option<Lab> {
        Self::build(tag, false)
    }

    /// Like [`Lab::new`], but the router's `lan0` is a bridge whose port `p0`
    /// leads to `lan`, with br_netfilter active if the host has the module.
    fn bridged(tag: &str) -> Option<Lab> {
        Self::build(tag, true)
    }

    fn build(tag: &str, bridged: bool) -> Option<Lab> {
        if !nix::unistd::Uid::effective().is_root() {
            if std::env::var("ICELAB_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
                eprintln!("skipping {tag}: needs root for network namespaces (ICELAB_SKIP_ROOT_TESTS=1)");
                return None;
            }
            panic!("{tag} needs root (network namespaces); set ICELAB_SKIP_ROOT_TESTS=1 to skip");
        }
        let claim = claim();
        let mut lab = Lab { prefix: format!("{}-{tag}", claim.prefix()), made: vec![], _claim: claim };
        for n in ["lan", "router", "inet", "srv"] {
            let ns = lab.ns(n);
            run(&["ip", "netns", "add", &ns]);
            lab.made.push(ns.clone());
            run(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        let (lan, router, inet, srv) = (lab.ns("lan"), lab.ns("router"), lab.ns("inet"), lab.ns("srv"));
        if bridged {
            run(&["ip", "-n", &router, "link", "add", "lan0", "type", "bridge"]);
            run(&["ip", "-n", &router, "link", "add", "p0", "type", "veth", "peer", "name", "eth0", "netns", &lan]);
            run(&["ip", "-n", &router, "link", "set", "p0", "master", "lan0"]);
            run(&["ip", "-n", &router, "link", "set", "p0", "up"]);
            // Per namespace (default 1) and only present with br_netfilter loaded.
            let brnf = Command::new("ip")
                .args(["netns", "exec", &router, "sysctl", "-qw"])
                .arg("net.bridge.bridge-nf-call-iptables=1")
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !brnf {
                eprintln!("{tag}: br_netfilter not loaded on this host; bridged LAN without it");
            }
        } else {
            run(&["ip", "-n", &router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", &lan]);
        }
        run(&["ip", "-n", &router, "link", "add", "wan0", "type", "veth", "peer", "name", "up0", "netns", &inet]);
        run(&["ip", "-n", &inet, "link", "add", "srv0", "type", "veth", "peer", "name", "eth0", "netns", &srv]);
        for (ns, dev, addr) in [
            (&lan, "eth0", "192.168.1.10/24"),
            (&router, "lan0", "192.168.1.1/24"),
            (&router, "wan0", "203.0.113.2/24"),
            (&inet, "up0", "203.0.113.1/24"),
            (&inet, "srv0", "198.51.100.1/24"),
            (&srv, "eth0", "198.51.100.10/24"),
            (&srv, "eth0", "198.51.100.20/24"),
        ] {
            run(&["ip", "-n", ns, "addr", "add", addr, "dev", dev]);
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
        }
        run(&["ip", "-n", &lan, "route", "add", "default", "via", "192.168.1.1"]);
        run(&["ip", "-n", &router, "route", "add", "default", "via", "203.0.113.1"]);
        run(&["ip", "-n", &srv, "route", "add", "default", "via", "198.51.100.1"]);
        for ns in [&router, &inet] {
            run(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        }
        Some(lab)
    }

    fn ns(&self, n: &str) -> String {
        format!("{}-{n}", self.prefix)
    }

    /// Applies a ruleset with `nft -f -` inside namespace `n`.
    fn nft(&self, n: &str, ruleset: &str) {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.ns(n), "nft", "-f", "-"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nft");
        child.stdin.take().unwrap().write_all(ruleset.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "nft: {}\n{ruleset}", String::from_utf8_lossy(&out.stderr));
    }

    fn apply_nat(&self, mode: NatMode) {
        let r = RouterNat {
            wan_if: "wan0".into(),
            wan_addr: WAN,
            lan_if: "lan0".into(),
            lan_subnet: "192.168.1.0/24".parse().unwrap(),
            one_to_one_host: Some(Ipv4Addr::new(192, 168, 1, 10)),
            mode,
        };
        self.nft("router", &nat::ruleset(&r));
    }

    /// Runs `f` on a thread that has entered namespace `n`.
    fn in_ns<T: Send + 'static>(&self, n: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns(n));
        std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    fn udp(&self, n: &str, addr: &str) -> UdpSocket {
        let addr = addr.to_string();
        let s = self.in_ns(n, move || UdpSocket::bind(addr).expect("bind"));
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        s
    }

    fn tcp_listen(&self, n: &str, addr: &str) -> TcpListener {
        let addr = addr.to_string();
        self.in_ns(n, move || TcpListener::bind(addr).expect("listen"))
    }

    /// Whether a TCP connect from namespace `n` succeeds within a second.
    fn tcp_connects(&self, n: &str, to: &str) -> bool {
        let to: SocketAddr = to.parse().unwrap();
        self.in_ns(n, move || TcpStream::connect_timeout(&to, Duration::from_secs(1)).is_ok())
    }
}

/// Receives one datagram, or None after the socket's read timeout.
fn recv(s: &UdpSocket, wait: Duration) -> Option<(Vec<u8>, SocketAddrV4)> {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 1500];
    match s.recv_from(&mut buf) {
        Ok((n, SocketAddr::V4(a))) => Some((buf[..n].to_vec(), a)),
        Ok(_) => None,
        Err(_) => None,
    }
}

/// Sends from `host` to `server`; returns the source address the server saw.
fn observe(host: &UdpSocket, server: &UdpSocket) -> SocketAddrV4 {
    host.send_to(b"probe", server.local_addr().unwrap()).unwrap();
    let (_, from) = recv(server, Duration::from_secs(1)).expect("server got no probe");
    from
}

/// Whether a datagram from `from` to `to` reaches `sock`.
fn delivered(from: &UdpSocket, to: SocketAddrV4, sock: &UdpSocket) -> bool {
    from.send_to(b"unsolicited", to).unwrap();
    matches!(recv(sock, NEGATIVE_WAIT), Some((_, src)) if src == as_v4(from))
}

fn as_v4(s: &UdpSocket) -> SocketAddrV4 {
    match s.local_addr().unwrap() {
        SocketAddr::V4(a) => a,
        SocketAddr::V6(_) => unreachable!(),
    }
}

struct Servers {
    a1: UdpSocket,
    a2: UdpSocket,
    b1: UdpSocket,
}

fn servers(lab: &Lab) -> Servers {
    Servers {
        a1: lab.udp("srv", "198.51.100.10:4001"),
        a2: lab.udp("srv", "198.51.100.10:4002"),
        b1: lab.udp("srv", "198.51.100.20:4001"),
    }
}

/// Checks mapping, filtering, hairpinning and the 2 s timeout for one combination.
fn check_combination(tag: &str, mapping: Mapping, filtering: Filtering) {
    let Some(lab) = Lab::new(tag) else { return };
    let b = NatBehaviour { mapping, filtering, timeout_s: 2, ..NatBehaviour::default() };
    lab.apply_nat(NatMode::Napt(b));
    let s = servers(&lab);

    // Mapping: external endpoint seen by A:p1, A:p2 and B:p1.
    let h = lab.udp("lan", "0.0.0.0:0");
    let (p1, p2, p3) = (observe(&h, &s.a1), observe(&h, &s.a2), observe(&h, &s.b1));
    assert!([p1, p2, p3].iter().all(|p| *p.ip() == WAN), "not translated: {p1} {p2} {p3}");
    let (same_addr, same_all) = (p1 == p2, p1 == p3);
    match mapping {
        Mapping::EndpointIndependent => {
            assert!(same_addr && same_all, "EIM expected: {p1} {p2} {p3}");
            assert_eq!(p1.port(), as_v4(&h).port(), "port preservation");
        }
        Mapping::AddressDependent => {
            assert!(same_addr && !same_all, "ADM expected: {p1} {p2} {p3}")
        }
        Mapping::AddressAndPortDependent => {
            assert!(!same_addr && !same_all && p2 != p3, "APDM expected: {p1} {p2} {p3}")
        }
    }
    assert!(delivered(&s.a1, p1, &h), "reply from A:p1 lost");

    // Filtering: after sending only to A:p1, who may send to the mapping?
    let g = lab.udp("lan", "0.0.0.0:0");
    let m = observe(&g, &s.a1);
    let from_a2 = delivered(&s.a2, m, &g);
    let from_b1 = delivered(&s.b1, m, &g);
    let from_a1 = delivered(&s.a1, m, &g);
    let want = match filtering {
        Filtering::EndpointIndependent => (true, true),
        Filtering::AddressDependent => (true, false),
        Filtering::AddressAndPortDependent => (false, false),
    };
    assert_eq!((from_a2, from_b1), want, "filtering (A:p2, B:p1)");
    assert!(from_a1, "A:p1 must always reach its own mapping");

    // Hairpinning: y sends to x's external endpoint; x sees the WAN address.
    let (x, y) = (lab.udp("lan", "0.0.0.0:0"), lab.udp("lan", "0.0.0.0:0"));
    let mx = observe(&x, &s.a1);
    y.send_to(b"hairpin", mx).unwrap();
    let (_, src) = recv(&x, Duration::from_secs(1)).expect("hairpinned packet lost");
    assert_eq!(*src.ip(), WAN, "hairpinned source must be the WAN address");
    x.send_to(b"back", src).unwrap();
    assert!(recv(&y, Duration::from_secs(1)).is_some(), "hairpin reply lost");

    // Timeout: alive after 1 s, forgotten 3 s (timeout + 1) after the last packet.
    let t = lab.udp("lan", "0.0.0.0:0");
    let mt = observe(&t, &s.a1);
    std::thread::sleep(Duration::from_secs(1));
    assert!(delivered(&s.a1, mt, &t), "mapping expired too early");
    std::thread::sleep(Duration::from_secs(3));
    assert!(!delivered(&s.a1, mt, &t), "mapping outlived its 2 s timeout");
    assert!(!delivered(&s.b1, mt, &t), "mapping outlived its 2 s timeout (B)");
}

macro_rules! combos {
    ($($name:ident: $m:ident, $f:ident;)*) => {$(
        #[test]
        fn $name() {
            check_combination(stringify!($name), Mapping::$m, Filtering::$f);
        }
    )*};
}

combos! {
    eim_eif: EndpointIndependent, EndpointIndependent;
    eim_adf: EndpointIndependent, AddressDependent;
    eim_apdf: EndpointIndependent, AddressAndPortDependent;
    adm_eif: AddressDependent, EndpointIndependent;
    adm_adf: AddressDependent, AddressDependent;
    adm_apdf: AddressDependent, AddressAndPortDependent;
    apdm_eif: AddressAndPortDependent, EndpointIndependent;
    apdm_adf: AddressAndPortDependent, AddressDependent;
    apdm_apdf: AddressAndPortDependent, AddressAndPortDependent;
}

/// Whether a datagram from `host` reaches `server`.
fn reaches(host: &UdpSocket, server: &UdpSocket) -> bool {
    // A host-side drop in `output` surfaces as EPERM on send.
    host.send_to(b"probe", server.local_addr().unwrap()).is_ok() && recv(server, NEGATIVE_WAIT).is_some()
}

/// What gets out of the LAN host: (udp 4001, udp 3478, udp 53, tcp 443, tcp 80, tcp 3478, tcp 5349).
fn egress(lab: &Lab) -> [bool; 7] {
    let udp_ports = [4001, 3478, 53].map(|p| lab.udp("srv", &format!("198.51.100.10:{p}")));
    let _listeners = [443, 80, 3478, 5349].map(|p| lab.tcp_listen("srv", &format!("198.51.100.10:{p}")));
    let h = lab.udp("lan", "0.0.0.0:0");
    let u = udp_ports.each_ref().map(|s| reaches(&h, s));
    let t = [443, 80, 3478, 5349].map(|p| lab.tcp_connects("lan", &format!("198.51.100.10:{p}")));
    [u[0], u[1], u[2], t[0], t[1], t[2], t[3]]
}

fn fw_lab(tag: &str, preset: FirewallPreset, on_router: bool) -> Option<Lab> {
    let lab = Lab::new(tag)?;
    lab.apply_nat(NatPreset::FullCone.mode());
    let spec = FirewallSpec { presets: vec![preset], rules: vec![] };
    let (ns, role) = if on_router {
        ("router", FwRole::Router { wan_if: "wan0".into(), lan_if: "lan0".into() })
    } else {
        ("lan", FwRole::Host)
    };
    lab.nft(ns, &firewall::ruleset(&spec, &FirewallCtx { role }));
    Some(lab)
}

macro_rules! firewall_egress {
    ($($name:ident: $preset:ident, $router:expr, $want:expr;)*) => {$(
        #[test]
        fn $name() {
            let Some(lab) = fw_lab(stringify!($name), FirewallPreset::$preset, $router) else { return };
            let names = ["udp4001", "udp3478", "udp53", "tcp443", "tcp80", "tcp3478", "tcp5349"];
            let got = egress(&lab);
            let want: [bool; 7] = $want;
            let diff: Vec<_> = names.iter().zip(got.iter().zip(want)).filter(|(_, (g, w))| **g != *w).collect();
            assert!(diff.is_empty(), "(name, (got, want)) mismatches: {diff:?}");
        }
    )*};
}

const T: bool = true;
const F: bool = false;

firewall_egress! {
    fw_udp_blocked_router: UdpBlocked, true, [F, F, F, T, T, T, T];
    fw_udp_blocked_host: UdpBlocked, false, [F, F, F, T, T, T, T];
    fw_tcp443_router: TcpOnly443, true, [F, F, F, T, F, F, F];
    fw_tcp443_host: TcpOnly443, false, [F, F, F, T, F, F, F];
    fw_stun_router: StunPortBlocked, true, [T, F, T, T, T, F, F];
    fw_stun_host: StunPortBlocked, false, [T, F, T, T, T, F, F];
    fw_inbound_router: InboundBlocked, true, [T, T, T, T, T, T, T];
    fw_inbound_host: InboundBlocked, false, [T, T, T, T, T, T, T];
}

/// Full-cone NAT lets B reach a mapping opened towards A; inbound-blocked stops it.
fn inbound_blocked(tag: &str, on_router: bool) {
    let Some(lab) = Lab::new(tag) else { return };
    lab.apply_nat(NatPreset::FullCone.mode());
    let s = servers(&lab);
    let g = lab.udp("lan", "0.0.0.0:0");
    let m = observe(&g, &s.a1);
    assert!(delivered(&s.b1, m, &g), "control: full-cone must let B in");
    drop(lab);
    let Some(lab) = fw_lab(tag, FirewallPreset::InboundBlocked, on_router) else {
        return;
    };
    let s = servers(&lab);
    let g = lab.udp("lan", "0.0.0.0:0");
    let m = observe(&g, &s.a1);
    assert!(!delivered(&s.b1, m, &g), "unsolicited B got through inbound-blocked");
    assert!(delivered(&s.a1, m, &g), "reply from A must pass");
}

#[test]
fn fw_inbound_blocked_router_stops_eif() {
    inbound_blocked("fw_in_r", true);
}

#[test]
fn fw_inbound_blocked_host_stops_eif() {
    inbound_blocked("fw_in_h", false);
}

/// Hairpinning off: the LAN cannot reach its own mapping via the WAN address.
fn hairpinning_off(lab: Lab) {
    let b = NatBehaviour { hairpinning: false, ..NatBehaviour::default() };
    lab.apply_nat(NatMode::Napt(b));
    let s = servers(&lab);
    let (x, y) = (lab.udp("lan", "0.0.0.0:0"), lab.udp("lan", "0.0.0.0:0"));
    let mx = observe(&x, &s.a1);
    y.send_to(b"hairpin", mx).unwrap();
    assert!(recv(&x, NEGATIVE_WAIT).is_none(), "hairpinned although disabled");
}

#[test]
fn hairpinning_off_routed() {
    if let Some(lab) = Lab::new("nohairpin") {
        hairpinning_off(lab);
    }
}

#[test]
fn hairpinning_off_bridged() {
    if let Some(lab) = Lab::bridged("nohairpin-br") {
        hairpinning_off(lab);
    }
}

/// Same-host hairpinning (RFC 5780 §4.5: a second socket of the host that
/// owns the mapping) through a bridged LAN with br_netfilter, both ways, with
/// each side seeing the other's external endpoint, as `icelab probe` needs.
/// br_netfilter used to bridge the DNATed frame back to its ingress port,
/// which a bridge never does: the packet vanished.
fn same_host_hairpin_bridged(tag: &str, mode: NatMode) {
    let Some(lab) = Lab::bridged(tag) else { return };
    lab.apply_nat(mode);
    let s = servers(&lab);
    let (x, y) = (lab.udp("lan", "0.0.0.0:0"), lab.udp("lan", "0.0.0.0:0"));
    let mx = observe(&x, &s.a1);
    let my = observe(&y, &s.a1);
    // Both directions, twice: new flows and their established replies.
    for _ in 0..2 {
        y.send_to(b"hairpin", mx).unwrap();
        let (_, src) = recv(&x, Duration::from_secs(1)).expect("same-host hairpin lost");
        assert_eq!(*src.ip(), WAN, "hairpinned source must be the WAN address");
        x.send_to(b"back", src).unwrap();
        let (_, back) = recv(&y, Duration::from_secs(1)).expect("same-host hairpin reply lost");
        assert_eq!(back, mx, "reply must come from the address y sent to");
    }
    // The other way round, from the other socket's mapping.
    x.send_to(b"hairpin", my).unwrap();
    let (_, src) = recv(&y, Duration::from_secs(1)).expect("reverse same-host hairpin lost");
    assert_eq!(*src.ip(), WAN);
    // Nothing mapped: still dropped.
    y.send_to(b"nobody", SocketAddrV4::new(WAN, 9)).unwrap();
    assert!(recv(&x, NEGATIVE_WAIT).is_none() && recv(&y, NEGATIVE_WAIT).is_none());
    // The WAN side still works after hairpinning.
    assert!(delivered(&s.a1, mx, &x), "reply from A:p1 lost after hairpinning");
}

macro_rules! same_host_combos {
    ($($name:ident: $m:ident, $f:ident;)*) => {$(
        #[test]
        fn $name() {
            let b = NatBehaviour {
                mapping: Mapping::$m,
                filtering: Filtering::$f,
                ..NatBehaviour::default()
            };
            same_host_hairpin_bridged(stringify!($name), NatMode::Napt(b));
        }
    )*};
}

same_host_combos! {
    same_host_br_eim_eif: EndpointIndependent, EndpointIndependent;
    same_host_br_eim_adf: EndpointIndependent, AddressDependent;
    same_host_br_eim_apdf: EndpointIndependent, AddressAndPortDependent;
    same_host_br_adm_eif: AddressDependent, EndpointIndependent;
    same_host_br_adm_adf: AddressDependent, AddressDependent;
    same_host_br_adm_apdf: AddressDependent, AddressAndPortDependent;
    same_host_br_apdm_eif: AddressAndPortDependent, EndpointIndependent;
    same_host_br_apdm_adf: AddressAndPortDependent, AddressDependent;
    same_host_br_apdm_apdf: AddressAndPortDependent, AddressAndPortDependent;
}

/// Hashed instead of preserved ports (the CGNAT preset has hairpinning off).
#[test]
fn same_host_br_eim_random_ports() {
    let b = NatBehaviour { port_preservation: PortPreservation::Random, ..NatBehaviour::default() };
    same_host_hairpin_bridged("same_host_br_rnd", NatMode::Napt(b));
}

/// One-to-one through a bridged LAN: the host reaches itself via the WAN address.
#[test]
fn same_host_br_one_to_one() {
    let Some(lab) = Lab::bridged("one2one-br") else {
        return;
    };
    lab.apply_nat(NatPreset::OneToOne.mode());
    let (x, y) = (lab.udp("lan", "0.0.0.0:0"), lab.udp("lan", "0.0.0.0:0"));
    let px = SocketAddrV4::new(WAN, as_v4(&x).port());
    y.send_to(b"hairpin", px).unwrap();
    let (_, src) = recv(&x, Duration::from_secs(1)).expect("one-to-one hairpin lost");
    assert_eq!(src, SocketAddrV4::new(WAN, as_v4(&y).port()));
    x.send_to(b"back", src).unwrap();
    let (_, back) = recv(&y, Duration::from_secs(1)).expect("one-to-one hairpin reply lost");
    assert_eq!(back, px);
}

/// CGNAT preset: EIM with hashed (not preserved) ports, stable across destinations.
#[test]
fn cgnat_random_ports_still_eim() {
    let Some(lab) = Lab::new("cgnat") else { return };
    lab.apply_nat(NatPreset::Cgnat.mode());
    let s = servers(&lab);
    let h = lab.udp("lan", "0.0.0.0:0");
    let (p1, p2, p3) = (observe(&h, &s.a1), observe(&h, &s.a2), observe(&h, &s.b1));
    assert!(p1 == p2 && p2 == p3, "EIM expected: {p1} {p2} {p3}");
    assert_ne!(p1.port(), as_v4(&h).port(), "port should be hashed, not preserved");
    assert_eq!(
        PortPreservation::Random,
        match NatPreset::Cgnat.mode() {
            NatMode::Napt(b) => b.port_preservation,
            _ => unreachable!(),
        }
    );
}

/// Outbound keepalives within the timeout keep an EIF mapping open past it.
#[test]
fn outbound_refreshes_mapping() {
    let Some(lab) = Lab::new("refresh") else {
        return;
    };
    let b = NatBehaviour { filtering: Filtering::EndpointIndependent, timeout_s: 2, ..NatBehaviour::default() };
    lab.apply_nat(NatMode::Napt(b));
    let s = servers(&lab);
    let t = lab.udp("lan", "0.0.0.0:0");
    let m = observe(&t, &s.a1);
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(observe(&t, &s.a1), m, "mapping changed while refreshed");
    }
    assert!(delivered(&s.b1, m, &t), "refreshed EIF mapping closed after 3.6 s");
}

/// `check_with_nft` accepts generated rulesets and rejects bad custom rules.
#[test]
fn nft_check_helper() {
    let Some(lab) = Lab::new("check") else { return };
    let ctx = FirewallCtx { role: FwRole::Host };
    let good = FirewallSpec { presets: FirewallPreset::ALL.to_vec(), rules: vec!["tcp dport 22 drop".into()] };
    let bad = FirewallSpec { presets: vec![], rules: vec!["tcp dport banana drop".into()] };
    let (g, b) = (firewall::ruleset(&good, &ctx), firewall::ruleset(&bad, &ctx));
    let (ok, err) = lab.in_ns("router", move || (firewall::check_with_nft(&g), firewall::check_with_nft(&b)));
    assert!(ok.is_ok(), "{ok:?}");
    assert!(err.is_err(), "bad rule accepted");
}
