//! Built-in STUN server (RFC 5389/8489 + RFC 5780) and the behaviour-discovery probe.
//!
//! * [`server`]: the lab STUN server (two IPs × two ports, CHANGE-REQUEST,
//!   RFC 3489 compatibility, icelab response-target extension).
//! * [`probe`](mod@probe): RFC 5780 NAT behaviour discovery producing a [`ProbeReport`].
//! * [`client`]: Binding transactions with retransmission and deadlines.
//! * [`natdiscovery`]: parser for coturn's `turnutils_natdiscovery` output.

pub mod behaviour;
pub mod client;
pub mod lifetime;
pub mod natdiscovery;
pub mod probe;
pub mod report;
pub mod server;
pub mod wire;

pub use behaviour::Behaviour;
pub use natdiscovery::parse_natdiscovery_output;
pub use probe::{ProbeOptions, probe};
pub use report::ProbeReport;
pub use server::{StunServer, StunServerConfig, run_forever, serve};
pub use wire::ICELAB_RESPONSE_TARGET;
