//! Root tests: every NAT behaviour, built by `icelab up` in a real lab and classified by
//! two independent RFC 5780 clients: `icelab probe` (against the built-in STUN server)
//! and coturn's `turnutils_natdiscovery` (against coturn's `turnserver` on a second
//! server node with two addresses).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use icelab::stun::{Behaviour, parse_natdiscovery_output};

struct Lab {
    name: String,
    _guard: LabGuard,
    _dir: tempfile::TempDir,
}

fn lab_with_nat(tag: &str, nat: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nat.toml");
    let src = format!(
        "[router.nat]\nwan = \"internet\"\nnat = {nat}\n[host.alice]\non = \"nat\"\n[server.stun]\nservices = [\"stun\"]\n[server.coturn]\naddresses = [\"198.51.100.20\", \"198.51.100.21\"]\n"
    );
    std::fs::write(&file, src).unwrap();
    let name = lab_name(tag);
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name]);
    assert!(o.status.success(), "up failed: {}", stderr(&o));
    Lab { _guard: LabGuard(name.clone()), name, _dir: dir }
}

fn probe(lab: &Lab, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["probe", lab.name.as_str(), "alice", "--json"];
    args.extend_from_slice(extra);
    let o = icelab(&args);
    assert!(o.status.success(), "probe failed: {}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

/// Starts coturn in the `coturn` node (it dies with the lab) and runs natdiscovery from alice.
fn natdiscovery(lab: &Lab) -> (Behaviour, Behaviour) {
    let exe = env!("CARGO_BIN_EXE_icelab");
    let mut server = Command::new(exe)
        .args(["exec", &lab.name, "coturn", "--", "turnserver", "-n", "--no-cli", "--stun-only"])
        .args([
            "-L",
            "198.51.100.20",
            "-L",
            "198.51.100.21",
            "-p",
            "3478",
            "--no-stdout-log",
            "--log-file",
            "/dev/null",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("turnserver (install coturn)");
    // Wait (bounded) until coturn answers a plain binding request.
    let ready = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        let o = icelab(&["exec", &lab.name, "alice", "--", "stun", "198.51.100.20", "-v"]);
        String::from_utf8_lossy(&o.stdout).contains("MappedAddress")
            || String::from_utf8_lossy(&o.stderr).contains("MappedAddress")
    });
    assert!(ready, "coturn did not start");
    let o = Command::new(exe)
        .args([
            "exec",
            &lab.name,
            "alice",
            "--",
            "timeout",
            "60",
            "turnutils_natdiscovery",
            "-m",
            "-f",
            "198.51.100.20",
        ])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text = format!("{}{}", stdout(&o), stderr(&o));
    parse_natdiscovery_output(&text).unwrap_or_else(|e| panic!("cannot parse natdiscovery output ({e}):\n{text}"))
}

fn classify(tag: &str, mapping: &str, filtering: &str) {
    if !require_root() {
        return;
    }
    let lab = lab_with_nat(tag, &format!("{{ mapping = \"{mapping}\", filtering = \"{filtering}\" }}"));
    let p = probe(&lab, &[]);
    assert_eq!(p["nat"], true, "{p}");
    assert_eq!(p["mapping"], mapping, "icelab probe mapping: {p}");
    assert_eq!(p["filtering"], filtering, "icelab probe filtering: {p}");
    assert_eq!(p["hairpinning"], true, "hairpinning is on by default: {p}");
    let (m, f) = natdiscovery(&lab);
    eprintln!(
        "{mapping}/{filtering}: icelab probe {}/{}, turnutils_natdiscovery {m}/{f}",
        p["mapping"], p["filtering"]
    );
    assert_eq!(m.to_string(), mapping, "natdiscovery mapping");
    assert_eq!(f.to_string(), filtering, "natdiscovery filtering");
}

macro_rules! combos {
    ($($test:ident: $m:literal, $f:literal;)*) => {$(
        #[test]
        fn $test() {
            // Lab names are at most 12 characters: 7 of the test name, 5 of the pid.
            let tag: String = stringify!($test).replace('_', "").chars().take(7).collect();
            classify(&tag, $m, $f);
        }
    )*};
}

combos! {
    eim_eif: "endpoint-independent", "endpoint-independent";
    eim_adf: "endpoint-independent", "address-dependent";
    eim_apdf: "endpoint-independent", "address-and-port-dependent";
    adm_eif: "address-dependent", "endpoint-independent";
    adm_adf: "address-dependent", "address-dependent";
    adm_apdf: "address-dependent", "address-and-port-dependent";
    apdm_eif: "address-and-port-dependent", "endpoint-independent";
    apdm_adf: "address-and-port-dependent", "address-dependent";
    apdm_apdf: "address-and-port-dependent", "address-and-port-dependent";
}

#[test]
fn hairpinning_off_is_observed() {
    if !require_root() {
        return;
    }
    let lab = lab_with_nat("hp", "{ preset = \"full-cone\", hairpinning = false }");
    let p = probe(&lab, &[]);
    assert_eq!(p["hairpinning"], false, "{p}");
    assert_eq!(p["mapping"], "endpoint-independent", "{p}");
}

#[test]
fn short_mapping_timeout_is_measured() {
    if !require_root() {
        return;
    }
    let lab = lab_with_nat("lt", "{ preset = \"port-restricted-cone\", timeout = 3 }");
    let p = probe(&lab, &["--lifetime-max", "8"]);
    let lifetime = p["lifetime_s"].as_f64().unwrap_or_else(|| panic!("no lifetime: {p}"));
    assert!((2.0..=4.0).contains(&lifetime), "configured 3 s, measured {lifetime} s: {p}");
}

#[test]
fn verify_accepts_a_lab_whose_nat_is_what_the_file_says() {
    if !require_root() {
        return;
    }
    // A NAT that matches its file passes `--verify`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.toml");
    std::fs::write(&file, "[router.r]\nwan = \"internet\"\nnat = \"symmetric\"\n[host.h]\non = \"r\"\n[server.stun]\nservices = [\"stun\"]\n").unwrap();
    let name = lab_name("vf");
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name, "--verify"]);
    let _g = LabGuard(name.clone());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("probed from h"), "{}", stderr(&o));
    assert!(icelab(&["down", &name]).status.success());
    // Without a STUN server in the file, verify brings its own (tests/verify_lab.rs has more).
    std::fs::write(&file, "[router.r]\nwan = \"internet\"\n[host.h]\non = \"r\"\n").unwrap();
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name, "--verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("(probe server)"), "{}", stderr(&o));
}
