//! Placing a call in a lab: build the lab from a [`crate::spec::Spec`], start the two
//! peers through their drivers, relay their signaling, fire the timeline's planned
//! events meanwhile, tear down, and judge what happened ([`crate::scenario::judge`]).
//!
//! This is the privileged, effectful side of a scenario; the model and the judge it
//! applies are pure and live in [`crate::scenario`].

mod drive;
mod figures;
mod load;
mod pool;
mod run;

pub use load::{LoadCall, LoadOptions, LoadRun, Placed, run_load};
pub use run::{Proof, RunOptions, RunReport, run_scenario};
