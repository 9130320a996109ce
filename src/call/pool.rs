//! Pooled peers: one `icelab peer --pool` process per host plays that host's side of
//! every call (the wire: [`crate::peer::pool_wire`]), so a load's call costs a peer
//! connection, not a fork and exec.
//!
//! A call opens a [`PooledPeer`] on each of its hosts' pools and relays its signaling
//! exactly as between two processes: each pooled peer looks like a peer's stdout and
//! stdin (in-process pipes), and its `exit` line stands for the process exit. A pool is
//! started at its host's first call and closed by [`PeerPools::close`] (or killed when
//! dropped, as a peer process is).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, duplex};
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot};

use crate::peer::pool_wire::{PoolIn, PoolOut};
use crate::peer::{PeerConfig, PeerOutcome};

/// Each pipe between a call's relay and its pooled peer.
const PIPE_BYTES: usize = 256 * 1024;
/// How long a closed pool gets to end (its calls have all ended) before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Where a pool's output for one call goes.
struct Route {
    events: mpsc::UnboundedSender<String>,
    exit: oneshot::Sender<Option<String>>,
}

type Routes = Arc<Mutex<HashMap<u64, Route>>>;

/// One host's pool process.
struct Pool {
    ns: String,
    /// Its output has not ended (cleared when the process is gone).
    alive: Arc<AtomicBool>,
    /// Lines to the process's stdin.
    lines: mpsc::UnboundedSender<String>,
    routes: Routes,
    /// Ends the writer, which closes the process's stdin.
    close: Mutex<Option<oneshot::Sender<()>>>,
    child: tokio::sync::Mutex<Child>,
    stderr: Mutex<Option<tokio::task::JoinHandle<String>>>,
}

/// The pools of a lab's hosts, by namespace, and the calls' numbers.
#[derive(Default)]
pub(crate) struct PeerPools {
    pools: tokio::sync::Mutex<HashMap<String, Arc<Pool>>>,
    /// Pools that died and were replaced (kept to be reaped and counted).
    retired: Mutex<Vec<Arc<Pool>>>,
    next_call: AtomicU64,
}

/// One call's side on a pool: its "stdout" (`events`) and "stdin" (`input`) for the
/// signaling relay, and its exit.
pub(crate) struct PooledPeer {
    pub events: BufReader<DuplexStream>,
    pub input: DuplexStream,
    call: u64,
    exit: oneshot::Receiver<Option<String>>,
    pool: Arc<Pool>,
}

impl PeerPools {
    /// Starts `cfg`'s peer on the pool of namespace `ns`, starting the pool first if this
    /// is the host's first call.
    pub(crate) async fn open(
        &self,
        ns: &str,
        resolv_conf: Option<String>,
        cfg: &PeerConfig,
    ) -> anyhow::Result<PooledPeer> {
        let pool = {
            let mut pools = self.pools.lock().await;
            match pools.get(ns) {
                Some(p) if p.alive.load(Ordering::Acquire) => p.clone(),
                _ => {
                    // A pool that died (its calls were ended with it) is replaced, so
                    // one crash costs the calls it held, not the rest of the load.
                    let p = Arc::new(Pool::start(ns, resolv_conf.as_deref())?);
                    if let Some(dead) = pools.insert(ns.to_string(), p.clone()) {
                        tracing::warn!(%ns, "the pooled peer had ended; started a new one");
                        lock(&self.retired).push(dead);
                    }
                    p
                }
            }
        };
        let call = self.next_call.fetch_add(1, Ordering::Relaxed);
        pool.open(call, cfg)
    }

    /// Pool processes started.
    pub(crate) async fn processes(&self) -> usize {
        self.pools.lock().await.len() + lock(&self.retired).len()
    }

    /// Closes every pool's input and waits (bounded) for the processes to end, so their
    /// CPU and memory count among this process's reaped children.
    pub(crate) async fn close(&self) {
        let mut pools: Vec<_> = self.pools.lock().await.values().cloned().collect();
        pools.extend(lock(&self.retired).iter().cloned());
        futures::future::join_all(pools.iter().map(|p| p.close())).await;
    }
}

impl Pool {
    fn start(ns: &str, resolv_conf: Option<&str>) -> anyhow::Result<Pool> {
        let mut cmd = std::process::Command::new(crate::fabric::icelab_exe()?);
        cmd.args(["peer", "--pool"]);
        let mut child = super::run::spawn_on_host(cmd, ns, resolv_conf, "the pooled peer")?;
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let (stdin, stdout, stderr) = (stdin.expect("piped"), stdout.expect("piped"), stderr.expect("piped"));
        let routes: Routes = Arc::default();
        let alive = Arc::new(AtomicBool::new(true));
        let (lines, rx) = mpsc::unbounded_channel();
        let (close, closed) = oneshot::channel();
        tokio::spawn(write_lines(stdin, rx, closed));
        tokio::spawn(read_lines(BufReader::new(stdout), routes.clone(), ns.to_string(), alive.clone()));
        let stderr = tokio::spawn(super::run::tail(stderr));
        Ok(Pool {
            ns: ns.to_string(),
            alive,
            lines,
            routes,
            close: Mutex::new(Some(close)),
            child: tokio::sync::Mutex::new(child),
            stderr: Mutex::new(Some(stderr)),
        })
    }

    fn open(self: &Arc<Self>, call: u64, cfg: &PeerConfig) -> anyhow::Result<PooledPeer> {
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<String>();
        let (exit_tx, exit) = oneshot::channel();
        // Routed before the start line, so no event can arrive unrouted.
        lock(&self.routes).insert(call, Route { events: events_tx, exit: exit_tx });
        // Checked after routing: a pool that ends from here on ends this call too.
        if !self.alive.load(Ordering::Acquire) {
            lock(&self.routes).remove(&call);
            anyhow::bail!("the pooled peer in {} has ended", self.ns);
        }
        let config = serde_json::to_string(cfg)?;
        self.send(PoolIn::Start { call, config: &config })?;
        // The call's view: events become its "stdout" (closed when the peer exits) ...
        let (events, mut events_in) = duplex(PIPE_BYTES);
        tokio::spawn(async move {
            while let Some(mut line) = events_rx.recv().await {
                line.push('\n');
                if events_in.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
        });
        // ... and what the relay writes to its "stdin" goes to the pool as signals.
        let (input, from_relay) = duplex(PIPE_BYTES);
        let lines = self.lines.clone();
        tokio::spawn(async move {
            let mut relayed = BufReader::new(from_relay).lines();
            while let Ok(Some(msg)) = relayed.next_line().await {
                if lines.send(PoolIn::Signal { call, msg: &msg }.encode()).is_err() {
                    break;
                }
            }
        });
        Ok(PooledPeer { events: BufReader::new(events), input, call, exit, pool: self.clone() })
    }

    fn send(&self, line: PoolIn<'_>) -> anyhow::Result<()> {
        self.lines.send(line.encode()).map_err(|_| anyhow::anyhow!("the pooled peer in {} has ended", self.ns))
    }

    async fn close(&self) {
        if let Some(c) = lock(&self.close).take() {
            let _ = c.send(());
        }
        let mut child = self.child.lock().await;
        let status = match tokio::time::timeout(CLOSE_GRACE, child.wait()).await {
            Ok(s) => s.ok(),
            Err(_) => {
                tracing::warn!(ns = %self.ns, "pooled peer did not end; killed");
                let _ = child.kill().await;
                None
            }
        };
        let stderr = lock(&self.stderr).take();
        if status.is_some_and(|s| !s.success())
            && let Some(t) = stderr
        {
            let tail = tokio::time::timeout(CLOSE_GRACE, t).await.ok().and_then(Result::ok).unwrap_or_default();
            tracing::warn!(ns = %self.ns, ?status, "pooled peer failed: {tail}");
        }
    }
}

impl PooledPeer {
    /// Waits (bounded) for the peer's exit, as [`super::run`] reaps a process: a peer that
    /// reported `done` gets `hang_up` to close its connection, any other `grace`; one that
    /// does not end by then is aborted.
    pub(crate) async fn finish(self, o: &mut PeerOutcome, hang_up: Duration, grace: Duration) {
        let wait = if o.ok { hang_up } else { grace };
        match tokio::time::timeout(wait, self.exit).await {
            Ok(Ok(error)) => {
                if !o.ok && o.exit_error.is_none() {
                    o.exit_error = Some(error.unwrap_or_else(|| "peer ended without a result".into()));
                }
            }
            Ok(Err(_)) => {
                if !o.ok && o.exit_error.is_none() {
                    o.exit_error = Some(format!("the pooled peer in {} ended", self.pool.ns));
                }
            }
            Err(_) => {
                let _ = self.pool.send(PoolIn::Abort { call: self.call });
                if !o.ok && o.errors.is_empty() {
                    o.timed_out = true;
                    o.exit_error = Some("no result by the scenario deadline; aborted".into());
                }
            }
        }
    }
}

/// Writes lines to the pool's stdin until `closed` fires (then closes it) or nothing can
/// send any more.
async fn write_lines(
    mut stdin: tokio::process::ChildStdin,
    mut rx: mpsc::UnboundedReceiver<String>,
    mut closed: oneshot::Receiver<()>,
) {
    loop {
        let first = tokio::select! {
            l = rx.recv() => l,
            _ = &mut closed => None,
        };
        let Some(mut line) = first else { break };
        loop {
            line.push('\n');
            if stdin.write_all(line.as_bytes()).await.is_err() {
                return;
            }
            match rx.try_recv() {
                Ok(next) => line = next,
                Err(_) => break,
            }
        }
        if stdin.flush().await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

/// Routes the pool's output to its calls; when it ends, every call still routed ends too.
async fn read_lines(
    stdout: BufReader<tokio::process::ChildStdout>,
    routes: Routes,
    ns: String,
    alive: Arc<AtomicBool>,
) {
    let mut lines = stdout.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        match PoolOut::decode(&line) {
            Ok(PoolOut::Event { call, event }) => {
                if let Some(r) = lock(&routes).get(&call) {
                    let _ = r.events.send(event.to_string());
                }
            }
            Ok(PoolOut::Exit { call, error }) => {
                // Dropping the route closes the call's "stdout" after its last event.
                if let Some(r) = lock(&routes).remove(&call) {
                    let _ = r.exit.send(error.map(str::to_string));
                }
            }
            Err(e) => tracing::warn!(%ns, "{e}"),
        }
    }
    alive.store(false, Ordering::Release);
    let orphans: Vec<_> = lock(&routes).drain().collect();
    for (_, r) in orphans {
        let _ = r.exit.send(Some(format!("the pooled peer in {ns} exited")));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
