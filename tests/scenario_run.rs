//! Root tests: `icelab run` on every bundled scenario, a wrong expectation, a peer that
//! never answers. They fail without root unless ICELAB_SKIP_ROOT_TESTS=1.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Bundled topology files that carry a `[scenario]`.
fn scenario_files() -> Vec<String> {
    let dir = format!("{}/topologies", env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("[scenario]"))
        .collect();
    v.sort();
    v
}

/// A copy of a bundled scenario with `edit` applied, in a temp dir.
fn edited(name: &str, edit: impl Fn(String) -> String) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(topology(name)).unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, edit(src)).unwrap();
    (dir, path.display().to_string())
}

#[test]
fn every_bundled_scenario_holds() {
    if !require_root() {
        return;
    }
    let files = scenario_files();
    assert!(files.len() >= 11, "{files:?}");
    let mut failed = Vec::new();
    for f in &files {
        let name = lab_name("sa");
        let o = icelab(&["run", f, "--name", &name]);
        // One line per pass, everything for a failure: CI's log excerpt must reach it.
        eprintln!("{f}: exit {:?}", o.status.code());
        if o.status.code() != Some(0) {
            eprintln!("{}{}", stdout(&o), stderr(&o));
            failed.push(format!("{f}:\n{}{}", stdout(&o), stderr(&o)));
        }
        assert!(lab_namespaces(&name).is_empty(), "{f} left namespaces");
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn wrong_expectation_exits_1_naming_it() {
    if !require_root() {
        return;
    }
    let (_d, file) = edited("call-same-lan.toml", |s| s.replace("local = \"host\"", "local = \"relay\""));
    let name = lab_name("sw");
    let o = icelab(&["run", &file, "--name", &name]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("expectation `local` failed: expected relay, observed host"), "{out}");
    assert!(lab_namespaces(&name).is_empty());
}

#[test]
fn silent_answerer_times_out_within_the_deadline() {
    if !require_root() {
        return;
    }
    let deadline_ms = 2000;
    let (_d, file) = edited("call-open-internet.toml", |s| {
        s.replace("deadline-ms = 5000", &format!("deadline-ms = {deadline_ms}\ntest-silent-answerer = true"))
    });
    let name = lab_name("st");
    let start = Instant::now();
    let o = icelab(&["run", &file, "--name", &name, "--json"]);
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["outcome"]["offerer"]["timed_out"], true);
    assert_eq!(v["outcome"]["answerer"]["timed_out"], true);
    let outcome = &v["verdict"]["checks"][0];
    assert_eq!(outcome["name"], "outcome");
    assert!(outcome["observed"].as_str().unwrap().starts_with("timeout"), "{outcome}");
    // Deadline, the exit grace, lab build and teardown: well under deadline + 3 s.
    assert!(took < Duration::from_millis(deadline_ms + 3000), "took {took:?}");
    assert!(lab_namespaces(&name).is_empty(), "lab left behind");
}

#[test]
fn bad_input_exits_2() {
    let (_d, file) = edited("call-same-lan.toml", |s| s.replace("answerer = \"bob\"", "answerer = \"carol\""));
    let o = icelab(&["run", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown host `carol`"), "{}", stderr(&o));
    let o = icelab(&["run", &topology("same-lan.toml")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no [scenario]"));
}

#[test]
fn sigterm_during_a_run_tears_the_lab_down() {
    if !require_root() {
        return;
    }
    let (_d, file) = edited("call-open-internet.toml", |s| {
        s.replace("deadline-ms = 5000", "deadline-ms = 5000\ntest-silent-answerer = true")
    });
    let name = lab_name("sg");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["run", &file, "--name", &name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the lab exists (bounded), then interrupt.
    let until = Instant::now() + Duration::from_secs(5);
    while lab_namespaces(&name).len() < 3 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let status = signal_and_wait(&mut child, nix::sys::signal::Signal::SIGTERM, "icelab run");
    // Interrupted: could not run (exit 3), and nothing is left.
    assert_eq!(status.code(), Some(3));
    assert!(lab_namespaces(&name).is_empty(), "lab left behind");
}

/// A scenario of several calls places them all in one lab at once: one report per
/// call, in the file's order, each judged, and one lab built and torn down.
#[test]
fn several_calls_share_one_lab() {
    if !require_root() {
        return;
    }
    let name = lab_name("sm");
    let o = icelab(&["run", &topology("call-many.toml"), "--name", &name, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let runs = v["runs"].as_array().expect("a report per call");
    let pairs: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r["pair"]["offerer"].as_str().unwrap().into(), r["pair"]["answerer"].as_str().unwrap().into()))
        .collect();
    let want = [("alice", "bob"), ("carol", "dave"), ("bob", "dave")].map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(pairs, want);
    assert!(runs.iter().all(|r| r["verdict"]["pass"] == true && r["lab"] == name.as_str()), "{v}");
    // One lab, and the calls overlapped: placed one after another, the run would take
    // at least the lab's build, every call and the teardown.
    let t = |r: &serde_json::Value, k: &str| r["timings"][k].as_f64().unwrap();
    let total: Vec<f64> = runs.iter().map(|r| t(r, "total_ms")).collect();
    assert!(total.windows(2).all(|w| w[0] == w[1]), "one lab, one total: {total:?}");
    let serial =
        t(&runs[0], "lab_up_ms") + runs.iter().map(|r| t(r, "call_ms")).sum::<f64>() + t(&runs[0], "teardown_ms");
    assert!(total[0] < serial, "total {} ms is not below the {serial} ms of calls in a row", total[0]);
    assert_eq!(v["passed"], 3, "{v}");
    assert!(lab_namespaces(&name).is_empty());
}
