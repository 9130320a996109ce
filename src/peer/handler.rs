//! webrtc-rs callbacks, turned into [`Internal`] messages for the main loop.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use webrtc::data_channel::DataChannel;
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState, RTCPeerConnectionIceErrorEvent,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::candidate;
use super::events::{Clock, Internal};
use super::protocol::CandidateInit;
use super::turn_shim::{self, TurnShim};

pub(crate) struct Handler {
    pub(crate) tx: UnboundedSender<Internal>,
    pub(crate) clock: Clock,
    /// TURN-over-TCP/TLS shims, to attribute relay candidates gathered through them.
    pub(crate) shims: Vec<Arc<TurnShim>>,
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
