//! `icelab matrix [SPEC]`: every cell of the NAT matrix in a lab of its own, `--jobs`
//! labs at a time, judged against the shipped expectations; and `icelab merge`, which
//! joins shard reports. Ctrl-C drops every running cell, which tears its lab down.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures::StreamExt;
use icelab::matrix::{self, CellResult, MatrixReport, MatrixSpec, Shard};
use icelab::report::{self, table::Style};

use super::Interrupts;
use super::error::{CliError, CliResult, Done};
use super::out;

pub(crate) use super::args::MatrixOutputs as Outputs;

fn load_spec(spec_file: Option<&Path>) -> Result<MatrixSpec, CliError> {
    let Some(p) = spec_file else { return Ok(MatrixSpec::default()) };
    let text = std::fs::read_to_string(p)
        .map_err(|e| CliError::bad_input(format!("{}: cannot read file: {e}", p.display())))?;
    MatrixSpec::parse(&p.display().to_string(), &text).map_err(|e| CliError::bad_input(format!("{e:#}")))
}

/// `icelab matrix --export DIR`: every cell's file, to run or edit by hand.
pub(crate) fn export(spec_file: Option<&Path>, dir: &Path) -> CliResult {
    let spec = load_spec(spec_file)?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::could_not_run(format!("{}: {e}", dir.display())))?;
    for cell in spec.cells() {
        let path = dir.join(format!("{}.toml", matrix::cell_stem(&cell)));
        std::fs::write(&path, matrix::cell_file(&cell))
            .map_err(|e| CliError::could_not_run(format!("writing {}: {e}", path.display())))?;
    }
    out::outln!("wrote {} cell files to {}", spec.cells().len(), dir.display());
    Ok(Done::Ok)
}

/// `icelab matrix`.
pub(crate) async fn matrix(
    spec_file: Option<&Path>,
    jobs: Option<usize>,
    shard: Option<&str>,
    (verify, retries): (bool, u32),
    capture: Option<&Path>,
    outputs: Outputs,
) -> CliResult {
    let spec = load_spec(spec_file)?;
    let run = icelab::call::RunOptions { keep: false, verify, capture: None };
    let shard = shard.map(Shard::parse).transpose().map_err(|e| CliError::bad_input(format!("{e:#}")))?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        return Err(CliError::bad_input("--jobs must be at least 1"));
    }
    // Every cell's file goes through the file layer before any lab is built.
    let mut cells = Vec::new();
    for (k, cell) in spec.cells().into_iter().enumerate() {
        if shard.is_some_and(|s| !s.holds(k)) {
            continue;
        }
        let name = format!("matrix {cell}");
        let parsed = icelab::spec::parse_str(&name, &matrix::cell_file(&cell))
            .map_err(|e| CliError::could_not_run(format!("the generated file of {name} is wrong (a bug):\n{e}")))?;
        cells.push((k, cell, parsed));
    }
    super::require_root()?;
    let interrupted = Interrupts::install()?.wait();
    tokio::pin!(interrupted);
    let bar = super::progress_bar(cells.len() as u64, "cells");
    let tag = format!("{:04x}", rand::random::<u16>());
    let start = Instant::now();
    // Every cell is captured; a passing cell's files go unless `--capture` asked for them.
    let scratch = std::env::temp_dir().join(format!("icelab-matrix-{tag}"));
    let captures = capture.map_or(scratch.clone(), Path::to_path_buf);
    let runs = futures::stream::iter(cells.into_iter().map(|(k, cell, spec)| {
        let name = format!("mx{tag}{k:03}");
        let dir = captures.join(matrix::cell_stem(&cell));
        let run = icelab::call::RunOptions { capture: Some(dir.clone()), ..run.clone() };
        async move {
            let mut attempts = 0;
            loop {
                attempts += 1;
                // A retry's capture replaces the failed try's.
                let _ = std::fs::remove_dir_all(&dir);
                let r = icelab::call::run_scenario(&spec, &name, run.clone(), |_, _| {}).await;
                let mut result = CellResult { attempts, ..cell_result(&cell, r) };
                if result.pass() || attempts > retries {
                    if result.pass() && capture.is_none() {
                        let _ = std::fs::remove_dir_all(&dir);
                    } else if dir.exists() {
                        result.capture = Some(dir.display().to_string());
                    }
                    break result;
                }
            }
        }
    }))
    .buffer_unordered(jobs);
    tokio::pin!(runs);
    let mut done = Vec::new();
    loop {
        tokio::select! {
            next = runs.next() => match next {
                Some(c) => {
                    done.push(c);
                    let passed = done.iter().filter(|c| c.pass()).count();
                    bar.set_message(format!("{passed} passed, {} failed", done.len() - passed));
                    bar.inc(1);
                }
                None => break,
            },
            s = &mut interrupted => {
                bar.abandon();
                return Err(CliError::could_not_run(format!("interrupted by {s}; every cell's lab was torn down")));
            }
        }
    }
    bar.finish_and_clear();
    // Left only when a failed cell's captures are in it.
    let _ = std::fs::remove_dir(&scratch);
    let order = spec.cells();
    done.sort_by_key(|c| order.iter().position(|x| *x == c.cell()));
    let r = MatrixReport { spec, shard, cells: done, wall_s: start.elapsed().as_secs_f64(), jobs };
    emit(&r, &outputs)
}

/// `icelab merge FILE...`: shard reports (their `--json`) joined into one.
pub(crate) fn merge(files: &[PathBuf], outputs: Outputs) -> CliResult {
    let mut parts = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .map_err(|e| CliError::bad_input(format!("{}: cannot read file: {e}", f.display())))?;
        let part: MatrixReport = serde_json::from_str(&text)
            .map_err(|e| CliError::bad_input(format!("{}: not a matrix report: {e}", f.display())))?;
        parts.push(part);
    }
    let r = matrix::merge(parts).map_err(|e| CliError::bad_input(format!("{e:#}")))?;
    emit(&r, &outputs)
}

fn cell_result(cell: &matrix::Cell, r: anyhow::Result<Vec<icelab::call::RunReport>>) -> CellResult {
    let matrix::Cell { layer, a, b, expect } = cell.clone();
    let (call, error) = match r {
        Ok(reps) => {
            (reps.first().map(|rep| report::Call { name: cell.to_string(), ..report::Call::from_run(rep) }), None)
        }
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    CellResult { a, b, layer, expect, call, error, attempts: 1, capture: None }
}

fn emit(r: &MatrixReport, o: &Outputs) -> CliResult {
    let files = [(&o.junit, report::junit::render(&r.calls_report("matrix"))), (&o.html, matrix::html::render(r))];
    for (path, text) in files {
        if let Some(p) = path {
            std::fs::write(p, text).map_err(|e| CliError::could_not_run(format!("writing {}: {e}", p.display())))?;
        }
    }
    if o.json {
        out::json(r);
    } else if o.markdown {
        out::text(&matrix::grid::markdown(r));
    } else {
        let style = Style::from_env(std::io::stdout().is_terminal(), std::env::var("NO_COLOR").ok().as_deref());
        out::text(&matrix::grid::render(r, style));
    }
    let failed_captures: Vec<&str> =
        r.cells.iter().filter(|c| !c.pass()).filter_map(|c| c.capture.as_deref()).collect();
    if let Some(first) = failed_captures.first() {
        let dir = Path::new(first).parent().unwrap_or(Path::new(first));
        out::errln!(
            "captures of the failed cells ({}; a pcap per link, events.jsonl): {}",
            failed_captures.len(),
            dir.display()
        );
    }
    if r.cells.iter().any(|c| c.call.as_ref().is_some_and(|k| !k.pass)) {
        return Ok(Done::CheckFailed);
    }
    if let Some(c) = r.cells.iter().find(|c| c.error.is_some()) {
        let n = r.cells.iter().filter(|c| c.error.is_some()).count();
        return Err(CliError::could_not_run(format!(
            "{n} cells could not be run; first: {}: {}",
            c.cell(),
            c.error.as_deref().unwrap_or_default()
        )));
    }
    Ok(Done::Ok)
}
