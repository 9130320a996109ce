//! The verify report: expected vs observed per node, line by line (pure), as JSON
//! (serde) and as a terminal table.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

use super::derive::{Expectation, NatPlan, ProbeServerSpec, VerifyPlan};
use super::nat::{self, NatExpect};
use crate::stun::ProbeReport;

/// How one line came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Observed what the file says.
    AsDeclared,
    /// Observed something else.
    Mismatch,
    /// Not judged (nothing to probe from, or the model cannot tell); not a failure.
    NotChecked,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::AsDeclared => "ok",
            Status::Mismatch => "MISMATCH",
            Status::NotChecked => "not checked",
        }
    }
}

/// One expected-vs-observed line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// What is checked, e.g. `mapping` or `udp 3478 out (STUN/TURN)`.
    pub what: String,
    /// What the file says.
    pub expected: String,
    /// What the probe saw.
    pub observed: String,
    /// Verdict.
    pub status: Status,
    /// Why that is expected (or why it is not checked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What a firewall probe saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FwObservation {
    /// It got through (and back).
    pub pass: bool,
    /// How, e.g. `answered in 0.4 ms` or `no answer within 1.5 s`.
    pub detail: String,
}

/// The NAT part of a node's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NatReport {
    /// What the probe had to see.
    pub expected: NatExpect,
    /// Where it ran.
    pub vantage: Option<String>,
    /// STUN server it used.
    pub server: Option<SocketAddr>,
    /// True when that was the temporary probe server.
    pub own_server: bool,
    /// Lines.
    pub lines: Vec<Line>,
    /// The full probe report.
    pub observed: Option<ProbeReport>,
}

/// The firewall part of a node's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FirewallReport {
    /// Presets and rules as written.
    pub declared: String,
    /// Where outbound probes went from.
    pub vantage: Option<String>,
    /// One line per probe.
    pub lines: Vec<Line>,
    /// What is not probed, and why.
    pub notes: Vec<String>,
}

/// Everything verified about one node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    /// Node name.
    pub node: String,
    /// Its NAT (routers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat: Option<NatReport>,
    /// Its firewall.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall: Option<FirewallReport>,
}

/// The whole proof of one lab.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    /// Lab name.
    pub lab: String,
    /// True when nothing mismatched.
    pub ok: bool,
    /// Lines as declared.
    pub as_declared: usize,
    /// Lines that mismatched.
    pub mismatches: usize,
    /// Lines not checked.
    pub not_checked: usize,
    /// The temporary probe server, when one was used (it is gone again).
    pub probe_server: Option<ProbeServerSpec>,
    /// Per node, in file order.
    pub nodes: Vec<NodeReport>,
    /// Remarks on the whole lab.
    pub notes: Vec<String>,
    /// Wall time of the checks.
    pub elapsed_ms: f64,
}

/// The outcome of one NAT probe: its report, or why it failed.
pub type NatObservation = Result<ProbeReport, String>;

fn summary(e: &NatExpect) -> String {
    match e {
        NatExpect::Transparent => "no translation".into(),
        NatExpect::Translates { mapping, filtering, .. } => format!("{mapping} / {filtering}"),
    }
}

fn nat_report(p: &NatPlan, obs: Option<&NatObservation>) -> NatReport {
    let mut r = NatReport {
        expected: p.expect,
        vantage: p.vantage.clone(),
        server: p.server,
        own_server: p.own_server,
        lines: Vec::new(),
        observed: None,
    };
    let not_checked = |why: String| Line {
        what: "nat".into(),
        expected: summary(&p.expect),
        observed: "-".into(),
        status: Status::NotChecked,
        why: Some(why),
    };
    match (obs, &p.note) {
        (_, Some(note)) => r.lines.push(not_checked(note.clone())),
        (None, None) => r.lines.push(not_checked("not probed".into())),
        (Some(Err(e)), None) => r.lines.push(Line {
            what: "STUN server answers".into(),
            expected: "yes".into(),
            observed: format!("no: {e}"),
            status: Status::Mismatch,
            why: None,
        }),
        (Some(Ok(rep)), None) => {
            let filtering = p.filtering.clone().unwrap_or_else(|| Err("not derived".into()));
            r.lines = nat::judge(&p.expect, filtering, rep);
            r.observed = Some(rep.clone());
        }
    }
    if let (Some(first), Some(v), Some(s)) = (r.lines.first_mut(), &p.vantage, p.server) {
        let whose = if p.own_server { "probe server" } else { "the lab's STUN server" };
        first.why.get_or_insert(format!("probed from {v} against {s} ({whose})"));
    }
    r
}

fn fw_line(what: &str, e: &Expectation, o: Option<&FwObservation>) -> Line {
    let word = |b: bool| if b { "pass" } else { "drop" };
    let expected = e.pass.map_or("unknown", word).to_string();
    let (observed, status) = match (o, e.pass) {
        (None, _) => ("-".to_string(), Status::NotChecked),
        (Some(o), None) => (format!("{} ({})", word(o.pass), o.detail), Status::NotChecked),
        (Some(o), Some(p)) => {
            let s = if o.pass == p { Status::AsDeclared } else { Status::Mismatch };
            (format!("{} ({})", word(o.pass), o.detail), s)
        }
    };
    Line { what: what.into(), expected, observed, status, why: (e.why != "allowed").then(|| e.why.clone()) }
}

/// Compares observations with the plan. `nat_obs[i]` belongs to `vp.nats[i]` (None: not
/// run); `fw_obs[i][j]` to probe j of `vp.firewalls[i]`.
pub fn assemble(
    lab: &str,
    vp: &VerifyPlan,
    nat_obs: &[Option<NatObservation>],
    fw_obs: &[Vec<Option<FwObservation>>],
    elapsed_ms: f64,
) -> VerifyReport {
    let mut nodes: Vec<NodeReport> = Vec::new();
    let mut node = |name: &str| -> usize {
        if let Some(i) = nodes.iter().position(|n| n.node == name) {
            return i;
        }
        nodes.push(NodeReport { node: name.into(), nat: None, firewall: None });
        nodes.len() - 1
    };
    let mut nat_parts = Vec::new();
    for (i, p) in vp.nats.iter().enumerate() {
        nat_parts.push((node(&p.router), nat_report(p, nat_obs.get(i).and_then(|o| o.as_ref()))));
    }
    let mut fw_parts = Vec::new();
    for (i, f) in vp.firewalls.iter().enumerate() {
        let obs = fw_obs.get(i);
        let mut lines: Vec<Line> = f
            .probes
            .iter()
            .enumerate()
            .map(|(j, p)| fw_line(&p.what, &p.expected, obs.and_then(|o| o.get(j)).and_then(|o| o.as_ref())))
            .collect();
        if lines.is_empty() {
            lines.push(Line {
                what: "firewall".into(),
                expected: f.declared.clone(),
                observed: "-".into(),
                status: Status::NotChecked,
                why: f.notes.last().cloned(),
            });
        }
        let rep =
            FirewallReport { declared: f.declared.clone(), vantage: f.vantage.clone(), lines, notes: f.notes.clone() };
        fw_parts.push((node(&f.node), rep));
    }
    for (i, r) in nat_parts {
        nodes[i].nat = Some(r);
    }
    for (i, r) in fw_parts {
        nodes[i].firewall = Some(r);
    }
    let all = nodes.iter().flat_map(|n| {
        n.nat.iter().flat_map(|r| &r.lines).chain(n.firewall.iter().flat_map(|r| &r.lines)).map(|l| l.status)
    });
    let (mut ok, mut bad, mut skip) = (0, 0, 0);
    for s in all {
        match s {
            Status::AsDeclared => ok += 1,
            Status::Mismatch => bad += 1,
            Status::NotChecked => skip += 1,
        }
    }
    VerifyReport {
        lab: lab.into(),
        ok: bad == 0,
        as_declared: ok,
        mismatches: bad,
        not_checked: skip,
        probe_server: vp.probe_server.clone(),
        nodes,
        notes: vp.notes.clone(),
        elapsed_ms,
    }
}

impl VerifyReport {
    /// Every line with its node and section (`nat` or `firewall`), in report order.
    pub fn rows(&self) -> Vec<(&str, &'static str, &Line)> {
        let mut v = Vec::new();
        for n in &self.nodes {
            for l in n.nat.iter().flat_map(|r| &r.lines) {
                v.push((n.node.as_str(), "nat", l));
            }
            for l in n.firewall.iter().flat_map(|r| &r.lines) {
                v.push((n.node.as_str(), "firewall", l));
            }
        }
        v
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match &self.probe_server {
            Some(s) => format!("; probe server {} and {}, removed", s.addresses[0], s.addresses[1]),
            None => String::new(),
        };
        writeln!(
            f,
            "lab {}: {} as declared, {} mismatched, {} not checked ({:.1} s{server})",
            self.lab,
            self.as_declared,
            self.mismatches,
            self.not_checked,
            self.elapsed_ms / 1e3
        )?;
        let rows = self.rows();
        let head = ("NODE", "CHECK", "EXPECTED", "OBSERVED", "RESULT");
        let checks: Vec<String> = rows
            .iter()
            .map(|(_, s, l)| if l.what == *s { l.what.clone() } else { format!("{s} {}", l.what) })
            .collect();
        let w = |f: &dyn Fn(usize) -> usize, h: &str| (0..rows.len()).map(f).chain([h.len()]).max().unwrap_or(0);
        let w0 = w(&|i| rows[i].0.len(), head.0);
        let w1 = w(&|i| checks[i].len(), head.1);
        let w2 = w(&|i| rows[i].2.expected.len(), head.2);
        let w3 = w(&|i| rows[i].2.observed.len(), head.3);
        if !rows.is_empty() {
            writeln!(f, "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}  WHY", head.0, head.1, head.2, head.3, head.4)?;
        }
        for (i, (node, _, l)) in rows.iter().enumerate() {
            let why = l.why.as_deref().unwrap_or("");
            let line = format!(
                "{node:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {:<6}  {why}",
                checks[i],
                l.expected,
                l.observed,
                l.status.word()
            );
            writeln!(f, "{}", line.trim_end())?;
        }
        for n in &self.nodes {
            for note in n.firewall.iter().flat_map(|r| &r.notes) {
                writeln!(f, "note: {}: {note}", n.node)?;
            }
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        Ok(())
    }
}

/// The plan as text, one line per check: what must be observed and why (for snapshots
/// and `--dry-run`-like inspection).
pub fn render_plan(vp: &VerifyPlan) -> String {
    let mut s = String::new();
    if let Some(ps) = &vp.probe_server {
        s += &format!(
            "probe server {} {}: stun grids {:?}, udp {:?}, tcp {:?}{}\n",
            ps.addresses[0],
            ps.addresses[1],
            ps.grids,
            ps.udp,
            ps.tcp,
            ps.callback.map(|p| format!(", tcp call-back {p}")).unwrap_or_default()
        );
    }
    for n in &vp.nats {
        let e = match n.expect {
            NatExpect::Transparent => "no translation".into(),
            NatExpect::Translates { mapping, hairpinning, timeout_s, .. } => {
                let f = match &n.filtering {
                    Some(Ok(f)) => f.to_string(),
                    Some(Err(w)) => format!("unknown ({w})"),
                    None => "-".into(),
                };
                format!("mapping {mapping}, filtering {f}, hairpinning {hairpinning:?}, timeout {timeout_s:?}")
            }
        };
        let at = match (&n.vantage, n.server, &n.note) {
            (Some(v), Some(sv), _) => format!("from {v} via {sv}{}", if n.own_server { " (probe server)" } else { "" }),
            (_, _, Some(note)) => format!("not checked: {note}"),
            _ => "not checked".into(),
        };
        s += &format!("nat {}: {e}; {at}\n", n.router);
    }
    for fw in &vp.firewalls {
        s += &format!("firewall {} [{}] from {}\n", fw.node, fw.declared, fw.vantage.as_deref().unwrap_or("-"));
        for p in &fw.probes {
            let e = p.expected.pass.map_or("unknown", |b| if b { "pass" } else { "drop" });
            s += &format!(
                "  {:<58} {e:<7} {}\n",
                p.what,
                if p.expected.why == "allowed" { "" } else { &p.expected.why }
            );
        }
        for n in &fw.notes {
            s += &format!("  note: {n}\n");
        }
    }
    for n in &vp.notes {
        s += &format!("note: {n}\n");
    }
    s.lines().map(|l| l.trim_end().to_string() + "\n").collect()
}
