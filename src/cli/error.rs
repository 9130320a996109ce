//! The one error type every command returns, its exit codes and its JSON shape.
//!
//! Exit codes (the whole contract, for every command):
//! - 0: ok
//! - 1: an expectation or check failed (the command ran and reported it)
//! - 2: bad input or usage (file, lab or node name, arguments)
//! - 3: could not run (environment, tool failure, own timeout, not root)
//!
//! With `--json`, an error is printed on stdout as
//! `{"error": {"kind": "bad-input", "message": "...", "diagnostics": [...]}}`, with a
//! `details` value next to `error` when the command has one (e.g. verify's checks).
//! The human form always goes to stderr.

use std::process::ExitCode;

use serde::Serialize;

/// Why a command did not succeed; decides the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Kind {
    /// An expectation or check failed: exit 1.
    Failed,
    /// Bad input or usage: exit 2.
    BadInput,
    /// The environment or a tool did not let the command run: exit 3.
    CouldNotRun,
}

impl Kind {
    /// The process exit code for this kind.
    pub(crate) fn code(self) -> u8 {
        match self {
            Kind::Failed => 1,
            Kind::BadInput => 2,
            Kind::CouldNotRun => 3,
        }
    }
}

/// One located mistake in an input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Diag {
    /// File name as given.
    pub file: String,
    /// 1-based line (0 when the whole file is meant).
    pub line: usize,
    /// 1-based column (0 when the whole file is meant).
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

/// A command's error.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct CliError {
    /// What kind of error (and so which exit code).
    pub kind: Kind,
    /// One line for a person.
    pub message: String,
    /// Located mistakes (bad input files only).
    pub diagnostics: Vec<Diag>,
    /// Command-specific data printed next to the error (JSON only).
    #[serde(skip)]
    pub details: Option<serde_json::Value>,
    /// Text already shown on stderr (diagnostics with source lines): don't repeat the message.
    #[serde(skip)]
    pub rendered: Option<String>,
}

impl CliError {
    fn new(kind: Kind, message: impl std::fmt::Display) -> Self {
        CliError { kind, message: message.to_string(), diagnostics: vec![], details: None, rendered: None }
    }

    /// An expectation or check failed.
    pub(crate) fn failed(message: impl std::fmt::Display) -> Self {
        Self::new(Kind::Failed, message)
    }

    /// Bad input or usage.
    pub(crate) fn bad_input(message: impl std::fmt::Display) -> Self {
        Self::new(Kind::BadInput, message)
    }

    /// Could not run.
    pub(crate) fn could_not_run(message: impl std::fmt::Display) -> Self {
        Self::new(Kind::CouldNotRun, message)
    }

    /// Attaches command-specific data for `--json`.
    pub(crate) fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    /// The `--json` form.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self });
        if let Some(d) = &self.details {
            v["details"] = d.clone();
        }
        v
    }

    /// Prints the error (stderr always, stdout as JSON with `json`) and gives the exit code.
    pub(crate) fn report(&self, json: bool) -> ExitCode {
        match &self.rendered {
            Some(text) => super::out::err(text),
            None => super::out::err(&format!("icelab: {}", self.message)),
        }
        if json {
            super::out::json(&self.to_json());
        }
        ExitCode::from(self.kind.code())
    }
}

impl From<icelab::spec::FileError> for CliError {
    fn from(e: icelab::spec::FileError) -> Self {
        let n = e.diagnostics.len();
        let first = e.diagnostics.first().map(|d| d.message.clone()).unwrap_or_default();
        let mut c = CliError::bad_input(if n == 1 { first } else { format!("{n} errors in the file; first: {first}") });
        c.diagnostics = e
            .diagnostics
            .iter()
            .map(|d| Diag {
                file: d.file.clone(),
                line: d.line,
                col: d.col,
                message: d.message.clone(),
                hint: d.hint.clone(),
            })
            .collect();
        c.rendered = Some(e.to_string());
        c
    }
}

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Everything held: exit 0.
    Ok,
    /// The command ran and printed its findings, and a check failed: exit 1, no error object.
    CheckFailed,
    /// A child's exit code, passed through (`icelab exec`).
    Code(u8),
}

impl From<Done> for ExitCode {
    fn from(d: Done) -> Self {
        match d {
            Done::Ok => ExitCode::SUCCESS,
            Done::CheckFailed => ExitCode::from(Kind::Failed.code()),
            Done::Code(c) => ExitCode::from(c),
        }
    }
}

/// What every command returns.
pub(crate) type CliResult = Result<Done, CliError>;

/// Error conversion with a kind, for `anyhow` results: `.or_kind(Kind::CouldNotRun)?`.
pub(crate) trait OrKind<T> {
    /// Maps the error to a [`CliError`] of this kind, keeping the whole context chain.
    fn or_kind(self, kind: Kind) -> Result<T, CliError>;
}

impl<T, E: Into<anyhow::Error>> OrKind<T> for Result<T, E> {
    fn or_kind(self, kind: Kind) -> Result<T, CliError> {
        self.map_err(|e| CliError::new(kind, format!("{:#}", e.into())))
    }
}
