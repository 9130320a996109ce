//! RFC 4787 vocabulary for NAT mapping and filtering behaviour.

use serde::{Deserialize, Serialize};
use std::fmt;

/// NAT mapping or filtering behaviour, in the words of RFC 4787 §4.1 / §5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Same mapping / filter for every remote endpoint.
    EndpointIndependent,
    /// Depends on the remote IP address only.
    AddressDependent,
    /// Depends on the remote IP address and port.
    AddressAndPortDependent,
}

impl Behaviour {
    /// The kebab-case RFC 4787 word, identical to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::EndpointIndependent => "endpoint-independent",
            Behaviour::AddressDependent => "address-dependent",
            Behaviour::AddressAndPortDependent => "address-and-port-dependent",
        }
    }
}

impl fmt::Display for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_matches_display() {
        for b in [Behaviour::EndpointIndependent, Behaviour::AddressDependent, Behaviour::AddressAndPortDependent] {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{b}\""));
            assert_eq!(serde_json::from_str::<Behaviour>(&json).unwrap(), b);
        }
    }
}
