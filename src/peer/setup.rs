//! Building the webrtc-rs peer connection from a [`PeerConfig`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    SettingEngineBuilder,
};

use super::config::{IceServer, PeerConfig, TransportPolicy};
use super::handler::Handler;
use super::restart;

/// Bounds the SCTP send queue so the sender is paced by the network, not by memory.
const SEND_BUFFER_LIMIT: usize = 128 * 1024;

/// The peer connection with these servers (the shims' URLs in place of TCP/TLS ones).
pub(crate) async fn build_pc(
    cfg: &PeerConfig,
    servers: &[IceServer],
    handler: Handler,
) -> anyhow::Result<impl PeerConnection> {
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
