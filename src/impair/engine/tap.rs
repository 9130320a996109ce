//! TAP devices created inside a namespace and owned by this process.
//!
//! `/dev/net/tun` is opened on a thread that joined the namespace, so the device is
//! born there; the file descriptor then works from any thread. The device is not
//! persistent: it disappears when the engine exits, so a killed engine leaves no
//! devices behind.

use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result, bail};

use crate::fabric::netns;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Creates TAP device `dev` in namespace `ns` (down, unaddressed) and returns its
/// non-blocking descriptor.
pub fn create(ns: &str, dev: &str) -> Result<OwnedFd> {
    if dev.is_empty() || dev.len() >= libc::IFNAMSIZ || dev.contains(['/', ' ']) {
        bail!("bad interface name {dev:?} (1–15 characters, no '/' or spaces)");
    }
    let handle = netns::open(ns)?;
    let name = dev.to_string();
    netns::run_in(&handle, move || open_tap(&name))?.with_context(|| format!("creating TAP {dev} in namespace {ns}"))
}

fn open_tap(dev: &str) -> io::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        // No packet-info header and no virtio-net header: plain Ethernet frames, with
        // the kernel segmenting anything large before it reaches us.
        flags: (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        _pad: [0; 22],
    };
    req.name[..dev.len()].copy_from_slice(dev.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `req` lays out.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file.into())
}
