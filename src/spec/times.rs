//! The call's data phase and deadline, stretched over its events when the file leaves
//! them out: the one rule that needs both the scenario and the timeline.

use toml::Spanned;

use crate::diag::Reporter;
use crate::scenario::{DEFAULT_DEADLINE_MS, RawScenario, Scenario};
use crate::timeline::TimelineEvent;
use crate::timeline::spec::{ExplicitTimes, window_end};

/// `data-ms` and `deadline-ms` as the file wrote them.
pub(super) struct Written {
    data_ms: Option<Spanned<u64>>,
    deadline_ms: Option<Spanned<u64>>,
}

impl Written {
    pub(super) fn of(raw: Option<&Spanned<RawScenario>>) -> Self {
        let (data_ms, deadline_ms) = raw.map(|s| s.get_ref().explicit_times()).unwrap_or((None, None));
        Written { data_ms, deadline_ms }
    }

    pub(super) fn explicit(&self) -> ExplicitTimes {
        ExplicitTimes { data_ms: self.data_ms.clone(), deadline_ms: self.deadline_ms.clone() }
    }
}

/// Without `data-ms`, data flows until the last event's window closes; without
/// `deadline-ms`, the deadline is the data phase plus the default.
pub(super) fn stretch(rep: &mut Reporter, scn: &mut Scenario, written: &Written, events: &[TimelineEvent]) {
    if written.data_ms.is_none()
        && let Some(end) = window_end(events)
    {
        scn.data_ms = end;
    }
    match &written.deadline_ms {
        None => scn.deadline_ms = scn.data_ms + DEFAULT_DEADLINE_MS,
        Some(d) if *d.get_ref() <= scn.data_ms => rep.error(
            d.span(),
            format!("deadline-ms {} leaves no time to connect before the {} ms data phase", d.get_ref(), scn.data_ms),
            Some("leave deadline-ms out to derive it from the events".into()),
        ),
        Some(_) => {}
    }
}
