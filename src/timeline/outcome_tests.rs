//! [`super`]'s analysis on hand-made logs.

use super::*;

/// Samples every 50 ms from -500 to `to`, flowing except in `gaps`.
fn flow(to: f64, gaps: &[(f64, f64)]) -> Vec<(f64, u64, u64)> {
    let mut v = Vec::new();
    let (mut bytes, mut datagrams) = (0u64, 0u64);
    let mut t = -500.0;
    while t <= to {
        if !gaps.iter().any(|(a, b)| t > *a && t <= *b) {
            bytes += 5000;
            datagrams += 5;
        } else {
            // ICMP errors: bytes without datagrams.
            bytes += 3000;
        }
        v.push((t, bytes, datagrams));
        t += 50.0;
    }
    v
}

#[test]
fn finds_stalls_and_ignores_short_dips() {
    let s = stalls(&flow(5000.0, &[(1000.0, 2000.0), (3000.0, 3200.0)]), 4800.0);
    assert_eq!(s, vec![Stall { start: 1000.0, end: 2000.0, open: false }]);
    let s = stalls(&flow(5000.0, &[(4000.0, 9000.0)]), 4800.0);
    assert_eq!(s, vec![Stall { start: 4000.0, end: 4800.0, open: true }]);
}

fn log(samples: Vec<(f64, u64, u64)>, applied: &[(u64, f64)]) -> TimelineLog {
    TimelineLog {
        t0_ms: Some(0.0),
        samples,
        applied: applied
            .iter()
            .enumerate()
            .map(|(i, (at, ap))| super::super::log::Applied {
                index: i + 1,
                at_ms: *at,
                what: format!("e{}", i + 1),
                applied_ms: Some(*ap),
                took_ms: Some(1.0),
                ops: vec![],
                error: None,
            })
            .collect(),
        ..Default::default()
    }
}

fn ev(at: u64, expect: Option<EventExpect>) -> TimelineEvent {
    TimelineEvent {
        at_ms: at,
        action: super::super::event::Action::FirewallClear { node: "x".into() },
        expect,
        pair: None,
    }
}

#[test]
fn down_breaks_up_recovers() {
    let l = log(flow(8000.0, &[(1000.0, 3400.0)]), &[(1000, 1000.0), (3000, 3000.0)]);
    let evs =
        [ev(1000, Some(EventExpect::Breaks)), ev(3000, Some(EventExpect::Recovers { max_recovery_ms: Some(1000) }))];
    let o = analyze(&evs, &l, 8000);
    assert_eq!(o[0].recovery, Recovery::Broke);
    assert_eq!(o[1].recovery, Recovery::Recovered { recovery_ms: 400.0 });
    assert!(o.iter().all(|e| e.check().unwrap().ok), "{o:?}");
}

#[test]
fn stall_starting_at_the_next_event_belongs_to_it() {
    let l = log(flow(8000.0, &[(2980.0, 9000.0)]), &[(1000, 1000.0), (3000, 3001.0)]);
    let o = analyze(&[ev(1000, None), ev(3000, None)], &l, 8000);
    assert_eq!(o[0].recovery, Recovery::NeverBroke);
    assert_eq!(o[1].recovery, Recovery::Broke);
}

#[test]
fn stall_ending_just_before_the_next_event_is_not_a_recovery() {
    // Data is seen flowing in the sample from 2950 ms, while the link came back at 3001.
    let l = log(flow(8000.0, &[(1000.0, 2990.0)]), &[(1000, 1000.0), (3000, 3001.0)]);
    let evs = [ev(1000, Some(EventExpect::Breaks)), ev(3000, Some(EventExpect::Recovers { max_recovery_ms: None }))];
    let o = analyze(&evs, &l, 8000);
    assert_eq!(o[0].recovery, Recovery::Broke, "{o:?}");
    assert!(o[0].check().unwrap().ok, "{o:?}");
}

#[test]
fn untouched_call_never_broke() {
    let l = log(flow(8000.0, &[]), &[(1000, 1000.0)]);
    let o = analyze(&[ev(1000, Some(EventExpect::Breaks))], &l, 8000);
    assert_eq!(o[0].recovery, Recovery::NeverBroke);
    assert!(!o[0].check().unwrap().ok);
}

fn pair(relay: bool, port: u16) -> SelectedPair {
    let c = |t: &str, port| crate::peer::CandidateInfo {
        candidate_type: t.into(),
        base_type: t.into(),
        protocol: "udp".into(),
        address: "10.0.0.1".into(),
        port,
        relay_protocol: None,
        related_address: None,
        url: None,
    };
    SelectedPair {
        local: c("host", port),
        remote: c(if relay { "relay" } else { "srflx" }, 9),
        relay_based: relay,
        relay_protocol: None,
        rtt_ms: None,
    }
}

#[test]
fn restart_onto_the_relay_is_recorded_and_checked() {
    let mut l = log(flow(8000.0, &[(1000.0, 2500.0)]), &[(1000, 1000.0), (6000, 6000.0)]);
    let at = |t: f64, e: PeerEvent| (t, e);
    l.offerer = vec![
        at(-400.0, PeerEvent::SelectedPair { t_ms: 0.0, pair: pair(false, 1) }),
        at(1800.0, PeerEvent::IceState { t_ms: 0.0, state: "disconnected".into() }),
        at(2300.0, PeerEvent::IceRestart { t_ms: 0.0, attempt: 1, reason: "disconnected for 500 ms".into() }),
        at(2400.0, PeerEvent::IceState { t_ms: 0.0, state: "connected".into() }),
        at(2400.0, PeerEvent::SelectedPair { t_ms: 0.0, pair: pair(true, 2) }),
        at(8100.0, PeerEvent::SelectedPair { t_ms: 0.0, pair: pair(true, 2) }),
    ];
    l.answerer = vec![
        at(1800.0, PeerEvent::IceState { t_ms: 0.0, state: "disconnected".into() }),
        at(2300.0, PeerEvent::IceRestart { t_ms: 0.0, attempt: 1, reason: "re-offer".into() }),
        at(2400.0, PeerEvent::IceState { t_ms: 0.0, state: "connected".into() }),
    ];
    let mut evs = [ev(1000, Some(EventExpect::Recovers { max_recovery_ms: Some(3000) })), ev(6000, None)];
    evs[0].pair = Some(PairExpect::Relay);
    evs[1].pair = Some(PairExpect::Direct);
    let o = analyze(&evs, &l, 8000);
    assert_eq!(o[0].recovery, Recovery::Recovered { recovery_ms: 1500.0 });
    assert_eq!(o[0].ice_restarts.len(), 2, "{:?}", o[0].ice_restarts);
    assert_eq!(o[0].pair_changed, Some(true));
    let c = o[0].check().unwrap();
    assert!(c.ok && c.observed.contains("after 1 ICE restart(s)"), "{c:?}");
    // The second event expects a direct pair but the call stayed on the relay.
    assert!(o[1].ice_restarts.is_empty());
    assert!(!o[1].check().unwrap().ok);
}
