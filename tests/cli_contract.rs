//! The exit-code contract of every command (0 ok, 1 a check failed, 2 bad input or usage,
//! 3 could not run) and the shape of `--json` errors, one bad input per command; and
//! a closed stdout, which must end the output quietly instead of panicking.

mod common;

use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use common::*;
use serde_json::Value;

/// Asserts the `--json` error shape: `{"error": {"kind", "message", "diagnostics": [...]}}`.
fn assert_error_json(what: &str, stdout: &str, kind: &str) -> Value {
    let v: Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {stdout}"));
    let err = &v["error"];
    assert_eq!(err["kind"], kind, "{what}: {v:#}");
    assert!(err["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {v:#}");
    assert!(err["diagnostics"].is_array(), "{what}: {v:#}");
    v
}

#[test]
fn every_command_has_one_exit_code_contract() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[router.home]\nwan = \"internet\"\nnat = \"no-such-nat\"\n").unwrap();
    let bad = bad.to_str().unwrap();
    let good = topology("two-home-routers.toml");
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();
    // A name no lab on this machine has (helper letter c, this pid).
    let nolab = format!("cz{}", std::process::id() % 100_000);
    // (what, args, exit code, JSON error kind when the command takes --json)
    let table: Vec<(&str, Vec<&str>, i32, Option<&str>)> = vec![
        ("check bad file", vec!["check", bad, "--json"], 2, Some("bad-input")),
        ("check missing file", vec!["check", missing, "--json"], 2, Some("bad-input")),
        ("up bad file", vec!["up", bad, "--json"], 2, Some("bad-input")),
        ("up bad name", vec!["up", &good, "--name", "Bad-Name", "--json"], 2, Some("bad-input")),
        ("down unknown lab", vec!["down", &nolab, "--json"], 2, Some("bad-input")),
        ("ls usage", vec!["ls", "--bogus", "--json"], 2, Some("bad-input")),
        ("cleanup unknown lab", vec!["cleanup", &nolab, "--json"], 2, Some("bad-input")),
        ("exec unknown lab", vec!["exec", "--json", &nolab, "alice", "--", "true"], 2, Some("bad-input")),
        ("probe unknown lab", vec!["probe", &nolab, "alice", "--json"], 2, Some("bad-input")),
        ("export bad file", vec!["export", bad, "--json"], 2, Some("bad-input")),
        ("run bad file", vec!["run", bad, "--json"], 2, Some("bad-input")),
        ("run without scenario", vec!["run", &good, "--json"], 2, Some("bad-input")),
        ("echo bad address", vec!["echo", "not-an-address", "--json"], 2, Some("bad-input")),
        ("echo no reply", vec!["echo", "127.0.0.1:9", "--tcp", "--count", "1", "--json"], 1, Some("failed")),
        ("peer bad config", vec!["peer", "--config", "{"], 2, None),
        ("turn-server usage", vec!["turn-server", "--public-ip", "x"], 2, None),
        ("stun-server usage", vec!["stun-server", "--primary", "x"], 2, None),
        ("impair-engine bad links", vec!["impair-engine", "--links", "{"], 2, None),
        ("echo-server usage", vec!["echo-server"], 2, None),
        ("no subcommand", vec![], 2, None),
        ("unknown subcommand", vec!["frobnicate", "--json"], 2, Some("bad-input")),
        ("help", vec!["--help"], 0, None),
    ];
    let mut wrong = Vec::new();
    for (what, args, code, kind) in &table {
        let o = icelab(args);
        let (out, err) = (stdout(&o), stderr(&o));
        if o.status.code() != Some(*code) {
            wrong.push(format!("{what}: exit {:?}, want {code}\nstdout: {out}\nstderr: {err}", o.status.code()));
            continue;
        }
        if err.contains("panicked") {
            wrong.push(format!("{what}: panicked: {err}"));
        }
        if let Some(kind) = kind {
            assert_error_json(what, &out, kind);
        }
        if *code == 2 && kind.is_none() && !err.contains("error") && !err.contains("icelab:") && !err.contains("Usage")
        {
            wrong.push(format!("{what}: no explanation on stderr: {err}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn bad_file_errors_carry_located_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[router.home]\nwan = \"internet\"\nnat = \"no-such-nat\"\n").unwrap();
    let o = icelab(&["check", bad.to_str().unwrap(), "--json"]);
    let v = assert_error_json("check", &stdout(&o), "bad-input");
    let d = &v["error"]["diagnostics"][0];
    assert_eq!(d["file"], bad.to_str().unwrap(), "{v:#}");
    assert_eq!(d["line"], 3, "{v:#}");
    assert!(d["col"].as_u64().is_some_and(|c| c > 0), "{v:#}");
    assert!(d["message"].as_str().is_some_and(|m| !m.is_empty()), "{v:#}");
    assert!(d.get("hint").is_some(), "{v:#}");
    // The person reading stderr gets file:line:col.
    assert!(stderr(&o).contains(&format!("{}:3:", bad.display())), "{}", stderr(&o));
}

/// `icelab check FILE | head -1`: the reader is gone before icelab writes. The command
/// ends with its own exit code (0), without a panic (101).
#[test]
fn closed_stdout_is_not_a_panic() {
    for args in [vec!["check", "TOPO"], vec!["check", "TOPO", "--json"], vec!["export", "TOPO"], vec!["--help"]] {
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe().unwrap();
        drop(read); // every write to `write` now fails with EPIPE
        let topo = topology("two-home-routers.toml");
        let args: Vec<&str> = args.iter().map(|a| if *a == "TOPO" { topo.as_str() } else { a }).collect();
        let o = Command::new(env!("CARGO_BIN_EXE_icelab"))
            .args(&args)
            .stdout(Stdio::from(write))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// Could not run is 3, distinct from a failed expectation (1): a build that fails
/// (injected) in `up` and in `run`. Root: it builds namespaces (and removes them).
#[test]
fn could_not_run_is_3() {
    if !require_root() {
        return;
    }
    for (cmd, file) in [("up", "two-home-routers.toml"), ("run", "call-open-internet.toml")] {
        let name = lab_name(&format!("c{}", &cmd[..1]));
        let _guard = LabGuard(name.clone());
        let o = Command::new(env!("CARGO_BIN_EXE_icelab"))
            .args([cmd, &topology(file), "--name", &name, "--json"])
            .env("ICELAB_FAULT_FAIL_AT_STEP", "3")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{cmd}: {}", stderr(&o));
        let v = assert_error_json(cmd, &stdout(&o), "could-not-run");
        assert!(v["error"]["message"].as_str().unwrap().contains("injected failure"), "{v:#}");
        assert!(lab_namespaces(&name).is_empty(), "{cmd} left namespaces");
        assert!(!std::path::Path::new(&format!("/run/icelab/{name}")).exists(), "{cmd} left its record");
    }
}
