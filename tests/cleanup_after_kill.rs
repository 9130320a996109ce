//! Root test, alone in its binary because `icelab cleanup` removes every lab:
//! kill -9 of running icelab processes, then `icelab cleanup` leaves nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

#[test]
fn kill_9_then_cleanup_leaves_nothing() {
    if !require_root() {
        return;
    }
    // A finished lab with a long-running command inside, whose `icelab exec` is killed.
    let done = lab_name("kd");
    let o = icelab(&["up", &topology("two-home-routers.toml"), "--name", &done]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut exec =
        Command::new(env!("CARGO_BIN_EXE_icelab")).args(["exec", &done, "alice", "--", "sleep", "60"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    exec.kill().unwrap();
    exec.wait().unwrap();

    // A build killed half-way.
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, icelab::topology::generate::home_routers(40, 2)).unwrap();
    let half = lab_name("kh");
    let mut build = Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["up", big.to_str().unwrap(), "--name", &half])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while lab_namespaces(&half).len() < 20 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    build.kill().unwrap(); // SIGKILL: no teardown can run
    build.wait().unwrap();
    assert!(!lab_namespaces(&half).is_empty(), "the killed build should have left namespaces to clean");

    let inodes: std::collections::BTreeSet<u64> = lab_namespaces(&done)
        .iter()
        .chain(lab_namespaces(&half).iter())
        .filter_map(|n| icelab::fabric::netns::inode(n).ok())
        .collect();
    let pids = icelab::fabric::procs::pids_in(&inodes);
    assert!(pids.len() >= 2, "expected the echo responder and sleep inside the lab, found {pids:?}");

    let ls = stdout(&icelab(&["ls"]));
    assert!(ls.contains(&done), "{ls}");

    let before = icelab::fabric::netns::list("icelab-");
    let o = icelab(&["cleanup", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Every namespace that existed is gone (one created meanwhile by another process is not ours to judge).
    let left: Vec<String> = icelab::fabric::netns::list("icelab-").into_iter().filter(|n| before.contains(n)).collect();
    assert!(left.is_empty(), "left: {left:?}");
    for pid in pids {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"));
        assert!(!alive, "process {pid} survived cleanup");
    }
    for lab in [&done, &half] {
        assert!(!std::path::Path::new(&format!("/run/icelab/{lab}")).exists(), "record of {lab} left");
    }
}
