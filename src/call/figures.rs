//! The lab's TURN and STUN servers' own figures at the end of a run ([`ServerFigures`]), read
//! from the lab's state directory: the built-in server's stats file (asked for a fresh
//! sample with SIGUSR1) or coturn's log (once every allocation it granted has closed and
//! logged its usage). Every wait is bounded; what could not be read is said in `note`.

use std::time::{Duration, Instant};

use crate::plan::Plan;
use crate::servers::stats::{
    ServerFigures, ServerStats, coturn_open_allocations, parse_coturn_log, parse_stats_lines, stats_file,
};
use crate::servers::{Implementation, Service, ServiceKind};
use crate::topology::Topology;

/// How long a server gets to write its last figures.
const DEADLINE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(25);

/// The figures of every TURN service of the lab, then of every STUN service (coturn's
/// from its `log-binding` lines; a server runs one of the two, so one log is one service's).
///
/// The servers are asked at once, so the run waits for the slowest, not for their sum.
pub(super) async fn collect(topo: &Topology, plan: &Plan) -> Vec<ServerFigures> {
    let mut asked = Vec::new();
    for kind in [ServiceKind::Turn, ServiceKind::Stun] {
        for s in &topo.servers {
            let Some(node) = plan.node(&s.name) else { continue };
            for svc in s.services.iter().filter(|v| v.kind == kind) {
                asked.push(one(&s.name, *svc, &plan.state_dir, &node.ns));
            }
        }
    }
    futures::future::join_all(asked).await
}

async fn one(server: &str, svc: Service, state: &str, ns: &str) -> ServerFigures {
    let (samples, note) = match svc.implementation {
        Implementation::BuiltIn => built_in(state, svc.kind, ns).await,
        Implementation::Coturn => coturn(state, ns).await,
    };
    ServerFigures {
        server: server.into(),
        service: svc.kind,
        implementation: svc.implementation,
        stats: samples.last().cloned().unwrap_or_default(),
        samples,
        note,
    }
}

/// Asks the server for a sample (SIGUSR1 to the pid the plan recorded) and waits for one
/// taken after the question.
async fn built_in(state: &str, kind: ServiceKind, ns: &str) -> (Vec<ServerStats>, Option<String>) {
    let path = stats_file(state, kind, ns);
    let asked = crate::servers::stats::now_unix_ms();
    let pid_file = format!("{state}/{}", crate::plan::shell::pid_file(kind.name(), ns));
    let pid = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok());
    let signalled = pid.is_some_and(|p| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGUSR1).is_ok()
    });
    let until = Instant::now() + DEADLINE;
    loop {
        let samples = parse_stats_lines(&std::fs::read_to_string(&path).unwrap_or_default());
        let fresh = samples.last().is_some_and(|s| s.at_unix_ms >= asked);
        if fresh || !signalled || Instant::now() >= until {
            let note = match (fresh, signalled, samples.is_empty()) {
                (true, _, _) => None,
                (_, _, true) => Some(format!("no figures in {path}")),
                (_, false, _) => Some("the server was not running at the end: figures as last written".into()),
                (_, true, _) => Some(format!("no fresh sample within {DEADLINE:?}: figures as last written")),
            };
            return (samples, note);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every allocation coturn granted has closed (it logs a session's usage
/// then); what is still open at the deadline is counted as unreported.
async fn coturn(state: &str, ns: &str) -> (Vec<ServerStats>, Option<String>) {
    let path = crate::servers::coturn_log(state, ns);
    let until = Instant::now() + DEADLINE;
    loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let open = coturn_open_allocations(&text);
        if open == 0 || Instant::now() >= until {
            let samples = parse_coturn_log(&text);
            let unreported = samples.last().map_or(0, |s| s.unreported_allocations);
            let note = match (samples.is_empty(), unreported) {
                (true, _) => Some(format!("nothing to count in {path}")),
                (false, 0) => None,
                (false, n) => Some(format!(
                    "{n} allocation(s) never closed (still open after {DEADLINE:?}, or their server was stopped): \
                     coturn logs a session's relayed bytes when it closes"
                )),
            };
            return (samples, note);
        }
        tokio::time::sleep(POLL).await;
    }
}
