//! Timeline events without root: validation errors located at file:line:col, and the
//! plan steps each bundled `event-*.toml` turns into (snapshots).

use std::fmt::Write;
use std::path::Path;

use icelab::plan::{ImpairEngine, PlanOptions, Step, plan_with};
use icelab::spec::{parse_file, parse_str};

const BASE: &str = r#"
[router.home]
wan = "internet"
[host.alice]
on = "home"
[host.bob]
on = "internet"
[server.relay]
services = ["turn"]
[scenario]
offerer = "alice"
answerer = "bob"
turn = "relay"
"#;

fn errors(events: &str) -> Vec<String> {
    let src = format!("{BASE}{events}");
    let e = parse_str("t.toml", &src).expect_err("the file should be rejected");
    e.diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
}

fn assert_one(events: &str, line_col: &str, needle: &str) {
    let errs = errors(events);
    assert!(
        errs.iter().any(|e| e.starts_with(line_col) && e.contains(needle)),
        "wanted {line_col} `{needle}`, got {errs:#?}"
    );
}

#[test]
fn unknown_node_is_located() {
    assert_one("[[event]]\nat-ms = 100\nlink = \"down\"\nnode = \"carol\"\n", "17:8", "unknown node `carol`");
}

#[test]
fn wrong_node_kind_is_located() {
    assert_one("[[event]]\nat-ms = 100\nnat-flush = \"alice\"\n", "16:13", "`alice` is not a router");
    assert_one("[[event]]\nat-ms = 100\nturn = \"stop\"\nserver = \"home\"\n", "17:10", "unknown server `home`");
}

#[test]
fn event_beyond_deadline_or_data_phase() {
    let src = BASE.replace("turn = \"relay\"\n", "turn = \"relay\"\ndeadline-ms = 5000\ndata-ms = 2000\n");
    let e = parse_str("t.toml", &format!("{src}[[event]]\nat-ms = 6000\nfirewall-clear = \"home\"\n")).unwrap_err();
    let msgs: Vec<&str> = e.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("beyond the deadline")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.contains("after the data phase ends")), "{msgs:?}");
}

#[test]
fn bad_actions_are_located() {
    assert_one("[[event]]\nat-ms = 100\nlink = \"sideways\"\nnode = \"alice\"\n", "16:8", "bad link action");
    assert_one("[[event]]\nat-ms = 100\n", "14:1", "event has no action");
    assert_one(
        "[[event]]\nat-ms = 100\nfirewall-clear = \"home\"\nturn = \"stop\"\nserver = \"relay\"\n",
        "14:1",
        "2 actions",
    );
    assert_one(
        "[[event]]\nat-ms = 100\nfirewall-clear = \"home\"\nexpect = \"maybe\"\n",
        "17:10",
        "unknown event expectation",
    );
    assert_one(
        "[[event]]\nat-ms = 100\nfirewall-clear = \"home\"\npair = \"turn\"\n",
        "17:8",
        "unknown pair expectation `turn`",
    );
    assert_one(
        "[[event]]\nat-ms = 300\nfirewall-clear = \"home\"\n[[event]]\nat-ms = 100\nfirewall-clear = \"home\"\n",
        "18:9",
        "time order",
    );
}

#[test]
fn events_without_scenario_are_rejected() {
    let src = "[host.a]\non = \"internet\"\n[[event]]\nat-ms = 1\nlink = \"down\"\nnode = \"a\"\n";
    let e = parse_str("t.toml", src).unwrap_err();
    assert!(e.diagnostics[0].message.contains("without [scenario]"), "{e:?}");
}

#[test]
fn data_phase_and_deadline_cover_the_timeline() {
    let src = format!(
        "{BASE}[[event]]\nat-ms = 2000\nfirewall-clear = \"home\"\nexpect = \"recovers\"\nmax-recovery-ms = 9000\n"
    );
    let t = parse_str("t.toml", &src).unwrap();
    let s = t.scenario.unwrap();
    assert_eq!(s.data_ms, 2000 + 10_000);
    assert_eq!(s.deadline_ms, s.data_ms + icelab::scenario::DEFAULT_DEADLINE_MS);
}

fn render(path: &Path) -> String {
    let spec = parse_file(path).unwrap();
    let plan = plan_with(
        &spec.topology,
        &spec.events,
        "icelab-snap",
        &PlanOptions { engine: ImpairEngine::Userspace, seed: 1 },
    );
    let mut out = String::new();
    for e in &plan.events {
        assert_eq!(e.problem, None, "{}: event {} was not planned", path.display(), e.index);
        let _ = writeln!(out, "#{} at {} ms: {}", e.index, e.at_ms, e.what);
        for step in &e.steps {
            let _ = writeln!(out, "  {step}");
            if let Step::Nftables { ruleset, .. } = step {
                out.extend(ruleset.lines().map(|l| format!("    | {l}\n")));
            }
        }
    }
    out
}

/// The rebinding ruleset is the NAT generator's own output with another hash seed,
/// not an edit of the original text.
#[test]
fn nat_rebind_is_the_generator_with_another_seed() {
    let topo = parse_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/event-nat-rebind.toml")).unwrap();
    let plan = plan_with(&topo.topology, &topo.events, "icelab-snap", &PlanOptions::default());
    let rulesets: Vec<&str> = plan.events[0]
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Nftables { ruleset, .. } => Some(ruleset.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(rulesets.len(), 1, "{:?}", plan.events[0].steps);
    let seed = format!("seed {:#x}", icelab::nat::REBIND_HASH_SEED);
    assert!(rulesets[0].contains(&seed), "{}", rulesets[0]);
    assert!(!rulesets[0].contains(&format!("seed {:#x}", icelab::nat::HASH_SEED)));
    assert!(matches!(plan.events[0].steps.last(), Some(Step::FlushConntrack { .. })));
}

/// An engine-carried link's impairment event addresses the engine link the plan
/// records as data; a veth's becomes netem steps.
#[test]
fn impair_events_follow_the_engine_choice() {
    let topo = parse_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/event-lte.toml")).unwrap();
    let user = plan_with(
        &topo.topology,
        &topo.events,
        "icelab-snap",
        &PlanOptions { engine: ImpairEngine::Userspace, seed: 1 },
    );
    let engine = user.engine.as_ref().expect("the userspace plan starts an engine");
    let sets: Vec<&Step> =
        user.events.iter().flat_map(|e| &e.steps).filter(|s| matches!(s, Step::EngineSet { .. })).collect();
    assert!(!sets.is_empty());
    for s in sets {
        let Step::EngineSet { link, control, .. } = s else { unreachable!() };
        assert_eq!(control, &engine.control);
        assert!(user.uplinks.iter().any(|u| u.engine_link == Some(*link)), "link {link} is not an uplink's");
    }
    let netem =
        plan_with(&topo.topology, &topo.events, "icelab-snap", &PlanOptions { engine: ImpairEngine::Netem, seed: 1 });
    assert!(netem.engine.is_none());
    assert!(netem.events.iter().flat_map(|e| &e.steps).any(|s| matches!(s, Step::Netem { .. })));
    assert!(!netem.events.iter().flat_map(|e| &e.steps).any(|s| matches!(s, Step::EngineSet { .. })));
}

#[test]
fn event_operations_match_snapshots() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("event-"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{files:?}");
    for p in files {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(name, render(&p));
    }
}

#[test]
fn a_cpu_event_sets_the_servers_limit_and_a_restart_rejoins_it() {
    let events = "[[event]]\nat-ms = 1000\ncpu = { server = \"relay\", cpu = 0.1 }\n\
                  [[event]]\nat-ms = 2000\nturn = \"stop\"\nserver = \"relay\"\n\
                  [[event]]\nat-ms = 3000\nturn = \"start\"\nserver = \"relay\"\n";
    // Unlimited at the build: the event makes the cgroup, the restart's process joins it.
    let spec = parse_str("t.toml", &format!("{BASE}{events}")).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan_with(&spec.topology, &spec.events, "icelab-t", &PlanOptions::default());
    assert!(!plan.steps.iter().any(|s| matches!(s, Step::CpuLimit { .. })));
    let limit = Step::CpuLimit {
        ns: "icelab-t-relay".into(),
        cgroup: "icelab-t-relay".into(),
        cores: 0.1,
        services: vec!["turn".into()],
    };
    assert_eq!(plan.events[0].what, "cpu relay = 0.1 cores");
    assert_eq!(plan.events[0].steps, vec![limit.clone()]);
    assert!(matches!(plan.events[2].steps.as_slice(), [Step::Spawn { .. }, l] if *l == limit), "{:?}", plan.events[2]);
    // Limited at the build: a restart rejoins the build's limit.
    let limited = BASE.replace("services = [\"turn\"]", "services = [\"turn\"]\ncpu = 0.5");
    let restart = "[[event]]\nat-ms = 2000\nturn = \"start\"\nserver = \"relay\"\n";
    let spec = parse_str("t.toml", &format!("{limited}{restart}")).unwrap_or_else(|e| panic!("{e}"));
    let plan = plan_with(&spec.topology, &spec.events, "icelab-t", &PlanOptions::default());
    let built: Vec<&Step> = plan.steps.iter().filter(|s| matches!(s, Step::CpuLimit { .. })).collect();
    let half = Step::CpuLimit {
        ns: "icelab-t-relay".into(),
        cgroup: "icelab-t-relay".into(),
        cores: 0.5,
        services: vec!["turn".into()],
    };
    assert_eq!(built, [&half]);
    assert_eq!(plan.events[0].steps.last(), Some(built[0]));
}

#[test]
fn cpu_event_mistakes_are_located() {
    assert_one("[[event]]\nat-ms = 1\ncpu = { server = \"relay\", cpu = 0.0 }\n", "16:33", "cpu = 0 is outside");
    assert_one("[[event]]\nat-ms = 1\ncpu = { server = \"bob\", cpu = 1.0 }\n", "16:18", "unknown server `bob`");
    assert_one("[[event]]\nat-ms = 1\ncpu = { server = \"relay\" }\n", "16:", "missing field `cpu`");
}
