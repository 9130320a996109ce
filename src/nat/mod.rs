//! NAT behaviours (RFC 4787) and their nftables rulesets.
//!
//! A topology file says `nat = "<preset>"` or `nat = { preset = ..., mapping = ... }`
//! ([`NatSpec`]); [`NatSpec::resolve`] turns it into a [`NatMode`], and
//! [`ruleset`] renders the `nft -f` input applied inside the router namespace.

mod behaviour;
mod ipv6;
pub mod nat64;
mod presets;
mod ruleset;
mod spec;

pub use behaviour::{Filtering, Mapping, NatBehaviour, PortPreservation};
pub use ipv6::{NAT6_TABLE, Nat6Mode, RouterNat6, ruleset6};
pub use presets::{NatPreset, PRESETS, PresetInfo, presets_markdown};
pub use ruleset::{HASH_SEED, NAT_TABLE, REBIND_HASH_SEED, RouterNat, ruleset, ruleset_seeded};
pub use spec::{NatMode, NatOverrides, NatSpec, NatSpecError};
