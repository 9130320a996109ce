//! Custom firewall rule lines, modelled as far as a probe can be derived from them.
//!
//! Understood matches: `meta l4proto`, `ip protocol`, `udp|tcp|th dport|sport`,
//! `ip saddr|daddr`, `ct state` (values, `{ sets }`, `a,b` lists, `N-M` ranges, `!=`);
//! statements `counter` and `log`; verdicts `drop`, `reject`, `accept`, `return`,
//! `continue`. Anything else makes the rule "not modelled": a packet it might match
//! gets an unknown expectation instead of a guess.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::model::{Packet, Proto};

/// The kernel's default ephemeral port range: where clients' source ports come from.
const EPHEMERAL: (u16, u16) = (32768, 60999);

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleVerdict {
    /// `drop` or `reject`: the packet is blocked.
    Block,
    /// `accept`: the packet passes (no later rule sees it).
    Accept,
    /// `return`: leaves the custom chain; the base chain's policy (accept) applies.
    Return,
    /// No verdict (only `counter`/`log`) or `continue`: the next rule decides.
    Continue,
}

#[derive(Debug, Clone, PartialEq)]
enum Clause {
    /// Transport protocol in the set (`None`: another protocol).
    Proto(Vec<Option<Proto>>, bool),
    /// Port match; `proto` is implied by `udp`/`tcp`, absent for `th`.
    Port { proto: Option<Proto>, dst: bool, ranges: Vec<(u16, u16)>, neg: bool },
    /// Address match.
    Addr { dst: bool, nets: Vec<Ipv4Net>, neg: bool },
    /// Connection tracking state; true = `new`.
    CtState { new: bool, established: bool, neg: bool },
}

/// One custom rule line, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    text: String,
    clauses: Vec<Clause>,
    /// First token that is not modelled, if any.
    unknown: Option<String>,
    verdict: Option<RuleVerdict>,
}

/// Does a rule match a packet?
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleMatch {
    /// Certainly not.
    No,
    /// Certainly.
    Yes,
    /// Cannot tell; why.
    Maybe(String),
}

fn tokens(rule: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in rule.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if quoted => cur.push(c),
            '{' | '}' | ',' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A value: `x`, `x,y`, or `{ x, y }`; None when it is not well formed.
fn values(t: &[String], i: &mut usize) -> Option<Vec<String>> {
    let mut v = Vec::new();
    if t.get(*i).map(String::as_str) == Some("{") {
        *i += 1;
        loop {
            let tok = t.get(*i)?.clone();
            *i += 1;
            match tok.as_str() {
                "}" => break,
                "," => continue,
                _ => v.push(tok),
            }
        }
    } else {
        v.push(t.get(*i)?.clone());
        *i += 1;
        while t.get(*i).map(String::as_str) == Some(",") {
            v.push(t.get(*i + 1)?.clone());
            *i += 2;
        }
    }
    (!v.is_empty()).then_some(v)
}

fn neg(t: &[String], i: &mut usize) -> bool {
    let n = t.get(*i).map(String::as_str) == Some("!=");
    if n {
        *i += 1;
    }
    n
}

fn proto_of(s: &str) -> Option<Proto> {
    match s {
        "udp" => Some(Proto::Udp),
        "tcp" => Some(Proto::Tcp),
        _ => None,
    }
}

fn port_range(s: &str) -> Option<(u16, u16)> {
    match s.split_once('-') {
        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
        None => s.parse().ok().map(|p| (p, p)),
    }
}

/// Parses one clause starting at `t[*i]`; None when it is not modelled.
fn clause(t: &[String], i: &mut usize) -> Option<Clause> {
    let (a, b) = (t.get(*i)?.as_str(), t.get(*i + 1).map(String::as_str));
    *i += 2;
    match (a, b?) {
        ("meta", "l4proto") | ("ip", "protocol") => {
            let n = neg(t, i);
            Some(Clause::Proto(values(t, i)?.iter().map(|s| proto_of(s)).collect(), n))
        }
        ("udp" | "tcp" | "th", dir @ ("dport" | "sport")) => {
            let n = neg(t, i);
            let ranges = values(t, i)?.iter().map(|s| port_range(s)).collect::<Option<Vec<_>>>()?;
            Some(Clause::Port { proto: proto_of(a), dst: dir == "dport", ranges, neg: n })
        }
        ("ip", dir @ ("saddr" | "daddr")) => {
            let n = neg(t, i);
            let nets = values(t, i)?
                .iter()
                .map(|s| s.parse::<Ipv4Net>().ok().or_else(|| s.parse::<Ipv4Addr>().ok().map(Ipv4Net::from)))
                .collect::<Option<Vec<_>>>()?;
            Some(Clause::Addr { dst: dir == "daddr", nets, neg: n })
        }
        ("ct", "state") => {
            let n = neg(t, i);
            let (mut new, mut established) = (false, false);
            for s in values(t, i)? {
                match s.as_str() {
                    "new" => new = true,
                    "established" => established = true,
                    // Probe packets are never related, invalid or untracked.
                    "related" | "invalid" | "untracked" => {}
                    _ => return None,
                }
            }
            Some(Clause::CtState { new, established, neg: n })
        }
        _ => None,
    }
}

/// Parses a rule line (never fails: what is not understood is recorded).
pub fn parse(rule: &str) -> Rule {
    let t = tokens(rule);
    let mut r = Rule { text: rule.trim().to_string(), clauses: Vec::new(), unknown: None, verdict: None };
    let mut i = 0;
    while i < t.len() {
        let verdict = match t[i].as_str() {
            "drop" => Some(RuleVerdict::Block),
            // `reject with ...` is still a block, whatever it answers.
            "reject" => {
                r.verdict = Some(RuleVerdict::Block);
                return r;
            }
            "accept" => Some(RuleVerdict::Accept),
            "return" => Some(RuleVerdict::Return),
            "continue" => Some(RuleVerdict::Continue),
            _ => None,
        };
        if let Some(v) = verdict {
            r.verdict = Some(v);
            if i + 1 != t.len() {
                r.unknown = Some(t[i + 1].clone());
            }
            return r;
        }
        match t[i].as_str() {
            "counter" => {
                i += 1;
                while matches!(t.get(i).map(String::as_str), Some("packets" | "bytes")) {
                    i += 2;
                }
                continue;
            }
            "log" => {
                i += 1;
                if t.get(i).map(String::as_str) == Some("prefix") {
                    i += 2;
                }
                continue;
            }
            _ => {}
        }
        let start = i;
        match clause(&t, &mut i) {
            Some(c) => r.clauses.push(c),
            None => {
                r.unknown = Some(t[start].clone());
                // The verdict still counts: a rule that can only continue changes nothing.
                r.verdict = t.last().and_then(|l| match l.as_str() {
                    "drop" | "reject" => Some(RuleVerdict::Block),
                    "accept" => Some(RuleVerdict::Accept),
                    "return" => Some(RuleVerdict::Return),
                    "continue" | "counter" => Some(RuleVerdict::Continue),
                    _ => None,
                });
                return r;
            }
        }
    }
    r.verdict = Some(RuleVerdict::Continue);
    r
}

/// Whether a port set matches a packet port; port 0 is "some ephemeral port".
fn port_match(ranges: &[(u16, u16)], port: u16) -> Option<bool> {
    if port == 0 {
        let overlaps = ranges.iter().any(|(a, b)| *a <= EPHEMERAL.1 && *b >= EPHEMERAL.0);
        return if overlaps { None } else { Some(false) };
    }
    Some(ranges.iter().any(|(a, b)| (*a..=*b).contains(&port)))
}

impl Rule {
    /// The rule as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What it does when it matches; None when its verdict is not modelled.
    pub fn verdict(&self) -> Option<RuleVerdict> {
        self.verdict
    }

    /// True when every part of the rule is modelled.
    pub fn modelled(&self) -> bool {
        self.unknown.is_none() && self.verdict.is_some()
    }

    /// Does the rule match `p`?
    pub fn matches(&self, p: &Packet) -> RuleMatch {
        let mut maybe = None;
        for c in &self.clauses {
            let m = match c {
                Clause::Proto(set, n) => Some(set.contains(&Some(p.proto)) != *n),
                Clause::Port { proto, dst, ranges, neg } => {
                    if proto.is_some_and(|q| q != p.proto) {
                        Some(false)
                    } else {
                        port_match(ranges, if *dst { p.dport } else { p.sport }).map(|m| m != *neg)
                    }
                }
                Clause::Addr { dst, nets, neg } => {
                    let a = if *dst { p.dst } else { p.src };
                    Some(nets.iter().any(|n| n.contains(&a)) != *neg)
                }
                Clause::CtState { new, established, neg } => Some((if p.new { *new } else { *established }) != *neg),
            };
            match m {
                Some(false) => return RuleMatch::No,
                Some(true) => {}
                None => maybe = Some(format!("rule `{}`: source port of a client socket", self.text)),
            }
        }
        if let Some(u) = &self.unknown {
            return RuleMatch::Maybe(format!("rule `{}`: `{u}` is not modelled", self.text));
        }
        maybe.map_or(RuleMatch::Yes, RuleMatch::Maybe)
    }

    /// A probe that exercises the rule: (protocol, port) of an outbound connection whose
    /// request (destination port) or reply (source port) the rule matches. None when
    /// the rule names no transport port, matches addresses, or is not modelled.
    pub fn probe_target(&self) -> Option<(Proto, u16)> {
        if !self.modelled() {
            return None;
        }
        let mut proto = None;
        let mut port = None;
        for c in &self.clauses {
            match c {
                Clause::Addr { .. } => return None,
                Clause::Proto(set, false) => proto = set.iter().flatten().next().copied(),
                Clause::Port { proto: p, ranges, neg: false, .. } => {
                    proto = proto.or(*p);
                    port = ranges.first().map(|r| r.0);
                }
                _ => {}
            }
        }
        Some((proto.unwrap_or(Proto::Udp), port?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(proto: Proto, dport: u16, new: bool) -> Packet {
        Packet {
            proto,
            src: "192.168.1.10".parse().unwrap(),
            sport: 0,
            dst: "198.51.100.250".parse().unwrap(),
            dport,
            new,
        }
    }

    #[test]
    fn port_rules_match_by_protocol_and_port() {
        let r = parse("tcp dport 22 drop");
        assert!(r.modelled());
        assert_eq!(r.matches(&pkt(Proto::Tcp, 22, true)), RuleMatch::Yes);
        assert_eq!(r.matches(&pkt(Proto::Udp, 22, true)), RuleMatch::No);
        assert_eq!(r.matches(&pkt(Proto::Tcp, 23, true)), RuleMatch::No);
        assert_eq!(r.verdict(), Some(RuleVerdict::Block));
        assert_eq!(r.probe_target(), Some((Proto::Tcp, 22)));
    }

    #[test]
    fn sets_ranges_negation_and_states() {
        let r = parse("meta l4proto { tcp, udp } th dport { 3478, 5349 } counter drop");
        assert_eq!(r.matches(&pkt(Proto::Udp, 5349, false)), RuleMatch::Yes);
        assert_eq!(r.probe_target(), Some((Proto::Tcp, 3478)));
        let r = parse("udp dport 1000-2000 reject with icmp type port-unreachable");
        assert_eq!(r.matches(&pkt(Proto::Udp, 1500, true)), RuleMatch::Yes);
        assert_eq!(r.verdict(), Some(RuleVerdict::Block));
        let r = parse("tcp dport != 443 ct state new drop");
        assert_eq!(r.matches(&pkt(Proto::Tcp, 80, true)), RuleMatch::Yes);
        assert_eq!(r.matches(&pkt(Proto::Tcp, 80, false)), RuleMatch::No);
        assert_eq!(r.matches(&pkt(Proto::Tcp, 443, true)), RuleMatch::No);
        let r = parse("ct state established,related accept");
        assert_eq!(r.matches(&pkt(Proto::Udp, 53, false)), RuleMatch::Yes);
        assert_eq!(r.verdict(), Some(RuleVerdict::Accept));
    }

    #[test]
    fn addresses_are_matched_but_not_probed() {
        let r = parse("ip daddr 203.0.113.22 meta l4proto udp drop");
        assert!(r.modelled());
        assert_eq!(r.matches(&pkt(Proto::Udp, 53, true)), RuleMatch::No);
        let mut p = pkt(Proto::Udp, 53, true);
        p.dst = "203.0.113.22".parse().unwrap();
        assert_eq!(r.matches(&p), RuleMatch::Yes);
        assert_eq!(r.probe_target(), None);
        assert_eq!(parse("ip saddr 192.168.0.0/16 drop").matches(&pkt(Proto::Tcp, 1, true)), RuleMatch::Yes);
    }

    #[test]
    fn what_is_not_modelled_is_maybe_unless_excluded() {
        let r = parse("iifname \"wan\" tcp dport 22 drop");
        assert!(!r.modelled());
        assert!(matches!(r.matches(&pkt(Proto::Tcp, 22, true)), RuleMatch::Maybe(_)));
        assert_eq!(r.probe_target(), None);
        // Known clauses before the unknown one can still rule a packet out.
        let r = parse("tcp dport 22 iifname \"wan\" drop");
        assert_eq!(r.matches(&pkt(Proto::Udp, 22, true)), RuleMatch::No);
        assert_eq!(r.verdict(), Some(RuleVerdict::Block));
        // Source ports of client sockets are ephemeral: a rule on them is a maybe.
        let r = parse("udp sport 40000 drop");
        assert!(matches!(r.matches(&pkt(Proto::Udp, 53, true)), RuleMatch::Maybe(_)));
        assert_eq!(parse("udp sport 53 drop").matches(&pkt(Proto::Udp, 53, true)), RuleMatch::No);
    }
}
