//! NAT behaviours (RFC 4787) and their nftables rulesets.
