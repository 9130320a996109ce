//! A load as one self-contained HTML page (inline style and SVG, no scripts, nothing
//! fetched): the summary, a chart of setup latency against the offered rate over time,
//! and the tables of the terminal summary.
//!
//! The chart answers "is call setup fast under load?" at a glance: per second of the
//! load, the calls offered (grey) and the channels opened (blue) on the left axis; each
//! call's setup from its arrival (a dot, red when it failed) and each second's p95
//! (orange line) on the right. Queueing shows as dots climbing while the bars stay level.

use std::fmt::Write;

use super::report::{LoadReport, Stat};
use crate::report::escape as e;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 300.0;
/// Plot area inside the axes' labels.
const LEFT: f64 = 50.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 35.0;

/// A round step for an axis up to `max` in about five ticks.
fn tick_step(max: f64) -> f64 {
    let raw = (max / 5.0).max(f64::MIN_POSITIVE);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw)
}

/// The axis's top: `max` rounded up to a step (at least one step).
fn axis_top(max: f64) -> (f64, f64) {
    let step = tick_step(max);
    (((max / step).ceil() * step).max(step), step)
}

/// The setup latency chart, an inline SVG.
fn chart(r: &LoadReport) -> String {
    let (pw, ph) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let seconds = r.per_second.len().max(1) as f64;
    let x = |t_s: f64| LEFT + pw * (t_s / seconds).clamp(0.0, 1.0);
    let rate_max = r.per_second.iter().map(|s| s.offered.max(s.opened)).max().unwrap_or(0).max(1) as f64;
    let (rate_top, rate_step) = axis_top(rate_max);
    let setups: Vec<(f64, f64, bool)> =
        r.samples.iter().filter_map(|s| Some((s.scheduled_ms / 1000.0, s.setup_from_arrival_ms()?, s.ok))).collect();
    let ms_max =
        setups.iter().map(|s| s.1).chain(r.per_second.iter().filter_map(|s| s.p95_setup_ms)).fold(1.0, f64::max);
    let (ms_top, ms_step) = axis_top(ms_max);
    let y_rate = |v: f64| TOP + ph * (1.0 - v / rate_top);
    let y_ms = |v: f64| TOP + ph * (1.0 - (v / ms_top).min(1.0));
    let mut o = format!(
        "<svg id=\"setup-chart\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" \
         aria-label=\"setup latency against offered rate over time\">\n"
    );
    let _ =
        writeln!(o, "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{pw}\" height=\"{ph}\" fill=\"#fafafa\" stroke=\"#999\"/>");
    // Left axis: calls/s; right axis: setup ms; bottom: seconds of the load.
    let mut v = 0.0;
    while v <= rate_top + 1e-9 {
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{v}</text>",
            LEFT - 6.0,
            y_rate(v) + 4.0
        );
        v += rate_step;
    }
    let mut v = 0.0;
    while v <= ms_top + 1e-9 {
        let y = y_ms(v);
        let _ =
            writeln!(o, "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/>", LEFT + pw);
        let _ = writeln!(o, "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">{v}</text>", LEFT + pw + 6.0, y + 4.0);
        v += ms_step;
    }
    let t_step = tick_step(seconds).max(1.0);
    let mut t = 0.0;
    while t <= seconds + 1e-9 {
        let _ = writeln!(
            o,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{t}</text>",
            x(t),
            TOP + ph + 16.0
        );
        t += t_step;
    }
    let _ = writeln!(
        o,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">seconds after the first arrival</text>",
        LEFT + pw / 2.0,
        HEIGHT - 4.0
    );
    let _ = writeln!(o, "<text x=\"4\" y=\"{:.1}\" class=\"axis\">calls/s</text>", TOP - 14.0);
    let _ = writeln!(o, "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\">setup ms</text>", LEFT + pw - 10.0, TOP - 14.0);
    // Per second: offered and opened side by side.
    let bar = pw / seconds / 2.0 * 0.8;
    for s in &r.per_second {
        let x0 = x(s.t_s as f64) + bar * 0.1;
        for (class, n, dx, fill) in [("offered", s.offered, 0.0, "#c8c8c8"), ("opened", s.opened, bar, "#6b9bd1")] {
            let y = y_rate(n as f64);
            let _ = writeln!(
                o,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>second {}: {n} {class}</title></rect>",
                x0 + dx,
                TOP + ph - y,
                s.t_s
            );
        }
    }
    // Each second's p95 setup, then every call's own.
    let p95: Vec<String> = r
        .per_second
        .iter()
        .filter_map(|s| Some(format!("{:.1},{:.1}", x(s.t_s as f64 + 0.5), y_ms(s.p95_setup_ms?))))
        .collect();
    if !p95.is_empty() {
        let _ = writeln!(
            o,
            "<polyline class=\"p95\" points=\"{}\" fill=\"none\" stroke=\"#e08a1e\" stroke-width=\"2\"/>",
            p95.join(" ")
        );
    }
    for (t_s, ms, ok) in setups {
        let (class, fill) = if ok { ("call ok", "#2a7a3b") } else { ("call fail", "#c0282d") };
        let _ = writeln!(
            o,
            "<circle class=\"{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\" fill=\"{fill}\"><title>arrived {t_s:.2} s: setup {ms:.0} ms</title></circle>",
            x(t_s),
            y_ms(ms)
        );
    }
    o.push_str("</svg>\n");
    o
}

fn stat_rows(o: &mut String, stats: &[Stat]) {
    for s in stats {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td></tr>",
            e(&s.name),
            s.count,
            s.p50,
            s.p95,
            s.p99
        );
    }
}

const STAT_HEAD: &str = "<tr><th>figure</th><th>calls</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>";

/// The page.
pub fn render(r: &LoadReport) -> String {
    let style = crate::report::html::STYLE;
    let mut o = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>icelab load: {}</title>\n\
         <style>{style}svg text.axis{{font-size:11px;fill:#555}}</style>\n</head>\n<body>\n",
        e(&r.source)
    );
    let _ = writeln!(o, "<h1>load {}</h1>", e(&r.source));
    let _ = writeln!(
        o,
        "<p id=\"summary\">{} calls: {} started, {} passed ({:.1} %) in {:.1} s, lab <code>{}</code> (up in {:.0} ms), \
         ICE profile {}. Setups/s offered {:.2} (arrived {:.2}), achieved {:.2}; concurrency cap {}, peak {}.</p>",
        r.calls,
        r.started,
        r.passed,
        r.success_rate * 100.0,
        r.wall_s,
        e(&r.lab),
        r.lab_up_ms,
        e(&r.ice_profile),
        r.offered_per_s,
        r.arrived_per_s,
        r.achieved_per_s,
        r.spec.concurrency,
        r.peak_concurrency
    );
    o.push_str("<h2>Setup latency against the offered rate</h2>\n");
    o.push_str(&chart(r));
    o.push_str(
        "<p>Bars: calls offered (grey) and channels opened (blue) per second, left axis. Dots: each call's \
         setup from its arrival to its channel open (red: failed), right axis; orange: each second's p95.</p>\n",
    );
    if !r.failures.is_empty() {
        o.push_str("<h2>Failures</h2>\n<table><tr><th>reason</th><th>calls</th></tr>\n");
        for (why, n) in &r.failures {
            let _ = writeln!(o, "<tr><td>{}</td><td class=\"num\">{n}</td></tr>", e(why));
        }
        o.push_str("</table>\n");
    }
    let _ = writeln!(o, "<h2>Setup</h2>\n<table>{STAT_HEAD}");
    stat_rows(&mut o, &r.setup);
    o.push_str("</table>\n");
    for g in &r.by_pair_type {
        let path = g.path.map_or("-", |p| p.as_str());
        let _ =
            writeln!(o, "<h3>selected pair {} ({path}), {} calls</h3>\n<table>{STAT_HEAD}", e(&g.pair_type), g.calls);
        stat_rows(&mut o, &g.stats);
        o.push_str("</table>\n");
    }
    if !r.phases.is_empty() {
        o.push_str(
            "<h2>Phases</h2>\n<p>Calls by arrival, cut where an event changed the lab; server answers by time.</p>\n",
        );
        for p in &r.phases {
            let at = if p.from_ms.is_nan() { "never".to_string() } else { format!("{:.1} s", p.from_ms / 1e3) };
            let err = p.error.as_ref().map_or(String::new(), |x| format!(" (failed: {x})"));
            let _ = writeln!(
                o,
                "<h3>from {at}: {}{}, {} calls, {} passed</h3>\n<table>{STAT_HEAD}",
                e(&p.cause),
                e(&err),
                p.calls,
                p.passed
            );
            stat_rows(&mut o, &p.stats);
            o.push_str("</table>\n");
            for l in &p.server_latencies {
                let methods = crate::servers::latency::compact(&l.methods);
                let _ = writeln!(
                    o,
                    "<p class=\"phase-latency\">server {} answers in this span (p50/p95/p99 ms): {}</p>",
                    e(&l.server),
                    e(&methods)
                );
            }
        }
    }
    if let Some(rs) = &r.relay_share {
        let _ = writeln!(
            o,
            "<h2>Relayed share</h2>\n<p>{:.1} % of connected calls relayed; the drawn pairs predict {:.1} %, the mix {:.1} %; \
             {} off the matrix.</p>\n<table><tr><th>A</th><th>B</th><th>calls</th><th>connected</th><th>relayed</th><th>matrix</th><th>off</th></tr>",
            rs.observed * 100.0,
            rs.predicted_by_pairs * 100.0,
            rs.predicted_by_mix * 100.0,
            rs.mismatched
        );
        for k in &rs.by_kinds {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
                e(k.a.label()),
                e(k.b.label()),
                k.calls,
                k.connected,
                k.relayed,
                k.expected.as_str(),
                k.mismatched
            );
        }
        o.push_str("</table>\n");
    }
    let t = &r.throughput;
    let per_call = t.per_call_bytes_per_sec.as_ref().map_or("-".into(), |p| format!("p50 {:.0} B/s", p.p50));
    let _ = writeln!(
        o,
        "<h2>Payload, servers, resources</h2>\n<ul><li>payload: {} B sent, {} B received ({} B relayed); per call {per_call}</li>\
         <li>server side: {}</li><li>CPU and memory: {}</li></ul>",
        t.bytes_sent,
        t.bytes_received,
        t.relayed_bytes_received,
        e(&r.server_side.note),
        e(&r.resources.note())
    );
    for rt in &r.server_side.rates {
        let _ = writeln!(
            o,
            "<h3>server {} over time</h3>\n<p>{}</p>\n<table class=\"server-rates\"><tr><th>from s</th><th>span s</th>\
             <th>answered/s</th><th>allocations/s</th><th>refused/s</th><th>relayed pkt/s</th><th>relayed B/s</th></tr>",
            e(&rt.server),
            e(&super::report::rates_line(rt))
        );
        for x in &rt.over_time {
            let _ = writeln!(
                o,
                "<tr><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td><td class=\"num\">{:.1}</td>\
                 <td class=\"num\">{:.1}</td><td class=\"num\">{:.0}</td><td class=\"num\">{:.0}</td></tr>",
                x.t_s,
                x.span_s,
                x.answered_per_s,
                x.allocations_per_s,
                x.refused_per_s,
                x.relayed_packets_per_s,
                x.relayed_bytes_per_s
            );
        }
        o.push_str("</table>\n");
    }
    for l in &r.server_side.latencies {
        let what = if l.measured {
            format!(
                "answer latency p50/p95/p99 ms ({}): {}",
                crate::servers::latency::LABEL,
                crate::servers::latency::compact(&l.methods)
            )
        } else {
            format!("latency not measured ({})", l.implementation.name())
        };
        let _ = writeln!(o, "<p class=\"server-latency\">server {}: {}</p>", e(&l.server), e(&what));
    }
    o.push_str("</body>\n</html>\n");
    o
}
