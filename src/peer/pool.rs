//! [`run_pool`]: many peers in one process, one per call, on the [`super::pool_wire`].
//!
//! Each call's peer is the same [`run_peer`] a process would run, on in-process pipes:
//! the pool only routes lines. So a pooled call and a process call differ in nothing but
//! what they cost (no fork, exec, runtime start or config parse per call).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream, duplex};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::{AbortHandle, JoinSet};

use super::config::PeerConfig;
use super::pool_wire::{PoolIn, PoolOut};
use super::run::run_peer;

/// Each pipe between the router and one peer.
const PIPE_BYTES: usize = 256 * 1024;
/// How long the pool waits for its running calls once its input closed (each is bounded
/// by its own deadline; this only guards against one that is not).
const DRAIN: Duration = Duration::from_secs(5);

/// One running call's peer, as the router sees it.
struct Running {
    /// The peer's input (its "stdin").
    input: DuplexStream,
    abort: AbortHandle,
}

/// Runs peers for calls started on `input` until it closes and they have all ended
/// (each bounded by its own `deadline_ms`). Output lines are written in the order the
/// peers produce them; a peer's `exit` follows its last event.
pub async fn run_pool(
    input: impl AsyncBufRead + Unpin,
    output: impl AsyncWrite + Unpin + Send + 'static,
) -> anyhow::Result<()> {
    let (out_tx, out_rx) = unbounded_channel::<String>();
    let writer = tokio::spawn(write_lines(output, out_rx));
    let mut running: HashMap<u64, Running> = HashMap::new();
    let mut peers: JoinSet<u64> = JoinSet::new();
    let mut lines = input.lines();
    let mut input_open = true;
    while input_open || !peers.is_empty() {
        tokio::select! {
            line = lines.next_line(), if input_open => match line.context("reading the pool's input")? {
                None => input_open = false,
                Some(l) if l.trim().is_empty() => {}
                Some(l) => route(&l, &mut running, &mut peers, &out_tx).await,
            },
            Some(done) = peers.join_next() => {
                // An aborted call was answered when it was aborted.
                if let Ok(call) = done {
                    running.remove(&call);
                }
            }
            _ = tokio::time::sleep(DRAIN), if !input_open => {
                tracing::warn!(calls = peers.len(), "pool input closed; aborting calls still running");
                peers.abort_all();
                break;
            }
        }
    }
    drop(out_tx);
    writer.await.context("the pool's writer")?
}

/// Acts on one input line. A bad line is reported on the call it names, when it names one.
async fn route(
    line: &str,
    running: &mut HashMap<u64, Running>,
    peers: &mut JoinSet<u64>,
    out: &UnboundedSender<String>,
) {
    let exit = |call: u64, error: &str| {
        let _ = out.send(PoolOut::Exit { call, error: Some(error) }.encode());
    };
    match PoolIn::decode(line) {
        Err(e) => tracing::warn!("{e}"),
        Ok(PoolIn::Start { call, config }) => {
            if running.contains_key(&call) {
                return exit(call, "call number already running");
            }
            let cfg: PeerConfig = match serde_json::from_str(config) {
                Ok(c) => c,
                Err(e) => return exit(call, &format!("bad peer config: {e}")),
            };
            let (input, peer_in) = duplex(PIPE_BYTES);
            let abort = peers.spawn(one_peer(call, cfg, peer_in, out.clone()));
            running.insert(call, Running { input, abort });
        }
        Ok(PoolIn::Signal { call, msg }) => {
            let Some(r) = running.get_mut(&call) else { return };
            // A full pipe means the peer stopped reading; its deadline ends it.
            let mut buf = Vec::with_capacity(msg.len() + 1);
            buf.extend_from_slice(msg.as_bytes());
            buf.push(b'\n');
            if r.input.write_all(&buf).await.is_err() {
                tracing::debug!(call, "signal for a peer that has ended");
            }
        }
        Ok(PoolIn::Abort { call }) => {
            if let Some(r) = running.remove(&call) {
                r.abort.abort();
                exit(call, "aborted by the orchestrator");
            }
        }
    }
}

/// One call's peer: [`run_peer`] on pipes, its output lines tagged with the call, then
/// its exit line.
async fn one_peer(call: u64, cfg: PeerConfig, input: DuplexStream, out: UnboundedSender<String>) -> u64 {
    let (peer_out, from_peer) = duplex(PIPE_BYTES);
    let forward = async {
        let mut lines = BufReader::new(from_peer).lines();
        while let Ok(Some(event)) = lines.next_line().await {
            let _ = out.send(PoolOut::Event { call, event: &event }.encode());
        }
    };
    let peer = async {
        if cfg.test_silent {
            // Test hook, as `icelab peer --test-silent`: never answers; aborted by the orchestrator.
            let _keep = (input, peer_out);
            std::future::pending::<anyhow::Result<()>>().await
        } else {
            run_peer(cfg, BufReader::new(input), peer_out).await
        }
    };
    let (result, ()) = tokio::join!(peer, forward);
    let error = result.err().map(|e| format!("{e:#}"));
    let _ = out.send(PoolOut::Exit { call, error: error.as_deref() }.encode());
    call
}

/// Writes lines as they come, flushing when none is waiting.
async fn write_lines(
    mut w: impl AsyncWrite + Unpin,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<String>,
) -> anyhow::Result<()> {
    while let Some(first) = rx.recv().await {
        let mut line = first;
        loop {
            line.push('\n');
            w.write_all(line.as_bytes()).await.context("writing the pool's output")?;
            match rx.try_recv() {
                Ok(next) => line = next,
                Err(_) => break,
            }
        }
        w.flush().await.context("writing the pool's output")?;
    }
    Ok(())
}
