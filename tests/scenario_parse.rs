//! Pure tests: `[scenario]`/`[expect]` parsing and its located errors.

use icelab::peer::TransportPolicy;
use icelab::scenario::{CandidateType, ExpectedOutcome};
use icelab::spec::parse_str;

const NODES: &str = r#"
[router.home]
wan = "internet"
[host.alice]
on = "home"
[host.bob]
on = "home"
[server.stun]
services = ["stun"]
[server.relay]
services = ["turn"]
"#;

fn errors(tail: &str) -> Vec<(usize, usize, String)> {
    let src = format!("{NODES}{tail}");
    let e = parse_str("t.toml", &src).expect_err("the file should be rejected");
    e.diagnostics.iter().map(|d| (d.line, d.col, d.message.clone())).collect()
}

/// Line of the first occurrence of `needle` in the full source.
fn line_of(tail: &str, needle: &str) -> usize {
    let src = format!("{NODES}{tail}");
    src[..src.find(needle).unwrap()].matches('\n').count() + 1
}

#[test]
fn full_scenario_parses() {
    let src = format!(
        "{NODES}{}",
        r#"
[scenario]
offerer = "alice"
answerer = "bob"
stun = ["stun", "relay"]
turn = "relay"
policy = "relay"
data-ms = 100
deadline-ms = 3000
[expect]
outcome = "connected"
local = "relay"
remote = ["relay", "prflx"]
protocol = "udp"
relay-transport = "udp"
max-ice-ms = 2500
max-connect-ms = 3000
"#
    );
    let t = parse_str("t.toml", &src).unwrap();
    let s = t.scenario.unwrap();
    assert_eq!(s.calls, [icelab::scenario::CallPair { offerer: "alice".into(), answerer: "bob".into() }]);
    assert_eq!(s.stun, ["stun", "relay"]);
    assert_eq!(s.policy, TransportPolicy::Relay);
    assert_eq!((s.data_ms, s.deadline_ms), (100, 3000));
    let e = t.expect.unwrap();
    assert_eq!(e.outcome, ExpectedOutcome::Connected);
    assert_eq!(e.local, Some(vec![CandidateType::Relay]));
    assert_eq!(e.remote, Some(vec![CandidateType::Relay, CandidateType::Prflx]));
    assert_eq!(e.max_connect_ms, Some(3000.0));
}

#[test]
fn unknown_host_is_located() {
    let tail = "[scenario]\nofferer = \"alice\"\nanswerer = \"carol\"\n";
    let e = errors(tail);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, line_of(tail, "answerer"));
    assert_eq!(e[0].1, 12);
    assert!(e[0].2.contains("unknown host `carol`"));
}

#[test]
fn server_without_the_service() {
    let tail = "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nturn = \"stun\"\n";
    let e = errors(tail);
    assert_eq!(e[0].0, line_of(tail, "turn ="));
    assert!(e[0].2.contains("does not provide TURN"), "{e:?}");
}

#[test]
fn bad_type_words() {
    let tail = "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n[expect]\nlocal = \"srflxx\"\noutcome = \"ok\"\nprotocol = \"sctp\"\n";
    let e = errors(tail);
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(e[0].2.contains("`srflxx` is not a candidate type"));
    assert_eq!(e[0].0, line_of(tail, "local ="));
    assert!(e[1].2.contains("unknown outcome `ok`"));
    assert!(e[2].2.contains("unknown protocol `sctp`"));
}

#[test]
fn unknown_key_and_misuse() {
    let e = errors("[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nofferor = \"x\"\n");
    assert!(e[0].2.contains("unknown field `offeror`"), "{e:?}");
    let e = errors("[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\npolicy = \"relay\"\n");
    assert!(e[0].2.contains("needs a TURN server"), "{e:?}");
    let e = errors("[expect]\noutcome = \"failed\"\n");
    assert!(e[0].2.contains("[expect] without [scenario]"), "{e:?}");
    let e = errors(
        "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n[expect]\noutcome = \"failed\"\nlocal = \"host\"\n",
    );
    assert!(e[0].2.contains("outcome = \"failed\""), "{e:?}");
}

#[test]
fn stun_and_turn_on_one_server() {
    let src = "[host.a]\non = \"internet\"\n[server.s]\nservices = [\"stun\", \"turn\"]\n";
    let e = parse_str("t.toml", src).unwrap_err();
    assert!(e.diagnostics[0].message.contains("both `stun` and `turn`"));
}

#[test]
fn turn_service_is_spawned_with_lab_subnets() {
    let t = parse_str("t.toml", NODES).unwrap();
    let plan = icelab::plan::plan(&t.topology, "icelab-x");
    let args = plan
        .steps
        .iter()
        .find_map(|s| match s {
            icelab::plan::Step::Spawn { service, args, .. } if service == "turn" => Some(args),
            _ => None,
        })
        .expect("a turn spawn step");
    assert_eq!(args[0], "turn-server");
    let allowed: Vec<&String> = args.windows(2).filter(|w| w[0] == "--allow").map(|w| &w[1]).collect();
    assert!(allowed.iter().any(|a| *a == "203.0.113.0/24"));
    assert!(allowed.iter().any(|a| a.starts_with("192.168.")));
    assert_eq!(plan.service("turn").unwrap().address.port(), 3478);
}

#[test]
fn ice_restart_and_timeouts() {
    use icelab::peer::{IceRestart, IceTimeouts};
    let parse = |extra: &str| {
        let src = format!("{NODES}[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n{extra}");
        parse_str("t.toml", &src).unwrap().scenario.unwrap()
    };
    assert_eq!(parse("").ice_restart, None);
    assert_eq!(parse("ice-restart = false\n").ice_restart, None);
    assert_eq!(parse("ice-restart = true\n").ice_restart, Some(IceRestart::default()));
    let s = parse("ice-restart = { after-disconnected-ms = 200, max = 5 }\nice-disconnected-ms = 800\n");
    assert_eq!(s.ice_restart, Some(IceRestart { after_disconnected_ms: 200, max_restarts: 5 }));
    assert_eq!(s.ice_timeouts, IceTimeouts { disconnected_ms: Some(800), failed_ms: None, keepalive_ms: None });

    let tail = "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nice-restart = { max = 0 }\n";
    let e = errors(tail);
    assert!(e[0].2.contains("max must be"), "{e:?}");
    assert_eq!(e[0].0, line_of(tail, "ice-restart"));
    let e = errors("[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nice-restart = { after = 1 }\n");
    assert!(e[0].2.contains("unknown key `after`"), "{e:?}");
    let e = errors("[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nice-restart = \"yes\"\n");
    assert!(e[0].2.contains("expected a boolean or a table"), "{e:?}");
    let tail =
        "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nice-disconnected-ms = 500\nice-keepalive-ms = 500\n";
    let e = errors(tail);
    assert!(e[0].2.contains("not below ice-disconnected-ms"), "{e:?}");
    assert_eq!(e[0].0, line_of(tail, "ice-keepalive-ms"));
    let e = errors("[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nice-failed-ms = 0\n");
    assert!(e[0].2.contains("ice-failed-ms must be positive"), "{e:?}");
}

const PEER_FILE: &str = "[router.home]\nwan = \"internet\"\n[host.alice]\non = \"home\"\n[host.bob]\non = \"home\"\n\
                    [scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n[expect]\nlocal = \"host\"\n";

/// `[expect.PEER]` overrides parse (with the required reason) through the file layer.
#[test]
fn overrides_parse_and_need_a_reason() {
    let ok = format!("{PEER_FILE}[expect.chromium]\nlocal = [\"srflx\"]\nreason = \"why\"\n");
    let t = parse_str("t.toml", &ok).unwrap();
    let e = t.expect.unwrap();
    assert_eq!((e.per_peer[0].peer.as_str(), e.per_peer[0].reason.as_str()), ("chromium", "why"));
    assert_eq!(e.for_peers("built-in", "chromium").local, Some(vec![icelab::scenario::CandidateType::Srflx]));
    let no_reason = format!("{PEER_FILE}[expect.firefox]\nlocal = [\"srflx\"]\n");
    let err = parse_str("t.toml", &no_reason).unwrap_err();
    assert!(err.diagnostics.iter().any(|d| d.message.contains("needs `reason")), "{err:?}");
    let outcome = format!("{PEER_FILE}[expect.firefox]\noutcome = \"failed\"\nreason = \"x\"\n");
    assert!(parse_str("t.toml", &outcome).is_err());
    let top = format!("{PEER_FILE}reason = \"x\"\n");
    assert!(parse_str("t.toml", &top).is_err());
}

const FOUR_HOSTS: &str = "[router.home]\nwan = \"internet\"\n[host.a]\non = \"home\"\n[host.b]\non = \"home\"\n\
                          [host.c]\non = \"internet\"\n[host.d]\non = \"internet\"\n";

/// `calls` places several pairs; each is checked against the hosts, and a scenario
/// takes either one pair or a list.
#[test]
fn several_calls_parse_and_are_checked() {
    use icelab::scenario::CallPair;
    let ok = format!("{FOUR_HOSTS}[scenario]\ncalls = [[\"a\", \"c\"], [\"b\", \"d\"], [\"a\", \"d\"]]\n");
    let s = parse_str("t.toml", &ok).unwrap().scenario.unwrap();
    let pair = |o: &str, a: &str| CallPair { offerer: o.into(), answerer: a.into() };
    assert_eq!(s.calls, [pair("a", "c"), pair("b", "d"), pair("a", "d")]);
    let msgs = |tail: &str| -> Vec<String> {
        let e = parse_str("t.toml", &format!("{FOUR_HOSTS}[scenario]\n{tail}")).unwrap_err();
        e.diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
    };
    assert_eq!(msgs("calls = [[\"a\", \"x\"]]\n"), ["12:16: unknown host `x`"]);
    assert_eq!(msgs("calls = [[\"a\"]]\n"), ["12:10: a call names two hosts, not 1"]);
    assert_eq!(msgs("calls = [[\"a\", \"a\"]]\n"), ["12:16: offerer and answerer are the same host"]);
    assert_eq!(msgs("calls = []\n"), ["12:9: `calls` is empty"]);
    assert_eq!(
        msgs("offerer = \"a\"\nanswerer = \"b\"\ncalls = [[\"a\", \"c\"]]\n"),
        ["14:9: `calls` beside `offerer`/`answerer`"]
    );
    assert_eq!(msgs("offerer = \"a\"\n"), ["12:11: [scenario] has no answerer"]);
    assert_eq!(msgs("data-ms = 5\n"), ["11:1: [scenario] has no offerer and answerer"]);
    let events = format!("{ok}[[event]]\nat-ms = 100\nlink = \"down\"\nnode = \"a\"\n");
    let e = parse_str("t.toml", &events).unwrap_err();
    assert!(e.diagnostics[0].message.contains("events need a single call"), "{e}");
}

#[test]
fn family_expectation_words() {
    let tail = "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n[expect]\nfamily = \"v6\"\n";
    let e = errors(tail);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, line_of(tail, "family ="));
    assert!(e[0].2.contains("unknown family `v6`"), "{e:?}");
    let tail =
        "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\n[expect]\noutcome = \"failed\"\nfamily = \"ipv6\"\n";
    assert!(errors(tail)[0].2.contains("a pair expectation with outcome = \"failed\""));
}
