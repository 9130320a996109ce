//! Socket buffers of the relay's UDP sockets: big enough to ride out the scheduling gaps
//! of a busy machine, as coturn's are.
//!
//! The `turn` crate reads every listener on one task and each relay socket on one task
//! per allocation. With the kernel's default 208 KiB receive buffer (about 90 datagrams
//! of 1200 bytes) a listener at 10,000 packets/s overflows whenever its task waits 9 ms
//! for a core: measured with `icelab bench relay` (10 allocations x 1000 pkt/s), 3.3 % of
//! the packets to the listener were dropped by the kernel (`RcvbufErrors` in the server's
//! namespace equal to the loss) while the server used a third of one core. coturn asks
//! for 2 MiB (`UR_SERVER_SOCK_BUF_SIZE`) and lost none.

use std::os::fd::AsFd;

/// Receive and send buffer of the UDP listener (the kernel doubles it for bookkeeping).
pub(crate) const LISTENER_BUFFER: usize = 4 << 20;
/// Receive and send buffer of each relay socket (one allocation's peers).
pub(crate) const RELAY_BUFFER: usize = 1 << 20;

/// Gives `sock` `bytes` of receive and send buffer: forced past `net.core.rmem_max` /
/// `wmem_max` when the process may (CAP_NET_ADMIN, as in a lab), else as much as those
/// limits allow. Best effort: a socket that keeps its default still works.
pub(crate) fn enlarge(sock: &impl AsFd, bytes: usize) {
    use nix::sys::socket::{setsockopt, sockopt};
    if setsockopt(sock, sockopt::RcvBufForce, &bytes).is_err()
        && let Err(e) = setsockopt(sock, sockopt::RcvBuf, &bytes)
    {
        tracing::debug!("TURN: SO_RCVBUF {bytes}: {e}");
    }
    if setsockopt(sock, sockopt::SndBufForce, &bytes).is_err()
        && let Err(e) = setsockopt(sock, sockopt::SndBuf, &bytes)
    {
        tracing::debug!("TURN: SO_SNDBUF {bytes}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{getsockopt, sockopt};

    #[test]
    fn buffers_grow_at_least_to_what_the_limits_allow() {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let before = getsockopt(&s, sockopt::RcvBuf).unwrap();
        enlarge(&s, LISTENER_BUFFER);
        let after = getsockopt(&s, sockopt::RcvBuf).unwrap();
        let max: usize =
            std::fs::read_to_string("/proc/sys/net/core/rmem_max").map_or(0, |t| t.trim().parse().unwrap_or(0));
        // Linux reports twice what was granted; without CAP_NET_ADMIN it is capped at rmem_max.
        assert!(after >= before && after >= (2 * LISTENER_BUFFER).min(2 * max), "{before} -> {after}");
    }
}
