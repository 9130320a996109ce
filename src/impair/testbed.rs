//! A two-namespace bench joined by one impaired link, for fidelity tests, benchmarks
//! and checking a machine ("does this kernel's netem behave?").
//!
//! Side A is `10.99.0.1/24`, side B `10.99.0.2/24`, on a device named `imp0` in each.
//! IPv6 is off and neighbours are static, so the only frames crossing the link are the
//! ones a test sends — which is what makes a seeded loss pattern replay exactly.
//! Dropping the bench stops the engine and deletes both namespaces, also on panic.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::engine::{Engine, EngineControl, LinkDir, TapLink};
use super::netem;
use super::spec::Impairment;
use crate::fabric::netns;

/// Address of side A.
pub const ADDR_A: [u8; 4] = [10, 99, 0, 1];
/// Address of side B.
pub const ADDR_B: [u8; 4] = [10, 99, 0, 2];
/// Device name on both sides.
pub const DEV: &str = "imp0";
const MAC_A: &str = "02:00:00:99:00:01";
const MAC_B: &str = "02:00:00:99:00:02";

/// What carries the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Two TAP devices and the userspace engine.
    Tap,
    /// A veth pair with netem/tbf on each end's egress.
    Netem,
    /// A plain veth pair (the baseline; impairments are ignored).
    Veth,
}

/// Two namespaces and a link. See the module docs.
pub struct Testbed {
    /// Namespace of side A.
    pub ns_a: String,
    /// Namespace of side B.
    pub ns_b: String,
    backend: Backend,
    engine: Option<Engine>,
}

fn ip(ns: &str, args: &str) -> Result<()> {
    let out = Command::new("ip").arg("-n").arg(ns).args(args.split_whitespace()).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip -n {ns} {args}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl Testbed {
    /// Builds namespaces `<prefix>-a` and `<prefix>-b` and the link.
    pub fn new(prefix: &str, backend: Backend, a_to_b: Impairment, b_to_a: Impairment, seed: u64) -> Result<Testbed> {
        let mut tb = Testbed { ns_a: format!("{prefix}-a"), ns_b: format!("{prefix}-b"), backend, engine: None };
        // From here on, dropping `tb` removes whatever exists.
        for ns in [&tb.ns_a, &tb.ns_b] {
            let h = netns::create(ns)?;
            netns::sysctl(&h, "net.ipv6.conf.all.disable_ipv6", "1")?;
            netns::sysctl(&h, "net.ipv6.conf.default.disable_ipv6", "1")?;
            ip(ns, "link set dev lo up")?;
        }
        match backend {
            Backend::Tap => {
                tb.engine = Some(Engine::start(vec![TapLink {
                    ns_a: tb.ns_a.clone(),
                    dev_a: DEV.into(),
                    ns_b: tb.ns_b.clone(),
                    dev_b: DEV.into(),
                    a_to_b: a_to_b.clone(),
                    b_to_a: b_to_a.clone(),
                    seed,
                }])?);
            }
            Backend::Netem | Backend::Veth => {
                ip(&tb.ns_a, &format!("link add {DEV} type veth peer name {DEV} netns {}", tb.ns_b))?;
            }
        }
        for (ns, me, mac, peer, peer_mac) in
            [(&tb.ns_a, ADDR_A, MAC_A, ADDR_B, MAC_B), (&tb.ns_b, ADDR_B, MAC_B, ADDR_A, MAC_A)]
        {
            let dot = |a: [u8; 4]| format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
            ip(ns, &format!("link set dev {DEV} address {mac}"))?;
            ip(ns, &format!("addr add {}/24 dev {DEV}", dot(me)))?;
            ip(ns, &format!("link set dev {DEV} up"))?;
            ip(ns, &format!("neigh replace {} lladdr {peer_mac} dev {DEV} nud permanent", dot(peer)))?;
        }
        if backend == Backend::Netem {
            netem::apply_seeded(&tb.ns_a, DEV, &a_to_b, Some(seed))?;
            netem::apply_seeded(&tb.ns_b, DEV, &b_to_a, Some(seed.wrapping_add(1)))?;
        }
        Ok(tb)
    }

    /// The engine's control handle (TAP backend only).
    pub fn control(&self) -> Option<EngineControl> {
        self.engine.as_ref().map(Engine::control)
    }

    /// Changes one direction's impairment while running.
    pub fn set(&self, dir: LinkDir, imp: &Impairment) -> Result<()> {
        match self.backend {
            Backend::Tap => self.control().context("no engine")?.set(0, dir, imp.clone()),
            Backend::Netem => {
                let ns = match dir {
                    LinkDir::AToB => &self.ns_a,
                    LinkDir::BToA => &self.ns_b,
                };
                netem::apply(ns, DEV, imp)
            }
            Backend::Veth => bail!("a plain veth takes no impairment"),
        }
    }

    /// A UDP socket bound to `port` on side A (or B when `side_b`).
    pub fn udp(&self, side_b: bool, port: u16) -> Result<UdpSocket> {
        let (ns, addr) = if side_b { (&self.ns_b, ADDR_B) } else { (&self.ns_a, ADDR_A) };
        let h = netns::open(ns)?;
        let sock = netns::run_in(&h, move || UdpSocket::bind(SocketAddr::from((addr, port))))??;
        // Deep buffers: a test must measure the link, not its own socket drops.
        let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
        let size: libc::c_int = 8 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
            // SAFETY: setsockopt with a valid int option value.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
        Ok(sock)
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        // Stop the pumps first so the TAP devices close with the engine.
        drop(self.engine.take());
        for ns in [&self.ns_a, &self.ns_b] {
            let _ = netns::delete(ns);
        }
    }
}
