//! In-process harness: two [`run_peer`]s wired through tokio pipes and
//! [`relay_signaling`], for tests and quick measurements without namespaces.

use std::time::Duration;

use tokio::io::{BufReader, duplex};

use super::config::PeerConfig;
use super::outcome::Outcome;
use super::relay::relay_signaling;
use super::run::run_peer;

const PIPE_BYTES: usize = 256 * 1024;

/// Runs an offerer and an answerer in this process and returns what happened. `deadline`
/// bounds the relay; each peer is also bounded by its own `deadline_ms`. The roles in the
/// configs are forced to offerer/answerer.
pub async fn call_pair(mut offerer_cfg: PeerConfig, mut answerer_cfg: PeerConfig, deadline: Duration) -> Outcome {
    offerer_cfg.role = super::Role::Offerer;
    answerer_cfg.role = super::Role::Answerer;
    // Each pipe: (peer end, relay end). The peer task owns its ends, so they close when
    // it returns and the relay sees end-of-output.
    let (a_in_peer, a_in_relay) = duplex(PIPE_BYTES);
    let (a_out_peer, a_out_relay) = duplex(PIPE_BYTES);
    let (b_in_peer, b_in_relay) = duplex(PIPE_BYTES);
    let (b_out_peer, b_out_relay) = duplex(PIPE_BYTES);

    let a = tokio::spawn(run_peer(offerer_cfg, BufReader::new(a_in_peer), a_out_peer));
    let b = tokio::spawn(run_peer(answerer_cfg, BufReader::new(b_in_peer), b_out_peer));
    let (a_events, b_events) =
        relay_signaling(BufReader::new(a_out_relay), a_in_relay, BufReader::new(b_out_relay), b_in_relay, deadline)
            .await;

    let mut outcome = Outcome::from_events(&a_events, &b_events);
    outcome.offerer.exit_error = join_error(a, deadline).await;
    outcome.answerer.exit_error = join_error(b, deadline).await;
    outcome
}

async fn join_error(h: tokio::task::JoinHandle<anyhow::Result<()>>, deadline: Duration) -> Option<String> {
    let abort = h.abort_handle();
    match tokio::time::timeout(deadline, h).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(format!("{e:#}")),
        Ok(Err(e)) => Some(format!("peer task: {e}")),
        Err(_) => {
            abort.abort();
            Some("peer did not exit".into())
        }
    }
}
