//! Packet capture of a running lab: one pcap per link, written by icelab itself.
//!
//! Every link of a lab is a node's uplink (a host's `eth0`, a router's `wan`, a
//! server's `eth0`), so capturing each node's own end captures every link once, both
//! directions: a router's file shows its traffic after NAT, its hosts' files before.
//! Each link gets a thread that enters the node's namespace, opens an `AF_PACKET`
//! socket bound to the device (kernel timestamps on), and writes what it reads with
//! the `pcap-file` crate until [`Capture::stop`].

use std::fs::File;
use std::io::{BufWriter, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use nix::sys::socket::{self, ControlMessageOwned, MsgFlags, sockopt};
use pcap_file::DataLink;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use serde::Serialize;

use super::netns;
use crate::plan::Plan;

/// How often a capture thread looks whether it should stop.
const POLL: Duration = Duration::from_millis(100);
/// Largest frame kept (veth MTU is 1500; offloads can hand up more).
const SNAPLEN: usize = 65_535;

/// One link's capture file.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureFile {
    /// The node whose end was captured.
    pub node: String,
    /// Its device.
    pub dev: String,
    /// The pcap file.
    pub path: PathBuf,
    /// Frames written.
    pub packets: u64,
}

struct Link {
    node: String,
    dev: String,
    path: PathBuf,
    thread: JoinHandle<Result<u64>>,
}

/// A lab being captured; [`Capture::stop`] ends it (dropping it stops the threads too,
/// without waiting for them).
pub struct Capture {
    stop: Arc<AtomicBool>,
    links: Vec<Link>,
}

impl Capture {
    /// Starts capturing every link of `plan` into `dir` (made if missing): `<node>.pcap`.
    /// Returns once every socket is bound, so nothing sent afterwards is missed.
    pub fn start(plan: &Plan, dir: &Path) -> Result<Capture> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut capture = Capture { stop: stop.clone(), links: Vec::new() };
        for u in &plan.uplinks {
            let path = dir.join(format!("{}.pcap", u.node));
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (ns, dev, file, stop) = (u.ns.clone(), u.dev.clone(), path.clone(), stop.clone());
            let thread = std::thread::Builder::new()
                .name(format!("capture-{}", u.node))
                .spawn(move || -> Result<u64> {
                    let opened = open(&ns, &dev, &file);
                    let ok = opened.is_ok();
                    let _ = ready_tx.send(opened.as_ref().map(|_| ()).map_err(|e| format!("{e:#}")));
                    if !ok {
                        return Ok(0);
                    }
                    let (sock, writer) = opened?;
                    record(&sock, writer, &stop)
                })
                .context("starting a capture thread")?;
            capture.links.push(Link { node: u.node.clone(), dev: u.dev.clone(), path, thread });
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => bail!("capturing {}/{}: {e}", u.node, u.dev),
                Err(_) => bail!("capturing {}/{}: the capture thread did not start within 5 s", u.node, u.dev),
            }
        }
        Ok(capture)
    }

    /// Stops every thread, flushes the files and says what each holds.
    pub fn stop(mut self) -> Result<Vec<CaptureFile>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut files = Vec::new();
        for l in std::mem::take(&mut self.links) {
            let packets = l.thread.join().map_err(|_| anyhow!("the capture thread of {} panicked", l.node))??;
            files.push(CaptureFile { node: l.node, dev: l.dev, path: l.path, packets });
        }
        Ok(files)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// In the namespace `ns` (this thread only): a packet socket on `dev`, and the file.
fn open(ns: &str, dev: &str, file: &Path) -> Result<(OwnedFd, PcapWriter<BufWriter<File>>)> {
    let fd = netns::open(ns)?;
    nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).with_context(|| format!("entering {ns}"))?;
    let protocol = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); the descriptor is owned at once.
    let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol.into()) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error()).context("socket(AF_PACKET)");
    }
    // SAFETY: `raw` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    let index = nix::net::if_::if_nametoindex(dev).with_context(|| format!("no device {dev} in {ns}"))?;
    // nix has no constructor for a link-layer address, so sockaddr_ll is filled here.
    // SAFETY: an all-zero sockaddr_ll is valid; bind reads exactly its size.
    let rc = unsafe {
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = protocol;
        sll.sll_ifindex = index as i32;
        libc::bind(
            sock.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("binding a packet socket to {dev}"));
    }
    socket::setsockopt(&sock, sockopt::ReceiveTimestampns, &true).context("SO_TIMESTAMPNS")?;
    socket::setsockopt(&sock, sockopt::ReceiveTimeout, &nix::sys::time::TimeVal::new(0, POLL.as_micros() as _))
        .context("SO_RCVTIMEO")?;
    let out = File::create(file).with_context(|| format!("creating {}", file.display()))?;
    let header = PcapHeader { datalink: DataLink::ETHERNET, snaplen: SNAPLEN as u32, ..PcapHeader::default() };
    let writer = PcapWriter::with_header(BufWriter::new(out), header).context("writing the pcap header")?;
    Ok((sock, writer))
}

/// Reads frames until `stop`, each with the kernel's receive time.
fn record(sock: &OwnedFd, mut writer: PcapWriter<BufWriter<File>>, stop: &AtomicBool) -> Result<u64> {
    let mut buf = vec![0u8; SNAPLEN];
    let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
    let mut packets = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match socket::recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_TRUNC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("reading a packet socket"),
        };
        let when = msg
            .cmsgs()
            .ok()
            .and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmTimestampns(ts) => {
                        Some(Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32))
                    }
                    _ => None,
                })
            })
            .unwrap_or_else(|| std::time::UNIX_EPOCH.elapsed().unwrap_or_default());
        let orig_len = msg.bytes;
        let kept = orig_len.min(SNAPLEN);
        writer.write_packet(&PcapPacket::new(when, orig_len as u32, &buf[..kept])).context("writing a packet")?;
        packets += 1;
    }
    use std::io::Write;
    writer.into_writer().flush().context("flushing a pcap file")?;
    Ok(packets)
}
