//! `icelab doctor` reports what the machine has and what to install, and its exit code
//! says whether labs can run. Root test (it probes netem in a scratch namespace).

mod common;

use std::process::Command;

use common::*;

fn doctor(path: Option<&str>) -> (Option<i32>, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_icelab"));
    cmd.args(["doctor", "--json"]);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let o = cmd.output().unwrap();
    (o.status.code(), serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o))))
}

fn line<'v>(v: &'v serde_json::Value, what: &str) -> &'v serde_json::Value {
    v["checks"].as_array().unwrap().iter().find(|l| l["what"].as_str().unwrap().starts_with(what)).unwrap()
}

#[test]
fn doctor_says_what_is_missing_and_exits_by_it() {
    if !require_root() {
        return;
    }
    // This machine was set up by scripts/setup: everything labs need is here.
    let (code, v) = doctor(None);
    assert_eq!((code, v["ready"].as_bool()), (Some(0), Some(true)), "{v:#}");
    assert_eq!(line(&v, "nftables")["ok"], true);
    assert_eq!(line(&v, "coturn")["ok"], true, "scripts/setup installs coturn");
    // Without a PATH nothing is found: labs cannot run, and each line says what to install.
    let (code, v) = doctor(Some("/nonexistent"));
    assert_eq!((code, v["ready"].as_bool()), (Some(1), Some(false)), "{v:#}");
    let nft = line(&v, "nftables");
    assert_eq!(nft["ok"], false);
    assert!(nft["detail"].as_str().unwrap().contains("apt-get install nftables"), "{nft}");
    assert!(line(&v, "Chromium")["detail"].as_str().unwrap().contains("apt-get install chromium"));
}
