//! Root test: an event scenario's lab built from its exported script, its events
//! replayed by hand (`sh script event N`), their effect seen from inside the lab, and
//! the lab torn down by the script.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// A lab built by `icelab export FILE` run with `sh`; `down` runs when dropped.
struct ScriptLab {
    script: PathBuf,
    prefix: String,
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl ScriptLab {
    fn up(tag: &str, file: &str) -> ScriptLab {
        let o = icelab(&["export", &topology(file)]);
        assert!(o.status.success(), "export failed: {}", stderr(&o));
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("lab.sh");
        std::fs::write(&script, &o.stdout).unwrap();
        let prefix = format!("icelab-{}", lab_name(tag));
        let state = dir.path().join("state");
        let lab = ScriptLab { script, prefix, state, _dir: dir };
        let o = lab.run(&["up"]);
        assert!(o.status.success(), "{file}: `up` failed: {}", stderr(&o));
        lab
    }

    fn run(&self, args: &[&str]) -> Output {
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_icelab")).parent().unwrap().to_owned();
        Command::new("sh")
            .arg(&self.script)
            .args(args)
            .env("ICELAB_PREFIX", &self.prefix)
            .env("ICELAB_STATE", &self.state)
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
            .output()
            .unwrap()
    }

    fn event(&self, n: usize) {
        let o = self.run(&["event", &n.to_string()]);
        assert!(o.status.success(), "event {n} failed: {}{}", stdout(&o), stderr(&o));
    }

    /// `icelab echo TARGET` from inside a node: true when a reply came back.
    fn echo(&self, node: &str, target: &str, tcp: bool) -> bool {
        let ns = format!("{}-{node}", self.prefix);
        let mut args = vec!["netns", "exec", &ns, env!("CARGO_BIN_EXE_icelab"), "echo", target];
        args.extend(["--count", "2", "--timeout-ms", "400"]);
        if tcp {
            args.push("--tcp");
        }
        let o = Command::new("ip").args(&args).output().unwrap();
        o.status.success()
    }

    fn pids(&self, node: &str) -> Vec<String> {
        sh(&format!("ip netns pids {}-{node}", self.prefix)).split_whitespace().map(String::from).collect()
    }
}

impl Drop for ScriptLab {
    fn drop(&mut self) {
        let o = self.run(&["down"]);
        assert!(o.status.success() || std::thread::panicking(), "down failed: {}", stderr(&o));
        assert!(
            icelab::fabric::netns::list(&format!("{}-", self.prefix)).is_empty() || std::thread::panicking(),
            "the script's `down` left namespaces"
        );
    }
}

#[test]
fn link_flap_replayed_by_hand() {
    if !require_root() {
        return;
    }
    let lab = ScriptLab::up("rl", "event-link-flap.toml");
    // alice reaches the STUN server's echo responder through her NAT...
    assert!(lab.echo("alice", "198.51.100.10", false), "no path before the event");
    // ...not after event 1 (her uplink down, both ends)...
    lab.event(1);
    assert!(!lab.echo("alice", "198.51.100.10", false), "event 1 (link down) had no effect");
    // ...and again after event 2 (link up, routes put back).
    lab.event(2);
    assert!(lab.echo("alice", "198.51.100.10", false), "event 2 (link up) did not restore the path");
    let o = lab.run(&["event", "3"]);
    assert_eq!(o.status.code(), Some(2), "an unknown event must be a usage error");
}

#[test]
fn firewall_change_replayed_by_hand() {
    if !require_root() {
        return;
    }
    let lab = ScriptLab::up("rf", "event-udp-blocked.toml");
    // home2's WAN address answers echo on UDP and TCP port 7.
    assert!(lab.echo("alice", "203.0.113.22", false));
    lab.event(1);
    assert!(!lab.echo("alice", "203.0.113.22", false), "event 1 must block UDP between the homes");
    assert!(lab.echo("alice", "203.0.113.22", true), "event 1 blocks UDP only");
    assert!(lab.echo("alice", "198.51.100.10", false), "the servers stay reachable over UDP");
    lab.event(2);
    assert!(lab.echo("alice", "203.0.113.22", false), "event 2 (firewall-clear) must unblock UDP");
}

#[test]
fn turn_restart_replayed_by_hand() {
    if !require_root() {
        return;
    }
    let lab = ScriptLab::up("rt", "event-turn-restart.toml");
    let before = lab.pids("relay");
    assert_eq!(before.len(), 1, "one TURN server in the relay namespace: {before:?}");
    lab.event(1);
    assert!(lab.pids("relay").is_empty(), "event 1 (turn stop) left {:?}", lab.pids("relay"));
    lab.event(2);
    let after = lab.pids("relay");
    assert_eq!(after.len(), 1, "event 2 (turn start) must start one TURN server: {after:?}");
    assert_ne!(before, after);
}
