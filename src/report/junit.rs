//! JUnit XML: one testsuite per report, one testcase per call, one failure per failed
//! check; runs that could not be done are testcases with an error.

use std::fmt::Write;

use super::escape as e;
use super::model::Report;

/// The report as a JUnit XML document.
pub fn render(r: &Report) -> String {
    let failed_cases = r.calls.iter().filter(|c| !c.pass).count();
    let seconds = |c: &super::Call| c.timings.iter().find(|t| t.name == "total").map_or(0.0, |t| t.value / 1e3);
    let total: f64 = r.calls.iter().map(seconds).sum();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuites name=\"icelab\" tests=\"{}\" failures=\"{failed_cases}\" errors=\"{}\" time=\"{total:.3}\">",
        r.calls.len() + r.errors.len(),
        r.errors.len()
    );
    let _ = writeln!(
        o,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed_cases}\" errors=\"{}\" time=\"{total:.3}\">",
        e(&r.source),
        r.calls.len() + r.errors.len(),
        r.errors.len()
    );
    for c in &r.calls {
        let _ = writeln!(
            o,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\">",
            e(&r.source),
            e(&c.name),
            seconds(c)
        );
        for k in c.checks.iter().filter(|k| !k.ok) {
            let msg = format!("expectation `{}` failed: expected {}, observed {}", k.name, k.expected, k.observed);
            let _ = writeln!(o, "      <failure message=\"{}\" type=\"{}\">{}</failure>", e(&msg), e(&k.name), e(&msg));
        }
        let mut out = format!("outcome: {}\n", c.outcome);
        if let Some(p) = &c.pair {
            let _ = writeln!(out, "selected pair: {}", super::table::pair_text(p));
        }
        for k in &c.checks {
            let _ = writeln!(
                out,
                "{} {}: expected {}, observed {}",
                if k.ok { "ok" } else { "FAIL" },
                k.name,
                k.expected,
                k.observed
            );
        }
        let _ = writeln!(o, "      <system-out>{}</system-out>", e(&out));
        if !c.stderr.is_empty() {
            let text: Vec<String> = c.stderr.iter().map(|s| format!("--- {} ---\n{}", s.peer, s.text)).collect();
            let _ = writeln!(o, "      <system-err>{}</system-err>", e(&text.join("\n")));
        }
        let _ = writeln!(o, "    </testcase>");
    }
    for (i, err) in r.errors.iter().enumerate() {
        let _ = writeln!(
            o,
            "    <testcase classname=\"{}\" name=\"could not run #{}\" time=\"0.000\">",
            e(&r.source),
            i + 1
        );
        let _ = writeln!(o, "      <error message=\"{}\" type=\"could-not-run\"/>", e(err));
        let _ = writeln!(o, "    </testcase>");
    }
    o.push_str("  </testsuite>\n</testsuites>\n");
    o
}
