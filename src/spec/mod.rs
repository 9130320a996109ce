//! The file layer: one icelab file, parsed whole into a [`Spec`], every mistake
//! located (file:line:col, with a hint) in one list of diagnostics.
//!
//! A file holds a lab (`[router.*]`, `[host.*]`, `[server.*]`: the [`Topology`]) and
//! may hold a call in it (`[scenario]`), what the call must show (`[expect]`) and what
//! happens to the lab meanwhile (`[[event]]`). Each part is interpreted by its own
//! layer; this module only sends the tables there, in order, and joins what comes
//! back. It is the one module that knows all of them: the topology knows nothing of
//! calls, and the timeline nothing of the scenario.
//!
//! ```
//! let spec = icelab::spec::parse_str("lan.toml", r#"
//! [router.home]
//! wan = "internet"
//! [host.alice]
//! on = "home"
//! "#).unwrap();
//! assert_eq!(spec.topology.hosts[0].name, "alice");
//! assert!(spec.scenario.is_none());
//! ```

mod raw;
mod times;

use serde::Serialize;

pub use crate::diag::{Diagnostic, FileError};
use crate::diag::{Reporter, locate};
use crate::scenario::{Expect, Scenario};
use crate::timeline::TimelineEvent;
use crate::topology::Topology;

/// Everything one file says.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// The lab's network.
    pub topology: Topology,
    /// `[scenario]`: the call to place in the lab.
    pub scenario: Option<Scenario>,
    /// `[expect]`: what the call must show.
    pub expect: Option<Expect>,
    /// `[[event]]`s: what happens to the lab during the call, in time order.
    pub events: Vec<TimelineEvent>,
}

/// Parses and validates a file's text; `file` is used in messages only.
pub fn parse_str(file: &str, src: &str) -> Result<Spec, FileError> {
    let raw: raw::RawFile = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        let message = e.message().trim().to_string();
        let hint = syntax_hint(&message);
        FileError { diagnostics: vec![locate(file, src, offset, message, hint)] }
    })?;
    let mut rep = Reporter::new(file, src);
    let (network, rest) = raw.split();
    let Some(topology) = crate::topology::resolve(&mut rep, file, network) else {
        return Err(rep.finish().unwrap_err());
    };
    let (scenario, expect, events) = call(&mut rep, &topology, rest);
    rep.finish()?;
    Ok(Spec { topology, scenario, expect, events })
}

/// The call, its expectations and its events, checked against the lab.
fn call(
    rep: &mut Reporter,
    topo: &Topology,
    rest: raw::RawRest,
) -> (Option<Scenario>, Option<Expect>, Vec<TimelineEvent>) {
    let nodes = crate::scenario::Nodes {
        hosts: topo.hosts.iter().map(|h| h.name.as_str()).collect(),
        servers: topo.servers.iter().map(|s| (s.name.as_str(), s.services.iter().map(|x| x.kind).collect())).collect(),
    };
    let written = times::Written::of(rest.scenario.as_ref());
    let first_event = rest.event.first().map(|e| e.span());
    let (mut scenario, expect) = crate::scenario::interpret(rep, &nodes, rest.scenario, rest.expect);
    if let (Some(at), Some(scn)) = (first_event, &scenario)
        && scn.calls.len() > 1
    {
        // The timeline reads one pair of peers; with several, whose break would it judge?
        let hint = Some("give events a scenario of one call (offerer and answerer)".into());
        rep.error(at, format!("[[event]] with {} calls: events need a single call", scn.calls.len()), hint);
    }
    let events = interpret_events(rep, topo, rest.event, scenario.is_some(), &written.explicit());
    if let Some(scn) = scenario.as_mut() {
        times::stretch(rep, scn, &written, &events);
    }
    (scenario, expect, events)
}

/// The timeline's interpretation of `raw` events against the lab `topo`.
fn interpret_events(
    rep: &mut Reporter,
    topo: &Topology,
    raw: Vec<toml::Spanned<crate::timeline::spec::RawEvent>>,
    has_scenario: bool,
    times: &crate::timeline::spec::ExplicitTimes,
) -> Vec<TimelineEvent> {
    let kinds = crate::timeline::spec::NodeKinds {
        routers: topo.routers.iter().map(|r| (r.name.as_str(), r.nat)).collect(),
        hosts: topo.hosts.iter().map(|h| h.name.as_str()).collect(),
        servers: topo.servers.iter().map(|s| (s.name.as_str(), s.services.iter().map(|x| x.kind).collect())).collect(),
    };
    let interpreters = crate::timeline::spec::Interpreters {
        nat: &|rep, name, v| crate::topology::interpret_nat_value(rep, name, v),
        firewall: &|rep, v| crate::topology::interpret_firewall(rep, Some(v)),
        impair: &|rep, v| crate::topology::interpret_impair(rep, Some(v)),
    };
    crate::timeline::spec::interpret(rep, &kinds, &interpreters, raw, has_scenario, times)
}

/// The `[[event]]`s of a load file (`src`, shown as `file`) against the load's lab
/// `topo`: the same actions as a call's events, at `at-ms` after the load's first
/// arrival, and never judged (no `expect`, `max-recovery-ms` or `pair`: a load reads
/// their effect from its setup times). The file's other keys are the load's.
pub fn load_events(file: &str, src: &str, topo: &Topology) -> Result<Vec<TimelineEvent>, FileError> {
    #[derive(serde::Deserialize)]
    struct Events {
        #[serde(default)]
        event: Vec<toml::Spanned<crate::timeline::spec::RawEvent>>,
    }
    let raw: Events = toml::from_str(src).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        FileError { diagnostics: vec![locate(file, src, offset, e.message().trim().to_string(), None)] }
    })?;
    let mut rep = Reporter::new(file, src);
    for ev in &raw.event {
        if let Some(span) = ev.get_ref().judged_span() {
            let hint = Some("a load's events change the lab; their effect shows in the setup times per phase".into());
            rep.error(span, "a load's [[event]] is not judged", hint);
        }
    }
    let none = crate::timeline::spec::ExplicitTimes { data_ms: None, deadline_ms: None };
    let events = interpret_events(&mut rep, topo, raw.event, true, &none);
    rep.finish()?;
    Ok(events)
}

/// Parses and validates a file's raw bytes; text that is not UTF-8 is reported at the
/// line and column of its first bad byte.
pub fn parse_bytes(file: &str, bytes: &[u8]) -> Result<Spec, FileError> {
    match std::str::from_utf8(bytes) {
        Ok(src) => parse_str(file, src),
        Err(e) => {
            let at = e.valid_up_to();
            // Locate within the valid prefix: the bad byte sits right after it.
            let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let message = format!("invalid UTF-8 at byte offset {at} (byte 0x{:02x})", bytes[at]);
            let hint = Some("icelab files are UTF-8 text; re-save the file as UTF-8".to_string());
            Err(FileError { diagnostics: vec![locate(file, valid, at, message, hint)] })
        }
    }
}

/// Reads, parses and validates a file.
pub fn parse_file(path: &std::path::Path) -> Result<Spec, FileError> {
    let name = path.display().to_string();
    match std::fs::read(path) {
        Ok(bytes) => parse_bytes(&name, &bytes),
        Err(e) => Err(FileError {
            diagnostics: vec![Diagnostic {
                file: name,
                line: 0,
                col: 0,
                message: format!("cannot read file: {e}"),
                hint: None,
                source_line: String::new(),
            }],
        }),
    }
}

fn syntax_hint(message: &str) -> Option<String> {
    if message.contains("unknown field") {
        Some("see README.md, section 'Topology files', for the fields each table takes".into())
    } else if message.contains("invalid IPv4") || message.contains("invalid IP") {
        Some("write addresses as dotted quads, e.g. \"192.168.1.10\"".into())
    } else if message.contains("missing field") {
        Some("every router needs `wan`, every host needs `on`".into())
    } else {
        None
    }
}
