//! Flushing a namespace's conntrack table over ctnetlink, as `conntrack -F` does, so
//! no conntrack tool is needed: one `IPCTNL_MSG_CT_DELETE` without attributes.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};

const NFNL_SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
/// How long the kernel may take to answer.
const REPLY_DEADLINE: Duration = Duration::from_secs(2);

/// Deletes every IPv4 conntrack entry in the namespace `ns`.
pub fn flush(ns: &OwnedFd) -> Result<()> {
    super::netns::run_in(ns, flush_here)?
}

/// The request: nlmsghdr + nfgenmsg (family AF_INET, version 0, res_id 0).
fn request() -> Vec<u8> {
    let len: u32 = 16 + 4;
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE).to_ne_bytes());
    m.extend_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    m.extend_from_slice(&[libc::AF_INET as u8, 0, 0, 0]);
    m
}

/// Deletes every IPv4 conntrack entry in the calling thread's namespace
/// (`icelab conntrack-flush`, for scripts on machines without conntrack-tools).
pub fn flush_here() -> Result<()> {
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_NETFILTER) };
    if raw < 0 {
        bail!("netlink socket: {}", std::io::Error::last_os_error());
    }
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let tv = libc::timeval { tv_sec: REPLY_DEADLINE.as_secs() as _, tv_usec: 0 };
    // SAFETY: valid fd and option struct.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
    }
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as u16;
    let msg = request();
    // SAFETY: buffers and address are valid for the given lengths.
    let sent = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr() as *const libc::c_void,
            msg.len(),
            0,
            &kernel as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        bail!("sending the conntrack flush: {}", std::io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: buf is valid for its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
    if n < 0 {
        bail!("no answer to the conntrack flush: {}", std::io::Error::last_os_error());
    }
    // The ack is an NLMSG_ERROR whose error code 0 means success.
    let n = n as usize;
    if n < 20 || u16::from_ne_bytes([buf[4], buf[5]]) != libc::NLMSG_ERROR as u16 {
        bail!("unexpected answer to the conntrack flush");
    }
    let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    // ENOENT: the table was already empty.
    if code != 0 && code != -libc::ENOENT {
        return Err(anyhow!("conntrack flush: {}", std::io::Error::from_raw_os_error(-code)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_is_a_bare_ct_delete() {
        let m = super::request();
        assert_eq!(m.len(), 20);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), 0x0102);
    }
}
