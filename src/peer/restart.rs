//! ICE restart and selected-pair tracking for [`super::run_peer`].
//!
//! webrtc-rs never re-nominates on its own: once a pair is selected it only sends consent
//! checks on it, so a dead path stays dead. Apps recover with `restartIce()` when
//! `iceConnectionState` goes `failed` or stays `disconnected`; [`IceWatch`] is that policy
//! (pure, unit-tested), [`reoffer`] the restart itself. webrtc-rs also has no
//! pair-change event, so the watch polls the selected pair every [`PAIR_POLL`].

use std::time::Duration;

use anyhow::anyhow;
use tokio::time::Instant;
use webrtc::peer_connection::{PeerConnection, RTCIceConnectionState, SettingEngineBuilder};

use super::config::{IceRestart, IceTimeouts, Role};

/// How often the selected pair is compared with the last one reported.
const PAIR_POLL: Duration = Duration::from_millis(250);
/// A restart that has not reconnected this long after it was sent is tried again (its
/// answer was lost, or checks hang in `checking` without reaching `failed`).
const RESTART_SETTLE: Duration = Duration::from_secs(5);
/// Keepalives when only the disconnected timeout is given: a quarter of it, so a healthy
/// but quiet pair never looks dead.
const KEEPALIVE_DIVISOR: u64 = 4;

/// Applies the configured ICE timeouts; with none set the stack defaults stay untouched.
pub(crate) fn with_timeouts(b: SettingEngineBuilder, t: &IceTimeouts) -> SettingEngineBuilder {
    if *t == IceTimeouts::default() {
        return b;
    }
    let keepalive = t.keepalive_ms.or(t.disconnected_ms.map(|d| (d / KEEPALIVE_DIVISOR).max(1)));
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    b.with_ice_timeouts(ms(t.disconnected_ms), ms(t.failed_ms), ms(keepalive))
}

/// Restarts ICE from the offerer: new credentials in a new offer, applied locally; the
/// caller sends the returned SDP. Candidates are re-gathered and trickled as at setup.
pub(crate) async fn reoffer(pc: &dyn PeerConnection) -> anyhow::Result<String> {
    pc.restart_ice().await.map_err(|e| anyhow!("restart_ice: {e}"))?;
    let offer = pc.create_offer(None).await.map_err(|e| anyhow!("create_offer (restart): {e}"))?;
    let sdp = offer.sdp.clone();
    pc.set_local_description(offer).await.map_err(|e| anyhow!("set_local_description (restart): {e}"))?;
    Ok(sdp)
}

/// `local remote` endpoints of the pair ICE has selected, cheap enough to poll.
pub(crate) async fn selected_pair_key(pc: &dyn PeerConnection) -> Option<String> {
    let ice = pc.sctp().await?.transport().ice_transport();
    let pair = ice.get_selected_candidate_pair().await.ok()??;
    let (l, r) = (pair.local(), pair.remote());
    Some(format!("{}:{} {}:{}", l.address, l.port, r.address, r.port))
}

/// Sleeps until `at`, or forever without one (a `select!` branch that never fires).
pub(crate) async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A restart the offerer should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restart {
    /// 1-based.
    pub attempt: u32,
    /// Why.
    pub reason: String,
}

/// Restart policy state and selected-pair tracking for one peer.
#[derive(Debug)]
pub(crate) struct IceWatch {
    policy: Option<IceRestart>,
    offerer: bool,
    /// Restarts sent (offerer) or re-offers accepted (answerer).
    attempts: u32,
    /// When to restart, and why (offerer with a policy only).
    due: Option<(Instant, String)>,
    /// Pair polling runs once ICE first connected.
    next_poll: Option<Instant>,
    /// The last pair reported.
    pair: Option<String>,
}

impl IceWatch {
    pub(crate) fn new(policy: Option<IceRestart>, role: Role) -> Self {
        Self { policy, offerer: role == Role::Offerer, attempts: 0, due: None, next_poll: None, pair: None }
    }

    /// Whether ICE (or the connection) going `failed` ends the call: always without a
    /// policy; with one, the answerer waits for a re-offer and the offerer restarts until
    /// it is out of attempts.
    pub(crate) fn failure_is_fatal(&self) -> bool {
        match self.policy {
            None => true,
            Some(p) => self.offerer && self.attempts >= p.max_restarts,
        }
    }

    /// Arms a restart at `at` unless an earlier one is already due.
    fn arm(&mut self, at: Instant, reason: String) {
        if self.policy.is_some() && self.offerer && self.due.as_ref().is_none_or(|(d, _)| at < *d) {
            self.due = Some((at, reason));
        }
    }

    /// Follows the ICE connection state. Pair polling starts at the first `connected`
    /// (with or without a policy: a pair may change anyway).
    pub(crate) fn on_ice(&mut self, state: RTCIceConnectionState, now: Instant) {
        if matches!(state, RTCIceConnectionState::Connected | RTCIceConnectionState::Completed) {
            self.due = None;
            self.next_poll.get_or_insert(now + PAIR_POLL);
        }
        let Some(p) = self.policy else { return };
        match state {
            RTCIceConnectionState::Disconnected => {
                let wait = p.after_disconnected_ms;
                self.arm(now + Duration::from_millis(wait), format!("disconnected for {wait} ms"));
            }
            RTCIceConnectionState::Failed => self.arm(now, "failed".into()),
            _ => {}
        }
    }

    /// Test hook: restart at `at` whatever the state.
    pub(crate) fn force_at(&mut self, at: Instant) {
        self.arm(at, "test hook".into());
    }

    /// When the main loop must call [`Self::poll_due`] / [`Self::restart_due`].
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        match (self.due.as_ref().map(|d| d.0), self.next_poll) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the selected pair should be polled now (and schedules the next poll).
    pub(crate) fn poll_due(&mut self, now: Instant) -> bool {
        match self.next_poll {
            Some(t) if t <= now => {
                self.next_poll = Some(now + PAIR_POLL);
                true
            }
            _ => false,
        }
    }

    /// Records the pair ICE has selected; true if it differs from the last one reported.
    pub(crate) fn pair_changed(&mut self, key: Option<String>) -> bool {
        match key {
            Some(k) if self.pair.as_ref() != Some(&k) => {
                self.pair = Some(k);
                true
            }
            _ => false,
        }
    }

    /// The restart due now, if any and if attempts remain. Each restart arms a retry
    /// [`RESTART_SETTLE`] later, cancelled when ICE connects.
    pub(crate) fn restart_due(&mut self, now: Instant) -> Option<Restart> {
        let p = self.policy?;
        if self.due.as_ref().is_none_or(|(at, _)| *at > now) {
            return None;
        }
        let (_, reason) = self.due.take()?;
        if self.attempts >= p.max_restarts {
            return None;
        }
        self.attempts += 1;
        let settle = RESTART_SETTLE.max(Duration::from_millis(p.after_disconnected_ms));
        self.due = Some((now + settle, format!("not reconnected {} ms after restart", settle.as_millis())));
        Some(Restart { attempt: self.attempts, reason })
    }

    /// The answerer took a re-offer; returns its number.
    pub(crate) fn reoffer_accepted(&mut self) -> u32 {
        self.attempts += 1;
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RTCIceConnectionState as S;

    fn policy() -> Option<IceRestart> {
        Some(IceRestart { after_disconnected_ms: 1000, max_restarts: 2 })
    }

    #[test]
    fn without_policy_failure_is_fatal_and_nothing_restarts() {
        let mut w = IceWatch::new(None, Role::Offerer);
        let t = Instant::now();
        w.on_ice(S::Failed, t);
        assert!(w.failure_is_fatal());
        assert_eq!(w.restart_due(t + Duration::from_secs(60)), None);
    }

    #[test]
    fn disconnected_waits_then_restarts_failed_restarts_at_once() {
        let mut w = IceWatch::new(policy(), Role::Offerer);
        let t = Instant::now();
        w.on_ice(S::Connected, t);
        w.on_ice(S::Disconnected, t);
        assert_eq!(w.restart_due(t + Duration::from_millis(999)), None);
        // Failed moves the due time forward.
        w.on_ice(S::Failed, t + Duration::from_millis(500));
        let r = w.restart_due(t + Duration::from_millis(500)).unwrap();
        assert_eq!(r, Restart { attempt: 1, reason: "failed".into() });
        assert!(!w.failure_is_fatal());
        // Not reconnected: retried after the settle time, then out of attempts.
        let later = t + Duration::from_millis(500) + RESTART_SETTLE;
        assert_eq!(w.restart_due(later).unwrap().attempt, 2);
        assert!(w.failure_is_fatal());
        assert_eq!(w.restart_due(later + RESTART_SETTLE), None);
    }

    #[test]
    fn reconnecting_cancels_a_pending_restart() {
        let mut w = IceWatch::new(policy(), Role::Offerer);
        let t = Instant::now();
        w.on_ice(S::Disconnected, t);
        w.on_ice(S::Connected, t + Duration::from_millis(300));
        assert_eq!(w.restart_due(t + Duration::from_secs(10)), None);
    }

    #[test]
    fn answerer_never_restarts_and_outlives_failure() {
        let mut w = IceWatch::new(policy(), Role::Answerer);
        let t = Instant::now();
        w.on_ice(S::Failed, t);
        assert!(!w.failure_is_fatal());
        assert_eq!(w.restart_due(t + Duration::from_secs(10)), None);
        assert_eq!(w.reoffer_accepted(), 1);
    }

    #[test]
    fn pair_changes_are_reported_once() {
        let mut w = IceWatch::new(None, Role::Offerer);
        assert!(!w.pair_changed(None));
        assert!(w.pair_changed(Some("a b".into())));
        assert!(!w.pair_changed(Some("a b".into())));
        assert!(w.pair_changed(Some("a c".into())));
    }
}
