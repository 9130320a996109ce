//! The userspace engine: impaired links made of two TAP devices pumped by this process.
//!
//! # Design
//!
//! An impaired link replaces the usual veth pair by a TAP device in each of the two
//! namespaces. Whatever the kernel in namespace A transmits on `dev_a` is read by the
//! A→B pump thread, passed through a [`model::DirectionModel`] (netem semantics, then a
//! token-bucket bottleneck) and written to `dev_b`, where namespace B receives it — and
//! the mirror image for B→A. Each direction has its own thread, deadline heap, FIFO
//! and seeded RNG, so directions never contend and a seed replays a run.
//!
//! # Why TAP, and not …
//!
//! * **NFQUEUE**: the kernel keeps the packet and userspace only returns a verdict, so
//!   duplication is impossible (a verdict accepts a packet once), delay means holding
//!   verdicts in a bounded kernel queue (a 300 ms satellite link at 20 Mbit/s holds
//!   ~500 packets per queue), and it sees IP packets only (no ARP, no Ethernet MTU
//!   view). It also needs nftables rules in every impaired namespace.
//! * **AF_PACKET on veth**: a veth pair already forwards frames in the kernel, so the
//!   engine would have to sit between two veth pairs (four devices per link), read with
//!   a packet socket while ignoring its own transmissions (`PACKET_OUTGOING`) and
//!   inject with `PACKET_QDISC_BYPASS`. TPACKET_V3 rings batch better than TAP reads,
//!   but that only matters above the rates a lab needs, at the cost of many more parts.
//! * **TAP** (chosen): reads are exactly the frames one side sent, writes are exactly
//!   the frames the other side receives; there is no kernel shortcut to disable; the
//!   devices are owned by the engine's descriptors and vanish when it dies, so a killed
//!   engine leaves no half-link. The cost is one `read` and one `write` system call per
//!   frame. Measured with `benches/impair.rs` on a 2-core VM, perfect link, 1200-byte
//!   UDP: 1.0–1.4 Gbit/s through the engine (a plain veth: 0.8–1.2 Gbit/s, where the
//!   sender's core does all the work) and 20–40 µs added median round-trip time.
//!
//! # Integration
//!
//! [`run_engine`] creates the devices (down and unaddressed, so the caller configures
//! them exactly like a veth end: up, bridge master, addresses), calls `ready`, and pumps
//! until the process is killed or every device is gone. [`Engine`] is the same as a
//! handle that can be stopped, and [`EngineControl`] changes impairments while it runs.

mod control;
pub mod model;
mod pump;
pub mod rng;
pub mod tap;

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

pub use control::{ControlReply, ControlRequest, DirStats, EngineControl, LinkDir, request};

use crate::fabric::netns;
use crate::impair::spec::Impairment;

/// One impaired link between two namespaces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TapLink {
    /// Namespace of side A.
    pub ns_a: String,
    /// TAP device created in `ns_a`.
    pub dev_a: String,
    /// Namespace of side B.
    pub ns_b: String,
    /// TAP device created in `ns_b`.
    pub dev_b: String,
    /// What frames sent by A suffer on their way to B.
    pub a_to_b: Impairment,
    /// What frames sent by B suffer on their way to A.
    pub b_to_a: Impairment,
    /// RNG seed; the same seed and the same traffic give the same decisions.
    pub seed: u64,
}

/// A running engine. Dropping it stops the pumps and removes the devices.
pub struct Engine {
    control: EngineControl,
    /// One flag per link; the watchdog raises a link's flag when its namespaces go.
    stops: Vec<Arc<AtomicBool>>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

/// How often the watchdog looks for deleted namespaces.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// A link's namespaces (name, inode) and its stop flag.
type Watched = ([(String, u64); 2], Arc<AtomicBool>);

/// Stops a link once either of its namespaces is deleted. A TAP descriptor holds a
/// reference to its namespace, so deleting the namespace does not remove the device
/// while the engine runs; the name disappearing is the signal that the lab is gone.
fn watchdog(watched: Vec<Watched>) {
    loop {
        let mut live = 0;
        for (names, stop) in &watched {
            if stop.load(Ordering::Relaxed) {
                continue;
            }
            if names.iter().any(|(n, ino)| netns::inode(n).ok() != Some(*ino)) {
                stop.store(true, Ordering::Relaxed);
            } else {
                live += 1;
            }
        }
        if live == 0 {
            return;
        }
        std::thread::sleep(WATCH_EVERY);
    }
}

impl Engine {
    /// Creates every link's devices and starts its two pump threads.
    pub fn start(links: Vec<TapLink>) -> Result<Engine> {
        for (i, l) in links.iter().enumerate() {
            l.a_to_b.validate().with_context(|| format!("link {i} a-to-b"))?;
            l.b_to_a.validate().with_context(|| format!("link {i} b-to-a"))?;
        }
        // Create every device first, so a failure leaves nothing running.
        let fds: Vec<(Arc<OwnedFd>, Arc<OwnedFd>)> = links
            .iter()
            .map(|l| -> Result<_> {
                Ok((Arc::new(tap::create(&l.ns_a, &l.dev_a)?), Arc::new(tap::create(&l.ns_b, &l.dev_b)?)))
            })
            .collect::<Result<_>>()?;
        let control = EngineControl::new(links.len());
        let stops: Vec<Arc<AtomicBool>> = links.iter().map(|_| Arc::default()).collect();
        let watched = links
            .iter()
            .zip(&stops)
            .map(|(l, s)| -> Result<_> {
                Ok(([(l.ns_a.clone(), netns::inode(&l.ns_a)?), (l.ns_b.clone(), netns::inode(&l.ns_b)?)], s.clone()))
            })
            .collect::<Result<Vec<_>>>()?;
        let epoch = Instant::now();
        let mut threads = Vec::new();
        for (i, (l, (a, b))) in links.into_iter().zip(fds).enumerate() {
            let stop = &stops[i];
            for (dir, src, dst, imp) in [
                (LinkDir::AToB, a.clone(), b.clone(), l.a_to_b.clone()),
                (LinkDir::BToA, b.clone(), a.clone(), l.b_to_a.clone()),
            ] {
                let p = pump::Pump {
                    src,
                    dst,
                    model: model::DirectionModel::new(imp, rng::Rng::new(l.seed, dir.index() as u64)),
                    control: control.clone(),
                    link: i,
                    dir: dir.index(),
                    stop: stop.clone(),
                    epoch,
                };
                threads.push(
                    std::thread::Builder::new().name(format!("impair-{i}-{}", dir.index())).spawn(move || p.run())?,
                );
            }
        }
        std::thread::Builder::new().name("impair-watchdog".into()).spawn(move || watchdog(watched))?;
        Ok(Engine { control, stops, threads })
    }

    /// A handle for changing impairments and reading counters.
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// Waits until every pump has ended (every link's namespaces deleted), returning the
    /// first error.
    pub fn wait(mut self) -> Result<()> {
        self.join()
    }

    /// Stops the pumps and removes the devices.
    pub fn stop(mut self) -> Result<()> {
        self.raise();
        self.join()
    }

    fn raise(&self) {
        for s in &self.stops {
            s.store(true, Ordering::Relaxed);
        }
    }

    fn join(&mut self) -> Result<()> {
        let mut first = Ok(());
        for t in self.threads.drain(..) {
            let r = t.join().map_err(|_| anyhow!("pump thread panicked")).and_then(|r| r.context("pump"));
            if first.is_ok() {
                first = r;
            }
        }
        first
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.raise();
        let _ = self.join();
    }
}

/// Creates the devices of `links` (down, unaddressed), calls `ready`, and pumps frames
/// until the process is killed or every link's namespaces have been deleted.
///
/// A TAP descriptor keeps its namespace alive, so a lab must not count on namespace
/// deletion alone: start the engine process inside one of the lab's namespaces (then
/// the lab's kill-by-namespace teardown finds it) or kill it; deleting the namespace
/// names also makes it exit within a fraction of a second.
pub fn run_engine(links: Vec<TapLink>, ready: impl FnOnce()) -> Result<()> {
    let engine = Engine::start(links)?;
    ready();
    engine.wait()
}
