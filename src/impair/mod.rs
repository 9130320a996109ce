//! Link impairments (delay, jitter, loss, duplication, reordering, rate, MTU) with two
//! engines of the same semantics:
//!
//! * [`netem`]: the kernel's `netem` + `tbf` qdiscs on a veth, where the kernel has them;
//! * [`engine`]: a userspace engine pumping frames between two TAP devices, for kernels
//!   without `sch_netem`.
//!
//! [`spec`] is the model both engines implement and [`presets`] names common links.

pub mod engine;
pub mod netem;
pub mod presets;
pub mod spec;
pub mod testbed;

pub use engine::{Engine, EngineControl, LinkDir, TapLink, run_engine};
pub use presets::Preset;
pub use spec::{Direction, Impairment, JitterDistribution, LinkImpairment, Loss, QueueLimit};
