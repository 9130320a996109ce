//! Firewall presets and custom rules as nftables rulesets.
//!
//! A topology file says `firewall = "udp-blocked"`, a list of presets, or a
//! table ([`FirewallSpec`]); [`ruleset`] renders `table inet icelab_fw` for a
//! router or a host ([`FirewallCtx`]). It coexists with the NAT table, so the
//! two can be applied in any order.

mod check;
mod ruleset;
mod spec;

pub use check::{NftCheckError, check_with_nft};
pub use ruleset::{FW_TABLE, FirewallCtx, FwRole, ruleset};
pub use spec::{FirewallPreset, FirewallSpec, RuleError};
