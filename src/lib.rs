//! icelab: a network-impairment simulator for STUN/TURN/ICE path testing.
//!
//! An icelab file (TOML) is parsed by the file layer ([`spec`]) into a lab's network
//! ([`topology::Topology`]), the call placed in it ([`scenario`]) and what happens
//! meanwhile ([`timeline`]). A pure function turns the network and its events into an
//! ordered [`plan::Plan`], which is either applied to the kernel ([`fabric`]) or
//! rendered as a shell script ([`plan::shell`]).
//!
//! The modules form layers, lowest first, and none imports one above it:
//! [`diag`] and [`check`] (diagnostics, judged lines) < [`topology`] < [`timeline`]
//! (pure: events and what they did) < [`scenario`] (a call's model and its judge)
//! < [`plan`] < [`spec`] (the whole file) < [`call`] (placing a call in a lab)
//! < [`load`] (many calls at a rate, and their report).
//!
//! ```
//! let spec = icelab::spec::parse_str("lan.toml", r#"
//! [router.home]
//! wan = "internet"
//! [host.a]
//! on = "home"
//! [host.b]
//! on = "home"
//! "#).unwrap();
//! let plan = icelab::plan::plan(&spec.topology, "icelab-doc");
//! assert!(plan.steps.len() > 5);
//! ```
#![warn(missing_docs)]

pub mod bench;
pub mod browser;
pub mod call;
pub mod check;
pub mod counters;
pub mod diag;
pub mod dns;
pub mod echo;
pub mod fabric;
pub mod firewall;
pub mod impair;
pub mod load;
pub mod matrix;
pub mod nat;
pub mod peer;
pub mod plan;
pub mod report;
pub mod scenario;
pub mod servers;
pub mod spec;
pub mod stun;
pub mod timeline;
pub mod topology;
pub mod turn;
pub mod verify;
