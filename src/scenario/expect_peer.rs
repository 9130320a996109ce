//! `[expect.<peer>]`: where a peer kind legitimately differs from the file's `[expect]`
//! (a browser ranks candidates its own way), the file says so, with the reason.
//!
//! ```toml
//! [expect.chromium]
//! local = ["host", "srflx"]
//! reason = "libwebrtc reports the srflx candidate it paired, not its host base"
//! ```
//!
//! An override replaces the fields it sets. It applies when its peer kind plays either
//! side; the offerer's kind is applied last (the judged pair is the offerer's view).

use serde::Serialize;
use toml::Spanned;

use super::expect::{Expect, RawExpect};
use crate::diag::Reporter;

/// One `[expect.<peer>]` section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerExpect {
    /// The peer kind (`chromium`, `firefox`).
    pub peer: String,
    /// Why this peer differs.
    pub reason: String,
    /// The fields it sets (unset ones keep the file's).
    pub expect: Expect,
}

/// Types one override, refusing what an override cannot say.
pub(crate) fn interpret(
    rep: &mut Reporter,
    peer: &str,
    raw: Spanned<Box<RawExpect>>,
    typed: fn(&mut Reporter, RawExpect) -> Expect,
) -> PeerExpect {
    let span = raw.span();
    let mut r = *raw.into_inner();
    let reason = r.take_reason();
    if reason.as_deref().is_none_or(str::is_empty) {
        rep.error(
            span.clone(),
            format!("[expect.{peer}] needs `reason = \"...\"`"),
            Some("say why this peer differs".into()),
        );
    }
    if r.has_outcome_or_overrides() {
        rep.error(span, format!("[expect.{peer}] may set only pair and timing fields"), None);
    }
    PeerExpect { peer: peer.into(), reason: reason.unwrap_or_default(), expect: typed(rep, r) }
}

impl Expect {
    /// The expectation for a call between these peer kinds (their `Display` names).
    pub fn for_peers(&self, offerer: &str, answerer: &str) -> Expect {
        let mut e = self.clone();
        for kind in [answerer, offerer] {
            for o in self.per_peer.iter().filter(|o| o.peer == kind) {
                let x = &o.expect;
                e.local = x.local.clone().or(e.local);
                e.remote = x.remote.clone().or(e.remote);
                e.protocol = x.protocol.clone().or(e.protocol);
                e.relay_transport = x.relay_transport.clone().or(e.relay_transport);
                e.path = x.path.or(e.path);
                e.family = x.family.clone().or(e.family);
                e.max_ice_ms = x.max_ice_ms.or(e.max_ice_ms);
                e.max_connect_ms = x.max_connect_ms.or(e.max_connect_ms);
            }
        }
        e.per_peer.clear();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::super::expect::CandidateType::*;
    use super::*;

    #[test]
    fn the_offerers_override_wins_and_others_keep_the_file() {
        let o = |peer: &str, local| PeerExpect {
            peer: peer.into(),
            reason: "r".into(),
            expect: Expect { local: Some(vec![local]), ..Default::default() },
        };
        let base = Expect {
            local: Some(vec![Host]),
            protocol: Some("udp".into()),
            per_peer: vec![o("chromium", Srflx), o("firefox", Relay)],
            ..Default::default()
        };
        assert_eq!(base.for_peers("built-in", "built-in").local, Some(vec![Host]));
        let e = base.for_peers("built-in", "chromium");
        assert_eq!((e.local, e.protocol, e.per_peer.len()), (Some(vec![Srflx]), Some("udp".into()), 0));
        assert_eq!(base.for_peers("firefox", "chromium").local, Some(vec![Relay]));
    }
}
