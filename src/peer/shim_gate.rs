//! The hold on a stream relay's permissions and data (see `turn_shim`): which TURN
//! clients are released, and which datagrams wait for it.

use std::net::SocketAddr;
use std::time::Duration;

/// Longest a relay's permissions and data wait for the other side's `CandidateAdded` (a
/// peer that never sends one still gets its relay, this much later).
pub(crate) const HOLD_MAX: Duration = Duration::from_millis(1500);

/// TURN clients (by their local address) whose relay the other side knows.
#[derive(Default)]
pub(crate) struct Released {
    pub(crate) clients: std::sync::Mutex<std::collections::HashSet<SocketAddr>>,
    pub(crate) changed: tokio::sync::Notify,
}

impl Released {
    pub(crate) fn contains(&self, c: SocketAddr) -> bool {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).contains(&c)
    }

    /// Waits until `client` is released or `deadline` passes.
    pub(crate) async fn wait(&self, client: SocketAddr, deadline: tokio::time::Instant) {
        loop {
            let changed = self.changed.notified();
            if self.contains(client) {
                return;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                tracing::debug!(%client, "turn shim: no CandidateAdded in time, relay released");
                return;
            }
        }
    }
}

/// A datagram that must wait for the release: permissions and data, not the allocation.
pub(crate) fn held(d: &[u8]) -> bool {
    match d.first().map(|b| b >> 6) {
        Some(1) => true, // ChannelData
        Some(0) if d.len() >= 20 => {
            let t = u16::from_be_bytes([d[0], d[1]]);
            let method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2);
            // Send, CreatePermission, ChannelBind (RFC 8656 §18).
            matches!(method, 0x006 | 0x008 | 0x009)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_and_data_are_held_allocations_are_not() {
        let stun = |t: u16| {
            let mut d = vec![0u8; 20];
            d[..2].copy_from_slice(&t.to_be_bytes());
            d
        };
        assert!(!held(&stun(0x0003)), "Allocate request");
        assert!(!held(&stun(0x0004)), "Refresh request");
        assert!(!held(&stun(0x0001)), "Binding request");
        assert!(held(&stun(0x0008)), "CreatePermission request");
        assert!(held(&stun(0x0009)), "ChannelBind request");
        assert!(held(&stun(0x0016)), "Send indication");
        assert!(held(&[0x40, 0x00, 0x00, 0x00]), "ChannelData");
    }
}
