//! Building the webrtc-rs peer connection from a [`PeerConfig`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceServer, RTCIceTransportPolicy,
    SettingEngineBuilder,
};

use super::config::{AcceptanceWaits, IceServer, PeerConfig, TransportPolicy};
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
    // The stack's mDNS socket joins the IPv4 group 224.0.0.251, which fails (ENODEV) on a
    // host without IPv4 and takes the whole connection down: an IPv6-only peer goes without.
    let has_v4 = cfg.udp_bind.iter().any(|a| a.parse::<std::net::SocketAddr>().is_ok_and(|s| s.is_ipv4()));
    let settings =
        if has_v4 { settings } else { settings.with_multicast_dns_mode(rtc_ice::mdns::MulticastDnsMode::Disabled) };
    let settings = with_acceptance_waits(settings, cfg.ice_acceptance_ms.over(cfg.ice_profile.waits()));
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

/// Sets the waits that are given. Careful: webrtc-rs reads `None` as "the default wait",
/// not as zero, so zero is passed as `Some(Duration::ZERO)`.
fn with_acceptance_waits(b: SettingEngineBuilder, w: AcceptanceWaits) -> SettingEngineBuilder {
    let ms = |v: Option<u64>| v.map(Duration::from_millis);
    let mut b = b;
    if w.host.is_some() {
        b = b.with_host_acceptance_min_wait(ms(w.host));
    }
    if w.srflx.is_some() {
        b = b.with_srflx_acceptance_min_wait(ms(w.srflx));
    }
    if w.prflx.is_some() {
        b = b.with_prflx_acceptance_min_wait(ms(w.prflx));
    }
    if w.relay.is_some() {
        b = b.with_relay_acceptance_min_wait(ms(w.relay));
    }
    b
}

/// How the built-in peer names itself: stack, profile and any overrides.
pub(crate) fn implementation_name(cfg: &PeerConfig) -> String {
    // The ICE agent carries one fix (vendor/rtc-ice/ICELAB-PATCH.md); the name says so.
    let mut name = format!("webrtc-rs 0.21.1+prflx-priority (ice-profile {})", cfg.ice_profile.name());
    if cfg.ice_acceptance_ms != AcceptanceWaits::default() {
        let w = cfg.ice_acceptance_ms;
        let parts: Vec<String> = [("host", w.host), ("srflx", w.srflx), ("prflx", w.prflx), ("relay", w.relay)]
            .iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k} {v} ms")))
            .collect();
        name = format!("{name} acceptance {}", parts.join(", "));
    }
    name
}
