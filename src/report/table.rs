//! The terminal rendering: what `icelab run` prints. Colour only when asked for and
//! `NO_COLOR` is unset ([`Style::from_env`]).

use std::fmt::Write;

use super::model::{Call, Candidate, Pair, Report, ServerRow, Summary};

/// Whether to colour PASS/FAIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// ANSI colours on.
    pub color: bool,
}

impl Style {
    /// Colour for a terminal unless `NO_COLOR` is set (<https://no-color.org>).
    pub fn from_env(is_terminal: bool, no_color: Option<&str>) -> Style {
        Style { color: is_terminal && no_color.is_none_or(str::is_empty) }
    }

    /// `text` in green (ok) or red, when colour is on.
    pub fn mark(self, ok: bool, text: &str) -> String {
        match (self.color, ok) {
            (false, _) => text.to_string(),
            (true, true) => format!("\x1b[32m{text}\x1b[0m"),
            (true, false) => format!("\x1b[31m{text}\x1b[0m"),
        }
    }
}

fn side(c: &Candidate) -> String {
    let real = c.really.as_ref().map_or(String::new(), |r| format!(" (really {r})"));
    format!("{}{real} {} {}", c.kind, c.protocol, c.endpoint)
}

/// `srflx udp 192.0.2.1:5000  <->  prflx udp ...  [relayed over udp]`.
pub fn pair_text(p: &Pair) -> String {
    let relay = p.relayed_over.as_ref().map_or(String::new(), |r| format!("  [relayed over {r}]"));
    format!("{}  <->  {}{relay}", side(&p.local), side(&p.remote))
}

/// The whole report: a summary over repeated runs, else a block per call.
pub fn render(r: &Report, style: Style) -> String {
    if let Some(s) = &r.summary {
        return summary(s, style);
    }
    r.calls.iter().map(|c| call(&r.source, c, style)).collect::<Vec<_>>().join("\n")
}

/// One call's block.
pub fn call(source: &str, c: &Call, style: Style) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "{source}: {} -> {} ({})", c.offerer, c.answerer, c.setup);
    let _ = writeln!(o, "outcome: {}", c.outcome);
    match &c.pair {
        Some(p) => _ = writeln!(o, "selected pair (offerer's view): {}", pair_text(p)),
        None => _ = writeln!(o, "selected pair: none"),
    }
    for t in &c.timings {
        let _ = writeln!(o, "  {:<20} {:>12.1} {}", t.name, t.value, t.unit);
    }
    for s in &c.servers {
        server(&mut o, s);
    }
    if !c.events.is_empty() {
        let _ = writeln!(o, "timeline (ms after the data channel opened):");
    }
    for e in &c.events {
        let at = e.applied_ms.map_or("   -".into(), |t| format!("{t:>6.0}"));
        let _ = writeln!(o, "  #{} @{at} ms  {:<36} {}", e.index, e.what, e.observed);
        if let Some(s) = e.stall_ms {
            let _ = writeln!(o, "        data stalled {s:.0} ms");
        }
        for n in &e.notes {
            let _ = writeln!(o, "        {n}");
        }
    }
    for k in &c.checks {
        let mark = style.mark(k.ok, if k.ok { "ok  " } else { "FAIL" });
        let _ = writeln!(o, "  {mark} {:<16} expected {}, observed {}", k.name, k.expected, k.observed);
    }
    if c.kept {
        let _ = writeln!(o, "lab {} kept; `icelab down {}` removes it", c.lab, c.lab);
    }
    if c.pass {
        let _ = writeln!(o, "{}", style.mark(true, "PASS"));
    }
    for k in c.checks.iter().filter(|k| !k.ok) {
        let fail = style.mark(false, "FAIL");
        let _ =
            writeln!(o, "{fail}: expectation `{}` failed: expected {}, observed {}", k.name, k.expected, k.observed);
    }
    o
}

/// `2 (refused 401 x2)`.
fn granted(n: u64, refused: &crate::servers::stats::Refusals) -> String {
    if refused.is_empty() {
        return n.to_string();
    }
    let r: Vec<String> = refused.iter().map(|(code, k)| format!("{code} x{k}")).collect();
    format!("{n} (refused {})", r.join(", "))
}

/// A server's own figures: what it answered, and what it relayed each way.
fn server(o: &mut String, r: &ServerRow) {
    let s = &r.stats;
    let _ = writeln!(o, "{} `{}` ({}), server-side:", r.service, r.server, r.implementation);
    if r.service == crate::servers::ServiceKind::Stun.name() {
        let _ = writeln!(o, "  STUN bindings {}", s.stun_bindings);
    } else {
        let _ = writeln!(
            o,
            "  allocations {}, permissions {}, channel binds {}, STUN bindings {}",
            granted(s.allocations, &s.allocations_refused),
            granted(s.permissions, &s.permissions_refused),
            granted(s.channel_binds, &s.channel_binds_refused),
            s.stun_bindings
        );
        for (way, f) in [("relayed to peers", s.to_peers), ("relayed from peers", s.from_peers)] {
            let _ = writeln!(o, "  {way:<20} {:>12} B in {} packets", f.bytes, f.packets);
        }
    }
    if r.implementation == crate::servers::Implementation::Coturn.name() {
        let _ = writeln!(o, "  answer latency not measured (coturn)");
    } else {
        let methods = crate::servers::latency::summarize(&s.answer_latency_us);
        let compact = crate::servers::latency::compact(&methods);
        let _ = writeln!(o, "  answer latency p50/p95/p99 ms (the server's own, network excluded): {compact}");
    }
    if s.unreported_allocations > 0 {
        let _ = writeln!(o, "  {} allocation(s) not in the byte counts (still open)", s.unreported_allocations);
    }
    if let Some(n) = &r.note {
        let _ = writeln!(o, "  note: {n}");
    }
}

/// One line per call, for progress over repeated runs.
pub fn one_line(c: &Call, style: Style) -> String {
    let t = |name: &str| c.timings.iter().find(|t| t.name == name).map_or("-".into(), |t| format!("{:.0}", t.value));
    let fails: String = c
        .checks
        .iter()
        .filter(|k| !k.ok)
        .map(|k| format!("\n    expectation `{}` failed: expected {}, observed {}", k.name, k.expected, k.observed))
        .collect();
    format!(
        "{} {} ice {} ms, open {} ms, total {} ms{fails}",
        style.mark(c.pass, if c.pass { "PASS" } else { "FAIL" }),
        c.pair.as_ref().map_or("no pair".into(), Pair::short),
        t("ice connected"),
        t("data channel open"),
        t("total"),
    )
}

fn summary(s: &Summary, style: Style) -> String {
    let mut o = String::new();
    let all = s.passed == s.repeat as usize;
    let head = format!("{}/{} calls passed ({:.0}%)", s.passed, s.repeat, 100.0 * s.passed as f64 / s.repeat as f64);
    let errors = if s.errors > 0 { format!(", {} could not run", s.errors) } else { String::new() };
    let _ = writeln!(o, "{}{errors}", style.mark(all, &head));
    let pairs: Vec<String> = s.selected_pairs.iter().map(|(p, n)| format!("{p} x{n}")).collect();
    let _ = writeln!(o, "selected pairs (local/remote): {}", pairs.join(", "));
    let _ = writeln!(o, "  {:<20} {:>10} {:>10} {:>5}", "timing", "p50", "p95", "n");
    for p in &s.timings {
        let _ = writeln!(o, "  {:<20} {:>10.1} {:>10.1} {:>5}  {}", p.name, p.p50, p.p95, p.count, p.unit);
    }
    o
}
