//! Snapshot tests of plans and of their shell form, for every bundled topology;
//! and a check that `netns-scripts/` holds the current shell form.

use std::path::Path;

use icelab::plan::{Step, plan, shell};
use icelab::spec::parse_file;

fn bundled() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    assert!(v.len() >= 3, "bundled topologies missing");
    v
}

fn stem(p: &Path) -> String {
    p.file_stem().unwrap().to_string_lossy().into_owned()
}

fn rel(p: &Path) -> String {
    format!("topologies/{}", p.file_name().unwrap().to_string_lossy())
}

/// The plan `icelab export` renders: the lab's steps and its events'.
fn plan_of(p: &Path, prefix: &str) -> icelab::plan::Plan {
    let spec = parse_file(p).unwrap();
    icelab::plan::plan_with(&spec.topology, &spec.events, prefix, &icelab::plan::PlanOptions::default())
}

#[test]
fn plans_match_snapshots() {
    for p in bundled() {
        let pl = plan_of(&p, "icelab-snap");
        let mut text: String = pl.steps.iter().map(|s| format!("{s}\n")).collect();
        for e in &pl.events {
            text += &format!("\nevent {} at {} ms: {}\n", e.index, e.at_ms, e.what);
            text.extend(e.steps.iter().map(|s| format!("  {s}\n")));
        }
        insta::assert_snapshot!(format!("plan-{}", stem(&p)), text);
    }
}

#[test]
fn shell_scripts_match_snapshots() {
    for p in bundled() {
        insta::assert_snapshot!(format!("shell-{}", stem(&p)), shell::render(&plan_of(&p, "icelab-sh"), &rel(&p)));
    }
}

/// `netns-scripts/NAME.sh` must be what `icelab export topologies/NAME.toml` prints.
/// `ICELAB_UPDATE_SCRIPTS=1 cargo test --test plan_snapshots` rewrites them.
#[test]
fn shipped_netns_scripts_are_current() {
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("netns-scripts");
    for p in bundled() {
        let script = shell::render(&plan_of(&p, "icelab-sh"), &rel(&p));
        let target = out.join(format!("{}.sh", stem(&p)));
        if std::env::var("ICELAB_UPDATE_SCRIPTS").as_deref() == Ok("1") {
            std::fs::write(&target, &script).unwrap();
        }
        let shipped = std::fs::read_to_string(&target).unwrap_or_default();
        assert!(
            shipped == script,
            "{} is stale: run ICELAB_UPDATE_SCRIPTS=1 cargo test --test plan_snapshots",
            target.display()
        );
    }
}

#[test]
fn plan_orders_namespaces_before_their_links_and_links_before_addresses() {
    let topo =
        parse_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/cgnat-double-nat.toml")).unwrap().topology;
    let p = plan(&topo, "icelab-o");
    let pos = |f: &dyn Fn(&Step) -> bool| p.steps.iter().position(f).unwrap();
    let last_ns = p.steps.iter().rposition(|s| matches!(s, Step::AddNamespace { .. })).unwrap();
    let first_veth = pos(&|s| matches!(s, Step::AddVeth { .. }));
    assert!(last_ns < first_veth);
    // The home router's WAN joins the carrier's LAN bridge, which must exist first.
    let carrier_lan = pos(&|s| matches!(s, Step::AddBridge { ns, name } if ns == "icelab-o-carrier" && name == "lan"));
    let home_wan = pos(&|s| matches!(s, Step::AddVeth { ns, name, .. } if ns == "icelab-o-home" && name == "wan"));
    assert!(carrier_lan < home_wan);
    // Nothing is ever created outside the lab's namespaces.
    assert!(p.steps.iter().all(|s| s.ns().starts_with("icelab-o-")));
    assert!(p.steps.iter().all(|s| !matches!(s, Step::AddVeth { peer_ns, .. } if !peer_ns.starts_with("icelab-o-"))));
}

#[test]
fn plain_router_lan_is_routed_but_nat_lan_is_not() {
    let src = "[router.isp]\nwan = \"internet\"\nnat = \"none\"\nlan = \"10.9.0.0/24\"\n[router.home]\nwan = \"isp\"\n[host.h]\non = \"home\"\n";
    let topo = icelab::spec::parse_str("t.toml", src).unwrap().topology;
    let p = plan(&topo, "icelab-r");
    let routes: Vec<String> = p
        .steps
        .iter()
        .filter(|s| matches!(s, Step::AddRoute { dst, .. } if dst.prefix_len() > 0))
        .map(|s| s.to_string())
        .collect();
    assert_eq!(routes, vec!["icelab-r-internet: route 10.9.0.0/24 via 203.0.113.10"]);
}
