//! Root test: `icelab cleanup` removes what dead processes left and nothing else.
//!
//! An unrelated lab is kept up (`icelab up`), an `icelab run` is killed with SIGKILL in
//! the middle of its call, and `icelab cleanup` runs: the killed run's lab is gone
//! (namespaces, processes, record), the kept lab still works, and so do namespaces
//! claimed by this (live) test process; a namespace without any record is a leftover.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use icelab::fabric::{netns, procs, registry};
use serde_json::Value;

/// Waits (bounded) until `f` holds.
fn wait_for(what: &str, deadline: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inodes(lab: &str) -> BTreeSet<u64> {
    lab_namespaces(lab).iter().filter_map(|n| netns::inode(n).ok()).collect()
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z"))
}

fn status_of(ls: &Value, lab: &str) -> String {
    ls["labs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["name"] == lab)
        .map_or("absent".into(), |l| l["status"]["status"].as_str().unwrap_or("?").to_string())
}

#[test]
fn cleanup_removes_a_killed_run_and_keeps_running_work() {
    if !require_root() {
        return;
    }
    // The unrelated lab, kept by `icelab up`.
    let kept = lab_name("ck");
    let _kept_guard = LabGuard(kept.clone());
    let o = icelab(&["up", &topology("two-home-routers.toml"), "--name", &kept]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Namespaces claimed by this live process, and one nobody recorded.
    let claim = registry::Claim::new(&lab_name("cc")).unwrap();
    let claimed = format!("{}-x", claim.prefix());
    let unrecorded = format!("{}-x", registry::prefix_of(&lab_name("cu")));
    struct Gone(Vec<String>);
    impl Drop for Gone {
        fn drop(&mut self) {
            for n in &self.0 {
                let _ = netns::delete(n);
            }
        }
    }
    let _gone = Gone(vec![claimed.clone(), unrecorded.clone()]);
    netns::create(&claimed).unwrap();
    netns::create(&unrecorded).unwrap();

    // A run with a long call, killed once its peers are up.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long-call.toml");
    let text = std::fs::read_to_string(topology("call-open-internet.toml")).unwrap();
    let text = text.replace("data-ms = 300", "data-ms = 30000").replace("deadline-ms = 5000", "deadline-ms = 40000");
    std::fs::write(&file, text).unwrap();
    let killed = lab_name("cr");
    let _killed_guard = LabGuard(killed.clone());
    let mut run = Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["run", file.to_str().unwrap(), "--name", &killed])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let peer_in_call = || {
        procs::pids_in(&inodes(&killed)).iter().any(|p| {
            std::fs::read(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"peer"))
        })
    };
    wait_for("the run's peers", Duration::from_secs(30), peer_in_call);
    // Mid-call: the data phase lasts 30 s; give ICE a moment to connect.
    std::thread::sleep(Duration::from_millis(500));
    run.kill().unwrap(); // SIGKILL: no teardown can run
    run.wait().unwrap();
    let pids = procs::pids_in(&inodes(&killed));
    assert!(pids.len() >= 2, "expected the peers (and services) of the killed run, found {pids:?}");

    let ls: Value = serde_json::from_str(&stdout(&icelab(&["ls", "--json"]))).unwrap();
    assert_eq!(status_of(&ls, &kept), "kept", "{ls:#}");
    assert_eq!(status_of(&ls, &killed), "dead", "{ls:#}");
    assert_eq!(status_of(&ls, claim.name()), "live", "{ls:#}");
    assert!(ls["orphaned_namespaces"].as_array().unwrap().iter().any(|n| n == unrecorded.as_str()), "{ls:#}");

    let o = icelab(&["cleanup", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let removed: Vec<&str> = r["removed"].as_array().unwrap().iter().filter_map(|t| t["name"].as_str()).collect();
    assert!(removed.contains(&killed.as_str()), "{r:#}");
    assert!(!removed.contains(&kept.as_str()) && !removed.contains(&claim.name()), "{r:#}");

    // The killed run's lab is gone: namespaces, processes, record.
    assert!(lab_namespaces(&killed).is_empty(), "left: {:?}", lab_namespaces(&killed));
    for pid in pids {
        assert!(!alive(pid), "process {pid} of the killed run survived cleanup");
    }
    assert!(!registry::lab_dir(&killed).exists(), "record of {killed} left");
    assert!(netns::list(&unrecorded).is_empty(), "the unrecorded namespace survived");
    // What is owned by someone alive stays.
    assert!(!netns::list(&claimed).is_empty(), "cleanup removed a live process's namespace");

    // The kept lab still works: a host reaches the STUN server's echo responder.
    let rec = registry::load(&kept).expect("the kept lab's record");
    let stun = rec.plan.node("stun").and_then(|n| n.addresses.first().copied()).expect("stun address");
    let o = icelab(&["exec", &kept, "alice", "--", env!("CARGO_BIN_EXE_icelab"), "echo", &stun.to_string()]);
    assert!(o.status.success(), "echo from the kept lab failed: {}{}", stdout(&o), stderr(&o));

    let o = icelab(&["down", &kept]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lab_namespaces(&kept).is_empty());
}
