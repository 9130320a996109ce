//! The NAT matrix: side A's configurations × side B's, each cell a lab of its own built
//! from a generated icelab file, a call placed in it, and the call judged against the
//! shipped expectations ([`expect`]).
//!
//! Pure: the configurations ([`config`]), the cell files, the expectations, sharding,
//! merging and the renderings ([`grid`]). The CLI runs the cells.

pub mod config;
pub mod expect;
pub mod grid;
pub mod html;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

pub use config::Config;
pub use expect::{CellExpect, expect};

use crate::report::Report;

/// Which configurations face which.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixSpec {
    /// Offerer sides (rows).
    pub a: Vec<Config>,
    /// Answerer sides (columns).
    pub b: Vec<Config>,
}

impl Default for MatrixSpec {
    /// libwebrtc's ten against themselves: 100 cells.
    fn default() -> Self {
        MatrixSpec { a: Config::ALL.to_vec(), b: Config::ALL.to_vec() }
    }
}

/// A SPEC file as written: `a = ["OPEN", "PORT"]`, `b = ["SYMM"]` (absent: all ten).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    a: Option<Vec<toml::Spanned<String>>>,
    b: Option<Vec<toml::Spanned<String>>>,
}

impl MatrixSpec {
    /// Reads a SPEC file's text; errors name file:line:col.
    pub fn parse(file: &str, src: &str) -> Result<MatrixSpec> {
        // Located like every icelab file's mistakes (file:line:col), by the same diagnostics.
        let at = |offset: usize, message: String| {
            let d = crate::diag::locate(file, src, offset, message, None);
            anyhow::anyhow!("{}:{}:{}: {}", d.file, d.line, d.col, d.message)
        };
        let raw: RawSpec =
            toml::from_str(src).map_err(|e| at(e.span().map_or(0, |s| s.start), e.message().trim().to_string()))?;
        let side = |v: Option<Vec<toml::Spanned<String>>>| -> Result<Vec<Config>> {
            let Some(v) = v else { return Ok(Config::ALL.to_vec()) };
            if v.is_empty() {
                bail!("{file}: a side lists no configurations");
            }
            v.iter()
                .map(|w| {
                    Config::from_label(w.get_ref()).ok_or_else(|| {
                        let all: Vec<&str> = Config::ALL.iter().map(|c| c.label()).collect();
                        at(w.span().start, format!("unknown configuration `{}` (use {})", w.get_ref(), all.join(", ")))
                    })
                })
                .collect()
        };
        Ok(MatrixSpec { a: side(raw.a)?, b: side(raw.b)? })
    }

    /// Every cell, rows first.
    pub fn cells(&self) -> Vec<(Config, Config)> {
        self.a.iter().flat_map(|a| self.b.iter().map(move |b| (*a, *b))).collect()
    }
}

/// `i/n`: this runner's share of the cells (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which share, 1..=n.
    pub index: u32,
    /// How many shares.
    pub count: u32,
}

impl Shard {
    /// Reads `i/n`.
    pub fn parse(s: &str) -> Result<Shard> {
        let (i, n) = s.split_once('/').ok_or_else(|| anyhow::anyhow!("--shard takes i/n, got `{s}`"))?;
        let (index, count): (u32, u32) = (i.trim().parse()?, n.trim().parse()?);
        if count == 0 || index == 0 || index > count {
            bail!("--shard {s}: need 1 <= i <= n");
        }
        Ok(Shard { index, count })
    }

    /// Whether cell number `k` (in [`MatrixSpec::cells`] order) is this shard's: every
    /// n-th, so shards get an even mix of slow (relayed) and fast cells.
    pub fn holds(self, k: usize) -> bool {
        k % self.count as usize == (self.index - 1) as usize
    }
}

/// The icelab file of one cell: `alice` behind `a`, `bob` behind `b`, a STUN and a
/// TURN server on the internet, and the cell's expectation as `[expect]`.
pub fn cell_file(a: Config, b: Config) -> String {
    let e = expect(a, b);
    let mut s = format!("description = \"matrix cell {a} x {b}: {}\"\n\n", e.why.replace('"', "'"));
    s += &a.tables("a", "alice");
    s += &b.tables("b", "bob");
    s += "[server.stun]\nservices = [\"stun\"]\n\n[server.relay]\nservices = [\"turn\"]\n\n";
    s +=
        "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nstun = \"stun\"\nturn = \"relay\"\ndeadline-ms = 12000\n";
    // Media-like data, not a flood: the matrix asks which path wins, not its capacity,
    // and a flood through a TCP relay shared by parallel labs can outlast the deadline.
    s += "data-rate-kbps = 500\n\n";
    s += &format!("[expect]\noutcome = \"connected\"\npath = \"{}\"\n", e.path.as_str());
    if !e.relay_transports.is_empty() {
        let list: Vec<String> = e.relay_transports.iter().map(|t| format!("\"{t}\"")).collect();
        s += &format!("relay-transport = [{}]\n", list.join(", "));
    }
    s
}

/// One cell's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Offerer's side.
    pub a: Config,
    /// Answerer's side.
    pub b: Config,
    /// What it had to show.
    pub expect: CellExpect,
    /// The call, judged (absent when the cell could not be run).
    pub call: Option<crate::report::Call>,
    /// Why the cell could not be run.
    pub error: Option<String>,
    /// Runs it took (`--retries`): more than 1 marks a flaky cell, whatever the verdict.
    #[serde(default = "one")]
    pub attempts: u32,
}

fn one() -> u32 {
    1
}

impl CellResult {
    /// The cell met its expectation.
    pub fn pass(&self) -> bool {
        self.call.as_ref().is_some_and(|c| c.pass)
    }

    /// ICE connected, ms after the offer.
    pub fn ice_ms(&self) -> Option<f64> {
        self.call.as_ref()?.timings.iter().find(|t| t.name == "ice connected").map(|t| t.value)
    }
}

/// A matrix run (or a shard of one, or several merged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    /// The configurations.
    pub spec: MatrixSpec,
    /// The shard this report covers; `None`: all cells.
    pub shard: Option<Shard>,
    /// Cells run, in [`MatrixSpec::cells`] order.
    pub cells: Vec<CellResult>,
    /// Wall time of the run, seconds (merged: the longest shard's).
    pub wall_s: f64,
    /// Labs run at once.
    pub jobs: usize,
}

impl MatrixReport {
    /// Every cell met its expectation, and every cell of the spec is here.
    pub fn pass(&self) -> bool {
        self.cells.iter().all(CellResult::pass)
    }

    /// The calls as a report (for JUnit and HTML): one call per cell.
    pub fn calls_report(&self, source: &str) -> Report {
        let calls: Vec<_> = self.cells.iter().filter_map(|c| c.call.clone()).collect();
        let errors: Vec<String> =
            self.cells.iter().filter_map(|c| c.error.as_ref().map(|e| format!("{} x {}: {e}", c.a, c.b))).collect();
        let pass = errors.is_empty() && !calls.is_empty() && calls.iter().all(|c| c.pass);
        Report { source: source.into(), pass, calls, errors, summary: None }
    }
}

/// Joins shard reports of one spec into one report, cells in spec order. The shards
/// must not overlap.
pub fn merge(parts: Vec<MatrixReport>) -> Result<MatrixReport> {
    let Some(first) = parts.first() else { bail!("nothing to merge") };
    let spec = first.spec.clone();
    let order = spec.cells();
    let mut cells: Vec<CellResult> = Vec::new();
    let (mut wall_s, mut jobs) = (0.0f64, 0);
    for p in parts {
        if p.spec != spec {
            bail!("the reports are of different matrices");
        }
        wall_s = wall_s.max(p.wall_s);
        jobs = jobs.max(p.jobs);
        for c in p.cells {
            if cells.iter().any(|x| (x.a, x.b) == (c.a, c.b)) {
                bail!("cell {} x {} is in two reports (overlapping shards?)", c.a, c.b);
            }
            cells.push(c);
        }
    }
    cells.sort_by_key(|c| order.iter().position(|x| *x == (c.a, c.b)));
    Ok(MatrixReport { spec, shard: None, cells, wall_s, jobs })
}
