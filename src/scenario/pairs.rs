//! Who calls whom: one pair (`offerer`/`answerer`) or several (`calls`), all placed in
//! the same lab at once. A host may take part in several calls; each call has its own
//! two peer processes.
//!
//! ```toml
//! [scenario]
//! calls = [["alice", "bob"], ["carol", "dave"], ["alice", "dave"]]
//! ```

use serde::Serialize;
use toml::Spanned;

use super::spec::list;
use crate::diag::Reporter;

/// Most calls one scenario places at once: each costs two processes, and a lab on two
/// cores is not a load generator.
pub const MAX_CALLS: usize = 64;

/// One call of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallPair {
    /// Host that creates the offer (and the data channel).
    pub offerer: String,
    /// Host that answers.
    pub answerer: String,
}

impl std::fmt::Display for CallPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} -> {}", self.offerer, self.answerer)
    }
}

/// `calls` as written: a list of host-name lists.
pub(super) type RawCalls = Spanned<Vec<Spanned<Vec<Spanned<String>>>>>;

/// `offerer`, `answerer` and `calls` as written.
pub(super) struct RawPairs<'a> {
    pub offerer: Option<&'a Spanned<String>>,
    pub answerer: Option<&'a Spanned<String>>,
    pub calls: Option<&'a RawCalls>,
}

/// The scenario's calls, each checked against the lab's hosts.
pub(super) fn interpret_pairs(
    rep: &mut Reporter,
    hosts: &[&str],
    at: std::ops::Range<usize>,
    raw: RawPairs,
) -> Vec<CallPair> {
    let written: Vec<(&Spanned<String>, &Spanned<String>)> = match (raw.offerer, raw.answerer, raw.calls) {
        (Some(o), Some(a), None) => vec![(o, a)],
        (None, None, Some(calls)) => {
            if calls.get_ref().is_empty() {
                rep.error(
                    calls.span(),
                    "`calls` is empty",
                    Some("list at least one [\"offerer\", \"answerer\"]".into()),
                );
            }
            if calls.get_ref().len() > MAX_CALLS {
                rep.error(calls.span(), format!("more than {MAX_CALLS} calls in one scenario"), None);
            }
            calls
                .get_ref()
                .iter()
                .filter_map(|c| match c.get_ref().as_slice() {
                    [o, a] => Some((o, a)),
                    _ => {
                        let hint = Some("each call is [\"offerer\", \"answerer\"]".into());
                        rep.error(c.span(), format!("a call names two hosts, not {}", c.get_ref().len()), hint);
                        None
                    }
                })
                .collect()
        }
        (_, _, Some(calls)) => {
            let hint = Some("give either offerer and answerer (one call) or calls (several)".into());
            rep.error(calls.span(), "`calls` beside `offerer`/`answerer`", hint);
            return Vec::new();
        }
        (o, a, None) => {
            let (span, missing) = match (o, a) {
                (Some(o), None) => (o.span(), "answerer"),
                (None, Some(a)) => (a.span(), "offerer"),
                _ => (at, "offerer and answerer"),
            };
            let hint = Some("a call needs offerer = \"HOST\" and answerer = \"HOST\", or calls = [[...]]".into());
            rep.error(span, format!("[scenario] has no {missing}"), hint);
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (o, a) in written {
        for h in [o, a] {
            if !hosts.contains(&h.get_ref().as_str()) {
                let hint = Some(format!("peers run on hosts: {}", list(hosts)));
                rep.error(h.span(), format!("unknown host `{}`", h.get_ref()), hint);
            }
        }
        if o.get_ref() == a.get_ref() {
            rep.error(a.span(), "offerer and answerer are the same host", Some("a call needs two hosts".into()));
        }
        out.push(CallPair { offerer: o.get_ref().clone(), answerer: a.get_ref().clone() });
    }
    out
}
