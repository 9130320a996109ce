//! Userspace impairment engine: throughput and added latency of a perfect TAP link,
//! against a plain veth pair. Run as root: `cargo bench --bench impair`.
//!
//! Targets: ≥ 500 Mbit/s of 1200-byte UDP payload, and < 100 µs of added median
//! round-trip latency.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use icelab::impair::Impairment;
use icelab::impair::testbed::{ADDR_B, Backend, Testbed};

const PAYLOAD: usize = 1200;
const SECONDS: f64 = 2.0;
const PINGS: usize = 5000;

fn bed(tag: &str, b: Backend) -> Testbed {
    let prefix = format!("imptest{}-bench{tag}", std::process::id());
    Testbed::new(&prefix, b, Impairment::default(), Impairment::default(), 1).expect("testbed")
}

/// (offered, received) Mbit/s of UDP payload when A floods B for `SECONDS`.
fn throughput(tb: &Testbed) -> (f64, f64) {
    let rx = tb.udp(true, 9000).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let tx = tb.udp(false, 0).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let (s, g) = (stop.clone(), got.clone());
    let sink = std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        while !s.load(Ordering::Relaxed) {
            if let Ok(n) = rx.recv(&mut buf) {
                g.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    });
    let dst = SocketAddr::from((ADDR_B, 9000));
    let buf = vec![0u8; PAYLOAD];
    // Warm up, then measure over a fixed window.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        let _ = tx.send_to(&buf, dst);
    }
    let start = Instant::now();
    let before = got.load(Ordering::Relaxed);
    let mut sent = 0u64;
    while start.elapsed().as_secs_f64() < SECONDS {
        if tx.send_to(&buf, dst).is_ok() {
            sent += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let received = got.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    sink.join().unwrap();
    let mbit = |bytes: f64| bytes * 8.0 / secs / 1e6;
    (mbit((sent * PAYLOAD as u64) as f64), mbit(received as f64))
}

/// Sorted round-trip times (µs) of sequential 64-byte UDP ping-pongs.
fn ping_pong(tb: &Testbed) -> Vec<f64> {
    let echo = tb.udp(true, 9001).unwrap();
    echo.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while !s.load(Ordering::Relaxed) {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        }
    });
    let c = tb.udp(false, 0).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let dst = SocketAddr::from((ADDR_B, 9001));
    let mut buf = [0u8; 256];
    let mut out = Vec::with_capacity(PINGS);
    for i in 0..PINGS + 100 {
        let t = Instant::now();
        c.send_to(&[7u8; 64], dst).unwrap();
        if c.recv(&mut buf).is_ok() && i >= 100 {
            out.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    out.sort_by(f64::total_cmp);
    out
}

fn pct(v: &[f64], p: f64) -> f64 {
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("benches/impair needs root (network namespaces); not run");
        return;
    }
    let veth = bed("v", Backend::Veth);
    let (v_off, v_rx) = throughput(&veth);
    let v_rtt = ping_pong(&veth);
    drop(veth);

    let tap = bed("t", Backend::Tap);
    let (t_off, t_rx) = throughput(&tap);
    let t_rtt = ping_pong(&tap);
    let st = tap.control().unwrap().stats(0, icelab::impair::LinkDir::AToB);
    drop(tap);

    println!("impair engine benchmark ({PAYLOAD}-byte UDP payload, {SECONDS} s flood; {PINGS} ping-pongs)");
    println!("  throughput  veth: offered {v_off:8.1} Mbit/s, received {v_rx:8.1} Mbit/s");
    println!("  throughput  tap : offered {t_off:8.1} Mbit/s, received {t_rx:8.1} Mbit/s   (target >= 500)");
    println!("  rtt         veth: median {:7.1} µs, p99 {:7.1} µs", pct(&v_rtt, 0.5), pct(&v_rtt, 0.99));
    println!("  rtt         tap : median {:7.1} µs, p99 {:7.1} µs", pct(&t_rtt, 0.5), pct(&t_rtt, 0.99));
    let added = pct(&t_rtt, 0.5) - pct(&v_rtt, 0.5);
    println!(
        "  added median latency: {added:.1} µs per round trip ({:.1} µs per direction)   (target < 100)",
        added / 2.0
    );
    println!("  engine a-to-b counters: {st:?}");
}
