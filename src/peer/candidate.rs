//! Turning webrtc-rs candidate and stats types into our [`CandidateInfo`] / [`SelectedPair`].

use std::collections::HashMap;
use std::time::Instant;

use webrtc::peer_connection::{PeerConnection, RTCIceCandidate, RTCStatsReport, StatsSelector};

use super::protocol::{CandidateInfo, SelectedPair};

/// Candidates we know the true type of, keyed by `address:port`; used to see through
/// peer-reflexive candidates.
pub(crate) type KnownCandidates = HashMap<String, CandidateInfo>;

/// The TURN transport implied by a `turn:`/`turns:` URL (RFC 7065 defaults: udp / tls).
pub(crate) fn relay_protocol_from_url(url: &str) -> Option<String> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("turns:") {
        // TLS over TCP is the default for turns; DTLS (turns + transport=udp) is rare.
        let _ = rest;
        return Some("tls".into());
    }
    let rest = url.strip_prefix("turn:")?;
    match rest.split_once("transport=") {
        Some((_, t)) => Some(t.split('&').next().unwrap_or("udp").to_ascii_lowercase()),
        None => Some("udp".into()),
    }
}

/// RFC 8445 §5.1.2.1 priority of a relay candidate (type preference 0, component 1) by
/// its transport to the TURN server. webrtc-rs gives every relay local preference 65535,
/// the UDP value; a relay reached over TCP or TLS costs a stream's head-of-line blocking
/// and a handshake, so it gets less, as RFC 8445 §5.1.2.2 asks and browsers do (libwebrtc
/// ranks relays UDP > TCP > TLS). Still far below any srflx (type preference 100).
pub(crate) fn relay_priority(relay_protocol: &str) -> u32 {
    let local_pref: u32 = match relay_protocol {
        "tcp" => 0x7FFF,
        "tls" => 0x3FFF,
        _ => 0xFFFF,
    };
    (local_pref << 8) + (256 - 1)
}

/// `candidate:` line with its priority field replaced.
pub(crate) fn with_priority(line: &str, priority: u32) -> String {
    let mut f: Vec<&str> = line.split(' ').collect();
    let p = priority.to_string();
    if f.len() > 3 && f[0].starts_with("candidate:") && f[3].parse::<u32>().is_ok() {
        f[3] = &p;
    }
    f.join(" ")
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// A locally gathered candidate (from `on_ice_candidate`).
pub(crate) fn from_rtc_candidate(c: &RTCIceCandidate, url: &str) -> CandidateInfo {
    let typ = c.typ.to_string();
    let url = non_empty(url).or_else(|| c.url.clone());
    let relay_protocol = (typ == "relay")
        .then(|| {
            // `Unspecified` serializes as its variant name; only udp/tcp/tls are real.
            let p = serde_json::to_value(c.relay_protocol)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .filter(|p| matches!(p.as_str(), "udp" | "tcp" | "tls"));
            p.or_else(|| url.as_deref().and_then(relay_protocol_from_url))
        })
        .flatten();
    CandidateInfo {
        base_type: typ.clone(),
        candidate_type: typ,
        protocol: c.protocol.to_string(),
        address: c.address.clone(),
        port: c.port,
        relay_protocol,
        related_address: non_empty(&c.related_address).map(|a| super::protocol::endpoint(&a, c.related_port)),
        url,
    }
}

/// Parses an SDP `candidate:` line (what the other peer trickles to us).
pub(crate) fn parse_candidate_line(line: &str) -> Option<CandidateInfo> {
    let line = line.trim().trim_start_matches("a=");
    let body = line.strip_prefix("candidate:")?;
    let f: Vec<&str> = body.split_whitespace().collect();
    // foundation component transport priority address port "typ" type [raddr a rport p] ...
    if f.len() < 8 || f[6] != "typ" {
        return None;
    }
    let mut related = None;
    let mut i = 8;
    while i + 1 < f.len() {
        if f[i] == "raddr" {
            let port = f.get(i + 3).copied().unwrap_or("0");
            related = Some(super::protocol::endpoint(f[i + 1], port));
        }
        i += 2;
    }
    Some(CandidateInfo {
        candidate_type: f[7].to_string(),
        base_type: f[7].to_string(),
        protocol: f[2].to_ascii_lowercase(),
        address: f[4].to_string(),
        port: f[5].parse().ok()?,
        relay_protocol: None,
        related_address: related,
        url: None,
    })
}

/// Completes a candidate from the known one at the same endpoint: a prflx takes the known
/// type as its `base_type`, and the relay protocol / URL recorded at gathering replace the
/// ICE transport's (which lacks them, or sees a TURN shim's UDP URL).
pub(crate) fn resolve_base(mut c: CandidateInfo, known: &KnownCandidates) -> CandidateInfo {
    if let Some(k) = known.get(&c.endpoint()) {
        if c.candidate_type == "prflx" {
            c.base_type = k.base_type.clone();
        }
        // What was recorded at gathering wins: the transport's view of a relay gathered
        // through a TURN shim says udp and names the shim's URL.
        if k.relay_protocol.is_some() {
            c.relay_protocol = k.relay_protocol.clone();
        }
        if k.url.is_some() {
            c.url = k.url.clone();
        }
    }
    c
}

/// Latest STUN RTT of the pair the transport has selected, from `getStats()`.
fn selected_rtt_ms(report: &RTCStatsReport) -> Option<f64> {
    let id = report.transport().map(|t| t.selected_candidate_pair_id.clone()).filter(|id| !id.is_empty());
    let pair = match id {
        Some(id) => report.candidate_pairs().find(|p| p.stats.id == id),
        None => report.candidate_pairs().find(|p| p.nominated),
    }?;
    if pair.current_round_trip_time > 0.0 {
        Some(pair.current_round_trip_time * 1000.0)
    } else if pair.responses_received > 0 {
        Some(pair.total_round_trip_time * 1000.0 / pair.responses_received as f64)
    } else {
        None
    }
}

/// The nominated pair, from the ICE transport (`RTCIceTransport.getSelectedCandidatePair`)
/// plus the RTT from `getStats()`; `None` until ICE has selected one. (The stats report's
/// candidate entries are keyed differently from the pair's ids and omit prflx remotes, so
/// the transport is the reliable source for the candidates themselves.)
pub(crate) async fn selected_pair(
    pc: &dyn PeerConnection,
    local_known: &KnownCandidates,
    remote_known: &KnownCandidates,
) -> Option<SelectedPair> {
    let ice = pc.sctp().await?.transport().ice_transport();
    let pair = ice.get_selected_candidate_pair().await.ok()??;
    let local = resolve_base(from_rtc_candidate(pair.local(), ""), local_known);
    let remote = resolve_base(from_rtc_candidate(pair.remote(), ""), remote_known);
    let relay_based = local.base_type == "relay" || remote.base_type == "relay";
    let relay_protocol =
        if local.base_type == "relay" { local.relay_protocol.clone() } else { remote.relay_protocol.clone() };
    let report = pc.get_stats(Instant::now(), StatsSelector::None).await;
    Some(SelectedPair { local, remote, relay_based, relay_protocol, rtt_ms: selected_rtt_ms(&report) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_relays_rank_below_udp_relays_and_far_below_srflx() {
        let (udp, tcp, tls) = (relay_priority("udp"), relay_priority("tcp"), relay_priority("tls"));
        assert_eq!(udp, 16_777_215, "the UDP relay keeps webrtc-rs' own value");
        assert!(udp > tcp && tcp > tls);
        let srflx = (100 << 24) + (65535 << 8) + 255;
        assert!(srflx / udp >= 100, "srflx outranks a UDP relay by two orders of magnitude");
        let line = "candidate:1 1 udp 16777215 192.0.2.7 50000 typ relay raddr 10.0.0.2 rport 4000";
        assert_eq!(
            with_priority(line, tls),
            format!("candidate:1 1 udp {tls} 192.0.2.7 50000 typ relay raddr 10.0.0.2 rport 4000")
        );
        assert_eq!(with_priority("garbage", 5), "garbage");
    }

    #[test]
    fn parses_candidate_lines() {
        let c = parse_candidate_line("candidate:123 1 udp 16777215 10.0.0.9 50000 typ relay raddr 1.2.3.4 rport 4000")
            .unwrap();
        assert_eq!(c.candidate_type, "relay");
        assert_eq!(c.endpoint(), "10.0.0.9:50000");
        assert_eq!(c.related_address.as_deref(), Some("1.2.3.4:4000"));
        let v6 = "candidate:9 1 udp 16777215 198.51.100.10 5000 typ relay raddr 2001:db8:1::10 rport 4000";
        let c = parse_candidate_line(v6).unwrap();
        assert_eq!(c.related_address.as_deref(), Some("[2001:db8:1::10]:4000"));
        assert!(c.related_address.unwrap().parse::<std::net::SocketAddr>().is_ok(), "a relay's base parses");
        assert!(parse_candidate_line("garbage").is_none());
    }

    #[test]
    fn prflx_resolves_to_known_relay() {
        let relay = parse_candidate_line("candidate:1 1 udp 1 10.0.0.9 5 typ relay").unwrap();
        let known = KnownCandidates::from([(relay.endpoint(), relay)]);
        let p = parse_candidate_line("candidate:2 1 udp 1 10.0.0.9 5 typ prflx").unwrap();
        assert_eq!(resolve_base(p, &known).base_type, "relay");
    }

    #[test]
    fn relay_protocol_from_urls() {
        assert_eq!(relay_protocol_from_url("turn:1.2.3.4:3478").unwrap(), "udp");
        assert_eq!(relay_protocol_from_url("turn:1.2.3.4:3478?transport=tcp").unwrap(), "tcp");
        assert_eq!(relay_protocol_from_url("turns:x:443").unwrap(), "tls");
        assert!(relay_protocol_from_url("stun:x").is_none());
    }
}
