//! Root test: client behind an nftables masquerade router, server with two
//! IPs, each in its own network namespace (the host namespace is untouched).
//! Linux masquerade + conntrack must classify as endpoint-independent mapping
//! and address-and-port-dependent filtering, by our probe and by coturn.
//! Fails when not root, unless ICELAB_SKIP_ROOT_TESTS=1.

use icelab::stun::{Behaviour, ProbeOptions, StunServerConfig, parse_natdiscovery_output};
use std::process::Command;

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces `icelab-s<pid>-{srv,nat,cli}`, deleted on drop (also on panic). The claim,
/// dropped last, makes them leftovers for `icelab cleanup` if the test crashes.
struct Lab {
    names: Vec<String>,
    _claim: icelab::fabric::registry::Claim,
}

impl Lab {
    fn ns(&self, i: usize) -> &str {
        &self.names[i]
    }

    fn build() -> Lab {
        let claim = icelab::fabric::registry::Claim::new(&format!("s{}", std::process::id())).expect("claim");
        let prefix = claim.prefix();
        let lab = Lab { names: ["srv", "nat", "cli"].map(|n| format!("{prefix}-{n}")).to_vec(), _claim: claim };
        for n in &lab.names {
            sh(&["ip", "netns", "add", n]);
            sh(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let (srv, nat, cli) = (lab.ns(0), lab.ns(1), lab.ns(2));
        sh(&["ip", "-n", nat, "link", "add", "wan", "type", "veth", "peer", "name", "eth0", "netns", srv]);
        sh(&["ip", "-n", nat, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", cli]);
        for (n, dev, addr) in [
            (srv, "eth0", "203.0.113.1/24"),
            (srv, "eth0", "203.0.113.2/24"),
            (nat, "wan", "203.0.113.254/24"),
            (nat, "lan", "10.0.0.1/24"),
            (cli, "eth0", "10.0.0.2/24"),
        ] {
            sh(&["ip", "-n", n, "addr", "add", addr, "dev", dev]);
            sh(&["ip", "-n", n, "link", "set", dev, "up"]);
        }
        sh(&["ip", "-n", cli, "route", "add", "default", "via", "10.0.0.1"]);
        sh(&["ip", "netns", "exec", nat, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for cmd in [
            "add table ip stuntest",
            "add chain ip stuntest post { type nat hook postrouting priority srcnat; policy accept; }",
            "add rule ip stuntest post oifname \"wan\" masquerade",
        ] {
            sh(&["ip", "netns", "exec", nat, "nft", cmd]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs `f` on a fresh thread with its own runtime inside namespace `ns`.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(f())
    })
}

#[test]
fn masquerade_is_eim_and_apdf() {
    if !nix::unistd::Uid::effective().is_root() {
        assert_eq!(
            std::env::var("ICELAB_SKIP_ROOT_TESTS").as_deref(),
            Ok("1"),
            "needs root (or set ICELAB_SKIP_ROOT_TESTS=1)"
        );
        return;
    }
    let lab = Lab::build();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = in_netns(lab.ns(0), move || {
        Box::pin(async move {
            let cfg = StunServerConfig {
                primary: "203.0.113.1".parse().unwrap(),
                alternate: Some("203.0.113.2".parse().unwrap()),
                ..Default::default()
            };
            icelab::stun::serve(cfg, async {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    std::thread::sleep(std::time::Duration::from_millis(200));

    let report = in_netns(lab.ns(2), || {
        Box::pin(async { icelab::stun::probe("203.0.113.1:3478".parse().unwrap(), ProbeOptions::default()).await })
    })
    .join()
    .unwrap()
    .unwrap();
    println!("{report}");
    assert!(report.nat, "{report}");
    assert_eq!(report.mapped.ip().to_string(), "203.0.113.254");
    assert_eq!(report.mapping, Some(Behaviour::EndpointIndependent), "{report}");
    assert_eq!(report.filtering, Some(Behaviour::AddressAndPortDependent), "{report}");

    let coturn = Command::new("ip")
        .args(["netns", "exec", lab.ns(2), "timeout", "60"])
        .args(["turnutils_natdiscovery", "-m", "-f", "203.0.113.1"])
        .output()
        .expect("turnutils_natdiscovery (coturn) must be installed");
    let text = String::from_utf8_lossy(&coturn.stdout);
    let (m, f) = parse_natdiscovery_output(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!((Some(m), Some(f)), (report.mapping, report.filtering), "{text}");

    // Lifetime via the icelab extension: shorten conntrack's UDP timeout to 3 s.
    sh(&["ip", "netns", "exec", lab.ns(1), "sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=3"]);
    let opts = ProbeOptions { lifetime_max: Some(std::time::Duration::from_secs(8)), ..Default::default() };
    let start = std::time::Instant::now();
    let report = in_netns(lab.ns(2), move || {
        Box::pin(async move { icelab::stun::probe("203.0.113.1:3478".parse().unwrap(), opts).await })
    })
    .join()
    .unwrap()
    .unwrap();
    println!("{report}\ntook {:?}", start.elapsed());
    let (alive, dead) = (report.lifetime_s.unwrap(), report.lifetime_dead_s.unwrap());
    assert!((2.0..3.5).contains(&alive) && dead > 2.5 && dead <= alive + 0.5, "{report}");

    let _ = stop_tx.send(());
    server.join().unwrap().unwrap();
}
