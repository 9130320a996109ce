//! The judge: a pure function from what happened (Outcome + Timings) and what the file
//! expects to a verdict with one line per expectation.

use serde::Serialize;

use super::expect::{CandidateType, Expect, ExpectedOutcome, PathClass};
use super::timings::Timings;
use crate::check::Check;
use crate::peer::{CandidateInfo, Outcome, PeerOutcome};

/// Every check of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// True when every check holds.
    pub pass: bool,
    /// The checks, in `[expect]` order.
    pub checks: Vec<Check>,
}

impl Verdict {
    /// One line per failed expectation, naming it.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("expectation `{}` failed: expected {}, observed {}", c.name, c.expected, c.observed))
            .collect()
    }
}

/// How the call ended, in a few words: `connected`, `timeout (...)` or `failed (...)`.
pub fn describe_outcome(o: &Outcome) -> String {
    if o.ok() {
        return "connected".into();
    }
    let why = |name: &str, p: &PeerOutcome| -> Option<String> {
        if p.ok {
            return None;
        }
        let detail = p
            .errors
            .iter()
            .rev()
            .find(|e| e.kind != crate::peer::ErrorKind::PeerGone)
            .or(p.errors.last())
            .map(|e| format!("{:?} in phase {:?}: {}", e.kind, e.phase, e.message))
            .or_else(|| p.exit_error.clone())
            .unwrap_or_else(|| "no result".into());
        Some(format!("{name}: {detail}"))
    };
    let reasons: Vec<String> =
        [why("offerer", &o.offerer), why("answerer", &o.answerer)].into_iter().flatten().collect();
    let word = if o.offerer.timed_out || o.answerer.timed_out { "timeout" } else { "failed" };
    format!("{word} ({})", reasons.join("; "))
}

/// Judges one run against the file's expectations.
pub fn judge(outcome: &Outcome, timings: &Timings, expect: &Expect) -> Verdict {
    let mut checks = Vec::new();
    let connected = outcome.ok();
    let (want, ok) = match expect.outcome {
        ExpectedOutcome::Connected => ("connected", connected),
        ExpectedOutcome::Failed => ("failed", !connected),
    };
    checks.push(Check { name: "outcome".into(), expected: want.into(), observed: describe_outcome(outcome), ok });
    let pair = outcome.offerer.selected_pair.as_ref();
    let mut pair_check = |name: &str, expected: String, got: Option<String>, ok: bool| {
        checks.push(Check {
            name: name.into(),
            expected,
            observed: got.unwrap_or_else(|| "no selected pair".into()),
            ok,
        });
    };
    let literal = expect.literal_types;
    if let Some(types) = &expect.local {
        let c = pair.map(|p| &p.local);
        pair_check("local", one_of(types, literal), c.map(type_of), matches(types, c, literal));
    }
    if let Some(types) = &expect.remote {
        let c = pair.map(|p| &p.remote);
        pair_check("remote", one_of(types, literal), c.map(type_of), matches(types, c, literal));
    }
    if let Some(proto) = &expect.protocol {
        let got = pair.map(|p| p.local.protocol.clone());
        let ok = got.as_deref() == Some(proto.as_str());
        pair_check("protocol", proto.clone(), got, ok);
    }
    if let Some(t) = &expect.relay_transport {
        let got = pair.map(|_| relay_transport(outcome).unwrap_or_else(|| "not relayed".into()));
        let ok = got.as_ref().is_some_and(|g| t.contains(g));
        pair_check("relay-transport", t.join(" or "), got, ok);
    }
    if let Some(want) = expect.path {
        let got = pair.map(|_| if relay_transport(outcome).is_some() { PathClass::Relayed } else { PathClass::Direct });
        pair_check("path", want.as_str().into(), got.map(|g| g.as_str().into()), got == Some(want));
    }
    if let Some(want) = &expect.family {
        let got = pair.map(pair_family);
        let ok = got.as_deref() == Some(want.as_str());
        pair_check("family", want.clone(), got, ok);
    }
    let mut bound = |name: &str, max: Option<f64>, got: Option<f64>| {
        if let Some(max) = max {
            checks.push(Check {
                name: name.into(),
                expected: format!("<= {max:.0} ms"),
                observed: got.map_or("never".into(), |v| format!("{v:.0} ms")),
                ok: got.is_some_and(|v| v <= max),
            });
        }
    };
    bound("max-ice-ms", expect.max_ice_ms, timings.ice_ms);
    bound("max-connect-ms", expect.max_connect_ms, timings.connect_ms);
    Verdict { pass: checks.iter().all(|c| c.ok), checks }
}

/// The TURN transport of the selected path, if it is relayed: ours, or the answerer's
/// when the remote end is its relay (only the gathering side knows the transport).
pub fn relay_transport(o: &Outcome) -> Option<String> {
    let p = o.offerer.selected_pair.as_ref()?;
    if let Some(r) = p.relay_protocol.clone().or(p.local.relay_protocol.clone()) {
        return Some(r);
    }
    let ep = p.remote.endpoint();
    let theirs =
        o.answerer.candidates.iter().find(|c| c.candidate.endpoint() == ep && c.candidate.candidate_type == "relay");
    match theirs {
        Some(c) => Some(c.candidate.relay_protocol.clone().unwrap_or("udp".into())),
        None if p.relay_based || p.remote.base_type == "relay" => Some("unknown".into()),
        None => None,
    }
}

/// `ipv6`, or `ipv4 -> ipv6` should the two ends ever differ (ICE pairs one family, so
/// that would be a stack's bug worth seeing).
fn pair_family(p: &crate::peer::SelectedPair) -> String {
    let f = |c: &CandidateInfo| c.family().unwrap_or("unknown").to_string();
    let (l, r) = (f(&p.local), f(&p.remote));
    if l == r { l } else { format!("{l} -> {r}") }
}

fn one_of(types: &[CandidateType], literal: bool) -> String {
    let words = types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(" or ");
    if literal { format!("{words} (literal ICE type)") } else { words }
}

/// `srflx`, or `prflx (really relay)` when the agent's label and the real type differ.
fn type_of(c: &CandidateInfo) -> String {
    if c.base_type != c.candidate_type {
        format!("{} (really {})", c.candidate_type, c.base_type)
    } else {
        c.candidate_type.clone()
    }
}

/// By default a candidate is what it really is, its base type: a prflx the other side
/// gathered as its relay (learned from a check before the trickled candidate arrived) is a
/// relay and matches only `relay`; `prflx` matches a peer-reflexive address that no
/// gathered candidate explains. With `literal`, the agent's ICE type label is compared.
fn matches(types: &[CandidateType], c: Option<&CandidateInfo>, literal: bool) -> bool {
    let Some(c) = c else { return false };
    let seen = if literal { &c.candidate_type } else { &c.base_type };
    types.iter().any(|t| seen == t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{ErrorKind, PeerError, Phase, SelectedPair};

    fn cand(t: &str, base: &str) -> CandidateInfo {
        CandidateInfo {
            candidate_type: t.into(),
            base_type: base.into(),
            protocol: "udp".into(),
            address: "192.0.2.10".into(),
            port: 5000,
            relay_protocol: None,
            related_address: None,
            url: None,
        }
    }

    fn connected(local: CandidateInfo, remote: CandidateInfo) -> Outcome {
        let relay_based = local.base_type == "relay" || remote.base_type == "relay";
        let mut o = Outcome::default();
        o.offerer.ok = true;
        o.answerer.ok = true;
        o.offerer.selected_pair = Some(SelectedPair {
            local,
            remote,
            relay_based,
            relay_protocol: relay_based.then(|| "udp".into()),
            rtt_ms: None,
        });
        o
    }

    fn expect(local: &[CandidateType], remote: &[CandidateType]) -> Expect {
        Expect {
            local: Some(local.to_vec()),
            remote: Some(remote.to_vec()),
            protocol: Some("udp".into()),
            ..Default::default()
        }
    }

    #[test]
    fn matching_pair_passes() {
        use CandidateType::*;
        let o = connected(cand("srflx", "srflx"), cand("prflx", "relay"));
        let v = judge(&o, &Timings::default(), &expect(&[Srflx], &[Relay]));
        assert!(v.pass, "{:?}", v.failures());
        assert_eq!(v.checks.len(), 4);
    }

    #[test]
    fn wrong_local_type_is_named() {
        use CandidateType::*;
        let o = connected(cand("host", "host"), cand("host", "host"));
        let v = judge(&o, &Timings::default(), &expect(&[Relay], &[Host]));
        assert!(!v.pass);
        let f = v.failures();
        assert_eq!(f.len(), 1);
        assert!(f[0].contains("`local`") && f[0].contains("relay") && f[0].contains("host"));
    }

    #[test]
    fn prflx_expectation_needs_prflx_label() {
        use CandidateType::*;
        let o = connected(cand("srflx", "srflx"), cand("srflx", "srflx"));
        assert!(!judge(&o, &Timings::default(), &expect(&[Srflx], &[Prflx])).pass);
        assert!(judge(&o, &Timings::default(), &expect(&[Srflx], &[Prflx, Srflx])).pass);
    }

    /// Issue 9: `remote = ["srflx", "prflx"]` passed a relayed call whose remote was a
    /// prflx that really was the answerer's relay.
    #[test]
    fn prflx_is_judged_by_what_it_really_is() {
        use CandidateType::*;
        let direct = [Srflx, Prflx];
        let judge_remote = |remote: CandidateInfo, want: &[CandidateType], literal: bool| {
            let o = connected(cand("host", "host"), remote);
            let e = Expect { literal_types: literal, ..expect(&[Host], want) };
            judge(&o, &Timings::default(), &e)
        };
        // Really relay: not direct, whatever the label says; it is a relay.
        let v = judge_remote(cand("prflx", "relay"), &direct, false);
        assert!(!v.pass && v.failures()[0].contains("prflx (really relay)"), "{:?}", v.failures());
        assert!(judge_remote(cand("prflx", "relay"), &[Relay], false).pass);
        // Really srflx: matches srflx, not a bare prflx.
        assert!(judge_remote(cand("prflx", "srflx"), &direct, false).pass);
        assert!(judge_remote(cand("prflx", "srflx"), &[Srflx], false).pass);
        assert!(!judge_remote(cand("prflx", "srflx"), &[Prflx], false).pass);
        // Really host: matches host only.
        assert!(judge_remote(cand("prflx", "host"), &[Host], false).pass);
        assert!(!judge_remote(cand("prflx", "host"), &direct, false).pass);
        // Unexplained prflx (no gathered candidate at that address) stays prflx.
        assert!(judge_remote(cand("prflx", "prflx"), &direct, false).pass);
        assert!(!judge_remote(cand("prflx", "prflx"), &[Relay, Host], false).pass);
    }

    #[test]
    fn literal_types_compare_the_ice_label() {
        use CandidateType::*;
        for (base, t) in [("host", Host), ("srflx", Srflx), ("relay", Relay)] {
            let o = connected(cand("host", "host"), cand("prflx", base));
            let lit = Expect { literal_types: true, ..expect(&[Host], &[Prflx]) };
            let v = judge(&o, &Timings::default(), &lit);
            assert!(v.pass, "{base}: {:?}", v.failures());
            let real = Expect { literal_types: true, ..expect(&[Host], &[t]) };
            assert!(!judge(&o, &Timings::default(), &real).pass, "{base} must not match its base literally");
        }
    }

    #[test]
    fn timeout_fails_connected_and_passes_failed() {
        let mut o = Outcome::default();
        o.offerer.timed_out = true;
        o.offerer.errors.push(PeerError {
            t_ms: 3000.0,
            kind: ErrorKind::Timeout,
            phase: Phase::Signaling,
            message: "deadline of 3000 ms exceeded".into(),
        });
        let v = judge(&o, &Timings::default(), &Expect::default());
        assert!(!v.pass);
        assert!(v.failures()[0].contains("timeout"), "{:?}", v.failures());
        let must_fail = Expect { outcome: ExpectedOutcome::Failed, ..Default::default() };
        assert!(judge(&o, &Timings::default(), &must_fail).pass);
    }

    #[test]
    fn time_bounds() {
        let o = connected(cand("host", "host"), cand("host", "host"));
        let t = Timings { ice_ms: Some(120.0), connect_ms: Some(900.0), ..Default::default() };
        let e = Expect { max_ice_ms: Some(100.0), max_connect_ms: Some(1000.0), ..Default::default() };
        let v = judge(&o, &t, &e);
        assert_eq!(v.failures().len(), 1);
        assert!(v.failures()[0].contains("max-ice-ms"));
    }

    #[test]
    fn relay_transport_is_any_of_a_list() {
        let mut o = connected(cand("relay", "relay"), cand("srflx", "srflx"));
        o.offerer.selected_pair.as_mut().unwrap().relay_protocol = Some("tcp".into());
        let e = |t: &[&str]| Expect {
            relay_transport: Some(t.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        assert!(judge(&o, &Timings::default(), &e(&["tcp", "tls"])).pass);
        let v = judge(&o, &Timings::default(), &e(&["tls"]));
        assert!(v.failures()[0].contains("expected tls, observed tcp"), "{:?}", v.failures());
    }

    #[test]
    fn missing_pair_fails_pair_checks() {
        let v =
            judge(&Outcome::default(), &Timings::default(), &expect(&[CandidateType::Host], &[CandidateType::Host]));
        assert_eq!(v.failures().len(), 4);
    }

    #[test]
    fn family_is_judged_on_the_selected_pair() {
        let v6 = |t: &str| CandidateInfo { address: "2001:db8:1::10".into(), ..cand(t, t) };
        let want = |f: &str| Expect { family: Some(f.into()), ..Default::default() };
        let check = |o: &Outcome, f: &str| judge(o, &Timings::default(), &want(f)).checks.last().cloned().unwrap();
        let o = connected(v6("host"), v6("host"));
        let c = check(&o, "ipv6");
        assert!(c.ok && c.name == "family" && c.observed == "ipv6", "{c:?}");
        let c = check(&connected(cand("host", "host"), cand("srflx", "srflx")), "ipv6");
        assert!(!c.ok && c.observed == "ipv4", "{c:?}");
        assert_eq!(check(&Outcome::default(), "ipv4").observed, "no selected pair");
        assert_eq!(v6("host").endpoint(), "[2001:db8:1::10]:5000");
    }
}
