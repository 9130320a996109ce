//! Parser for coturn's `turnutils_natdiscovery -m -f <server>` output, so the
//! probe can be cross-checked against an independent RFC 5780 client.
//!
//! coturn prints its verdicts as lines such as
//! `NAT with Endpoint Independent Mapping!`, `No NAT! (Endpoint Independent Mapping)`
//! and `NAT with Address and Port Dependent Filtering!`. Quirk: with a socket
//! bound to 0.0.0.0 it compares the mapped address with 0.0.0.0, so it says
//! "NAT with …" even when there is no NAT.

use super::behaviour::Behaviour;
use anyhow::{Result, anyhow};

fn words(phrase: &str) -> Option<Behaviour> {
    // Longest phrase first: "Address Dependent" is a suffix of the APD one.
    if phrase.contains("Address and Port Dependent") {
        Some(Behaviour::AddressAndPortDependent)
    } else if phrase.contains("Address Dependent") {
        Some(Behaviour::AddressDependent)
    } else if phrase.contains("Endpoint Independent") {
        Some(Behaviour::EndpointIndependent)
    } else {
        None
    }
}

fn verdict(text: &str, kind: &str) -> Result<Behaviour> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("NAT with ") || l.starts_with("No NAT!"))
        .filter(|l| l.contains(kind))
        .find_map(words)
        .ok_or_else(|| anyhow!("no {kind} verdict in turnutils_natdiscovery output"))
}

/// Returns (mapping, filtering) from `turnutils_natdiscovery -m -f` output.
pub fn parse_natdiscovery_output(text: &str) -> Result<(Behaviour, Behaviour)> {
    Ok((verdict(text, "Mapping")?, verdict(text, "Filtering")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Behaviour::*;

    #[test]
    fn parses_verdicts() {
        let t = "-= Mapping Behavior Discovery =-\n\
                 0: : IPv4. Other addr: : 127.0.0.2:3479\n\
                 ========================================\n\
                 NAT with Endpoint Independent Mapping!\n\
                 ========================================\n\
                 -= Filtering Behavior Discovery =-\n\
                 NAT with Address and Port Dependent Filtering!\n";
        assert_eq!(parse_natdiscovery_output(t).unwrap(), (EndpointIndependent, AddressAndPortDependent));
        let t = "No NAT! (Endpoint Independent Mapping)\nNAT with Address Dependent Filtering!\n";
        assert_eq!(parse_natdiscovery_output(t).unwrap(), (EndpointIndependent, AddressDependent));
        assert!(parse_natdiscovery_output("Connection Timeout or Failure").is_err());
    }
}
