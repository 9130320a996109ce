//! What `verify` probes and expects, derived from files alone (no root): snapshots for
//! every bundled topology, and the report's verdicts from given observations.

use std::path::Path;

use icelab::spec::parse_str;
use icelab::verify::derive::{Action, Place, derive, free_addresses};
use icelab::verify::report::{FwObservation, assemble, render_plan};

fn bundled() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn verify_plans_of_bundled_topologies_match_snapshots() {
    for p in bundled() {
        let topo = icelab::spec::parse_file(&p).unwrap().topology;
        let vp = derive(&topo).unwrap();
        let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("verify-{stem}"), render_plan(&vp));
    }
}

const MIXED: &str = r#"
[router.home]
wan = "internet"
nat = "full-cone"
firewall = ["inbound-blocked"]
[router.empty]
wan = "internet"
[host.alice]
on = "home"
firewall = { preset = "stun-port-blocked", rules = ["tcp dport 22 drop", "ip daddr 203.0.113.9 drop"] }
[host.pub]
on = "internet"
address = "192.0.2.50"
firewall = { preset = "udp-blocked", rules = ["meta mark 1 drop"] }
[server.stun]
services = ["stun"]
addresses = ["198.51.100.254", "198.51.100.252"]
"#;

#[test]
fn probe_server_addresses_avoid_the_lab() {
    let topo = parse_str("m.toml", MIXED).unwrap().topology;
    let a = free_addresses(&topo).unwrap();
    assert_eq!(a.map(|a| a.to_string()), ["198.51.100.253", "198.51.100.251"]);
}

#[test]
fn host_firewalls_get_inbound_probes_from_their_gateway_and_rules_their_own() {
    let topo = parse_str("m.toml", MIXED).unwrap().topology;
    let vp = derive(&topo).unwrap();
    let alice = vp.firewalls.iter().find(|f| f.node == "alice").unwrap();
    let get = |what: &str| alice.probes.iter().find(|p| p.what.starts_with(what)).unwrap_or_else(|| panic!("{what}"));
    // The custom rule is probed; one that matches addresses only is said not to be.
    assert_eq!(get("tcp 22 out").expected.pass, Some(false));
    assert_eq!(get("tcp 443 out").expected.pass, Some(true));
    assert!(alice.notes.iter().any(|n| n.contains("rule 2") && n.contains("addresses")));
    // Unsolicited inbound comes from the router the host hangs off, straight to port 7.
    let inbound = get("udp 7 in");
    assert_eq!(inbound.from, Place::Node("home".into()));
    assert!(matches!(inbound.action, Action::UdpEcho { to } if to.port() == 7));
    // A host on the internet is probed inbound by the probe server.
    let public = vp.firewalls.iter().find(|f| f.node == "pub").unwrap();
    let udp_in = public.probes.iter().find(|p| p.what.starts_with("udp 7 in")).unwrap();
    assert_eq!((udp_in.from.clone(), udp_in.expected.pass), (Place::ProbeServer, Some(false)));
    // Its unmodelled rule leaves what UDP-blocking does not decide unknown.
    let tcp_in = public.probes.iter().find(|p| p.what.starts_with("tcp 7 in")).unwrap();
    assert_eq!(tcp_in.expected.pass, None);
    assert!(public.notes.iter().any(|n| n.contains("rule 1") && n.contains("not modelled")));
    // The router's firewall drops unsolicited UDP although its full-cone NAT would pass it.
    let home = vp.firewalls.iter().find(|f| f.node == "home").unwrap();
    let uns = home.probes.iter().find(|p| p.what.starts_with("udp in")).unwrap();
    assert_eq!(uns.expected.pass, Some(false));
    assert!(uns.expected.why.contains("inbound-blocked"), "{}", uns.expected.why);
    // A NAT with nothing on its LAN is reported, not failed.
    let empty = vp.nats.iter().find(|n| n.router == "empty").unwrap();
    assert!(empty.note.as_deref().unwrap().contains("nothing on its LAN"));
    // alice's STUN ports are blocked: home's NAT is probed on the probe server's other grid.
    let home_nat = vp.nats.iter().find(|n| n.router == "home").unwrap();
    assert_eq!(home_nat.vantage.as_deref(), Some("alice"));
    assert!(home_nat.own_server && home_nat.server.unwrap().port() == 40000, "{home_nat:?}");
    // ... and the router's firewall turns the NAT's endpoint-independent filtering into APDF.
    assert_eq!(home_nat.filtering.clone().unwrap().unwrap().to_string(), "address-and-port-dependent");
}

#[test]
fn the_report_judges_observations_against_the_plan() {
    let topo = parse_str("m.toml", MIXED).unwrap().topology;
    let vp = derive(&topo).unwrap();
    // Every firewall probe passes: all that must be dropped mismatches.
    let fw: Vec<Vec<Option<FwObservation>>> = vp
        .firewalls
        .iter()
        .map(|f| f.probes.iter().map(|_| Some(FwObservation { pass: true, detail: "test".into() })).collect())
        .collect();
    let nats = vec![None; vp.nats.len()];
    let r = assemble("t", &vp, &nats, &fw, 1.0);
    let must_drop = vp.firewalls.iter().flat_map(|f| &f.probes).filter(|p| p.expected.pass == Some(false)).count();
    assert!(must_drop > 3);
    assert_eq!(r.mismatches, must_drop);
    assert!(!r.ok);
    let unknown = vp.firewalls.iter().flat_map(|f| &f.probes).filter(|p| p.expected.pass.is_none()).count();
    // Unknown expectations and NATs that were not probed are "not checked", never failures.
    assert_eq!(r.not_checked, unknown + vp.nats.len());
    let table = r.to_string();
    assert!(table.contains("MISMATCH") && table.contains("not checked"), "{table}");
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["mismatches"], must_drop);
}
