//! Building the report model from today's run results.

use std::collections::BTreeMap;

use super::model::{
    Call, CallTiming, Candidate, CheckRow, EventRow, Pair, PeerStderr, Report, ServerRow, Summary, TimingStat,
};
use crate::call::RunReport;
use crate::peer::{CandidateInfo, SelectedPair};
use crate::scenario;

impl Report {
    /// The report of the calls `runs` placed from `source`. `repeat` is how many calls
    /// were asked for (runs × the scenario's calls; a summary is added when it is more
    /// than one); `errors` are runs that could not be done.
    pub fn from_runs(source: &str, runs: &[RunReport], repeat: u32, errors: Vec<String>) -> Report {
        let mut calls: Vec<Call> = runs.iter().map(call).collect();
        // Call names are unique in a report: number them when there are several.
        if calls.len() > 1 || repeat > 1 {
            for (i, c) in calls.iter_mut().enumerate() {
                c.name = format!("{} #{}", c.name, i + 1);
            }
        }
        let summary = (repeat > 1).then(|| summary(runs, repeat, errors.len(), &calls));
        let pass = errors.is_empty() && !calls.is_empty() && calls.iter().all(|c| c.pass);
        Report { source: source.to_string(), pass, calls, errors, summary }
    }
}

fn candidate(c: &CandidateInfo) -> Candidate {
    Candidate {
        kind: c.candidate_type.clone(),
        really: (c.base_type != c.candidate_type).then(|| c.base_type.clone()),
        protocol: c.protocol.clone(),
        endpoint: c.endpoint(),
        family: c.family().map(str::to_string),
    }
}

fn pair(p: &SelectedPair, relayed_over: Option<String>) -> Pair {
    Pair { local: candidate(&p.local), remote: candidate(&p.remote), relayed_over }
}

impl Call {
    /// One call's report row, named by its pair.
    pub fn from_run(rep: &RunReport) -> Call {
        call(rep)
    }
}

fn call(rep: &RunReport) -> Call {
    let s = &rep.scenario;
    let setup = format!(
        "stun: {}, turn: {}, policy: {:?}",
        if s.stun.is_empty() { "-".to_string() } else { s.stun.join(", ") },
        match (&s.turn, &rep.relay_implementation) {
            (Some(t), Some(i)) => format!("{t} ({i})"),
            (Some(t), None) => t.clone(),
            (None, _) => "-".into(),
        },
        s.policy
    );
    let checks = rep
        .verdict
        .checks
        .iter()
        .map(|c| CheckRow {
            name: c.name.clone(),
            expected: c.expected.clone(),
            observed: c.observed.clone(),
            ok: c.ok,
        })
        .collect();
    let timings = rep
        .timings
        .fields()
        .into_iter()
        .filter_map(|(name, unit, v)| Some(CallTiming { name: name.into(), unit: unit.into(), value: v? }))
        .collect();
    let events = rep
        .events
        .iter()
        .map(|e| {
            let mut notes: Vec<String> = e.ice.iter().map(|l| format!("ice: {l}")).collect();
            notes.extend(e.ice_restarts.iter().map(|l| format!("ice restart: {l}")));
            if let Some(p) = &e.selected_pair {
                let changed = if e.pair_changed == Some(true) { " (changed)" } else { "" };
                notes.push(format!("pair after: {}{changed}", super::table::pair_text(&pair(p, None))));
            }
            EventRow {
                index: e.index,
                what: e.what.clone(),
                applied_ms: e.applied_ms,
                observed: e.observed(),
                stall_ms: e.stall_ms,
                notes,
            }
        })
        .collect();
    let stderr = if rep.outcome.ok() {
        vec![]
    } else {
        [("offerer", &rep.offerer_stderr), ("answerer", &rep.answerer_stderr)]
            .into_iter()
            .filter(|(_, t)| !t.trim().is_empty())
            .map(|(p, t)| PeerStderr { peer: p.into(), text: t.trim_end().to_string() })
            .collect()
    };
    Call {
        name: rep.pair.to_string(),
        lab: rep.lab.clone(),
        offerer: rep.pair.offerer.clone(),
        answerer: rep.pair.answerer.clone(),
        setup,
        outcome: scenario::describe_outcome(&rep.outcome),
        pair: rep.outcome.offerer.selected_pair.as_ref().map(|p| pair(p, scenario::relay_transport(&rep.outcome))),
        checks,
        pass: rep.verdict.pass,
        timings,
        events,
        stderr,
        kept: rep.kept,
        servers: rep
            .servers
            .iter()
            .map(|f| ServerRow {
                server: f.server.clone(),
                service: f.service.name().into(),
                implementation: f.implementation.name().into(),
                stats: f.stats.clone(),
                note: f.note.clone(),
            })
            .collect(),
    }
}

fn summary(runs: &[RunReport], repeat: u32, errors: usize, calls: &[Call]) -> Summary {
    let mut pairs: BTreeMap<String, usize> = BTreeMap::new();
    for c in calls {
        *pairs.entry(c.pair.as_ref().map_or("no pair".into(), Pair::short)).or_default() += 1;
    }
    let timings: Vec<_> = runs.iter().map(|r| r.timings.clone()).collect();
    Summary {
        repeat,
        passed: calls.iter().filter(|c| c.pass).count(),
        errors,
        selected_pairs: pairs.into_iter().collect(),
        timings: scenario::percentiles(&timings)
            .into_iter()
            .map(|p| TimingStat { name: p.name.into(), unit: p.unit.into(), count: p.count, p50: p.p50, p95: p.p95 })
            .collect(),
    }
}
