//! The session state machine: one peer's signaling, ICE, DTLS and data phases, driven by
//! signals from the other side, callbacks and timers. Each handler returns the next [`Step`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc::UnboundedSender;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, RTCIceCandidateInit, RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionState,
    RTCSessionDescription,
};

use super::candidate::{self, KnownCandidates};
use super::config::{PeerConfig, Role};
use super::data::{DataPlan, drive_channel};
use super::events::{Clock, Internal};
use super::output::Out;
use super::protocol::{ErrorKind, PeerEvent, Phase, SignalMsg};
use super::restart::{self, IceWatch};
use super::turn_shim::TurnShim;

/// Label of the one data channel the offerer opens.
const CHANNEL_LABEL: &str = "icelab";

/// Mutable state of one run, owned by the main loop.
pub(crate) struct Session<P, W> {
    pub(crate) cfg: PeerConfig,
    pub(crate) pc: P,
    pub(crate) out: Out<W>,
    pub(crate) clock: Clock,
    pub(crate) tx: UnboundedSender<Internal>,
    pub(crate) phase: Phase,
    pub(crate) remote_set: bool,
    pub(crate) pending: Vec<RTCIceCandidateInit>,
    pub(crate) local_known: KnownCandidates,
    pub(crate) remote_known: KnownCandidates,
    pub(crate) channel: Option<Arc<dyn DataChannel>>,
    pub(crate) ice_connected: bool,
    pub(crate) dtls_connected: bool,
    pub(crate) gathering_started: bool,
    /// When the first check succeeded (`None` until seen).
    pub(crate) first_success_ms: Option<f64>,
    /// ICE restart policy and selected-pair changes.
    pub(crate) watch: IceWatch,
    /// TURN-over-TCP/TLS shims, released per relay when the other side has its candidate.
    pub(crate) shims: Vec<Arc<TurnShim>>,
}

/// How the main loop ends.
pub(crate) enum Step {
    Continue,
    Finished,
    Fail(ErrorKind, String),
}

impl<P: PeerConnection, W: AsyncWrite + Unpin> Session<P, W> {
    fn plan(&self) -> DataPlan {
        DataPlan {
            duration: Duration::from_millis(self.cfg.data_duration_ms),
            chunk_bytes: self.cfg.data_chunk_bytes,
            rate_bytes_per_s: self.cfg.data_rate_kbps.map(|k| k * 1000 / 8),
        }
    }

    fn watch_channel(&mut self, dc: Arc<dyn DataChannel>) {
        // Keep a handle: dropping the last one would unregister the channel mid-exchange.
        self.channel = Some(dc.clone());
        tokio::spawn(drive_channel(dc, self.plan(), self.clock, self.tx.clone()));
    }

    /// Gathering starts with `set_local_description`; webrtc-rs does not always report the
    /// `gathering` state, so we also mark it ourselves, once.
    async fn gathering_started(&mut self, t_ms: f64) -> anyhow::Result<()> {
        if !self.gathering_started {
            self.gathering_started = true;
            self.out.emit(PeerEvent::GatheringStarted { t_ms }).await?;
        }
        Ok(())
    }

    pub(crate) async fn start_offer(&mut self) -> anyhow::Result<()> {
        let dc =
            self.pc.create_data_channel(CHANNEL_LABEL, None).await.map_err(|e| anyhow!("create_data_channel: {e}"))?;
        self.watch_channel(dc);
        let offer = self.pc.create_offer(None).await.map_err(|e| anyhow!("create_offer: {e}"))?;
        let sdp = offer.sdp.clone();
        self.gathering_started(self.clock.ms()).await?;
        self.pc.set_local_description(offer).await.map_err(|e| anyhow!("set_local_description: {e}"))?;
        self.out.signal(SignalMsg::Offer { sdp }).await
    }

    async fn remote_description_set(&mut self) -> anyhow::Result<()> {
        self.remote_set = true;
        // A re-offer/answer (ICE restart) does not set a running call back.
        self.phase = self.phase.max(Phase::Ice);
        for c in std::mem::take(&mut self.pending) {
            self.add_candidate(c).await?;
        }
        Ok(())
    }

    /// Adds a remote candidate; a relay is acknowledged once added (see `CandidateAdded`).
    async fn add_candidate(&mut self, c: RTCIceCandidateInit) -> anyhow::Result<()> {
        let relay = candidate::parse_candidate_line(&c.candidate).filter(|i| i.candidate_type == "relay");
        if let Err(e) = self.pc.add_ice_candidate(c).await {
            // A candidate we cannot use is not fatal; report and go on.
            let (t_ms, phase) = (self.clock.ms(), self.phase);
            let message = format!("add_ice_candidate: {e}");
            let _ = self.out.emit(PeerEvent::Error { t_ms, kind: ErrorKind::Internal, phase, message }).await;
        } else if let Some(info) = relay {
            self.out.signal(SignalMsg::CandidateAdded { endpoint: info.endpoint() }).await?;
        }
        Ok(())
    }

    pub(crate) async fn on_signal(&mut self, msg: SignalMsg) -> anyhow::Result<Step> {
        match (msg, self.cfg.role) {
            (SignalMsg::Offer { sdp }, Role::Answerer) => {
                let reoffer = self.remote_set;
                let offer = RTCSessionDescription::offer(sdp).map_err(|e| anyhow!("offer: {e}"))?;
                self.pc.set_remote_description(offer).await.map_err(|e| anyhow!("set_remote_description: {e}"))?;
                let answer = self.pc.create_answer(None).await.map_err(|e| anyhow!("create_answer: {e}"))?;
                let sdp = answer.sdp.clone();
                self.gathering_started(self.clock.ms()).await?;
                self.pc.set_local_description(answer).await.map_err(|e| anyhow!("set_local_description: {e}"))?;
                self.out.signal(SignalMsg::Answer { sdp }).await?;
                self.remote_description_set().await?;
                if reoffer {
                    let (t_ms, attempt) = (self.clock.ms(), self.watch.reoffer_accepted());
                    self.out.emit(PeerEvent::IceRestart { t_ms, attempt, reason: "re-offer".into() }).await?;
                }
            }
            (SignalMsg::Answer { sdp }, Role::Offerer) => {
                let answer = RTCSessionDescription::answer(sdp).map_err(|e| anyhow!("answer: {e}"))?;
                self.pc.set_remote_description(answer).await.map_err(|e| anyhow!("set_remote_description: {e}"))?;
                self.remote_description_set().await?;
            }
            (SignalMsg::Candidate { candidate: c }, _) => {
                if let Some(info) = candidate::parse_candidate_line(&c.candidate) {
                    self.remote_known.insert(info.endpoint(), info);
                }
                let init = RTCIceCandidateInit {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_mline_index: c.sdp_mline_index,
                    username_fragment: c.username_fragment,
                    url: None,
                };
                if self.remote_set {
                    self.add_candidate(init).await?;
                } else {
                    self.pending.push(init);
                }
            }
            (SignalMsg::CandidateAdded { endpoint }, _) => {
                // Our stream relay is known to the other agent now: its checks there will
                // match that relay candidate instead of becoming a high-priority prflx.
                let base = self.local_known.get(&endpoint).and_then(|c| c.related_address.as_deref());
                if let Some(base) = base.and_then(|a| a.parse().ok()) {
                    self.shims.iter().for_each(|s| s.release(base));
                }
            }
            (SignalMsg::EndOfCandidates, _) => {}
            (SignalMsg::Bye { reason }, _) => {
                return Ok(Step::Fail(ErrorKind::PeerGone, format!("peer said bye: {reason}")));
            }
            (other, role) => {
                return Ok(Step::Fail(ErrorKind::Internal, format!("unexpected signal for {role:?}: {other:?}")));
            }
        }
        Ok(Step::Continue)
    }

    async fn emit_selected_pair(&mut self) -> anyhow::Result<()> {
        if let Some(pair) = candidate::selected_pair(&self.pc, &self.local_known, &self.remote_known).await {
            let t_ms = self.clock.ms();
            let rtt = pair.rtt_ms;
            self.out.emit(PeerEvent::SelectedPair { t_ms, pair }).await?;
            if let Some(rtt_ms) = rtt {
                self.out.emit(PeerEvent::Rtt { t_ms, rtt_ms }).await?;
            }
        }
        Ok(())
    }

    /// Reports the selected pair if it is not the one reported last.
    async fn emit_pair_if_changed(&mut self) -> anyhow::Result<()> {
        if self.watch.pair_changed(restart::selected_pair_key(&self.pc).await) {
            self.emit_selected_pair().await?;
        }
        Ok(())
    }

    /// Timer work: selected-pair polling and due ICE restarts. A restart that cannot be
    /// sent is reported, not fatal: the watch retries it.
    /// Whether the first successful check is still to be looked for (during checks only).
    pub(crate) fn watching_checks(&self) -> bool {
        self.first_success_ms.is_none() && self.remote_set && !self.ice_connected
    }

    /// Looks for the first pair check that succeeded (see [`super::checks_log`]); at ICE
    /// connected it is looked for once more, so it is never missed.
    pub(crate) async fn poll_checks(&mut self) -> anyhow::Result<()> {
        if self.first_success_ms.is_none()
            && let Some(at) = super::checks_log::first_valid_pair(self.local_known.keys().map(String::as_str))
        {
            let t_ms = self.clock.ms_at(at);
            self.first_success_ms = Some(t_ms);
            self.out.emit(PeerEvent::FirstPairSucceeded { t_ms }).await?;
        }
        Ok(())
    }

    pub(crate) async fn on_wake(&mut self) -> anyhow::Result<Step> {
        let now = tokio::time::Instant::now();
        if self.watch.poll_due(now) {
            self.emit_pair_if_changed().await?;
        }
        if let Some(r) = self.watch.restart_due(now) {
            let t_ms = self.clock.ms();
            self.out.emit(PeerEvent::IceRestart { t_ms, attempt: r.attempt, reason: r.reason }).await?;
            match restart::reoffer(&self.pc).await {
                Ok(sdp) => self.out.signal(SignalMsg::Offer { sdp }).await?,
                Err(e) => {
                    let (t_ms, phase) = (self.clock.ms(), self.phase);
                    let message = format!("{e:#}");
                    self.out.emit(PeerEvent::Error { t_ms, kind: ErrorKind::Internal, phase, message }).await?;
                }
            }
        }
        Ok(Step::Continue)
    }

    pub(crate) async fn on_internal(&mut self, ev: Internal) -> anyhow::Result<Step> {
        match ev {
            Internal::Candidate(t_ms, info, init) => {
                self.local_known.insert(info.endpoint(), info.clone());
                self.out.emit(PeerEvent::CandidateGathered { t_ms, candidate: info }).await?;
                self.out.signal(SignalMsg::Candidate { candidate: init }).await?;
            }
            Internal::CandidateError(t_ms, message) => {
                self.out.emit(PeerEvent::Error { t_ms, kind: ErrorKind::Internal, phase: self.phase, message }).await?;
            }
            Internal::Gathering(t_ms, RTCIceGatheringState::Gathering) => {
                self.gathering_started(t_ms).await?;
            }
            Internal::Gathering(t_ms, RTCIceGatheringState::Complete) => {
                self.out.emit(PeerEvent::GatheringComplete { t_ms }).await?;
                self.out.signal(SignalMsg::EndOfCandidates).await?;
            }
            Internal::Gathering(..) => {}
            Internal::Ice(t_ms, state) => {
                self.out.emit(PeerEvent::IceState { t_ms, state: state.to_string() }).await?;
                self.watch.on_ice(state, tokio::time::Instant::now());
                match state {
                    RTCIceConnectionState::Connected | RTCIceConnectionState::Completed => {
                        self.poll_checks().await?;
                        self.ice_connected = true;
                        if self.phase < Phase::Dtls {
                            self.phase = Phase::Dtls;
                        }
                        // At connect, and after a restart, which usually selects another pair.
                        self.emit_pair_if_changed().await?;
                    }
                    RTCIceConnectionState::Failed if self.watch.failure_is_fatal() => {
                        return Ok(Step::Fail(ErrorKind::Failed, "ICE failed".into()));
                    }
                    _ => {}
                }
            }
            Internal::Pc(t_ms, state) => match state {
                RTCPeerConnectionState::Connected if !self.dtls_connected => {
                    self.dtls_connected = true;
                    if self.phase < Phase::DataChannel {
                        self.phase = Phase::DataChannel;
                    }
                    self.out.emit(PeerEvent::DtlsConnected { t_ms }).await?;
                }
                RTCPeerConnectionState::Failed if self.watch.failure_is_fatal() => {
                    return Ok(Step::Fail(ErrorKind::Failed, "peer connection failed".into()));
                }
                _ => {}
            },
            Internal::IncomingChannel(dc) => {
                if self.channel.is_none() {
                    self.watch_channel(dc);
                }
            }
            Internal::DcOpen(t_ms) => {
                self.phase = Phase::Data;
                if let Some(ms) = self.cfg.test_restart_after_open_ms {
                    self.watch.force_at(tokio::time::Instant::now() + Duration::from_millis(ms));
                }
                self.out.emit(PeerEvent::DataChannelOpen { t_ms }).await?;
            }
            Internal::DataDone(mut stats) => {
                // Re-read the pair now that all trickled candidates are known.
                self.emit_selected_pair().await?;
                // Let the last SCTP messages (our ack) reach the other side before teardown,
                // and only then read the transport's totals: what it sends while lingering
                // (checks, consent, SACKs) still passes any relay, whose counts are set
                // against these.
                tokio::time::sleep(Duration::from_millis(self.cfg.linger_ms)).await;
                let report =
                    self.pc.get_stats(std::time::Instant::now(), webrtc::peer_connection::StatsSelector::None).await;
                stats.transport = report.transport().map(|t| super::protocol::TransportStats {
                    packets_sent: t.packets_sent,
                    bytes_sent: t.bytes_sent,
                    packets_received: t.packets_received,
                    bytes_received: t.bytes_received,
                });
                let pairs = report.candidate_pairs().fold(super::protocol::TransportStats::default(), |mut sum, p| {
                    sum.packets_sent += p.packets_sent;
                    sum.bytes_sent += p.bytes_sent;
                    sum.packets_received += p.packets_received;
                    sum.bytes_received += p.bytes_received;
                    sum
                });
                stats.selected_pairs = Some(pairs);
                let t_ms = self.clock.ms();
                self.out.emit(PeerEvent::DataStats { t_ms, stats }).await?;
                self.phase = Phase::Done;
                return Ok(Step::Finished);
            }
            Internal::DataError(message) => {
                return Ok(Step::Fail(ErrorKind::Failed, message));
            }
        }
        Ok(Step::Continue)
    }
}
