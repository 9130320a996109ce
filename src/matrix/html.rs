//! The matrix as one self-contained HTML page: inline style, no scripts, nothing fetched.
//! A heatmap of ICE time per cell (rows: the offerer's side), then per cell a timeline
//! chart (inline SVG) of gathering, first check, ICE, DTLS and channel open.

use std::fmt::Write;

use super::{CellResult, MatrixReport};
use crate::report::escape as e;

/// Milestones drawn on a cell's timeline, in order, with their colours.
const MILESTONES: [(&str, &str); 5] = [
    ("gathering", "#8ab"),
    ("first check ok", "#5a8"),
    ("ice connected", "#3a5"),
    ("dtls connected", "#c93"),
    ("data channel open", "#a5c"),
];

/// Background of a cell: green at 0 ms to red at 3 s of ICE; grey when it failed.
fn heat(c: &CellResult) -> String {
    match (c.pass(), c.ice_ms()) {
        (true, Some(ms)) => format!("hsl({:.0}, 70%, 72%)", 120.0 * (1.0 - (ms / 3000.0).clamp(0.0, 1.0))),
        _ => "#bbb".into(),
    }
}

fn timing(c: &CellResult, name: &str) -> Option<f64> {
    c.call.as_ref()?.timings.iter().find(|t| t.name == name).map(|t| t.value)
}

fn timeline(c: &CellResult) -> String {
    let end = MILESTONES.iter().filter_map(|(n, _)| timing(c, n)).fold(1.0f64, f64::max);
    let mut svg = String::from("<svg class=\"timeline\" width=\"420\" height=\"20\" role=\"img\">");
    for (name, color) in MILESTONES {
        if let Some(ms) = timing(c, name) {
            let x = 400.0 * ms / end;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"2\" width=\"4\" height=\"16\" fill=\"{color}\"><title>{name}: {ms:.0} ms</title></rect>"
            );
        }
    }
    svg + "</svg>"
}

/// The page.
pub fn render(r: &MatrixReport) -> String {
    let passed = r.cells.iter().filter(|c| c.pass()).count();
    let mut o = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>icelab NAT matrix</title>\n<style>\
         body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}\
         td,th{border:1px solid #888;padding:4px 6px;font-size:12px;text-align:center}\
         td.fail{outline:2px solid #c00}.legend rect{stroke:none}</style></head><body>\n",
    );
    let _ = writeln!(
        o,
        "<h1>NAT matrix</h1>\n<p id=\"tally\">{passed}/{} cells met the expectations; {} labs at a time, {:.1} s.</p>",
        r.cells.len(),
        r.jobs,
        r.wall_s
    );
    for (n, (layer, heading)) in super::grid::layers(r).enumerate() {
        if let Some(h) = heading {
            let _ = writeln!(o, "<h2>{}</h2>", e(&h));
        }
        let id = if n == 0 { "heatmap".to_string() } else { format!("heatmap-{}", n + 1) };
        heatmap(&mut o, r, layer, &id);
    }
    o += "<h2>Timelines</h2>\n<p class=\"legend\">";
    for (name, color) in MILESTONES {
        let _ = write!(o, "<span style=\"color:{color}\">&#9632;</span> {} &nbsp; ", e(name));
    }
    o += "</p>\n<table id=\"timelines\">\n";
    for c in &r.cells {
        let verdict = if c.pass() { "pass" } else { "FAIL" };
        let _ = writeln!(
            o,
            "<tr><th>{}</th><td>{verdict}</td><td>{}</td><td>{}</td></tr>",
            e(&c.cell().to_string()),
            timeline(c),
            e(c.error.as_deref().unwrap_or(&c.expect.why))
        );
    }
    o + "</table>\n</body></html>\n"
}

/// One layer's heatmap: rows the offerer's side, columns the answerer's.
fn heatmap(o: &mut String, r: &MatrixReport, layer: &super::Layer, id: &str) {
    let _ = write!(o, "<table class=\"heatmap\" id=\"{id}\">\n<tr><th>A \\ B</th>");
    for b in &r.spec.b {
        let _ = write!(o, "<th>{}</th>", e(b.label()));
    }
    *o += "</tr>\n";
    for a in &r.spec.a {
        let _ = write!(o, "<tr><th>{}</th>", e(a.label()));
        for b in &r.spec.b {
            match super::grid::find(r, layer, *a, *b) {
                None => *o += "<td class=\"absent\">-</td>",
                Some(c) => {
                    let pair = c.call.as_ref().and_then(|k| k.pair.as_ref()).map_or("no pair".into(), |p| p.short());
                    let ice = c.ice_ms().map_or("-".into(), |v| format!("{v:.0} ms"));
                    let _ = write!(
                        o,
                        "<td class=\"cell {}\" style=\"background:{}\" title=\"{} x {}: {}\">{}<br>{}</td>",
                        if c.pass() { "pass" } else { "fail" },
                        heat(c),
                        e(a.label()),
                        e(b.label()),
                        e(&c.expect.why),
                        e(&pair),
                        e(&ice)
                    );
                }
            }
        }
        *o += "</tr>\n";
    }
    *o += "</table>\n";
}
