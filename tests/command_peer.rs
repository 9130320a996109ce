//! Root tests: peers that are programs speaking the peer contract (docs/peer-contract.md).
//! The aiortc example (examples/aiortc-peer, `pip install aiortc`) answers calls placed by
//! the built-in peer; icelab's own peer started as a plain command proves the driver.

mod common;

use common::*;

fn aiortc_peer() -> String {
    format!("cmd:python3 {}/examples/aiortc-peer/peer.py", env!("CARGO_MANIFEST_DIR"))
}

/// Runs `file` with `--peers`, returning (exit code, stdout+stderr).
fn run_with(file: &str, peers: &str, tag: &str) -> (Option<i32>, String) {
    run_path(&topology(file), peers, tag)
}

fn run_path(path: &str, peers: &str, tag: &str) -> (Option<i32>, String) {
    let name = lab_name(tag);
    let o = icelab(&["run", path, "--name", &name, "--peers", peers]);
    assert!(lab_namespaces(&name).is_empty(), "{path} left namespaces");
    (o.status.code(), format!("{}{}", stdout(&o), stderr(&o)))
}

#[test]
fn aiortc_answers_port_restricted_and_symmetric_calls() {
    if !require_root() {
        return;
    }
    // Two labs at once: different names, so they never collide.
    let peers = format!("built-in,{}", aiortc_peer());
    let runs: Vec<_> = [("call-port-restricted.toml", "cp"), ("call-symmetric.toml", "cs")]
        .into_iter()
        .map(|(f, tag)| {
            let peers = peers.clone();
            // aiortc gathers every candidate, a TURN allocation included, before it answers,
            // and its Python start-up counts too: the file's time bounds are for trickling
            // stacks. The pair types and the outcome are judged as written.
            let dir = tempfile::tempdir().unwrap();
            let src = std::fs::read_to_string(topology(f)).unwrap();
            let path = dir.path().join(f);
            std::fs::write(&path, src.replace("max-connect-ms =", "# max-connect-ms =")).unwrap();
            std::thread::spawn(move || (f, run_path(&path.display().to_string(), &peers, tag), dir))
        })
        .collect();
    for r in runs {
        let (file, (code, out), _dir) = r.join().unwrap();
        eprintln!("{file}:\n{out}");
        assert_eq!(code, Some(0), "{file} with an aiortc answerer:\n{out}");
        assert!(out.contains("PASS"), "{out}");
    }
}

#[test]
fn the_built_in_peer_runs_as_a_plain_command() {
    if !require_root() {
        return;
    }
    let me = format!("cmd:{} peer", env!("CARGO_BIN_EXE_icelab"));
    let (code, out) = run_with("call-same-lan.toml", &format!("{me},{me}"), "cc");
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn a_missing_peer_program_is_bad_input_before_any_lab() {
    let name = lab_name("cm");
    let o = icelab(&["run", &topology("call-same-lan.toml"), "--name", &name, "--peers", "cmd:/nonexistent/peer"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/peer"), "{}", stderr(&o));
    assert!(lab_namespaces(&name).is_empty());
}
