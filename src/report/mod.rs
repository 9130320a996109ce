//! Reports: what a run (or a series of runs) showed, as a model of N calls, and its
//! renderers: a terminal table, JSON, JUnit XML and a self-contained HTML page.
//!
//! Pure: the model is built from [`crate::call::RunReport`]s ([`Report::from_runs`])
//! and every renderer returns a `String`; the CLI decides where it goes.

mod build;
pub mod html;
pub mod junit;
mod model;
pub mod resources;
pub mod table;

pub use model::{
    Call, CallTiming, Candidate, CheckRow, EventRow, Pair, PeerStderr, Report, ServerRow, Summary, TimingStat,
};

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Escapes text for XML and HTML (element text and quoted attributes).
/// Escapes text for XML and HTML.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}
