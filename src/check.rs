//! One judged line, what the file asked for beside what a run showed: the judge's
//! expectations, the timeline's events and the verify report all speak it.

use serde::Serialize;

/// One expectation and how it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// The `[expect]` key, e.g. `local`.
    pub name: String,
    /// What the file asks for.
    pub expected: String,
    /// What the run showed.
    pub observed: String,
    /// Whether it holds.
    pub ok: bool,
}
