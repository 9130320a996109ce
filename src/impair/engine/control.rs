//! Changing a running engine's impairments, and reading its counters.
//!
//! Shared state: each link direction has a mutex-protected pending impairment and a
//! generation counter. The pump thread checks the counter (one relaxed atomic load) per
//! loop and takes the new impairment when it moved, so the data path never locks.
//! [`EngineControl::serve`] exposes the same calls as JSON lines on a Unix socket for
//! another process (e.g. a scenario driver issuing mid-call events).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::impair::spec::Impairment;

/// A direction of a [`super::TapLink`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkDir {
    /// Frames read from `dev_a`, written to `dev_b`.
    AToB,
    /// Frames read from `dev_b`, written to `dev_a`.
    BToA,
}

impl LinkDir {
    pub(crate) fn index(self) -> usize {
        match self {
            LinkDir::AToB => 0,
            LinkDir::BToA => 1,
        }
    }
}

/// Counters of one link direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirStats {
    /// Frames read from the source TAP.
    pub rx: u64,
    /// Frames written to the destination TAP.
    pub tx: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Dropped as oversize.
    pub drop_mtu: u64,
    /// Dropped by random/bursty loss.
    pub drop_loss: u64,
    /// Dropped by the full bottleneck queue.
    pub drop_queue: u64,
    /// Writes the destination refused (device down, no buffer).
    pub write_errors: u64,
    /// Releases of held frames (a frame held by the delay line and then the
    /// bottleneck counts once for each).
    #[serde(default)]
    pub released: u64,
    /// Sum over released frames of how late they left their due time (ns): the
    /// engine's own scheduling error, apart from the delay it was asked for.
    #[serde(default)]
    pub late_ns_total: u64,
    /// The latest any released frame left (ns).
    #[serde(default)]
    pub late_ns_max: u64,
}

impl DirStats {
    /// Mean lateness of released frames in milliseconds (0 when none were held).
    pub fn mean_late_ms(&self) -> f64 {
        if self.released == 0 { 0.0 } else { self.late_ns_total as f64 / self.released as f64 / 1e6 }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub rx: AtomicU64,
    pub tx: AtomicU64,
    pub duplicated: AtomicU64,
    pub drop_mtu: AtomicU64,
    pub drop_loss: AtomicU64,
    pub drop_queue: AtomicU64,
    pub write_errors: AtomicU64,
    pub released: AtomicU64,
    pub late_ns_total: AtomicU64,
    pub late_ns_max: AtomicU64,
}

impl Counters {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        // Only the pump thread writes; Relaxed suffices for monotonic counters.
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Records one held frame leaving `late_ns` after its due time.
    pub(crate) fn released_late(&self, late_ns: u64) {
        Self::add(&self.released, 1);
        Self::add(&self.late_ns_total, late_ns);
        self.late_ns_max.fetch_max(late_ns, Ordering::Relaxed);
    }

    fn snapshot(&self) -> DirStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirStats {
            rx: l(&self.rx),
            tx: l(&self.tx),
            duplicated: l(&self.duplicated),
            drop_mtu: l(&self.drop_mtu),
            drop_loss: l(&self.drop_loss),
            drop_queue: l(&self.drop_queue),
            write_errors: l(&self.write_errors),
            released: l(&self.released),
            late_ns_total: l(&self.late_ns_total),
            late_ns_max: l(&self.late_ns_max),
        }
    }
}

/// State shared between a pump thread and its controllers.
#[derive(Default)]
pub(crate) struct DirShared {
    pub generation: AtomicU64,
    pub pending: Mutex<Option<Impairment>>,
    pub counters: Counters,
}

impl DirShared {
    /// The new impairment if one was set since generation `seen`.
    pub(crate) fn take_update(&self, seen: &mut u64) -> Option<Impairment> {
        let g = self.generation.load(Ordering::Acquire);
        if g == *seen {
            return None;
        }
        *seen = g;
        self.pending.lock().ok()?.take()
    }
}

/// Handle for changing impairments and reading counters while the engine runs.
/// Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct EngineControl {
    pub(crate) dirs: Arc<Vec<[DirShared; 2]>>,
}

/// A request on the control socket (one JSON object per line).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ControlRequest {
    /// Replace one direction's impairment.
    Set {
        /// Index into the engine's links.
        link: usize,
        /// Which direction.
        dir: LinkDir,
        /// The new impairment.
        impairment: Impairment,
    },
    /// Read every direction's counters.
    Stats,
}

/// The answer to a [`ControlRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ControlReply {
    /// Done.
    Ok,
    /// Counters, `[link][dir]`.
    Stats(Vec<[DirStats; 2]>),
    /// Refused.
    Error(String),
}

impl EngineControl {
    pub(crate) fn new(links: usize) -> Self {
        Self { dirs: Arc::new((0..links).map(|_| Default::default()).collect()) }
    }

    /// Number of links.
    pub fn links(&self) -> usize {
        self.dirs.len()
    }

    /// Replaces the impairment of one direction; the pump picks it up within one loop
    /// (at most a few milliseconds). Frames already delayed keep their schedule.
    pub fn set(&self, link: usize, dir: LinkDir, imp: Impairment) -> Result<()> {
        imp.validate()?;
        let Some(d) = self.dirs.get(link) else {
            bail!("no link {link} (the engine has {})", self.dirs.len());
        };
        let d = &d[dir.index()];
        *d.pending.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(imp);
        d.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Counters of one direction.
    pub fn stats(&self, link: usize, dir: LinkDir) -> DirStats {
        self.dirs[link][dir.index()].counters.snapshot()
    }

    /// Handles one request.
    pub fn handle(&self, req: ControlRequest) -> ControlReply {
        match req {
            ControlRequest::Set { link, dir, impairment } => match self.set(link, dir, impairment) {
                Ok(()) => ControlReply::Ok,
                Err(e) => ControlReply::Error(format!("{e:#}")),
            },
            ControlRequest::Stats => ControlReply::Stats(
                (0..self.links()).map(|l| [self.stats(l, LinkDir::AToB), self.stats(l, LinkDir::BToA)]).collect(),
            ),
        }
    }

    /// Serves requests on a Unix socket at `path` (replacing a stale socket file) from a
    /// background thread, one JSON request and one JSON reply per line.
    pub fn serve(&self, path: &Path) -> Result<std::thread::JoinHandle<()>> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))?;
        let me = self.clone();
        Ok(std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve_conn(conn));
            }
        }))
    }

    fn serve_conn(&self, conn: UnixStream) {
        let Ok(mut out) = conn.try_clone() else {
            return;
        };
        for line in BufReader::new(conn).lines() {
            let Ok(line) = line else { return };
            let reply = match serde_json::from_str::<ControlRequest>(&line) {
                Ok(req) => self.handle(req),
                Err(e) => ControlReply::Error(format!("bad request: {e}")),
            };
            let mut s = serde_json::to_string(&reply).unwrap_or_default();
            s.push('\n');
            if out.write_all(s.as_bytes()).is_err() {
                return;
            }
        }
    }
}

/// How long an engine may take to answer a request.
const REQUEST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Sends one request to an engine's control socket and waits (bounded) for the reply.
pub fn request(path: &Path, req: &ControlRequest) -> Result<ControlReply> {
    let mut s = UnixStream::connect(path).with_context(|| format!("connecting to {}", path.display()))?;
    s.set_read_timeout(Some(REQUEST_DEADLINE))?;
    s.set_write_timeout(Some(REQUEST_DEADLINE))?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply)?;
    Ok(serde_json::from_str(&reply)?)
}
