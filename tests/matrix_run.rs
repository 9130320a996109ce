//! Root tests: the default NAT matrix in real labs, every cell judged against the
//! shipped expectations; and a sharded run, merged, against an unsharded one.

mod common;

use common::*;

/// One matrix at a time: each runs several labs at once already, and the leftover
/// check below counts every matrix lab.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Namespaces of matrix labs (`icelab-mx...`).
fn matrix_namespaces() -> Vec<String> {
    sh("ip netns list")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("icelab-mx"))
        .map(String::from)
        .collect()
}

fn cells(v: &serde_json::Value) -> Vec<(String, String, bool, String)> {
    v["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| {
            let path = c["call"]["checks"]
                .as_array()
                .and_then(|k| k.iter().find(|k| k["name"] == "path"))
                .map_or("-".to_string(), |k| k["observed"].as_str().unwrap_or("-").to_string());
            (c["a"].to_string(), c["b"].to_string(), c["call"]["pass"] == true, path)
        })
        .collect()
}

/// libwebrtc's ten configurations against themselves: 100 labs, every cell as the
/// shipped table says.
#[test]
fn the_default_matrix_meets_the_shipped_expectations() {
    if !require_root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = matrix_namespaces();
    // Two labs at a time on a CI runner's two cores, and one retry per cell, which the
    // report marks flaky. The relay-first race of issue 9 (a check over the peer's relay,
    // learned as a prflx before the trickled relay candidate, tied with the direct path and
    // won; ADDR x SCON about one call in eight under load) is fixed in the ICE agent
    // (vendor/rtc-ice/ICELAB-PATCH.md); `cargo bench --bench matrix` counts first-try passes.
    let o = icelab(&["matrix", "--jobs", "2", "--retries", "1", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    let failed: Vec<String> = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["call"]["pass"] != true)
        .map(|c| format!("{} x {}: {}", c["a"], c["b"], c["call"]["checks"].to_string() + &c["error"].to_string()))
        .collect();
    assert!(failed.is_empty(), "{} cells failed:\n{}", failed.len(), failed.join("\n"));
    assert_eq!(v["cells"].as_array().unwrap().len(), 100);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let flaky: Vec<String> = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["attempts"].as_u64() > Some(1))
        .map(|c| format!("{} x {}", c["a"], c["b"]))
        .collect();
    eprintln!(
        "default matrix: 100 cells in {:.1} s at {} labs at a time; flaky (passed on retry): {flaky:?}",
        v["wall_s"].as_f64().unwrap(),
        v["jobs"]
    );
    assert_eq!(matrix_namespaces(), before, "the matrix left namespaces behind");
}

/// Two shards, merged, are the same report as the whole (cells, verdicts, paths); the
/// whole run also proves every cell's lab before its call.
#[test]
fn sharded_runs_merge_into_the_unsharded_report() {
    if !require_root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("m.toml");
    std::fs::write(&spec, "a = [\"OPEN\", \"SYMM\"]\nb = [\"PORT\", \"HTTP\"]\n").unwrap();
    let spec = spec.display().to_string();
    let whole = icelab(&["matrix", &spec, "--verify", "--json"]);
    assert_eq!(whole.status.code(), Some(0), "{}{}", stdout(&whole), stderr(&whole));
    let w: serde_json::Value = serde_json::from_str(&stdout(&whole)).unwrap();
    for c in w["cells"].as_array().unwrap() {
        let proven = c["call"]["checks"].as_array().unwrap().iter().find(|k| k["name"] == "lab proven");
        assert!(proven.is_some_and(|k| k["ok"] == true), "{} x {} was not proven: {c}", c["a"], c["b"]);
    }
    let mut parts = Vec::new();
    for i in 1..=2 {
        let o = icelab(&["matrix", &spec, "--shard", &format!("{i}/2"), "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let p = dir.path().join(format!("s{i}.json"));
        std::fs::write(&p, stdout(&o)).unwrap();
        parts.push(p.display().to_string());
    }
    let junit = dir.path().join("m.xml");
    let merged = icelab(&["merge", &parts[0], &parts[1], "--json", "--junit", &junit.display().to_string()]);
    assert_eq!(merged.status.code(), Some(0), "{}", stderr(&merged));
    let (w, m): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&stdout(&whole)).unwrap(), serde_json::from_str(&stdout(&merged)).unwrap());
    assert_eq!(cells(&m), cells(&w));
    assert_eq!(cells(&m).len(), 4);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    // The grid renders the merged report too.
    let grid = icelab(&["merge", &parts[0], &parts[1]]);
    assert!(stdout(&grid).contains("4/4 cells met the expectations"), "{}", stdout(&grid));
}

/// Frames in `pcap` that tshark's display filter `filter` selects (tshark decodes the
/// file on its own: an independent reader of what icelab wrote).
fn tshark_count(pcap: &std::path::Path, filter: &str) -> usize {
    let o = std::process::Command::new("tshark")
        .args(["-n", "-r", &pcap.display().to_string(), "-Y", filter, "-T", "fields", "-e", "frame.number"])
        .output()
        .expect("tshark (scripts/setup installs it)");
    assert!(o.status.success(), "tshark -r {} -Y '{filter}': {}", pcap.display(), stderr(&o));
    stdout(&o).lines().filter(|l| !l.trim().is_empty()).count()
}

/// `--capture DIR`: a relayed cell (SYMM x SYMM, TURN over UDP) leaves a pcap per link
/// and the peers' events; tshark finds the STUN Binding requests of gathering and the
/// checks, and TURN ChannelData carrying the call through the relay.
#[test]
fn a_captured_cell_holds_stun_binding_requests_and_turn_channel_data() {
    if !require_root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("m.toml");
    std::fs::write(&spec, "a = [\"SYMM\"]\nb = [\"SYMM\"]\n").unwrap();
    let captures = dir.path().join("captures");
    let o = icelab(&["matrix", &spec.display().to_string(), "--capture", &captures.display().to_string(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cell = captures.join("symm-symm");
    assert_eq!(v["cells"][0]["capture"], cell.display().to_string(), "the report names the cell's captures");
    // One file per link: each host's, router's and server's uplink.
    let mut files: Vec<String> =
        std::fs::read_dir(&cell).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(files, ["a1.pcap", "alice.pcap", "b1.pcap", "bob.pcap", "events.jsonl", "relay.pcap", "stun.pcap"]);
    // Alice's own link, before her NAT: her Binding requests (to the STUN server, and
    // checks), and her Allocate and ChannelData towards the relay.
    let alice = cell.join("alice.pcap");
    assert!(tshark_count(&alice, "stun.type == 0x0001") > 0, "no STUN Binding request on alice's link");
    assert!(tshark_count(&alice, "stun.type == 0x0003") > 0, "no TURN Allocate request on alice's link");
    // The relay's link carries the call as ChannelData, both peers' (the cell relays).
    let relay = cell.join("relay.pcap");
    let channel_data = tshark_count(&relay, "stun.channel");
    assert!(channel_data > 10, "{channel_data} ChannelData frames on the relay's link");
    // The STUN server saw the requests after NAT: from the routers' public addresses.
    assert!(tshark_count(&cell.join("stun.pcap"), "stun.type == 0x0001") > 0);
    // events.jsonl: both peers' events, each a JSON line, in time order.
    let events = std::fs::read_to_string(cell.join("events.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = events.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for peer in ["offerer", "answerer"] {
        assert!(lines.iter().any(|l| l["peer"] == peer), "no {peer} events in events.jsonl");
    }
    let times: Vec<f64> = lines.iter().map(|l| l["unix_ms"].as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "events.jsonl is not in time order");
    assert!(lines.iter().any(|l| l["event"]["event"] == "selected_pair"), "no selected pair in {events}");
}

/// A cell that fails keeps its captures without `--capture`: in a temp directory the
/// summary names. The SPEC's own `[[expect]]` makes SYMM x SYMM fail (it claims a direct
/// path where symmetric NATs on both sides relay).
#[test]
fn a_failed_cell_keeps_its_captures_in_a_named_temp_directory() {
    if !require_root() {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("m.toml");
    let text = "a = [\"SYMM\"]\nb = [\"SYMM\", \"OPEN\"]\n\n[[expect]]\na = \"SYMM\"\nb = \"SYMM\"\npath = \"direct\"\nwhy = \"a claim the lab disproves\"\n";
    std::fs::write(&spec, text).unwrap();
    // The temp directory goes where TMPDIR says: inside this test's own.
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["matrix", &spec.display().to_string(), "--json"])
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "a failed cell is a finding: {}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cells = v["cells"].as_array().unwrap();
    let symm = cells.iter().find(|c| c["b"] == "Symm").expect("SYMM x SYMM");
    assert_eq!(symm["call"]["pass"], false);
    assert!(symm["expect"]["why"].as_str().unwrap().contains("m.toml:4:1"), "{}", symm["expect"]);
    let kept = std::path::PathBuf::from(symm["capture"].as_str().expect("the failed cell names its captures"));
    assert!(kept.starts_with(&tmp), "{} is not under TMPDIR", kept.display());
    assert!(kept.join("alice.pcap").metadata().unwrap().len() > 24, "alice.pcap holds packets");
    assert!(kept.join("events.jsonl").exists());
    // The passing cell's captures are gone; the summary names the directory.
    let open = cells.iter().find(|c| c["b"] == "Open").expect("SYMM x OPEN");
    assert_eq!(open["call"]["pass"], true, "{open}");
    assert!(open.get("capture").is_none(), "{open}");
    let scratch = kept.parent().unwrap();
    assert_eq!(std::fs::read_dir(scratch).unwrap().count(), 1, "only the failed cell's directory is kept");
    assert!(
        stderr(&o).contains(&format!(
            "captures of the failed cells (1; a pcap per link, events.jsonl): {}",
            scratch.display()
        )),
        "{}",
        stderr(&o)
    );
}
