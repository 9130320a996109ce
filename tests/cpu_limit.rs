//! Root test: a server's `cpu` limit is a cpu cgroup named like its namespace, with
//! quota = cpu x period, holding the server's processes (built-in TURN and STUN, and
//! coturn); `icelab down` removes it, and `icelab cleanup` removes a dead lab's.

mod common;

use std::time::{Duration, Instant};

use common::{LabGuard, icelab, lab_name, require_root, stderr, stdout};
use icelab::fabric::cgroup::{self, Hierarchy};

const TOPOLOGY: &str = r#"
[router.home]
wan = "internet"
[host.alice]
on = "home"
[server.relay]
services = ["turn"]
cpu = 0.25
[server.stun]
services = ["stun"]
cpu = 0.1
[server.coturn]
services = [{ kind = "turn", implementation = "coturn" }]
cpu = 2
[server.free]
services = ["turn"]
"#;

/// The pid the plan recorded for `service` in namespace `ns` of lab `name`.
fn recorded_pid(name: &str, service: &str, ns: &str) -> u32 {
    let file = icelab::fabric::registry::lab_dir(name).join(icelab::plan::shell::pid_file(service, ns));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())).trim().parse().unwrap()
}

#[test]
fn cpu_limited_servers_run_in_their_cgroups_and_down_removes_them() {
    if !require_root() {
        return;
    }
    let h = Hierarchy::find().expect("this machine has a cpu controller");
    let name = lab_name("cpu");
    let dir = std::env::temp_dir().join(format!("icelab-cpu-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cpu.toml");
    std::fs::write(&file, TOPOLOGY).unwrap();
    let guard = LabGuard(name.clone());
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name]);
    assert!(o.status.success(), "up failed: {}{}", stdout(&o), stderr(&o));

    let prefix = format!("icelab-{name}-");
    let expected = [("relay", "turn", 25_000), ("stun", "stun", 10_000), ("coturn", "turn", 200_000)];
    let mut groups: Vec<String> = expected.iter().map(|(s, ..)| format!("{prefix}{s}")).collect();
    groups.sort();
    assert_eq!(cgroup::list(&prefix), groups, "one cgroup per limited server, none for `free`");
    for (server, service, quota) in expected {
        let g = format!("{prefix}{server}");
        assert_eq!(h.quota(&g).unwrap(), (Some(quota), 100_000), "quota of {g}");
        let pid = recorded_pid(&name, service, &g);
        assert_eq!(cgroup::pids(&g), vec![pid], "{g} holds exactly its {service} process");
        // Every thread of it, not only the main one.
        let threads = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().count();
        let tasks = std::fs::read_to_string(h.dir(&g).join("tasks")).map_or(threads, |t| t.lines().count());
        assert_eq!(tasks, threads, "{g} holds every thread of pid {pid}");
    }
    // The unlimited server's process stays where the host put it.
    let free = recorded_pid(&name, "turn", &format!("{prefix}free"));
    assert!(!cgroup::list("icelab-").iter().any(|g| cgroup::pids(g).contains(&free)));

    let o = icelab(&["down", &name, "--json"]);
    assert!(o.status.success(), "down failed: {}", stderr(&o));
    assert!(stdout(&o).contains("\"cgroups\": 3") || stdout(&o).contains("\"cgroups\":3"), "{}", stdout(&o));
    assert!(cgroup::list(&prefix).is_empty(), "cgroups left after down: {:?}", cgroup::list(&prefix));
    assert!(groups.iter().all(|g| !h.dir(g).exists()));
    drop(guard);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cleanup_removes_a_dead_labs_cgroup_and_what_is_in_it() {
    if !require_root() {
        return;
    }
    let h = Hierarchy::find().expect("this machine has a cpu controller");
    // What a killed run leaves when its teardown was cut short: a cgroup with no record
    // and no namespace, still holding a process.
    let name = lab_name("cpudead");
    let g = format!("icelab-{name}-relay");
    let mut child = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    cgroup::limit(&g, 5_000, 100_000, &[child.id()]).unwrap();
    assert_eq!(cgroup::pids(&g), vec![child.id()]);
    let o = icelab(&["cleanup", "--json"]);
    assert!(o.status.success(), "cleanup failed: {}", stderr(&o));
    assert!(!h.dir(&g).exists(), "cleanup left {g}: {}", stdout(&o));
    // Killed by cleanup: it was in the lab's cgroup.
    let until = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < until, "the cgroup's process survived cleanup");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!status.success());
}

/// A `cpu` event mid-load (loads/slowdown-cpu-event.toml, shortened): the unlimited relay
/// gets its cgroup at the event's time, holding the TURN process, the report's second
/// phase names the change, and the cgroup goes with the lab.
#[test]
fn a_cpu_event_during_a_load_limits_the_relay_and_leaves_nothing() {
    if !require_root() {
        return;
    }
    let h = Hierarchy::find().expect("this machine has a cpu controller");
    let name = lab_name("cpuev");
    let file = format!("{}/loads/slowdown-cpu-event.toml", env!("CARGO_MANIFEST_DIR"));
    let mut load = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["load", &file, "--name", &name, "--calls", "32", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let _guard = LabGuard(name.clone());
    let g = format!("icelab-{name}-relay");
    // The event fires 3 s after the first arrival; the lab takes well under a second.
    let until = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let members = cgroup::pids(&g);
        if !members.is_empty() {
            break members;
        }
        assert!(load.try_wait().unwrap().is_none(), "the load ended before its relay was limited");
        assert!(Instant::now() < until, "no cgroup {g} 20 s into the load");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(pid, vec![recorded_pid(&name, "turn", &g)], "{g} holds the TURN process");
    assert_eq!(h.quota(&g).unwrap(), (Some(10_000), 100_000));
    let out = load.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}\n{}", String::from_utf8_lossy(&out.stderr)));
    let phases = r["phases"].as_array().unwrap_or_else(|| panic!("no phases: {r}"));
    assert_eq!(phases.len(), 2, "{phases:?}");
    assert_eq!(phases[1]["cause"], "cpu relay = 0.1 cores");
    assert!(phases[1].get("error").is_none(), "the event failed: {}", phases[1]);
    // The relay's answers, cut by the phases' spans of time, add up to the whole load's.
    let counts = |l: &serde_json::Value| -> std::collections::BTreeMap<String, u64> {
        let methods = l["methods"].as_array().unwrap_or_else(|| panic!("no methods: {l}"));
        methods.iter().map(|m| (m["method"].as_str().unwrap().to_string(), m["count"].as_u64().unwrap())).collect()
    };
    let whole = counts(&r["server_side"]["latencies"][0]);
    assert!(whole.get("Allocate").is_some_and(|n| *n > 0), "{whole:?}");
    let mut summed = std::collections::BTreeMap::new();
    for p in phases {
        let l = &p["server_latencies"][0];
        assert_eq!(l["server"], "relay", "{p}");
        for (m, n) in counts(l) {
            *summed.entry(m).or_insert(0) += n;
        }
    }
    assert_eq!(summed, whole, "phases: {phases:?}");
    assert!(!h.dir(&g).exists(), "the load left {g} behind");
    assert!(common::lab_namespaces(&name).is_empty(), "the load left its lab behind");
}

/// `kill -9` of a run whose relay is CPU-limited, then `icelab cleanup`: the dead run's
/// lab goes, its cgroup with it.
#[test]
fn cleanup_after_kill_removes_the_killed_runs_cgroup() {
    if !require_root() {
        return;
    }
    let h = Hierarchy::find().expect("this machine has a cpu controller");
    let name = lab_name("cpukill");
    let (mut run, g) = start_limited_run(&name);
    let _guard = LabGuard(name.clone());
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(h.dir(&g).exists(), "SIGKILL leaves the cgroup for cleanup");
    // By name: the parallel tests' global cleanups must not be what removed it.
    let o = icelab(&["cleanup", &name, "--json"]);
    assert!(o.status.success(), "cleanup failed: {}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(r["cgroups"], 1, "{r}");
    assert!(!h.dir(&g).exists(), "cleanup left {g}");
    assert!(common::lab_namespaces(&name).is_empty());
}

/// Ctrl-C during a run with a CPU-limited relay: the run tears its lab down, cgroup too.
#[test]
fn ctrl_c_removes_the_runs_cgroup() {
    if !require_root() {
        return;
    }
    let h = Hierarchy::find().expect("this machine has a cpu controller");
    let name = lab_name("cpuint");
    let (mut run, g) = start_limited_run(&name);
    let _guard = LabGuard(name.clone());
    let status = common::signal_and_wait(&mut run, nix::sys::signal::Signal::SIGINT, "icelab run");
    assert!(!status.success(), "an interrupted run does not pass");
    assert!(!h.dir(&g).exists(), "Ctrl-C left {g}");
    assert!(common::lab_namespaces(&name).is_empty(), "Ctrl-C left the lab's namespaces");
}

/// Starts `icelab run` of topologies/call-relay-cpu.toml as lab `name` and waits (bounded)
/// until its relay's cgroup holds a process; returns the run and the cgroup's name.
fn start_limited_run(name: &str) -> (std::process::Child, String) {
    let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["run", &common::topology("call-relay-cpu.toml"), "--name", name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let g = format!("icelab-{name}-relay");
    let until = Instant::now() + Duration::from_secs(10);
    while cgroup::pids(&g).is_empty() {
        assert!(run.try_wait().unwrap().is_none(), "the run ended before its relay was limited");
        assert!(Instant::now() < until, "no cgroup {g} 10 s into the run");
        std::thread::sleep(Duration::from_millis(10));
    }
    (run, g)
}
