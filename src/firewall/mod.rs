//! Firewall presets and custom rules as nftables rulesets.
