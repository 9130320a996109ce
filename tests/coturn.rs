//! coturn as the lab's relay: a relay-only call through it, timeline `turn = "stop"` /
//! `"start"` on it, and a missing `turnserver` as bad input. The calls need root (they
//! fail without it unless ICELAB_SKIP_ROOT_TESTS=1) and coturn (`scripts/setup` installs it).

mod common;

use std::sync::Mutex;

use common::*;

/// Calls run one at a time: on two cores, two calls measure each other's starvation.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// `icelab run --json` of `file` (plus `extra` arguments) in lab `name`; the JSON report.
fn run_json(file: &str, name: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec!["run", "--json", file, "--name", name];
    args.extend(extra);
    let o = icelab(&args);
    let rep = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{file}: no JSON report ({e}):\n{}\n{}", stdout(&o), stderr(&o)));
    (o.status.code(), rep)
}

#[test]
fn relay_only_call_goes_through_coturn() {
    if !require_root() {
        return;
    }
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let name = lab_name("c11r");
    let _lab = LabGuard(name.clone());
    // Kept, so the test can see which process served and what it logged.
    let (code, rep) = run_json(&topology("call-relay-coturn.toml"), &name, &["--keep"]);
    assert_eq!(code, Some(0), "verdict: {:#}", rep["verdict"]);
    assert_eq!(rep["relay_implementation"], "coturn");
    let pair = &rep["outcome"]["offerer"]["selected_pair"];
    assert_eq!(
        (pair["local"]["candidate_type"].as_str(), pair["remote"]["candidate_type"].as_str()),
        (Some("relay"), Some("relay")),
        "{pair:#}"
    );
    let relay_ip = "198.51.100.10";
    assert_eq!(
        (pair["local"]["address"].as_str(), pair["remote"]["address"].as_str()),
        (Some(relay_ip), Some(relay_ip))
    );

    // The TURN service's pid (the plan's pid file) is coturn's `turnserver`, and coturn
    // logged the allocations it granted.
    let state = icelab::fabric::registry::lab_dir(&name);
    let ns = format!("icelab-{name}-relay");
    let pid = std::fs::read_to_string(state.join(format!("turn-{ns}.pid"))).expect("turn pid file");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", pid.trim())).expect("turn process alive");
    assert_eq!(comm.trim(), "turnserver");
    let log = std::fs::read_to_string(state.join(format!("coturn-{ns}.log"))).expect("coturn log");
    let allocations = log.matches("ALLOCATE processed, success").count();
    assert!(allocations >= 2, "both peers allocate on coturn; its log:\n{log}");

    let o = icelab(&["down", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(lab_namespaces(&name).is_empty(), "the lab left namespaces");
    // Killed: gone, or a zombie its new parent has not reaped yet.
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap_or_default();
    assert!(status.is_empty() || status.contains("State:\tZ"), "coturn outlived its lab:\n{status}");
}

/// coturn in an IPv6 lab (the bundled IPv6 relay scenario with coturn as the relay):
/// the IPv6-only peers allocate over IPv6 and get IPv4 relays (RFC 6156 default family).
#[test]
fn ipv6_only_peers_allocate_on_coturn_over_ipv6() {
    if !require_root() {
        return;
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(topology("call-ipv6-relay.toml")).unwrap();
    let edited = src.replace("services = [\"turn\"]", "services = [{ kind = \"turn\", implementation = \"coturn\" }]");
    assert_ne!(src, edited);
    let file = dir.path().join("v6-coturn.toml");
    std::fs::write(&file, edited).unwrap();
    let (code, rep) = run_json(file.to_str().unwrap(), &lab_name("ct6"), &[]);
    assert_eq!(code, Some(0), "{rep:#}");
    let local = &rep["outcome"]["offerer"]["selected_pair"]["local"];
    assert_eq!(local["candidate_type"], "relay", "{local}");
    assert!(local["url"].as_str().unwrap().starts_with("turn:[2001:db8::"), "allocated over IPv6: {local}");
    assert!(local["related_address"].as_str().unwrap().starts_with("[2001:db8:1:"), "{local}");
    assert!(local["address"].as_str().unwrap().starts_with("198.51.100."), "an IPv4 relay: {local}");
}

#[test]
fn turn_stop_and_start_work_on_coturn() {
    if !require_root() {
        return;
    }
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(topology("event-turn-restart.toml")).unwrap();
    let coturn = r#"services = [{ kind = "turn", implementation = "coturn" }]"#;
    let edited = src.replace(r#"services = ["turn"]"#, coturn);
    assert_ne!(edited, src, "the fixture's TURN service was not found");
    let file = dir.path().join("event-turn-restart-coturn.toml");
    std::fs::write(&file, edited).unwrap();
    let name = lab_name("c11t");
    let _lab = LabGuard(name.clone());
    let (code, rep) = run_json(&file.display().to_string(), &name, &[]);
    assert_eq!(code, Some(0), "verdict: {:#}", rep["verdict"]);
    assert_eq!(rep["relay_implementation"], "coturn");
    let events = rep["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 2, "{events:#?}");
    for e in &events {
        // Applied: the stop found and killed coturn by its pid file; the start ran the
        // build's step again, which waits until coturn answers STUN.
        assert!(e["error"].is_null() && e["applied_ms"].is_number(), "event not applied: {e:#}");
        assert_eq!(e["recovery"]["status"], "broke", "{e:#}");
    }
    assert!(lab_namespaces(&name).is_empty(), "the lab left namespaces");
}

#[test]
fn missing_turnserver_is_bad_input_before_any_lab() {
    let empty = tempfile::tempdir().unwrap();
    let name = lab_name("c11m");
    for cmd in ["run", "up"] {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
            .args([cmd, &topology("call-relay-coturn.toml"), "--name", &name])
            .env("PATH", empty.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{cmd}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains("`turnserver` is not installed") && err.contains("apt-get install coturn"),
            "{cmd}: {err}"
        );
        assert!(lab_namespaces(&name).is_empty(), "{cmd} built something");
    }
}

/// The exported script builds the same coturn: certificate, config, `turnserver`, and
/// `icelab wait-stun` (the script stops, `set -e`, when coturn does not answer).
#[test]
fn exported_script_starts_coturn_and_waits_for_it() {
    if !require_root() {
        return;
    }
    let o = icelab(&["export", &topology("call-relay-coturn.toml")]);
    assert!(o.status.success(), "export failed: {}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("lab.sh");
    std::fs::write(&script, &o.stdout).unwrap();
    let prefix = format!("icelab-{}", lab_name("c11s"));
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_icelab")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let sh = |arg: &str| {
        std::process::Command::new("sh")
            .arg(&script)
            .arg(arg)
            .env("ICELAB_PREFIX", &prefix)
            .env("ICELAB_STATE", dir.path().join("state"))
            .env("PATH", &path)
            .output()
            .unwrap()
    };
    let up = sh("up");
    let pids = common::sh(&format!("ip netns pids {prefix}-relay"));
    let comms: Vec<String> = pids
        .split_whitespace()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default().trim().to_string())
        .collect();
    let down = sh("down");
    assert!(up.status.success(), "`up` failed: {}{}", stdout(&up), stderr(&up));
    assert_eq!(comms, ["turnserver"], "the relay namespace runs coturn alone");
    assert!(down.status.success(), "`down` failed: {}", stderr(&down));
    assert!(icelab::fabric::netns::list(&format!("{prefix}-")).is_empty(), "`down` left namespaces");
}

/// The relayed scenarios of issue 11's acceptance hold with coturn as their relay: TURN
/// over UDP (symmetric NATs), over TCP or TLS (UDP blocked) and over TLS on 443
/// (TCP-443-only).
#[test]
fn relayed_scenarios_hold_with_coturn() {
    if !require_root() {
        return;
    }
    let _g = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut failed = Vec::new();
    for (scenario, transport) in [
        ("call-port-restricted-symmetric.toml", "udp"),
        ("call-symmetric.toml", "udp"),
        ("call-udp-blocked.toml", "tcp|tls"),
        ("call-tcp-443-only.toml", "tls"),
    ] {
        let src = std::fs::read_to_string(topology(scenario)).unwrap();
        let edited =
            src.replace(r#"services = ["turn"]"#, r#"services = [{ kind = "turn", implementation = "coturn" }]"#);
        assert_ne!(edited, src, "{scenario}: no TURN service to replace");
        let file = dir.path().join(scenario);
        std::fs::write(&file, edited).unwrap();
        let name = lab_name("c11a");
        let _lab = LabGuard(name.clone());
        let (code, rep) = run_json(&file.display().to_string(), &name, &[]);
        let relayed_over = rep["verdict"]["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "relay-transport"))
            .map(|c| c["observed"].clone());
        eprintln!("{scenario}: exit {code:?}, relay {}, over {relayed_over:?}", rep["relay_implementation"]);
        if code != Some(0) || rep["relay_implementation"] != "coturn" {
            failed.push(format!("{scenario}: exit {code:?}: {:#}", rep["verdict"]));
        } else if !relayed_over.as_ref().and_then(|v| v.as_str()).is_some_and(|t| transport.split('|').any(|w| w == t))
        {
            failed.push(format!("{scenario}: relayed over {relayed_over:?}, wanted {transport}"));
        }
        assert!(lab_namespaces(&name).is_empty(), "{scenario} left namespaces");
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// coturn as the STUN service (`stun-only`, RFC 5780 on the server's two addresses)
/// classifies a home router's NAT as the built-in STUN server does.
#[test]
fn coturn_stun_classifies_the_nat_like_the_built_in_server() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = std::fs::read_to_string(topology("call-port-restricted.toml")).unwrap();
    let mut seen = Vec::new();
    for implementation in ["built-in", "coturn"] {
        let services = format!(r#"services = [{{ kind = "stun", implementation = "{implementation}" }}]"#);
        let edited = src.replace(r#"services = ["stun"]"#, &services);
        assert_ne!(edited, src, "the fixture's STUN service was not found");
        let file = dir.path().join(format!("{implementation}.toml"));
        std::fs::write(&file, edited).unwrap();
        let name = lab_name(if implementation == "coturn" { "c11n" } else { "c11b" });
        let o = icelab(&["up", &file.display().to_string(), "--name", &name]);
        assert!(o.status.success(), "{implementation}: up failed: {}", stderr(&o));
        let _lab = LabGuard(name.clone());
        let o = icelab(&["probe", &name, "alice", "--json"]);
        assert!(o.status.success(), "{implementation}: probe failed: {}{}", stdout(&o), stderr(&o));
        let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let software = p["software"].as_str().unwrap_or("").to_string();
        assert_eq!(software.starts_with("Coturn"), implementation == "coturn", "{implementation}: {p:#}");
        seen.push((p["mapping"].clone(), p["filtering"].clone(), p["other_address"].clone()));
    }
    assert_eq!(seen[0], seen[1], "built-in vs coturn");
    assert_eq!(
        (seen[0].0.as_str(), seen[0].1.as_str()),
        (Some("endpoint-independent"), Some("address-and-port-dependent"))
    );
}
