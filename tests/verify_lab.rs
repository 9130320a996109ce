//! Root tests: `icelab up --verify` proves every bundled topology, and `icelab verify`
//! catches a NAT or a firewall changed behind icelab's back.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}{}", stdout(o), stderr(o)))
}

/// Probe-server leftovers of a lab: namespaces and the internet's end of its link.
fn probe_leftovers(name: &str) -> Vec<String> {
    let mut v: Vec<String> = lab_namespaces(name).into_iter().filter(|n| n.contains("_verify")).collect();
    let links = sh(&format!("ip -n icelab-{name}-internet -o link show"));
    v.extend(links.lines().filter(|l| l.contains(": vp")).map(str::to_string));
    v
}

/// Lines of one node's section in a verify report.
fn lines<'a>(r: &'a Value, node: &str, section: &str) -> &'a Vec<Value> {
    let n = r["nodes"].as_array().unwrap().iter().find(|n| n["node"] == node).unwrap_or_else(|| panic!("{node}: {r}"));
    n[section]["lines"].as_array().unwrap_or_else(|| panic!("{node} has no {section}: {r}"))
}

fn mismatched(r: &Value) -> Vec<String> {
    let mut v = Vec::new();
    for n in r["nodes"].as_array().unwrap() {
        for section in ["nat", "firewall"] {
            for l in n[section]["lines"].as_array().into_iter().flatten() {
                if l["status"] == "mismatch" {
                    v.push(format!("{} {section} {}", n["node"].as_str().unwrap(), l["what"].as_str().unwrap()));
                }
            }
        }
    }
    v
}

fn verify(name: &str) -> (Option<i32>, Value) {
    let o = icelab(&["verify", name, "--json"]);
    (o.status.code(), json_of(&o))
}

#[test]
fn up_verify_proves_every_bundled_topology() {
    if !require_root() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    files.sort();
    assert!(files.len() >= 20, "bundled topologies missing");
    // Labs are independent (own namespaces, own probe server): four at a time.
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<Vec<(usize, &std::path::PathBuf)>> =
            (0..4).map(|k| files.iter().enumerate().filter(|(i, _)| i % 4 == k).collect()).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    for (i, f) in chunk {
                        let name = lab_name(&format!("b{i}"));
                        let _g = LabGuard(name.clone());
                        let t0 = std::time::Instant::now();
                        let o = icelab(&["up", f.to_str().unwrap(), "--name", &name, "--verify", "--json"]);
                        let file = f.file_name().unwrap().to_string_lossy().into_owned();
                        eprintln!("{file}: {:.1} s", t0.elapsed().as_secs_f64());
                        if !o.status.success() {
                            bad.push(format!("{file}: exit {:?}\n{}{}", o.status.code(), stdout(&o), stderr(&o)));
                            continue;
                        }
                        let j = json_of(&o);
                        if j["verify"]["ok"] != true || j["name"] != name.as_str() {
                            bad.push(format!("{file}: {j}"));
                        }
                        let left = probe_leftovers(&name);
                        if !left.is_empty() {
                            bad.push(format!("{file}: probe server left {left:?}"));
                        }
                    }
                    bad
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_nat_changed_behind_icelabs_back_is_caught() {
    if !require_root() {
        return;
    }
    // No STUN server in this file: verify brings its own probe server.
    let name = lab_name("bnat");
    let _g = LabGuard(name.clone());
    let o = icelab(&["up", &topology("two-home-routers.toml"), "--name", &name, "--verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), name, "stdout stays the lab name");
    assert!(stderr(&o).contains("probe server"), "{}", stderr(&o));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(0), "{r}");
    assert!(r["probe_server"]["addresses"].is_array(), "{r}");
    // The routers resolved their gateway during the proof: to the internet bridge's own
    // MAC, not to one it had only while the probe server was plugged in.
    let bridge = sh(&format!("ip -n icelab-{name}-internet -br link show br0"));
    let bridge_mac = bridge.split_whitespace().nth(2).unwrap_or_else(|| panic!("{bridge}")).to_string();
    let topo = icelab::spec::parse_file(Path::new(&topology("two-home-routers.toml"))).unwrap().topology;
    for router in ["home1", "home2"] {
        let n = sh(&format!("ip -n icelab-{name}-{router} neigh show dev wan"));
        let gw = format!("{} ", topo.router(router).unwrap().wan.gateway);
        let gw = n.lines().find(|l| l.starts_with(&gw)).unwrap_or_else(|| panic!("{router}: {n}"));
        assert!(gw.contains(&format!("lladdr {bridge_mac} ")), "{router}'s gateway {gw}, bridge {bridge_mac}");
    }
    // home1 becomes symmetric.
    let r1 = topo.router("home1").unwrap();
    let symmetric = icelab::nat::NatPreset::from_name("symmetric").unwrap().mode();
    let ruleset = icelab::nat::ruleset(&icelab::nat::RouterNat {
        wan_if: "wan".into(),
        wan_addr: r1.wan.address,
        lan_if: "lan".into(),
        lan_subnet: r1.lan,
        one_to_one_host: None,
        mode: symmetric,
    });
    let ns = format!("icelab-{name}-home1");
    let mut nft = Command::new("ip")
        .args(["netns", "exec", &ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    nft.stdin.take().unwrap().write_all(ruleset.as_bytes()).unwrap();
    assert!(nft.wait().unwrap().success());
    let (code, r) = verify(&name);
    assert_eq!(code, Some(1), "{r}");
    let bad = mismatched(&r);
    assert!(bad.contains(&"home1 nat mapping".to_string()), "{bad:?}");
    assert!(bad.iter().all(|b| b.starts_with("home1 ")), "home2 is untouched: {bad:?}");
    // Now no NAT at all: the private source address gets no answer.
    sh(&format!("ip netns exec {ns} nft delete table ip icelab"));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(mismatched(&r), ["home1 nat STUN server answers"], "{r}");
    assert!(probe_leftovers(&name).is_empty());
    assert!(icelab(&["down", &name]).status.success());
}

/// IPv6 is verified too: the stateful firewall's drop and the NPTv6 translation are
/// proved, and each goes wrong in the report when the router's ip6 table is removed.
#[test]
fn an_ipv6_firewall_or_translation_changed_behind_icelabs_back_is_caught() {
    if !require_root() {
        return;
    }
    let name = lab_name("bv6");
    let _g = LabGuard(name.clone());
    let o = icelab(&["up", &topology("call-ipv6-nptv6.toml"), "--name", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(0), "{r}");
    let v6 = lines(&r, "home1", "firewall");
    assert_eq!(v6.len(), 2, "{v6:?}");
    assert!(v6.iter().all(|l| l["status"] == "as-declared"), "{v6:?}");
    sh(&format!("ip netns exec icelab-{name}-home1 nft delete table ip6 icelab6"));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(1), "{r}");
    // Without the table: no translation (the ULA goes out as it is and no answer comes
    // back), and nothing filters.
    let bad = mismatched(&r);
    assert!(bad.iter().any(|l| l.starts_with("home1 firewall udp 3478 out over IPv6")), "{bad:?}");
}

#[test]
fn a_firewall_changed_behind_icelabs_back_is_caught() {
    if !require_root() {
        return;
    }
    let name = lab_name("bfw");
    let _g = LabGuard(name.clone());
    let o = icelab(&["up", &topology("call-udp-blocked.toml"), "--name", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(0), "{r}");
    let fw = lines(&r, "office", "firewall");
    let line = |what: &str| fw.iter().find(|l| l["what"].as_str().unwrap().starts_with(what)).unwrap().clone();
    assert_eq!(
        (&line("udp 3478 out")["expected"], &line("udp 3478 out")["status"]),
        (&"drop".into(), &"as-declared".into())
    );
    assert_eq!(line("tcp 443 out")["expected"], "pass");
    // Blocking UDP also hides the NAT from every STUN server: said, not failed.
    assert_eq!(lines(&r, "office", "nat")[0]["status"], "not-checked");
    sh(&format!("ip netns exec icelab-{name}-office nft delete table inet icelab_fw"));
    let (code, r) = verify(&name);
    assert_eq!(code, Some(1), "{r}");
    let bad = mismatched(&r);
    assert_eq!(
        bad,
        [
            "office firewall udp 3478 out (STUN/TURN)",
            "office firewall udp 5349 out (STUN/DTLS)",
            "office firewall udp 53 out (DNS)"
        ]
    );
    // The text report on stdout says the same.
    let o = icelab(&["verify", &name]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o).matches("MISMATCH").count(), 3, "{}", stdout(&o));
    assert!(icelab(&["down", &name]).status.success());
}

#[test]
fn host_firewalls_custom_rules_and_empty_nats_are_verified() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    std::fs::write(
        &file,
        r#"
[router.home]
wan = "internet"
nat = "full-cone"
[router.empty]
wan = "internet"
nat = "symmetric"
[router.plain]
wan = "internet"
nat = "none"
firewall = "inbound-blocked"
[host.alice]
on = "home"
firewall = { preset = "inbound-blocked", rules = ["tcp dport 22 drop", "udp dport 1000-2000 reject"] }
[host.dave]
on = "home"
[host.carol]
on = "plain"
[host.pub]
on = "internet"
firewall = "udp-blocked"
[router.cone]
wan = "internet"
nat = "full-cone"
firewall = "stun-port-blocked"
[host.erin]
on = "cone"
"#,
    )
    .unwrap();
    let name = lab_name("bhost");
    let _g = LabGuard(name.clone());
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name, "--verify", "--json"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let r = &json_of(&o)["verify"];
    let status = |node: &str, section: &str, what: &str| {
        let l = lines(r, node, section).iter().find(|l| l["what"].as_str().unwrap().starts_with(what));
        let l = l.unwrap_or_else(|| panic!("{node} {what}: {r}"));
        (l["expected"].as_str().unwrap().to_string(), l["status"].as_str().unwrap().to_string())
    };
    let ok = |e: &str| (e.to_string(), "as-declared".to_string());
    assert_eq!(status("alice", "firewall", "tcp 22 out (rule 1)"), ok("drop"));
    assert_eq!(status("alice", "firewall", "udp 1000 out (rule 2)"), ok("drop"));
    assert_eq!(status("alice", "firewall", "udp 7 in, unsolicited (from home)"), ok("drop"));
    assert_eq!(status("alice", "firewall", "tcp 80 out"), ok("pass"));
    assert_eq!(status("pub", "firewall", "udp 7 in, unsolicited (from the probe server)"), ok("drop"));
    assert_eq!(status("pub", "firewall", "tcp 7 in, unsolicited (from the probe server)"), ok("pass"));
    // A plain router's LAN is routable: its firewall is probed straight to carol.
    assert_eq!(status("plain", "firewall", "tcp 7 in"), ok("drop"));
    assert_eq!(status("plain", "nat", "translation"), ok("none"));
    // A full cone lets anyone reach a mapping, over TCP too; a firewall that allows it
    // does not change that.
    assert_eq!(status("cone", "firewall", "udp in, unsolicited (to a mapping)"), ok("pass"));
    assert_eq!(status("cone", "firewall", "tcp in, unsolicited (to a mapping)"), ok("pass"));
    // dave has no firewall of his own: the full cone is probed from him; the empty NAT is said so.
    assert_eq!(lines(r, "home", "nat")[0]["why"].as_str().map(|w| w.contains("from dave")), Some(true), "{r}");
    assert_eq!(status("home", "nat", "filtering"), ok("endpoint-independent"));
    let (_, s) = status("empty", "nat", "nat");
    assert_eq!(s, "not-checked");
    assert_eq!(r["mismatches"], 0, "{r}");
}

#[test]
fn up_verify_tears_down_a_lab_it_cannot_prove() {
    if !require_root() {
        return;
    }
    // A host whose link loses everything: its NAT cannot answer as declared.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dead.toml");
    let src = "[router.home]\nwan = \"internet\"\n[host.alice]\non = \"home\"\n\
               impair = { up = { loss = { model = \"random\", percent = 100 } } }\n";
    std::fs::write(&file, src).unwrap();
    let name = lab_name("bdead");
    let _g = LabGuard(name.clone());
    let o = icelab(&["up", file.to_str().unwrap(), "--name", &name, "--verify", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    // A mismatch is an error object on stdout, the report in its details.
    let j = json_of(&o);
    assert_eq!(j["error"]["kind"], "failed", "{j}");
    assert_eq!(mismatched(&j["details"]["verify"]), ["home nat STUN server answers"], "{j}");
    assert!(stderr(&o).contains("torn down"), "{}", stderr(&o));
    assert!(lab_namespaces(&name).is_empty(), "{:?}", lab_namespaces(&name));
}

#[test]
fn verify_input_errors() {
    if !require_root() {
        return;
    }
    let o = icelab(&["verify", "bnolab99999"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("no lab named"), "{}", stderr(&o));
    let name = lab_name("bin");
    let _g = LabGuard(name.clone());
    assert!(icelab(&["up", &topology("same-lan.toml"), "--name", &name]).status.success());
    let o = icelab(&["verify", &name, "--file", &topology("cgnat-double-nat.toml")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not describe lab"), "{}", stderr(&o));
    // Verify works from any directory: the lab keeps a copy of its file.
    let o = Command::new(env!("CARGO_BIN_EXE_icelab")).args(["verify", &name]).current_dir("/").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // A probe server of a live process (pid 1) in the way: the checks cannot run.
    sh(&format!("ip netns add icelab-{name}-_verify1"));
    let o = icelab(&["verify", &name]);
    assert_eq!(o.status.code(), Some(3), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("another verify"), "{}", stderr(&o));
    // `icelab down` removes probe servers with the lab.
    assert!(icelab(&["down", &name]).status.success());
    assert!(lab_namespaces(&name).is_empty());
}
