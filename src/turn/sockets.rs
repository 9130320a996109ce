//! The relay's UDP sockets: buffers big enough to ride out the scheduling gaps of a busy
//! machine, and one listener per core, as coturn has.
//!
//! The `turn` crate reads every listener on one task and each relay socket on one task
//! per allocation. With the kernel's default 208 KiB receive buffer (about 90 datagrams
//! of 1200 bytes) a listener at 10,000 packets/s overflows whenever its task waits 9 ms
//! for a core: measured with `icelab bench relay` (10 allocations x 1000 pkt/s), 3.3 % of
//! the packets to the listener were dropped by the kernel (`RcvbufErrors` in the server's
//! namespace equal to the loss) while the server used a third of one core. coturn asks
//! for 2 MiB (`UR_SERVER_SOCK_BUF_SIZE`) and lost none.
//!
//! The crate's listener task is also the whole client-to-peer path: it reads a datagram,
//! finds the allocation and sends on the relay socket before it reads the next. One task
//! runs on one core at a time, and on a shared machine it is preempted in the middle of
//! that `sendto` (perf: 41 % of its samples in `finish_task_switch` after `sendto`). So the
//! UDP port is served by one `SO_REUSEPORT` socket per core ([`udp_listeners`]), each with
//! its own read loop and allocations; the kernel hashes each client's address to one of
//! them, so a client always meets the same socket and allocation. coturn does the same
//! (one listener socket on 3478 per relay thread).
//!
//! Tried and not kept: each listener's server on a thread of its own with a current-thread
//! runtime (coturn's thread model, no cross-thread wake-ups). A/B at 10 x 2000 pkt/s on the
//! busy machine it lost 7.9 % and 2.1 % where this shared runtime lost 3.6 % and 0.8 %, at
//! the same CPU. Most of the server's time is the kernel's (83 % of perf samples: the
//! veth/bridge path inside `sendto`, context switches), not the crate's code.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};

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

/// How many UDP listeners share the port: `ICELAB_TURN_UDP_LISTENERS` when set (for
/// measuring), else one per core the process may use; 1..=8.
pub(crate) fn listener_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let set = std::env::var("ICELAB_TURN_UDP_LISTENERS").ok().and_then(|v| v.parse().ok());
    set.unwrap_or(cores).clamp(1, 8)
}

/// `n` UDP sockets bound to `ip:port` with `SO_REUSEPORT` (port 0: the port the first one
/// got), non-blocking, with [`LISTENER_BUFFER`] buffers.
pub(crate) fn udp_listeners(ip: IpAddr, port: u16, n: usize) -> std::io::Result<Vec<tokio::net::UdpSocket>> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrStorage, bind, setsockopt, socket, sockopt};
    let family = if ip.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let mut port = port;
    let mut out = Vec::new();
    for _ in 0..n.max(1) {
        let fd = socket(family, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
        setsockopt(&fd, sockopt::ReusePort, &true)?;
        bind(fd.as_raw_fd(), &SockaddrStorage::from(SocketAddr::new(ip, port)))?;
        let sock = std::net::UdpSocket::from(fd);
        enlarge(&sock, LISTENER_BUFFER);
        port = sock.local_addr()?.port();
        out.push(tokio::net::UdpSocket::from_std(sock)?);
    }
    Ok(out)
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

    #[tokio::test]
    async fn listeners_share_one_port() {
        let l = udp_listeners("127.0.0.1".parse().unwrap(), 0, 3).unwrap();
        let ports: Vec<u16> = l.iter().map(|s| s.local_addr().unwrap().port()).collect();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != 0 && ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }
}
