//! icelab: a network-impairment simulator for STUN/TURN/ICE path testing.
//!
//! A topology file (TOML) is parsed into a [`topology::Topology`], turned into an
//! ordered [`plan::Plan`] by a pure function, and the plan is either applied to the
//! kernel ([`fabric`]) or rendered as a shell script ([`plan::shell`]).
//!
//! ```
//! let topo = icelab::topology::parse_str("lan.toml", r#"
//! [router.home]
//! wan = "internet"
//! [host.a]
//! on = "home"
//! [host.b]
//! on = "home"
//! "#).unwrap();
//! let plan = icelab::plan::plan(&topo, "icelab-doc");
//! assert!(plan.steps.len() > 5);
//! ```
#![warn(missing_docs)]

pub mod browser;
pub mod echo;
pub mod fabric;
pub mod firewall;
pub mod impair;
pub mod nat;
pub mod peer;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod servers;
pub mod stun;
pub mod timeline;
pub mod topology;
pub mod turn;
pub mod verify;
