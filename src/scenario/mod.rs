//! Scenarios: a call between two hosts of a lab, and what it must show.
//!
//! A topology file may carry a `[scenario]` (who calls whom, through which STUN/TURN
//! servers, with which ICE policy) and an `[expect]` (connected or failed, the selected
//! candidate types, time bounds). `icelab run FILE` builds the lab, runs two real
//! WebRTC peers ([`crate::peer`]) in the two host namespaces, and [`judge`]s the
//! [`crate::peer::Outcome`] against the expectations.
//!
//! ```toml
//! [scenario]
//! offerer = "alice"        # host names
//! answerer = "bob"
//! stun = "stun"            # server(s) with the stun (or turn) service; optional
//! turn = "relay"           # server with the turn service; optional
//! policy = "all"           # or "relay"
//! data-ms = 300            # data exchange after the channel opens
//! data-rate-kbps = 2000    # pace it (kbit/s each way); absent: flood
//! data-rate-kbps = 2000    # pace it (kbit/s each way); absent: flood
//! deadline-ms = 8000       # the whole call
//! ice-check-ms = 50        # ICE check interval
//!
//! [expect]
//! outcome = "connected"    # or "failed"
//! local = "srflx"          # offerer's selected local type: host|srflx|prflx|relay (or a list)
//! remote = ["srflx", "prflx"]
//! protocol = "udp"
//! relay-transport = "udp"  # when relayed
//! max-ice-ms = 1500        # offer -> ICE connected
//! max-connect-ms = 3000    # offer -> data channel open
//! ```
//!
//! TURN credentials are fixed for every lab ([`crate::servers::LAB_CREDENTIALS`]): the server is only reachable inside the lab, so
//! secrecy buys nothing and fixed values make `icelab exec` experiments easy.

mod expect;
mod expect_peer;
mod judge;
mod pairs;
mod spec;
mod timings;

pub use crate::check::Check;
pub use crate::servers::ice_servers;
pub use expect::{CandidateType, Expect, ExpectedOutcome, RawExpect};
pub use expect_peer::PeerExpect;
pub use judge::{Verdict, describe_outcome, judge, relay_transport};
pub use pairs::{CallPair, MAX_CALLS};
pub use spec::{DEFAULT_DATA_MS, DEFAULT_DEADLINE_MS, DEFAULT_ICE_CHECK_MS, RawScenario, Scenario};
pub(crate) use spec::{Nodes, interpret};
pub use timings::{Percentiles, Timings, percentiles};
