//! Fidelity of both impairment engines, measured end to end between two namespaces.
//!
//! Every check runs on the userspace TAP engine and, where the kernel has `sch_netem`,
//! on veth + netem/tbf. Needs root; without it the tests fail unless
//! `ICELAB_SKIP_ROOT_TESTS=1`. Checks run one at a time: timing fidelity measured on a
//! two-core machine must not compete with another test's flood.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use icelab::fabric::registry::Claim;
use icelab::impair::netem::netem_available;
use icelab::impair::testbed::{ADDR_B, Backend, Testbed};
use icelab::impair::{Impairment, LinkDir, Loss};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn epoch() -> Instant {
    static E: OnceLock<Instant> = OnceLock::new();
    *E.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// A testbed with a claim on its lab name (`icelab-i<pid>x<n>-...`), dropped after the
/// testbed: a crashed test's namespaces are leftovers for `icelab cleanup`, live ones
/// are safe from it.
struct Bed {
    tb: Testbed,
    _claim: Claim,
}

impl std::ops::Deref for Bed {
    type Target = Testbed;
    fn deref(&self) -> &Testbed {
        &self.tb
    }
}

/// A lab name unique on this machine, claimed for this process.
fn claim() -> Claim {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    Claim::new(&format!("i{}x{n}", std::process::id())).expect("claim a lab name")
}

/// The bench for `backend`, or `None` (with the reason printed) when it cannot run here.
fn bed(tag: &str, backend: Backend, a_to_b: Impairment, b_to_a: Impairment, seed: u64) -> Option<Bed> {
    if !common::require_root() {
        return None;
    }
    if backend == Backend::Netem && !netem_available() {
        eprintln!(
            "skipped: netem engine check `{tag}`: this kernel has no sch_netem \
             (`tc qdisc add dev lo root netem delay 1ms` fails in a scratch namespace)"
        );
        return None;
    }
    let kind = match backend {
        Backend::Tap => "t",
        Backend::Netem => "n",
        Backend::Veth => "v",
    };
    let claim = claim();
    let prefix = format!("{}-{kind}{tag}", claim.prefix());
    let tb = Testbed::new(&prefix, backend, a_to_b, b_to_a, seed).expect("build testbed");
    Some(Bed { tb, _claim: claim })
}

/// What the far side saw of a one-way stream.
struct Received {
    /// (sequence number, one-way delay in ms, arrival time ns) in arrival order.
    arrivals: Vec<(u64, f64, u64)>,
    sent: u64,
}

impl Received {
    fn unique(&self) -> BTreeMap<u64, usize> {
        let mut m = BTreeMap::new();
        for a in &self.arrivals {
            *m.entry(a.0).or_insert(0) += 1;
        }
        m
    }

    fn loss_percent(&self) -> f64 {
        100.0 * (1.0 - self.unique().len() as f64 / self.sent as f64)
    }

    /// Sorted lost sequence numbers.
    fn lost(&self) -> Vec<u64> {
        let u = self.unique();
        (0..self.sent).filter(|s| !u.contains_key(s)).collect()
    }
}

/// Sends `count` datagrams of `payload` bytes from A to B at `pps`, returns what B got.
fn stream(tb: &Testbed, count: u64, payload: usize, pps: f64, port: u16) -> Received {
    let rx = tb.udp(true, port).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let tx = tb.udp(false, 0).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let sink = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        let mut out = Vec::new();
        let mut idle_since = None;
        loop {
            match rx.recv(&mut buf) {
                Ok(n) if n >= 16 => {
                    let t = now_ns();
                    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    let sent = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                    out.push((seq, (t - sent) as f64 / 1e6, t));
                    idle_since = None;
                }
                _ => {
                    if d.load(Ordering::Relaxed) {
                        let s = *idle_since.get_or_insert_with(Instant::now);
                        if s.elapsed() > Duration::from_millis(700) {
                            return out;
                        }
                    }
                }
            }
        }
    });
    let dst = SocketAddr::from((ADDR_B, port));
    let mut buf = vec![0u8; payload.max(16)];
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / pps);
    let mut i = 0;
    while i < count {
        // Send whatever is due, then sleep a little: bursts of a few packets per ms.
        let due = ((start.elapsed().as_secs_f64() / interval.as_secs_f64()) as u64 + 1).min(count);
        while i < due {
            buf[..8].copy_from_slice(&i.to_le_bytes());
            buf[8..16].copy_from_slice(&now_ns().to_le_bytes());
            tx.send_to(&buf, dst).expect("send");
            i += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    done.store(true, Ordering::Relaxed);
    Received { arrivals: sink.join().unwrap(), sent: count }
}

/// Round-trip times (ms) of `count` probes sent every `every` from A to an echo on B.
fn rtts(tb: &Testbed, count: usize, every: Duration) -> Vec<f64> {
    let echo = tb.udp(true, 7007).unwrap();
    echo.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !s.load(Ordering::Relaxed) {
            if let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        }
    });
    let probe = tb.udp(false, 0).unwrap();
    let rx = probe.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let collector = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        let mut misses = 0;
        while out.len() < count && misses < 20 {
            match rx.recv(&mut buf) {
                Ok(n) if n >= 16 => {
                    let sent = u64::from_le_bytes(buf[8..16].try_into().unwrap());
                    out.push((now_ns() - sent) as f64 / 1e6);
                    misses = 0;
                }
                _ => misses += 1,
            }
        }
        out
    });
    let dst = SocketAddr::from((ADDR_B, 7007));
    for i in 0..count as u64 {
        let mut b = [0u8; 64];
        b[..8].copy_from_slice(&i.to_le_bytes());
        b[8..16].copy_from_slice(&now_ns().to_le_bytes());
        probe.send_to(&b, dst).unwrap();
        std::thread::sleep(every);
    }
    let out = collector.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    server.join().unwrap();
    out
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A round trip that holds `want` ms of delay, on a path that may add up to 1.5 ms.
fn near(rtt: f64, want: f64) -> bool {
    (want..want + 1.5).contains(&rtt)
}

fn delay(ms: f64) -> Impairment {
    Impairment { delay_ms: ms, ..Default::default() }
}

// ---- the checks, each for one backend -------------------------------------------------

fn check_delay(b: Backend) {
    let _g = serial();
    // The path's own round trip (veth, TAP and the endpoints' scheduling) is the
    // machine's, not the impairment's: measure it first and judge the added delay.
    let Some(plain) = bed("delay0", b, Impairment::default(), Impairment::default(), 1) else {
        return;
    };
    let base = median(&rtts(&plain, 300, Duration::from_millis(2)));
    drop(plain);
    let tb = bed("delay", b, delay(20.0), delay(20.0), 1).unwrap();
    let r = rtts(&tb, 1000, Duration::from_millis(2));
    assert!(r.len() >= 990, "only {} of 1000 probes came back", r.len());
    let m = median(&r);
    let late = tb.control().map(|c| [LinkDir::AToB, LinkDir::BToA].map(|d| c.stats(0, d)));
    let late_text = late.map_or("-".to_string(), |s| {
        format!(
            "mean {:.3} / {:.3} ms, max {:.3} / {:.3} ms",
            s[0].mean_late_ms(),
            s[1].mean_late_ms(),
            s[0].late_ns_max as f64 / 1e6,
            s[1].late_ns_max as f64 / 1e6
        )
    });
    eprintln!(
        "{b:?}: 20 ms each way → median RTT {m:.3} ms over {} probes; unimpaired path {base:.3} ms; engine lateness {late_text}",
        r.len()
    );
    assert!(m >= 40.0, "median RTT {m:.3} ms is shorter than the 40 ms asked for");
    assert!((m - base - 40.0).abs() <= 1.0, "median RTT {m:.3} ms over a {base:.3} ms path, want 40 ± 1 added");
    if let Some(s) = late {
        for d in s {
            assert!(d.mean_late_ms() < 0.5, "the engine released frames {:.3} ms late on average", d.mean_late_ms());
        }
    }
}

fn check_loss(b: Backend) {
    let _g = serial();
    let lossy = Impairment { loss: Loss::Random { percent: 5.0 }, ..Default::default() };
    let Some(tb) = bed("loss", b, lossy, Impairment::default(), 2) else {
        return;
    };
    let r = stream(&tb, 10_000, 100, 10_000.0, 7100);
    let l = r.loss_percent();
    eprintln!("{b:?}: 5 % loss → measured {l:.2} % over {} packets", r.sent);
    assert!((l - 5.0).abs() <= 1.0, "loss {l:.2} %, want 5 ± 1");
}

fn check_rate(b: Backend) {
    let _g = serial();
    let shaped = Impairment { rate_kbit: Some(20_000), ..Default::default() };
    let Some(tb) = bed("rate", b, shaped, Impairment::default(), 3) else {
        return;
    };
    // 1200-byte payloads at ~30 Mbit/s for 2 s: 1.5× the rate, so the queue stays full.
    let payload = 1200;
    let frame = (payload + 8 + 20 + 14) as f64;
    let pps = 30e6 / (frame * 8.0);
    let r = stream(&tb, (pps * 2.0) as u64, payload, pps, 7200);
    // Skip the first 200 ms (token-bucket burst, queue filling); measure until the end.
    let t0 = r.arrivals.first().unwrap().2 + 200_000_000;
    let tail: Vec<u64> = r.arrivals.iter().map(|a| a.2).filter(|t| *t >= t0).collect();
    let secs = (tail.last().unwrap() - tail.first().unwrap()) as f64 / 1e9;
    let wire = (tail.len() - 1) as f64 * frame * 8.0 / secs / 1e6;
    let goodput = (tail.len() - 1) as f64 * payload as f64 * 8.0 / secs / 1e6;
    eprintln!(
        "{b:?}: 20 Mbit/s → measured {wire:.2} Mbit/s on the wire ({goodput:.2} Mbit/s UDP goodput) over {secs:.2} s"
    );
    assert!((wire - 20.0).abs() <= 1.0, "rate {wire:.2} Mbit/s, want 20 ± 5 %");
}

fn check_gilbert_elliott(b: Backend) {
    let _g = serial();
    let (p, r) = (5.0, 30.0);
    let ge = Loss::GilbertElliott { p, r, bad_loss: 100.0, good_loss: 0.0 };
    let imp = Impairment { loss: ge, ..Default::default() };
    let Some(tb) = bed("ge", b, imp, Impairment::default(), 4) else {
        return;
    };
    let n = 20_000;
    let rec = stream(&tb, n, 100, 10_000.0, 7300);
    let lost = rec.lost();
    let bursts = lost.windows(2).filter(|w| w[1] != w[0] + 1).count() + usize::from(!lost.is_empty());
    let mean_burst = lost.len() as f64 / bursts as f64;
    let l = rec.loss_percent();
    let want = ge.mean_percent();
    // Standard error of a two-state chain's loss fraction: binomial × (1+λ)/(1-λ).
    let (pi, lambda) = (want / 100.0, 1.0 - (p + r) / 100.0);
    let tol = 3.0 * 100.0 * (pi * (1.0 - pi) / n as f64 * (1.0 + lambda) / (1.0 - lambda)).sqrt();
    eprintln!(
        "{b:?}: GE p={p} r={r} → loss {l:.2} % (want {want:.2} ± {tol:.2}), mean burst {mean_burst:.2} (want {:.2})",
        100.0 / r
    );
    assert!(mean_burst > 1.5, "mean burst {mean_burst:.2}");
    assert!((l - want).abs() <= tol, "loss {l:.2} %, want {want:.2} ± {tol:.2}");
}

fn check_duplicate(b: Backend) {
    let _g = serial();
    let imp = Impairment { duplicate_percent: 10.0, ..Default::default() };
    let Some(tb) = bed("dup", b, imp, Impairment::default(), 5) else {
        return;
    };
    let r = stream(&tb, 10_000, 100, 10_000.0, 7400);
    let dups = r.arrivals.len() - r.unique().len();
    let rate = 100.0 * dups as f64 / r.sent as f64;
    eprintln!("{b:?}: 10 % duplication → {rate:.2} % duplicates");
    assert!((rate - 10.0).abs() <= 1.5, "duplicates {rate:.2} %, want 10 ± 1.5");
    assert_eq!(r.unique().len() as u64, r.sent, "no loss configured");
}

fn check_reorder(b: Backend) {
    let _g = serial();
    let imp = Impairment { delay_ms: 10.0, reorder_percent: 25.0, ..Default::default() };
    let Some(tb) = bed("reord", b, imp, Impairment::default(), 6) else {
        return;
    };
    // 0.5 ms apart, so undelayed packets overtake the 10 ms delay line.
    let r = stream(&tb, 5_000, 100, 2_000.0, 7500);
    let fast = r.arrivals.iter().filter(|a| a.1 < 5.0).count();
    // Sent at once, judged by order: it overtook an earlier packet (about 15 of the 20 sent
    // in the 10 ms before it are delayed). Order, unlike the one-way time above, does not
    // move when the receiving thread is descheduled for a few ms (seen: 20.3 % "fast" by time
    // on a loaded runner while the order still showed 25 %).
    let mut min_after = u64::MAX;
    let mut overtook = 0;
    for a in r.arrivals.iter().rev() {
        if min_after < a.0 {
            overtook += 1;
        }
        min_after = min_after.min(a.0);
    }
    let mut max = 0;
    let mut late = 0;
    for a in &r.arrivals {
        if a.0 < max {
            late += 1;
        }
        max = max.max(a.0);
    }
    let fast_pct = 100.0 * fast as f64 / r.sent as f64;
    let overtook_pct = 100.0 * overtook as f64 / r.sent as f64;
    let late_pct = 100.0 * late as f64 / r.sent as f64;
    eprintln!(
        "{b:?}: reorder 25 % → {overtook_pct:.2} % overtook an earlier packet ({fast_pct:.2} % within 5 ms), \
         {late_pct:.2} % arrived after a later packet"
    );
    assert!((overtook_pct - 25.0).abs() <= 2.0, "reordered {overtook_pct:.2} %, want 25 ± 2");
    assert!(late_pct > 10.0, "out-of-order arrivals {late_pct:.2} %");
}

fn check_mtu(b: Backend) {
    let _g = serial();
    let imp = Impairment { mtu: Some(1000), ..Default::default() };
    let Some(tb) = bed("mtu", b, imp, Impairment::default(), 7) else {
        return;
    };
    mtu_on(&tb, b);
}

/// The kernel engine's MTU black hole is an nftables netdev-egress rule, not netem, so
/// it is checked on every kernel.
#[test]
fn netem_engine_mtu_rule_without_netem() {
    let _g = serial();
    if !common::require_root() {
        return;
    }
    let imp = Impairment { mtu: Some(1000), ..Default::default() };
    let claim = claim();
    let prefix = format!("{}-nftmtu", claim.prefix());
    let tb = Bed { tb: Testbed::new(&prefix, Backend::Netem, imp, Impairment::default(), 9).unwrap(), _claim: claim };
    mtu_on(&tb, Backend::Netem);
}

fn mtu_on(tb: &Testbed, b: Backend) {
    // IP sizes 972 and 1028 (payload + 28): the first fits, the second does not.
    let small = stream(tb, 200, 944, 5_000.0, 7600);
    let big = stream(tb, 200, 1000, 5_000.0, 7601);
    let exact = stream(tb, 200, 972, 5_000.0, 7602);
    eprintln!(
        "{b:?}: mtu 1000 → {} / {} / {} of 200 arrived at IP sizes 972 / 1028 / 1000",
        small.unique().len(),
        big.unique().len(),
        exact.unique().len()
    );
    assert_eq!(small.unique().len(), 200);
    assert_eq!(exact.unique().len(), 200);
    assert_eq!(big.unique().len(), 0);
}

fn loss_pattern(b: Backend, seed: u64, run: &str) -> Vec<u64> {
    let imp = Impairment { loss: Loss::Random { percent: 10.0 }, ..Default::default() };
    let tb = bed(&format!("seed{run}"), b, imp, Impairment::default(), seed).unwrap();
    stream(&tb, 3_000, 100, 10_000.0, 7700).lost()
}

fn check_seed_replay(b: Backend) {
    let _g = serial();
    if !common::require_root()
        || (b == Backend::Netem && bed("seedprobe", b, Impairment::default(), Impairment::default(), 0).is_none())
    {
        return;
    }
    let first = loss_pattern(b, 42, "1");
    let again = loss_pattern(b, 42, "2");
    let other = loss_pattern(b, 43, "3");
    eprintln!(
        "{b:?}: seed 42 lost {} then {} packets (identical: {}); seed 43 lost {}",
        first.len(),
        again.len(),
        first == again,
        other.len()
    );
    assert!(!first.is_empty());
    assert_eq!(first, again, "same seed, different loss pattern");
    assert_ne!(first, other, "different seeds, same loss pattern");
}

/// Userspace only: a running link's impairment changes on command.
#[test]
fn tap_control_changes_delay_mid_run() {
    let _g = serial();
    let Some(tb) = bed("ctl", Backend::Tap, delay(5.0), delay(5.0), 8) else {
        return;
    };
    let before = median(&rtts(&tb, 100, Duration::from_millis(2)));
    tb.set(LinkDir::AToB, &delay(30.0)).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let after = median(&rtts(&tb, 100, Duration::from_millis(2)));
    eprintln!("Tap: RTT {before:.2} ms → {after:.2} ms after a-to-b 5 → 30 ms");
    // These check that the change took effect; the ±1 ms fidelity is tap_delay_rtt's. The
    // change is judged by the difference, so the path's own round trip cancels out.
    assert!(before >= 10.0 && after >= 35.0, "RTT {before:.2} -> {after:.2} ms");
    assert!((after - before - 25.0).abs() < 1.5, "RTT {before:.2} -> {after:.2} ms: not 25 ms more");
    let st = tb.control().unwrap().stats(0, LinkDir::AToB);
    assert!(st.rx >= 200 && st.tx >= 200, "{st:?}");
}

/// Userspace only: the control socket changes a link and reports counters.
#[test]
fn tap_control_socket() {
    use icelab::impair::engine::{ControlReply, ControlRequest, request};
    let _g = serial();
    let Some(tb) = bed("sock", Backend::Tap, Impairment::default(), Impairment::default(), 10) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ctl.sock");
    tb.control().unwrap().serve(&path).unwrap();
    let set = ControlRequest::Set { link: 0, dir: LinkDir::BToA, impairment: delay(25.0) };
    assert!(matches!(request(&path, &set).unwrap(), ControlReply::Ok));
    let bad = ControlRequest::Set { link: 3, dir: LinkDir::BToA, impairment: delay(1.0) };
    assert!(matches!(request(&path, &bad).unwrap(), ControlReply::Error(_)));
    std::thread::sleep(Duration::from_millis(50));
    let m = median(&rtts(&tb, 50, Duration::from_millis(2)));
    assert!(near(m, 25.0), "rtt {m}");
    let ControlReply::Stats(s) = request(&path, &ControlRequest::Stats).unwrap() else { panic!() };
    assert!(s[0][1].tx >= 50, "{s:?}");
}

/// `run_engine` creates the devices before `ready`, and returns once the namespaces
/// (and so the devices) are gone.
#[test]
fn run_engine_lifecycle() {
    use icelab::fabric::netns;
    use icelab::impair::TapLink;
    let _g = serial();
    if !common::require_root() {
        return;
    }
    struct Gone(Vec<String>);
    impl Drop for Gone {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = netns::delete(n);
            }
        }
    }
    let claim = claim();
    let names: Vec<String> = ["a", "b"].iter().map(|s| format!("{}-run-{s}", claim.prefix())).collect();
    let guard = Gone(names.clone());
    for n in &names {
        netns::create(n).unwrap();
    }
    let link = TapLink {
        ns_a: names[0].clone(),
        dev_a: "tapa".into(),
        ns_b: names[1].clone(),
        dev_b: "tapb".into(),
        a_to_b: delay(1.0),
        b_to_a: Impairment::default(),
        seed: 1,
    };
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let engine = std::thread::spawn(move || icelab::impair::run_engine(vec![link], move || ready_tx.send(()).unwrap()));
    ready_rx.recv_timeout(Duration::from_secs(5)).expect("ready");
    for (n, dev) in names.iter().zip(["tapa", "tapb"]) {
        let out = common::sh(&format!("ip -n {n} -o link show dev {dev}"));
        assert!(out.contains(dev) && out.contains("state DOWN"), "{out}");
        assert!(!common::sh(&format!("ip -n {n} -o addr show dev {dev}")).contains("inet"));
    }
    drop(guard);
    let t = Instant::now();
    while !engine.is_finished() && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(engine.is_finished(), "engine still running after its namespaces were deleted");
    engine.join().unwrap().unwrap();
}

macro_rules! both {
    ($($check:ident => $tap:ident, $netem:ident;)*) => {$(
        #[test]
        fn $tap() {
            $check(Backend::Tap);
        }
        #[test]
        fn $netem() {
            $check(Backend::Netem);
        }
    )*};
}

both! {
    check_delay => tap_delay_rtt, netem_delay_rtt;
    check_loss => tap_random_loss, netem_random_loss;
    check_rate => tap_rate_limit, netem_rate_limit;
    check_gilbert_elliott => tap_gilbert_elliott, netem_gilbert_elliott;
    check_duplicate => tap_duplicate, netem_duplicate;
    check_reorder => tap_reorder, netem_reorder;
    check_mtu => tap_mtu_black_hole, netem_mtu_black_hole;
    check_seed_replay => tap_seed_replay, netem_seed_replay;
}
