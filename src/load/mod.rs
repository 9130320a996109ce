//! Load: many calls in one lab at an open-loop arrival rate, with a concurrency cap,
//! each call's data phase, and an overall time bound; and the report of how call setup
//! fared. Pure: the load file ([`spec`]), a generated population of NAT and firewall
//! kinds ([`population`]), the schedule of arrivals and pairs ([`schedule`]) and the
//! report ([`report`]). [`crate::call::run_load`] places the calls; `icelab load` runs it.

pub mod html;
pub mod population;
pub mod report;
pub mod schedule;
pub mod spec;

pub use population::Population;
pub use report::{LoadReport, Sample};
pub use schedule::Arrival;
pub use spec::{LabSource, LoadSpec};
