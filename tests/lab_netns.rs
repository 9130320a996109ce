//! Root tests: real labs in network namespaces, built, used and torn down by the CLI.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn up(file: &str, name: &str) -> LabGuard {
    let o = icelab(&["up", file, "--name", name]);
    assert!(o.status.success(), "up failed: {}", stderr(&o));
    assert_eq!(stdout(&o).trim(), name);
    LabGuard(name.to_string())
}

fn echo_from(lab: &str, node: &str, target: &str, extra: &[&str]) -> std::process::Output {
    let exe = env!("CARGO_BIN_EXE_icelab");
    let mut args = vec!["exec", lab, node, "--", exe, "echo", target, "--count", "2", "--timeout-ms", "500"];
    args.extend_from_slice(extra);
    icelab(&args)
}

#[test]
fn up_exec_down_leaves_the_root_namespace_unchanged() {
    if !require_root() {
        return;
    }
    let before = root_snapshot();
    let name = lab_name("rt");
    let lab = up(&topology("two-home-routers.toml"), &name);
    assert_eq!(lab_namespaces(&name).len(), 6);

    // alice reaches bob's router WAN address (203.0.113.11) across both NATs' public sides...
    let o = echo_from(&name, "alice", "203.0.113.11", &[]);
    assert!(o.status.success(), "echo to home2 WAN failed: {}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("2/2 replies"), "{}", stdout(&o));
    // ...and TCP too, but not bob's private address behind home2's NAT.
    assert!(echo_from(&name, "alice", "203.0.113.11", &["--tcp"]).status.success());
    let o = echo_from(&name, "alice", "192.168.2.10", &[]);
    assert_eq!(o.status.code(), Some(1), "a private address behind another NAT must be unreachable: {}", stdout(&o));

    let o = icelab(&["down", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::mem::forget(lab);
    assert!(lab_namespaces(&name).is_empty(), "namespaces left: {:?}", lab_namespaces(&name));
    assert!(!std::path::Path::new(&format!("/run/icelab/{name}")).exists());
    assert_eq!(before, root_snapshot(), "the root namespace changed");
}

#[test]
fn two_labs_of_one_file_run_side_by_side() {
    if !require_root() {
        return;
    }
    let (a, b) = (lab_name("sa"), lab_name("sb"));
    let _la = up(&topology("two-home-routers.toml"), &a);
    let _lb = up(&topology("two-home-routers.toml"), &b);
    for n in [&a, &b] {
        assert!(echo_from(n, "bob", "203.0.113.10", &[]).status.success());
    }
    let ls = stdout(&icelab(&["ls", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&ls).unwrap();
    let names: Vec<&str> = v["labs"].as_array().unwrap().iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert!(names.contains(&a.as_str()) && names.contains(&b.as_str()), "{names:?}");
    assert!(
        icelab(&["up", &topology("two-home-routers.toml"), "--name", &a]).status.code() == Some(2),
        "a second lab with a taken name is bad input (exit 2)"
    );
    assert_eq!(lab_namespaces(&a).len(), 6, "a failed up must not touch the existing lab");
}

#[test]
fn exec_passes_stdio_through_and_propagates_the_exit_code() {
    if !require_root() {
        return;
    }
    let name = lab_name("ex");
    let _lab = up(&topology("same-lan.toml"), &name);
    let mut child = Command::new(env!("CARGO_BIN_EXE_icelab"))
        .args(["exec", &name, "alice", "--", "sh", "-c", "read x; echo got $x; ip -4 -o addr show eth0; exit 3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"hello\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(out.starts_with("got hello\n"), "{out}");
    assert!(out.contains("192.168.1.10/24"), "exec must run inside alice's namespace: {out}");
    let o = icelab(&["exec", &name, "nobody", "--", "true"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nodes: internet, home, alice, bob"), "{}", stderr(&o));
}

#[test]
fn bad_files_exit_2_and_create_nothing() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("syntax", "[router.a\nwan = \"internet\"\n", ":1:"),
        ("field", "[router.a]\nwan = \"internet\"\ncolour = 1\n", ":3:1:"),
        ("unknown", "[host.a]\non = \"nope\"\n", ":2:6:"),
        ("self", "[router.a]\nwan = \"a\"\n", ":2:7:"),
        ("loop", "[router.a]\nwan = \"b\"\n[router.b]\nwan = \"a\"\n", ":2:7:"),
        (
            "overlap",
            "[router.a]\nwan = \"internet\"\nlan = \"10.0.0.0/8\"\n[router.b]\nwan = \"a\"\nlan = \"10.1.0.0/16\"\n",
            ":6:7:",
        ),
        (
            "dup",
            "[host.a]\non = \"internet\"\naddress = \"192.0.2.9\"\n[host.b]\non = \"internet\"\naddress = \"192.0.2.9\"\n",
            ":6:11:",
        ),
        ("public", "[host.a]\non = \"internet\"\naddress = \"1.2.3.4\"\n", ":3:11:"),
        ("badip", "[host.a]\non = \"internet\"\naddress = \"1.2.3\"\n", ":3:11:"),
        ("publan", "[router.a]\nwan = \"internet\"\nlan = \"198.51.100.0/24\"\n", ":3:7:"),
        ("service", "[server.s]\nservices = [\"ntp\"]\n", ":2:13:"),
        ("empty", "\n", ":1:1:"),
    ];
    let name = lab_name("bad");
    for (tag, src, loc) in cases {
        let path = dir.path().join(format!("{tag}.toml"));
        std::fs::write(&path, src).unwrap();
        let p = path.to_str().unwrap();
        for args in [vec!["check", p], vec!["up", p, "--name", &name]] {
            let o = icelab(&args);
            assert_eq!(o.status.code(), Some(2), "{tag}: {args:?} should exit 2: {}", stderr(&o));
            assert!(stderr(&o).contains(&format!("{p}{loc}")), "{tag}: wanted {p}{loc} in:\n{}", stderr(&o));
        }
        assert!(lab_namespaces(&name).is_empty(), "{tag}: namespaces were created");
        assert!(!std::path::Path::new(&format!("/run/icelab/{name}")).exists(), "{tag}: a lab record was created");
    }
    // Bad usage is exit 2 too.
    assert_eq!(icelab(&["up", &topology("same-lan.toml"), "--name", "Bad-Name"]).status.code(), Some(2));
    assert_eq!(icelab(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(icelab(&["down", "nosuchlab"]).status.code(), Some(2));
}

#[test]
fn failed_or_panicking_builds_leave_nothing() {
    if !require_root() {
        return;
    }
    for (var, step) in [("ICELAB_FAULT_FAIL_AT_STEP", "40"), ("ICELAB_FAULT_PANIC_AT_STEP", "55")] {
        let name = lab_name(if var.contains("PANIC") { "pa" } else { "fa" });
        let o = Command::new(env!("CARGO_BIN_EXE_icelab"))
            .args(["up", &topology("two-home-routers.toml"), "--name", &name])
            .env(var, step)
            .output()
            .unwrap();
        assert!(!o.status.success(), "{var}: the build should fail");
        assert!(stderr(&o).contains("injected"), "{}", stderr(&o));
        assert!(lab_namespaces(&name).is_empty(), "{var}: left {:?}", lab_namespaces(&name));
        assert!(!std::path::Path::new(&format!("/run/icelab/{name}")).exists());
    }
}

#[test]
fn sigint_and_sigterm_during_a_build_leave_nothing() {
    if !require_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, icelab::topology::generate::home_routers(40, 2)).unwrap();
    for sig in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGTERM] {
        let name = lab_name(if sig == nix::sys::signal::Signal::SIGINT { "si" } else { "st" });
        let mut child = Command::new(env!("CARGO_BIN_EXE_icelab"))
            .args(["up", big.to_str().unwrap(), "--name", &name])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while lab_namespaces(&name).len() < 5 && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!lab_namespaces(&name).is_empty(), "the build never started");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        let _g = LabGuard(name.clone());
        // Interrupted: could not run (exit 3).
        assert_eq!(status.code(), Some(3), "{sig}: exit status {status}");
        assert!(lab_namespaces(&name).is_empty(), "{sig}: left {} namespaces", lab_namespaces(&name).len());
    }
}

#[test]
fn exported_script_builds_the_same_lab() {
    if !require_root() {
        return;
    }
    // The second file has impaired links: the script starts the userspace engine too.
    // The third is dual-stack: IPv6 addresses, routes and the ip6 firewall table too; the
    // fourth has NAT64 (tayga's TUN device and its routes) and the lab's DNS.
    let files = [
        ("xa", "cgnat-double-nat.toml"),
        ("xb", "lte-home.toml"),
        ("xc", "call-ipv6-dual-stack.toml"),
        ("xd", "call-ipv6-nat64.toml"),
    ];
    for (tag, file) in files {
        export_matches(tag, &topology(file));
    }
}

fn export_matches(tag: &str, file: &str) {
    let name = lab_name(tag);
    let o = icelab(&["up", file, "--name", &name, "--impair-engine", "userspace"]);
    assert!(o.status.success(), "up failed: {}", stderr(&o));
    let _lab = LabGuard(name.clone());
    let script = stdout(&icelab(&["export", file]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lab.sh");
    std::fs::write(&path, script).unwrap();
    let sh_prefix = format!("icelab-{}", lab_name(&format!("{tag}s")));
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_icelab")).parent().unwrap().to_owned();
    let run = |verb: &str| {
        Command::new("sh")
            .arg(&path)
            .arg(verb)
            .env("ICELAB_PREFIX", &sh_prefix)
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()))
            .output()
            .unwrap()
    };
    struct ScriptDown<F: Fn(&str) -> std::process::Output>(F);
    impl<F: Fn(&str) -> std::process::Output> Drop for ScriptDown<F> {
        fn drop(&mut self) {
            (self.0)("down");
        }
    }
    let o = run("up");
    let _down = ScriptDown(run);
    assert!(o.status.success(), "script failed: {}", stderr(&o));
    let ours = format!("icelab-{name}");
    let topo = icelab::spec::parse_file(std::path::Path::new(file)).unwrap().topology;
    for node in topo.node_names() {
        assert_eq!(
            node_state(&format!("{ours}-{node}")).replace(&ours, "P"),
            node_state(&format!("{sh_prefix}-{node}")).replace(&sh_prefix, "P"),
            "{file}: node {node} differs between `icelab up` and the exported script"
        );
    }
    // The script's lab works too: a host reaches the STUN server through its NAT(s).
    let host = &topo.hosts.iter().find(|h| h.family.has_v4()).expect("an IPv4 host").name;
    let o = Command::new("ip")
        .args(["netns", "exec", &format!("{sh_prefix}-{host}"), env!("CARGO_BIN_EXE_icelab"), "echo", "198.51.100.10"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stdout(&o));
}

/// Links (name, kind, master, state, mtu), addresses, routes, nft ruleset and
/// forwarding of one namespace, normalised so two labs can be compared.
fn node_state(ns: &str) -> String {
    let links: serde_json::Value = serde_json::from_str(&sh(&format!("ip -j -d -n {ns} link show"))).unwrap();
    let mut out = String::new();
    for l in links.as_array().unwrap() {
        out += &format!(
            "link {} kind={} master={} admin-up={} mtu={}\n",
            l["ifname"].as_str().unwrap(),
            l["linkinfo"]["info_kind"].as_str().unwrap_or("-"),
            l["master"].as_str().unwrap_or("-"),
            // Admin state, not operstate: a bridge's operstate settles asynchronously.
            l["flags"].as_array().unwrap().iter().any(|f| f == "UP"),
            l["mtu"]
        );
    }
    out += &sh(&format!("ip -n {ns} -4 -o addr show | awk '{{print $2, $4}}'"));
    out += &sh(&format!("ip -n {ns} -6 -o addr show scope global | awk '{{print $2, $4}}'"));
    out += &sh(&format!("ip -n {ns} route show"));
    out += &sh(&format!("ip -n {ns} -6 route show | grep -v '^fe80::'"));
    // Table by table in sorted order: the applier loads a router's rulesets side by side,
    // so the order tables appear in `nft list ruleset` is not the plan's.
    let tables = sh(&format!("ip netns exec {ns} nft list tables"));
    let mut tables: Vec<&str> = tables.lines().collect();
    tables.sort();
    for t in tables {
        out += &sh(&format!("ip netns exec {ns} nft list {t}"));
    }
    out += &sh(&format!(
        "ip netns exec {ns} sysctl net.ipv4.ip_forward net.ipv6.conf.all.disable_ipv6; ip netns exec {ns} sysctl -n net.bridge.bridge-nf-call-iptables 2>/dev/null"
    ));
    out
}
