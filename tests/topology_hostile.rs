//! Hostile topology files (issue 9): reserved names, self-references and loops in `wan`
//! and `on` chains, and bytes that are not UTF-8. Each must end quickly with a located
//! error, never hang.

use std::sync::mpsc;
use std::time::Duration;

use icelab::spec::{FileError, parse_bytes};

/// Parses on a worker thread so a hang fails the test instead of blocking it.
fn parse_within(src: &[u8], limit: Duration) -> Result<icelab::spec::Spec, FileError> {
    let (tx, rx) = mpsc::channel();
    let owned = src.to_vec();
    std::thread::spawn(move || {
        let _ = tx.send(parse_bytes("h.toml", &owned));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("parsing hung (> {limit:?}) on:\n{}", String::from_utf8_lossy(src)))
}

fn errors(src: &str) -> Vec<String> {
    let e = parse_within(src.as_bytes(), Duration::from_secs(5)).expect_err("the file should be rejected");
    e.diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
}

#[test]
fn router_named_internet_is_refused_not_hung() {
    // The reproduction from issue 9: `icelab check` spun forever on this.
    let errs = errors("[router.internet]\nwan = \"internet\"\n[router.home1]\nwan = \"internet\"\n");
    assert!(errs.iter().any(|e| e.starts_with("1:") && e.contains("`internet` is reserved")), "{errs:#?}");
}

#[test]
fn host_or_server_named_internet_is_refused() {
    for src in [
        "[host.internet]\non = \"internet\"\n",
        "[server.internet]\nservices = [\"stun\"]\n",
        "[router.internet]\nwan = \"internet\"\n[host.a]\non = \"internet\"\n",
    ] {
        let errs = errors(src);
        assert!(errs.iter().any(|e| e.starts_with("1:") && e.contains("reserved")), "{src}: {errs:#?}");
    }
}

#[test]
fn router_internet_behind_another_router_is_refused() {
    // `internet` plugged into a router that is plugged into "internet": a chain that
    // names itself through the reserved word.
    let src = "[router.a]\nwan = \"internet\"\n[router.internet]\nwan = \"a\"\n[router.b]\nwan = \"internet\"\n[host.h]\non = \"b\"\n";
    let errs = errors(src);
    assert!(errs.iter().any(|e| e.starts_with("3:") && e.contains("reserved")), "{errs:#?}");
}

#[test]
fn long_wan_loop_is_reported_at_every_member() {
    let mut src = String::new();
    for i in 0..50 {
        src.push_str(&format!("[router.r{i}]\nwan = \"r{}\"\n", (i + 1) % 50));
    }
    src.push_str("[router.tail]\nwan = \"r3\"\n[host.h]\non = \"tail\"\n");
    let errs = errors(&src);
    assert_eq!(errs.iter().filter(|e| e.contains("WAN loop")).count(), 50, "{errs:#?}");
}

#[test]
fn many_hosts_on_a_slash_8_resolve_quickly() {
    // Address pools used to count every host of the LAN per assignment (16 M for a /8).
    let mut src = String::from("[router.big]\nwan = \"internet\"\nlan = \"10.0.0.0/8\"\n");
    for i in 0..200 {
        src.push_str(&format!("[host.h{i}]\non = \"big\"\n"));
    }
    let t0 = std::time::Instant::now();
    let topo = parse_within(src.as_bytes(), Duration::from_secs(5)).expect("valid");
    assert_eq!(topo.topology.hosts.len(), 200);
    assert_eq!(topo.topology.hosts[0].uplink.address.to_string(), "10.0.0.10");
    assert!(t0.elapsed() < Duration::from_millis(500), "took {:?}", t0.elapsed());
}

#[test]
fn non_utf8_is_located_at_the_first_bad_byte() {
    let src = b"[router.a]\nwan = \"inter\xffnet\"\n";
    let e = parse_within(src, Duration::from_secs(5)).expect_err("not UTF-8");
    let d = &e.diagnostics[0];
    assert_eq!((d.line, d.col), (2, 13), "{e}");
    assert!(d.message.contains("byte offset 23"), "{e}");
    // A bad first byte is line 1, column 1, not 0:0.
    let e = parse_within(b"\xc3(", Duration::from_secs(5)).expect_err("not UTF-8");
    assert_eq!((e.diagnostics[0].line, e.diagnostics[0].col), (1, 1), "{e}");
}

#[test]
fn non_utf8_file_on_disk_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, b"# caf\xe9\n[host.a]\non = \"internet\"\n").unwrap();
    let e = icelab::spec::parse_file(&path).expect_err("not UTF-8");
    let d = &e.diagnostics[0];
    assert_eq!((d.line, d.col), (1, 6), "{e}");
    assert!(e.to_string().contains("bad.toml:1:6"), "{e}");
}
