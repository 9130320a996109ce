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
pub use expect::{CellExpect, expect, expect_in};

use crate::report::Report;
use crate::scenario::PathClass;

/// Which configurations face which, under which impairments, with which peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatrixSpec {
    /// Offerer sides (rows).
    pub a: Vec<Config>,
    /// Answerer sides (columns).
    pub b: Vec<Config>,
    /// The A x B grid is run once per layer: an impairment preset × a peer kind.
    #[serde(default = "default_layers")]
    pub layers: Vec<Layer>,
    /// The SPEC's own expectations (`[[expect]]`), replacing the shipped table's where
    /// they match, in file order (the last match wins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<ExpectOverride>,
}

/// A SPEC's `[[expect]]`: what the cells it matches must show instead of the shipped
/// expectation (say, a stack of your own that connects a cell directly over ICE-TCP).
/// An absent selector matches every cell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectOverride {
    /// Side A's configuration.
    pub a: Option<Config>,
    /// Side B's configuration.
    pub b: Option<Config>,
    /// The layer's impairment.
    pub impair: Option<String>,
    /// The layer's peer kind.
    pub peer: Option<String>,
    /// Direct or relayed.
    pub path: PathClass,
    /// When relayed, the TURN transports that may carry it (empty: any).
    pub relay_transports: Vec<String>,
    /// Why, as the SPEC says; the report quotes it.
    pub why: String,
    /// Where it is written (`m.toml:3:1`).
    pub at: String,
}

impl ExpectOverride {
    fn matches(&self, layer: &Layer, a: Config, b: Config) -> bool {
        self.a.is_none_or(|x| x == a)
            && self.b.is_none_or(|x| x == b)
            && self.impair.as_ref().is_none_or(|x| *x == layer.impair)
            && self.peer.as_ref().is_none_or(|x| *x == layer.peer)
    }

    /// `shipped` with this override's verdict, saying where it came from.
    fn apply(&self, shipped: CellExpect) -> CellExpect {
        CellExpect {
            path: self.path,
            relay_transports: self.relay_transports.clone(),
            why: format!("{} (SPEC {})", self.why, self.at),
            ..shipped
        }
    }
}

fn default_layers() -> Vec<Layer> {
    vec![Layer::default()]
}

impl Default for MatrixSpec {
    /// libwebrtc's ten against themselves, unimpaired, built-in peers: 100 cells.
    fn default() -> Self {
        MatrixSpec { a: Config::ALL.to_vec(), b: Config::ALL.to_vec(), layers: default_layers(), overrides: Vec::new() }
    }
}

/// One run of the A x B grid: what impairs both hosts' links and which peers call.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Layer {
    /// An impairment preset on both hosts' uplinks (`none`: unimpaired).
    pub impair: String,
    /// The peer kind at both ends (`built-in`, `chromium`, `firefox`).
    pub peer: String,
}

impl Default for Layer {
    fn default() -> Self {
        Layer { impair: NO_IMPAIRMENT.into(), peer: "built-in".into() }
    }
}

/// The impairment axis's word for "unimpaired".
pub const NO_IMPAIRMENT: &str = "none";

impl Layer {
    /// Unimpaired, built-in peers: the default matrix.
    pub fn is_default(&self) -> bool {
        *self == Layer::default()
    }

    /// `lte, chromium`.
    pub fn label(&self) -> String {
        format!("impairment {}, {} peers", self.impair, self.peer)
    }
}

impl std::fmt::Display for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label())
    }
}

/// One cell: a layer, side A against side B in it, and what the cell must show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The layer.
    pub layer: Layer,
    /// Offerer's side.
    pub a: Config,
    /// Answerer's side.
    pub b: Config,
    /// The shipped expectation, or the SPEC's where it states one.
    pub expect: CellExpect,
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} x {}", self.a, self.b)?;
        if !self.layer.is_default() {
            write!(f, " ({})", self.layer)?;
        }
        Ok(())
    }
}

/// A SPEC file as written: `a = ["OPEN", "PORT"]`, `b = ["SYMM"]` (absent: all ten),
/// `impair = ["none", "lte"]`, `peers = ["built-in", "chromium"]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    a: Option<Vec<toml::Spanned<String>>>,
    b: Option<Vec<toml::Spanned<String>>>,
    impair: Option<Vec<toml::Spanned<String>>>,
    peers: Option<Vec<toml::Spanned<String>>>,
    #[serde(default)]
    expect: Vec<toml::Spanned<RawOverride>>,
}

/// `[[expect]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawOverride {
    a: Option<toml::Spanned<String>>,
    b: Option<toml::Spanned<String>>,
    impair: Option<toml::Spanned<String>>,
    peer: Option<toml::Spanned<String>>,
    path: PathClass,
    #[serde(default)]
    relay_transport: Vec<toml::Spanned<String>>,
    why: String,
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
        let config = |w: &toml::Spanned<String>| {
            Config::from_label(w.get_ref()).ok_or_else(|| {
                let all: Vec<&str> = Config::ALL.iter().map(|c| c.label()).collect();
                at(w.span().start, format!("unknown configuration `{}` (use {})", w.get_ref(), all.join(", ")))
            })
        };
        let side = |v: Option<Vec<toml::Spanned<String>>>| -> Result<Vec<Config>> {
            let Some(v) = v else { return Ok(Config::ALL.to_vec()) };
            if v.is_empty() {
                bail!("{file}: a side lists no configurations");
            }
            v.iter().map(config).collect()
        };
        // A word checked by `valid` (None: fine; Some: the error, located at the word).
        let checked = |w: &toml::Spanned<String>, valid: &dyn Fn(&str) -> Option<String>| match valid(w.get_ref()) {
            None => Ok(w.get_ref().clone()),
            Some(e) => Err(at(w.span().start, e)),
        };
        let axis = |v: Option<Vec<toml::Spanned<String>>>, fallback: &str, valid: &dyn Fn(&str) -> Option<String>| {
            let Some(v) = v else { return Ok(vec![fallback.to_string()]) };
            if v.is_empty() {
                bail!("{file}: an axis lists nothing");
            }
            v.iter().map(|w| checked(w, valid)).collect::<Result<Vec<String>>>()
        };
        let presets: Vec<&str> = crate::impair::presets::ALL.iter().map(|p| p.name()).collect();
        let valid_impair = |w: &str| {
            (w != NO_IMPAIRMENT && !presets.contains(&w))
                .then(|| format!("unknown impairment preset `{w}` (use {NO_IMPAIRMENT}, {})", presets.join(", ")))
        };
        let valid_peer = |w: &str| match crate::peer::PeerKind::from_name(w) {
            Ok(crate::peer::PeerKind::Command { .. }) => {
                Some("a matrix's peers are built-in, chromium or firefox".to_string())
            }
            Ok(_) => None,
            Err(e) => Some(e),
        };
        let impair = axis(raw.impair, NO_IMPAIRMENT, &valid_impair)?;
        let peers = axis(raw.peers, "built-in", &valid_peer)?;
        // A selector's word, checked like the axis it selects on.
        let word = |w: &Option<toml::Spanned<String>>, valid: &dyn Fn(&str) -> Option<String>| {
            w.as_ref().map(|w| checked(w, valid)).transpose()
        };
        let valid_transport = |t: &str| {
            (!["udp", "tcp", "tls"].contains(&t)).then(|| format!("unknown relay transport `{t}` (use udp, tcp, tls)"))
        };
        let mut overrides = Vec::new();
        for o in &raw.expect {
            let (span, r) = (o.span(), o.get_ref());
            let place = crate::diag::locate(file, src, span.start, String::new(), None);
            let relay_transports =
                r.relay_transport.iter().map(|t| checked(t, &valid_transport)).collect::<Result<Vec<_>>>()?;
            overrides.push(ExpectOverride {
                a: r.a.as_ref().map(config).transpose()?,
                b: r.b.as_ref().map(config).transpose()?,
                impair: word(&r.impair, &valid_impair)?,
                peer: word(&r.peer, &valid_peer)?,
                path: r.path,
                relay_transports,
                why: r.why.clone(),
                at: format!("{}:{}:{}", place.file, place.line, place.col),
            });
        }
        let layers = impair
            .iter()
            .flat_map(|i| peers.iter().map(move |p| Layer { impair: i.clone(), peer: p.clone() }))
            .collect();
        Ok(MatrixSpec { a: side(raw.a)?, b: side(raw.b)?, layers, overrides })
    }

    /// Every cell: layer by layer, rows first.
    pub fn cells(&self) -> Vec<Cell> {
        self.layers
            .iter()
            .flat_map(|l| self.a.iter().flat_map(move |a| self.b.iter().map(move |b| self.cell(l, *a, *b))))
            .collect()
    }

    /// The cell `a` x `b` in `layer`, with the SPEC's expectation where one matches.
    pub fn cell(&self, layer: &Layer, a: Config, b: Config) -> Cell {
        let shipped = expect_in(a, b, layer);
        let expect = match self.overrides.iter().rev().find(|o| o.matches(layer, a, b)) {
            Some(o) => o.apply(shipped),
            None => shipped,
        };
        Cell { layer: layer.clone(), a, b, expect }
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
/// TURN server on the internet, the layer's impairment on both hosts' links and its
/// peers, and the cell's expectation as `[expect]`.
pub fn cell_file(cell: &Cell) -> String {
    let Cell { layer, a, b, expect: e } = cell;
    let mut s = format!("description = \"matrix cell {cell}: {}\"\n\n", e.why.replace('"', "'"));
    let host = if layer.impair == NO_IMPAIRMENT { String::new() } else { format!("impair = \"{}\"\n", layer.impair) };
    s += &a.tables_with("a", "alice", 1, &host);
    s += &b.tables_with("b", "bob", 1, &host);
    s += "[server.stun]\nservices = [\"stun\"]\n\n[server.relay]\nservices = [\"turn\"]\n\n";
    s +=
        "[scenario]\nofferer = \"alice\"\nanswerer = \"bob\"\nstun = \"stun\"\nturn = \"relay\"\ndeadline-ms = 12000\n";
    if layer.peer != "built-in" {
        s += &format!("peer = \"{}\"\n", layer.peer);
    }
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

/// A cell's file stem: `port-symm`, `no-udp-http`, `port-symm-lte-chromium` (for
/// exported files and capture directories).
pub fn cell_stem(cell: &Cell) -> String {
    let word = |c: Config| c.label().replace('!', "no-").to_lowercase();
    let mut stem = format!("{}-{}", word(cell.a), word(cell.b));
    if !cell.layer.is_default() {
        stem += &format!("-{}-{}", cell.layer.impair, cell.layer.peer);
    }
    stem
}

/// One cell's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Offerer's side.
    pub a: Config,
    /// Answerer's side.
    pub b: Config,
    /// The layer (absent: unimpaired, built-in peers).
    #[serde(default, skip_serializing_if = "Layer::is_default")]
    pub layer: Layer,
    /// What it had to show.
    pub expect: CellExpect,
    /// The call, judged (absent when the cell could not be run).
    pub call: Option<crate::report::Call>,
    /// Why the cell could not be run.
    pub error: Option<String>,
    /// Runs it took (`--retries`): more than 1 marks a flaky cell, whatever the verdict.
    #[serde(default = "one")]
    pub attempts: u32,
    /// Where the cell's captures are (one pcap per link and `events.jsonl`): every cell's
    /// with `--capture`, and a failed cell's always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<String>,
}

fn one() -> u32 {
    1
}

impl CellResult {
    /// Which cell this is.
    pub fn cell(&self) -> Cell {
        Cell { layer: self.layer.clone(), a: self.a, b: self.b, expect: self.expect.clone() }
    }

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
            self.cells.iter().filter_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.cell()))).collect();
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
            if cells.iter().any(|x| x.cell() == c.cell()) {
                bail!("cell {} is in two reports (overlapping shards?)", c.cell());
            }
            cells.push(c);
        }
    }
    cells.sort_by_key(|c| order.iter().position(|x| *x == c.cell()));
    Ok(MatrixReport { spec, shard: None, cells, wall_s, jobs })
}
