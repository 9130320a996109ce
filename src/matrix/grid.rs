//! Renderings of a matrix report: the terminal grid, Markdown, and the per-cell list.
//! Each cell shows the selected pair with its transport (`host/srflx udp`, or the relay's
//! transport) and the median ICE time; rows are the offerer's side.

use std::fmt::Write;

use super::{CellResult, Config, Layer, MatrixReport};
use crate::report::table::Style;

const WIDTH: usize = 23;

/// What a cell shows: `host/srflx udp 520ms`, `FAIL ...`, `error`, or `-` (not run here).
fn cell_text(c: Option<&CellResult>) -> (String, Option<bool>) {
    let Some(c) = c else { return ("-".into(), None) };
    let Some(call) = &c.call else { return ("error".into(), Some(false)) };
    let pair = call.pair.as_ref().map_or("no pair".into(), |p| {
        let transport = p.relayed_over.clone().unwrap_or_else(|| p.local.protocol.clone());
        format!("{} {transport}", p.short())
    });
    let ice = c.ice_ms().map_or(String::new(), |v| format!(" {v:.0}ms"));
    let retried = if c.attempts > 1 { format!(" (try {})", c.attempts) } else { String::new() };
    let text = if c.pass() { format!("{pair}{ice}{retried}") } else { format!("FAIL {pair}") };
    (text, Some(c.pass()))
}

pub(super) fn find<'a>(r: &'a MatrixReport, layer: &Layer, a: Config, b: Config) -> Option<&'a CellResult> {
    r.cells.iter().find(|c| (c.a, c.b) == (a, b) && c.layer == *layer)
}

/// The layers to draw, each with its heading (none when the matrix has one layer).
pub(super) fn layers(r: &MatrixReport) -> impl Iterator<Item = (&Layer, Option<String>)> {
    let many = r.spec.layers.len() > 1;
    r.spec.layers.iter().map(move |l| (l, many.then(|| l.label())))
}

fn tally(r: &MatrixReport) -> String {
    let passed = r.cells.iter().filter(|c| c.pass()).count();
    let first = r.cells.iter().filter(|c| c.pass() && c.attempts == 1).count();
    let relayed = r.cells.iter().filter(|c| c.expect.path == crate::scenario::PathClass::Relayed).count();
    let retried = if first == passed { String::new() } else { format!(", {first} on the first try") };
    format!(
        "{passed}/{} cells met the expectations{retried} ({relayed} expected relayed); {} labs at a time, {:.1} s",
        r.cells.len(),
        r.jobs,
        r.wall_s
    )
}

/// The terminal grid (one per layer).
pub fn render(r: &MatrixReport, style: Style) -> String {
    let mut o = String::new();
    for (layer, heading) in layers(r) {
        if let Some(h) = heading {
            let _ = writeln!(o, "{h}:");
        }
        let _ = write!(o, "{:<6}", "A\\B");
        for b in &r.spec.b {
            let _ = write!(o, " {:<WIDTH$}", b.label());
        }
        o.push('\n');
        for a in &r.spec.a {
            let _ = write!(o, "{:<6}", a.label());
            for b in &r.spec.b {
                let (text, ok) = cell_text(find(r, layer, *a, *b));
                let padded = format!("{text:<WIDTH$}");
                let _ = write!(o, " {}", ok.map_or(padded.clone(), |ok| style.mark(ok, &padded)));
            }
            o.push('\n');
        }
    }
    let _ = writeln!(o, "{}", tally(r));
    for c in r.cells.iter().filter(|c| c.pass() && c.attempts > 1) {
        let _ = writeln!(o, "  {}: flaky, passed on try {}", c.cell(), c.attempts);
    }
    for c in r.cells.iter().filter(|c| !c.pass()) {
        let why = c.error.clone().unwrap_or_else(|| {
            let failed: Vec<String> = c
                .call
                .iter()
                .flat_map(|k| &k.checks)
                .filter(|k| !k.ok)
                .map(|k| format!("{}: expected {}, observed {}", k.name, k.expected, k.observed))
                .collect();
            failed.join("; ")
        });
        let _ = writeln!(o, "  {}: {why}", c.cell());
    }
    o
}

/// A Markdown table, and the cells where icelab's real stacks differ from libwebrtc's.
pub fn markdown(r: &MatrixReport) -> String {
    let mut o = String::new();
    for (layer, heading) in layers(r) {
        if let Some(h) = heading {
            let _ = writeln!(o, "### {h}\n");
        }
        o += "| A \\ B |";
        for b in &r.spec.b {
            let _ = write!(o, " {} |", b.label());
        }
        o += "\n|---|";
        o += &"---|".repeat(r.spec.b.len());
        o.push('\n');
        for a in &r.spec.a {
            let _ = write!(o, "| **{}** |", a.label());
            for b in &r.spec.b {
                let (text, ok) = cell_text(find(r, layer, *a, *b));
                let mark = match ok {
                    Some(true) => "✅ ",
                    Some(false) => "❌ ",
                    None => "",
                };
                let _ = write!(o, " {mark}{} |", text.replace('|', "\\|"));
            }
            o.push('\n');
        }
        o.push('\n');
    }
    let _ = writeln!(o, "{}\n", tally(r));
    let differs: Vec<&CellResult> = r.cells.iter().filter(|c| c.expect.differs.is_some()).collect();
    if !differs.is_empty() {
        o += "| cell | expected | libwebrtc | why it differs |\n|---|---|---|---|\n";
        for c in differs {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                c.cell(),
                c.expect.path.as_str(),
                c.expect.libwebrtc,
                c.expect.differs.as_deref().unwrap_or_default()
            );
        }
    }
    o
}
