//! [`run_peer`]: one WebRTC peer driven by JSON-lines signaling.
//!
//! A single task owns the peer connection and the output; webrtc-rs callbacks and the data
//! channel task feed it through a channel, so events are written in one place and in order.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceConnectionState, RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionIceErrorEvent,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

use super::candidate::{self, KnownCandidates};
use super::config::{IceServer, PeerConfig, Role, TransportPolicy};
use super::data::{DataPlan, drive_channel};
use super::protocol::{CandidateInfo, CandidateInit, DataStats, ErrorKind, PeerEvent, Phase, SignalMsg};
use super::restart::{self, IceWatch};
use super::turn_shim::{self, TurnShim};

/// Bounds the SCTP send queue so the sender is paced by the network, not by memory.
const SEND_BUFFER_LIMIT: usize = 128 * 1024;
/// Label of the one data channel the offerer opens.
const CHANNEL_LABEL: &str = "icelab";

/// Monotonic clock shared by everything that timestamps events.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock(Instant);

impl Clock {
    pub(crate) fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }
}

/// What callbacks and the data task report to the main loop (timestamped at the source).
pub(crate) enum Internal {
    Candidate(f64, CandidateInfo, CandidateInit),
    CandidateError(f64, String),
    Gathering(f64, RTCIceGatheringState),
    Ice(f64, RTCIceConnectionState),
    Pc(f64, RTCPeerConnectionState),
    IncomingChannel(Arc<dyn DataChannel>),
    DcOpen(f64),
    DataDone(DataStats),
    DataError(String),
}

struct Handler {
    tx: UnboundedSender<Internal>,
    clock: Clock,
    /// TURN-over-TCP/TLS shims, to attribute relay candidates gathered through them.
    shims: Vec<Arc<TurnShim>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let t = self.clock.ms();
        let mut info = candidate::from_rtc_candidate(&event.candidate, &event.url);
        turn_shim::attribute(&mut info, &self.shims);
        match event.candidate.to_json() {
            Ok(init) => {
                // A relay through a TCP/TLS shim looks like a UDP relay to webrtc-rs; the
                // other side ranks it by the priority signaled here.
                let candidate = match info.relay_protocol.as_deref() {
                    Some(p @ ("tcp" | "tls")) => {
                        candidate::with_priority(&init.candidate, candidate::relay_priority(p))
                    }
                    _ => init.candidate,
                };
                let init = CandidateInit {
                    candidate,
                    sdp_mid: init.sdp_mid,
                    sdp_mline_index: init.sdp_mline_index,
                    username_fragment: init.username_fragment,
                };
                let _ = self.tx.send(Internal::Candidate(t, info, init));
            }
            Err(e) => {
                let _ = self.tx.send(Internal::CandidateError(t, format!("candidate: {e}")));
            }
        }
    }
    async fn on_ice_candidate_error(&self, e: RTCPeerConnectionIceErrorEvent) {
        let msg = format!("ice candidate error {} {}: {}", e.url, e.error_code, e.error_text);
        let _ = self.tx.send(Internal::CandidateError(self.clock.ms(), msg));
    }
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        let _ = self.tx.send(Internal::Gathering(self.clock.ms(), s));
    }
    async fn on_ice_connection_state_change(&self, s: RTCIceConnectionState) {
        let _ = self.tx.send(Internal::Ice(self.clock.ms(), s));
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.tx.send(Internal::Pc(self.clock.ms(), s));
    }
    async fn on_data_channel(&self, dc: Arc<dyn DataChannel>) {
        let _ = self.tx.send(Internal::IncomingChannel(dc));
    }
}

/// Writes events as JSON lines.
struct Out<W> {
    w: W,
    clock: Clock,
}

impl<W: AsyncWrite + Unpin> Out<W> {
    async fn emit(&mut self, ev: PeerEvent) -> anyhow::Result<()> {
        let mut line = serde_json::to_vec(&ev)?;
        line.push(b'\n');
        self.w.write_all(&line).await?;
        self.w.flush().await?;
        Ok(())
    }
    async fn signal(&mut self, signal: SignalMsg) -> anyhow::Result<()> {
        let t_ms = self.clock.ms();
        self.emit(PeerEvent::Signal { t_ms, signal }).await
    }
}

async fn build_pc(cfg: &PeerConfig, servers: &[IceServer], handler: Handler) -> anyhow::Result<impl PeerConnection> {
    let ice_servers = servers
        .iter()
        .map(|s| RTCIceServer { urls: s.urls.clone(), username: s.username.clone(), credential: s.credential.clone() })
        .collect();
    let policy = match cfg.transport_policy {
        TransportPolicy::All => RTCIceTransportPolicy::All,
        TransportPolicy::Relay => RTCIceTransportPolicy::Relay,
    };
    let config = RTCConfigurationBuilder::new().with_ice_servers(ice_servers).with_ice_transport_policy(policy).build();
    // webrtc-rs skips loopback interfaces unless told otherwise; tests bind 127.0.0.1.
    let loopback = cfg.udp_bind.iter().any(|a| a.parse::<std::net::SocketAddr>().is_ok_and(|s| s.ip().is_loopback()));
    let settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(loopback)
        .with_ice_connection_attempts(cfg.ice_check_interval_ms.map(Duration::from_millis), None);
    let settings = restart::with_timeouts(settings, &cfg.ice_timeouts).build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(config)
        .with_setting_engine(settings)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(cfg.udp_bind.clone())
        .with_data_channel_send_buffer_limit(SEND_BUFFER_LIMIT)
        .build()
        .await
        .context("building peer connection")?;
    Ok(pc)
}

/// Mutable state of one run, owned by the main loop.
struct Session<P, W> {
    cfg: PeerConfig,
    pc: P,
    out: Out<W>,
    clock: Clock,
    tx: UnboundedSender<Internal>,
    phase: Phase,
    remote_set: bool,
    pending: Vec<RTCIceCandidateInit>,
    local_known: KnownCandidates,
    remote_known: KnownCandidates,
    channel: Option<Arc<dyn DataChannel>>,
    ice_connected: bool,
    dtls_connected: bool,
    gathering_started: bool,
    /// ICE restart policy and selected-pair changes.
    watch: IceWatch,
    /// TURN-over-TCP/TLS shims, released per relay when the other side has its candidate.
    shims: Vec<Arc<TurnShim>>,
}

/// How the main loop ends.
enum Step {
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

    async fn start_offer(&mut self) -> anyhow::Result<()> {
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

    async fn on_signal(&mut self, msg: SignalMsg) -> anyhow::Result<Step> {
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
    async fn on_wake(&mut self) -> anyhow::Result<Step> {
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

    async fn on_internal(&mut self, ev: Internal) -> anyhow::Result<Step> {
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
            Internal::DataDone(stats) => {
                // Re-read the pair now that all trickled candidates are known.
                self.emit_selected_pair().await?;
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

/// Runs one peer to completion: signaling over `input`/`output` (JSON lines, see
/// [`super::protocol`]), ICE, DTLS, a data channel, a timed data exchange.
///
/// Returns `Ok` after writing `done`; on a timeout, failure or bad input it writes an
/// `error` event (and a `bye` signal for the other side) and returns `Err`, so a process
/// wrapper exits non-zero. The whole run is bounded by `cfg.deadline_ms`.
pub async fn run_peer(
    cfg: PeerConfig,
    input: impl AsyncBufRead + Unpin,
    output: impl AsyncWrite + Unpin,
) -> anyhow::Result<()> {
    let clock = Clock(Instant::now());
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.deadline_ms);
    let mut out = Out { w: output, clock };
    out.emit(PeerEvent::Started { t_ms: clock.ms(), role: cfg.role }).await?;

    let (tx, mut rx) = unbounded_channel();
    // webrtc-rs gets the shims' local UDP URLs in place of TCP/TLS ones; they live as long
    // as the handler (owned by the peer connection), and at most a little past our deadline.
    let mut servers = cfg.ice_servers.clone();
    let built = async {
        let shims = turn_shim::install(&mut servers, Duration::from_millis(cfg.deadline_ms + 1000)).await?;
        let pc = build_pc(&cfg, &servers, Handler { tx: tx.clone(), clock, shims: shims.clone() }).await?;
        anyhow::Ok((pc, shims))
    };
    let (pc, shims) = match built.await {
        Ok(v) => v,
        Err(e) => {
            let t_ms = clock.ms();
            out.emit(PeerEvent::Error {
                t_ms,
                kind: ErrorKind::Internal,
                phase: Phase::Signaling,
                message: format!("{e:#}"),
            })
            .await?;
            return Err(e);
        }
    };
    let watch = IceWatch::new(cfg.ice_restart, cfg.role);
    let mut s = Session {
        cfg,
        pc,
        out,
        clock,
        tx,
        phase: Phase::Signaling,
        remote_set: false,
        pending: Vec::new(),
        local_known: KnownCandidates::new(),
        remote_known: KnownCandidates::new(),
        channel: None,
        ice_connected: false,
        dtls_connected: false,
        gathering_started: false,
        watch,
        shims,
    };

    let mut lines = input.lines();
    let mut input_open = true;
    let step = async {
        if s.cfg.role == Role::Offerer {
            s.start_offer().await?;
        }
        loop {
            let wake = s.watch.next_wake();
            let step = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => Step::Fail(
                    ErrorKind::Timeout,
                    format!("deadline of {} ms exceeded", s.cfg.deadline_ms),
                ),
                line = lines.next_line(), if input_open => match line? {
                    // Closed stdin is not fatal by itself; the deadline still bounds us.
                    None => { input_open = false; Step::Continue }
                    Some(l) if l.trim().is_empty() => Step::Continue,
                    Some(l) => match serde_json::from_str::<SignalMsg>(&l) {
                        Ok(msg) => s.on_signal(msg).await?,
                        Err(e) => Step::Fail(ErrorKind::Internal, format!("bad signal line {l:?}: {e}")),
                    },
                },
                Some(ev) = rx.recv() => s.on_internal(ev).await?,
                _ = restart::sleep_until(wake) => s.on_wake().await?,
            };
            if !matches!(step, Step::Continue) {
                return anyhow::Ok(step);
            }
        }
    }
    .await;
    let step = step.unwrap_or_else(|e| Step::Fail(ErrorKind::Internal, format!("{e:#}")));

    let result = match step {
        Step::Finished => {
            let t_ms = clock.ms();
            s.out.emit(PeerEvent::Done { t_ms }).await?;
            // Let the last SCTP messages (our ack) reach the other side before teardown.
            tokio::time::sleep(Duration::from_millis(s.cfg.linger_ms)).await;
            Ok(())
        }
        Step::Fail(kind, message) => {
            let t_ms = clock.ms();
            let phase = s.phase;
            s.out.emit(PeerEvent::Error { t_ms, kind, phase, message: message.clone() }).await?;
            if kind != ErrorKind::PeerGone {
                let _ = s.out.signal(SignalMsg::Bye { reason: message.clone() }).await;
            }
            Err(anyhow!("{kind:?} in phase {phase:?}: {message}"))
        }
        Step::Continue => unreachable!("loop only exits on a final step"),
    };
    // Closing talks to the driver; never let it hang the exit.
    let _ = tokio::time::timeout(Duration::from_millis(500), s.pc.close()).await;
    result
}
