//! Timeline events: things that happen to a lab *during* a call, and what they did to it.
//!
//! A topology with a `[scenario]` may list `[[event]]`s. Each fires at `at-ms` after the
//! **offerer's data channel opened** (the call is fully up and data is flowing, so events
//! land mid-call), does one thing to the lab, and may state what it must do to the call:
//!
//! ```toml
//! [[event]]
//! at-ms = 1000
//! link = "down"                   # or "up": the node's uplink, both ends
//! node = "alice"
//! expect = "breaks"
//!
//! [[event]]
//! at-ms = 3000
//! link = "up"
//! node = "alice"
//! expect = "recovers"             # never broke, or data flows again (ICE connected) ...
//! max-recovery-ms = 2000          # ... this soon after the event
//! pair = "relay"                  # and the call ends the window on a relay (or "direct") pair
//!
//! # other actions (one per event):
//! # nat-flush = "home"                                  # conntrack + NAT maps flushed; new-ports = false keeps ports
//! # nat = { router = "home", nat = "symmetric" }        # new NAT behaviour (state flushed too)
//! # firewall = { node = "home", firewall = "udp-blocked" }
//! # firewall-clear = "home"
//! # turn = "stop"                  # or "start", with server = "relay"
//! # impair = { node = "alice", impair = "lte" }
//! ```
//!
//! Without `data-ms` the data phase lasts until the last event plus a recovery window
//! ([`spec::DEFAULT_RECOVERY_WINDOW_MS`], or that event's `max-recovery-ms` + 1 s), and
//! without `deadline-ms` the deadline is the data phase plus the default deadline.
//!
//! [`spec`] validates; the planner turns each event into plan steps
//! ([`crate::plan::PlannedEvent`], shown by `--dry-run` and replayable from the exported
//! script); the scenario's driver fires them through the same applier as the build
//! during the call and writes a [`log`]; [`outcome`] says what each one did. This
//! module is the pure part: it imports neither the plan nor the scenario.

pub mod event;
pub mod log;
pub mod outcome;
pub mod spec;

pub use event::{Action, EventExpect, PairExpect, TimelineEvent};
pub use log::{Applied, SAMPLE_EVERY, TimelineLog};
pub use outcome::{EventOutcome, Recovery, analyze};
pub use spec::RawEvent;
