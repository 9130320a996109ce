//! A self-contained HTML page (inline style, no scripts, nothing fetched): a table of
//! checks, timings and events per call.

use std::fmt::Write;

use super::escape as e;
use super::model::{Call, Report};

/// The pages' shared style (the load report adds to it).
pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}\
th{background:#f3f3f3}.ok{color:#176f2c;font-weight:bold}.fail{color:#b00020;font-weight:bold}\
td.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f7f7f7;padding:.5em;overflow:auto}";

fn verdict(ok: bool) -> &'static str {
    if ok { "<span class=\"ok\">PASS</span>" } else { "<span class=\"fail\">FAIL</span>" }
}

/// The report as one HTML document.
pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>icelab: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        e(&r.source)
    );
    let passed = r.calls.iter().filter(|c| c.pass).count();
    let _ = writeln!(o, "<h1>{} {}</h1>", e(&r.source), verdict(r.pass));
    let _ = writeln!(o, "<p>{passed}/{} calls passed; {} could not run.</p>", r.calls.len(), r.errors.len());
    if let Some(s) = &r.summary {
        let _ = writeln!(
            o,
            "<h2>Summary over {} calls</h2>\n<table>\n<tr><th>timing</th><th>p50</th><th>p95</th><th>n</th><th>unit</th></tr>",
            s.repeat
        );
        for t in &s.timings {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                e(&t.name),
                t.p50,
                t.p95,
                t.count,
                e(&t.unit)
            );
        }
        let pairs: Vec<String> = s.selected_pairs.iter().map(|(p, n)| format!("{} x{n}", e(p))).collect();
        let _ = writeln!(o, "</table>\n<p>selected pairs (local/remote): {}</p>", pairs.join(", "));
    }
    for c in &r.calls {
        call(&mut o, c);
    }
    if !r.errors.is_empty() {
        let _ = writeln!(o, "<h2>Runs that could not be done</h2>\n<ul>");
        for err in &r.errors {
            let _ = writeln!(o, "<li>{}</li>", e(err));
        }
        let _ = writeln!(o, "</ul>");
    }
    o.push_str("</body>\n</html>\n");
    o
}

fn call(o: &mut String, c: &Call) {
    let _ = writeln!(o, "<h2>{} {}</h2>", e(&c.name), verdict(c.pass));
    let _ = writeln!(o, "<p>lab {}; {}<br>outcome: {}", e(&c.lab), e(&c.setup), e(&c.outcome));
    match &c.pair {
        Some(p) => _ = writeln!(o, "<br>selected pair (offerer's view): {}</p>", e(&super::table::pair_text(p))),
        None => _ = writeln!(o, "<br>selected pair: none</p>"),
    }
    let _ = writeln!(o, "<table>\n<tr><th>check</th><th>expected</th><th>observed</th><th></th></tr>");
    for k in &c.checks {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(&k.name),
            e(&k.expected),
            e(&k.observed),
            verdict(k.ok)
        );
    }
    let _ = writeln!(o, "</table>\n<table>\n<tr><th>timing</th><th>value</th><th>unit</th></tr>");
    for t in &c.timings {
        let _ =
            writeln!(o, "<tr><td>{}</td><td class=\"num\">{:.1}</td><td>{}</td></tr>", e(&t.name), t.value, e(&t.unit));
    }
    let _ = writeln!(o, "</table>");
    if !c.events.is_empty() {
        let _ = writeln!(
            o,
            "<table>\n<tr><th>#</th><th>applied (ms)</th><th>event</th><th>observed</th><th>stall (ms)</th><th>notes</th></tr>"
        );
        for ev in &c.events {
            let num = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
            let notes: Vec<String> = ev.notes.iter().map(|n| e(n)).collect();
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                ev.index,
                num(ev.applied_ms),
                e(&ev.what),
                e(&ev.observed),
                num(ev.stall_ms),
                notes.join("<br>")
            );
        }
        let _ = writeln!(o, "</table>");
    }
    for s in &c.stderr {
        let _ = writeln!(o, "<p>{} stderr (tail):</p>\n<pre>{}</pre>", e(&s.peer), e(&s.text));
    }
}
