//! Benchmarks that run in a lab of their own: `icelab bench relay` drives TURN load
//! through each relay implementation ([`relay`] is its pure model, [`load`] the load
//! generator and echo peer, [`lab`] the run).

pub mod lab;
pub mod load;
pub mod relay;
