//! Root tests: browser peers (headless Chromium and Firefox from Debian) play calls in
//! labs and are judged by the files' `[expect]` (with their `[expect.<peer>]` overrides).
//! They fail without root unless ICELAB_SKIP_ROOT_TESTS=1, and fail when a browser is not
//! installed (`scripts/setup` installs them).

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};

use common::*;

/// The scenarios and pairs the browser peers must pass.
const SCENARIOS: [&str; 4] =
    ["call-port-restricted.toml", "call-symmetric.toml", "call-udp-blocked.toml", "call-relay-only.toml"];
const PAIRS: [&str; 4] = ["chromium,chromium", "firefox,firefox", "chromium,firefox", "chromium,built-in"];
/// Labs at once: each holds up to two browsers, and CI machines are small.
const PARALLEL: usize = 2;
/// Tries per job, as the matrix retries a cell (`--retries 1`); a miss is printed. The
/// race a retry absorbs: on port-restricted cones, libwebrtc nominates the first pair
/// that works, and webrtc-rs (controlled) takes the first nomination and stops checking.
/// The relay pair works on a triggered check; srflx/srflx needs webrtc-rs's next check
/// tick, which the other side's first check made passable. When the relay path answers
/// first, the call stays relayed (one CI run: ICE up at 123 ms, where direct calls take
/// 128-340 ms; 0 of 43 runs of that pair here, up to four labs at once). A second miss
/// fails.
const TRIES: u32 = 2;

/// Runs every (scenario, peers) job, [`PARALLEL`] labs at once; the failures, each with
/// its report.
fn run_jobs(jobs: Vec<(&'static str, &'static str)>) -> Vec<String> {
    let queue = Arc::new(Mutex::new(jobs.into_iter().enumerate().collect::<Vec<_>>()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..PARALLEL)
        .map(|_| {
            let (queue, failed) = (queue.clone(), failed.clone());
            std::thread::spawn(move || {
                while let Some((i, (scenario, peers))) = queue.lock().unwrap().pop() {
                    let mut misses = Vec::new();
                    for attempt in 1..=TRIES {
                        let name = lab_name(&format!("b{i}"));
                        let o = icelab(&["run", &topology(scenario), "--peers", peers, "--name", &name]);
                        eprintln!("{scenario} --peers {peers}: exit {:?} (try {attempt})", o.status.code());
                        if !lab_namespaces(&name).is_empty() {
                            failed.lock().unwrap().push(format!("{scenario} --peers {peers} left namespaces"));
                        }
                        let out = stdout(&o);
                        // Selected pairs come from the browsers' getStats(): the report names them.
                        if o.status.code() == Some(0) && out.contains("selected pair") {
                            break;
                        }
                        misses.push(format!("{scenario} --peers {peers} (try {attempt}):\n{out}{}", stderr(&o)));
                        // Only a judged mismatch (exit 1, a timed-out call included) gets a
                        // second look; bad input or a run that could not run (2, 3) does not.
                        if o.status.code() != Some(1) || attempt == TRIES {
                            failed.lock().unwrap().push(misses.join("\n"));
                            break;
                        }
                        eprintln!("{scenario} --peers {peers}: missed on try {attempt}, retrying:\n{out}");
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    Arc::try_unwrap(failed).unwrap().into_inner().unwrap()
}

#[test]
fn browser_pairs_hold_on_the_call_scenarios() {
    if !require_root() {
        return;
    }
    let jobs = SCENARIOS.iter().flat_map(|s| PAIRS.iter().map(move |p| (*s, *p))).collect();
    let failed = run_jobs(jobs);
    // Each adapter removed its browser profile before saying `done`.
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("icelab-browser-"))
        .filter(|n| n.split('-').nth(2).is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists()))
        .collect();
    assert!(left.is_empty(), "browser profiles left behind: {left:?}");
    assert!(failed.is_empty(), "{} of 16 failed:\n{}", failed.len(), failed.join("\n"));
}

/// Both browsers pass every bundled IPv6 scenario (NAT64 and DNS64 included: they
/// resolve the TURN server's name with the lab's DNS; Firefox NPTv6 too), and with each
/// other on dual-stack. Firefox needs its standing media permission for the IPv6-only
/// hosts (see `FIREFOX_PREFS`).
#[test]
fn browsers_hold_on_the_ipv6_scenarios() {
    if !require_root() {
        return;
    }
    let v6 = ["call-ipv6-dual-stack.toml", "call-ipv6-firewalls.toml", "call-ipv6-relay.toml", "call-ipv6-nat64.toml"];
    let mut jobs: Vec<_> = v6.iter().flat_map(|s| [(*s, "chromium,chromium"), (*s, "firefox,firefox")]).collect();
    jobs.push(("call-ipv6-nptv6.toml", "firefox,firefox"));
    jobs.push(("call-ipv6-dual-stack.toml", "firefox,chromium"));
    let n = jobs.len();
    let failed = run_jobs(jobs);
    assert!(failed.is_empty(), "{} of {n} failed:\n{}", failed.len(), failed.join("\n"));
}

#[test]
fn a_browser_peer_reports_its_browser_and_start_up_apart() {
    if !require_root() {
        return;
    }
    let name = lab_name("bj");
    let o = icelab(&[
        "run",
        &topology("call-port-restricted.toml"),
        "--peers",
        "firefox,chromium",
        "--name",
        &name,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let (off, ans) = (&v["outcome"]["offerer"], &v["outcome"]["answerer"]);
    for side in [off, ans] {
        let startup = side["browser_startup_ms"].as_f64().expect("browser start-up reported");
        // Start-up is before the call: the first candidate comes after the page ran.
        assert!(side["candidates"][0]["t_ms"].as_f64().unwrap() > startup);
        // Host candidates are the namespace's real addresses, not mDNS names or wildcards.
        let hosts: Vec<_> = side["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["candidate"]["candidate_type"] == "host")
            .map(|c| c["candidate"]["address"].as_str().unwrap().to_string())
            .collect();
        assert!(hosts.iter().any(|a| a.starts_with("192.168.")), "{hosts:?}");
        assert!(hosts.iter().all(|a| !a.ends_with(".local") && a != "0.0.0.0"), "{hosts:?}");
    }
    assert_eq!(v["scenario"]["offerer_peer"]["kind"], "firefox");
    assert!(off["selected_pair"]["rtt_ms"].as_f64().is_some(), "{}", off["selected_pair"]);
}

#[test]
fn a_missing_browser_is_bad_input_before_any_lab() {
    let name = lab_name("bm");
    let o = Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["run", &topology("call-port-restricted.toml"), "--peers", "chromium,firefox", "--name", &name])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("apt-get install chromium"), "{}", stderr(&o));
    assert!(lab_namespaces(&name).is_empty());
}
