//! The lab's DNS: a small authoritative server for the lab's names, with DNS64.
//!
//! Built in rather than a Debian server (unbound, bind9): the lab already knows every
//! name and address at plan time, DNS64 must follow the lab's own NAT64 prefix and its
//! carriers' LANs, and the whole zone fits on a command line; a kept codec
//! (hickory-proto) parses and writes the messages. It answers only for
//! [`DOMAIN`] (REFUSED for anything else: nothing leaves the lab), UDP only (its answers
//! are a few records; glibc asks over UDP).
//!
//! DNS64 (RFC 6147): an AAAA query from a client inside one of the `dns64` networks (a
//! NAT64 router's LAN), for a name with A records and no AAAA record, is answered with
//! the A addresses written into the NAT64 prefix. Every other client gets the records as
//! they are.

mod server;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipnet::{IpNet, Ipv6Net};

pub use server::serve;

/// The lab's domain (RFC 6761 reserves `.test` for this).
pub const DOMAIN: &str = "icelab.test";

/// UDP port.
pub const PORT: u16 = 53;

/// Time to live of every answer: short, as a lab's addresses live one run.
const TTL: u32 = 30;

/// A server node's name in the lab's DNS (`relay` -> `relay.icelab.test`).
pub fn fqdn(node: &str) -> String {
    format!("{node}.{DOMAIN}")
}

/// What the server knows: names with their addresses, and where DNS64 applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Zone {
    /// (fully qualified name, address), in any order; a name may have several.
    pub records: Vec<(String, IpAddr)>,
    /// Clients in these networks get DNS64 answers, synthesized into `prefix`.
    pub dns64: Vec<IpNet>,
    /// The NAT64 prefix (/96).
    pub prefix: Option<Ipv6Net>,
}

impl Zone {
    /// Addresses of `name` (compared without case or trailing dot) of one family.
    fn lookup(&self, name: &str, v6: bool) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        let wanted = |(n, a): &&(String, IpAddr)| n.eq_ignore_ascii_case(name) && a.is_ipv6() == v6;
        self.records.iter().filter(wanted).map(|(_, a)| *a).collect()
    }

    /// True when `name` is in the zone at all.
    fn knows(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.');
        self.records.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The addresses answering a `qtype` question for `name` from `client`.
    pub fn resolve(&self, name: &str, qtype: RecordType, client: IpAddr) -> Vec<IpAddr> {
        match qtype {
            RecordType::A => self.lookup(name, false),
            RecordType::AAAA => {
                let native = self.lookup(name, true);
                match self.prefix {
                    Some(p) if native.is_empty() && self.dns64.iter().any(|n| n.contains(&client)) => self
                        .lookup(name, false)
                        .into_iter()
                        .filter_map(|a| match a {
                            IpAddr::V4(v4) => Some(IpAddr::V6(synthesize(p, v4))),
                            IpAddr::V6(_) => None,
                        })
                        .collect(),
                    _ => native,
                }
            }
            _ => Vec::new(),
        }
    }

    /// The response to the query `packet` from `client`, or `None` for what is no query.
    pub fn answer(&self, packet: &[u8], client: IpAddr) -> Option<Vec<u8>> {
        let q = Message::from_vec(packet).ok()?;
        if q.metadata.message_type != MessageType::Query {
            return None;
        }
        let mut r = Message::response(q.metadata.id, q.metadata.op_code);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.queries = q.queries.clone();
        let code = match (q.metadata.op_code, q.queries.as_slice()) {
            (OpCode::Query, [question]) => {
                let name = question.name().to_ascii();
                let in_domain = Name::from_ascii(DOMAIN).is_ok_and(|d| d.zone_of(question.name()));
                if !in_domain {
                    ResponseCode::Refused
                } else if !self.knows(&name) {
                    ResponseCode::NXDomain
                } else {
                    r.metadata.authoritative = true;
                    for a in self.resolve(&name, question.query_type(), client) {
                        let rdata = match a {
                            IpAddr::V4(v4) => RData::A(A(v4)),
                            IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
                        };
                        r.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
                    }
                    ResponseCode::NoError
                }
            }
            (OpCode::Query, _) => ResponseCode::FormErr,
            _ => ResponseCode::NotImp,
        };
        r.metadata.response_code = code;
        r.to_vec().ok()
    }
}

/// `v4` written into the /96 `prefix` (RFC 6052).
pub fn synthesize(prefix: Ipv6Net, v4: Ipv4Addr) -> Ipv6Addr {
    let mut o = prefix.network().octets();
    o[12..].copy_from_slice(&v4.octets());
    Ipv6Addr::from(o)
}

/// Parses a `--record NAME=ADDRESS` argument.
pub fn parse_record(s: &str) -> Result<(String, IpAddr), String> {
    let (name, addr) = s.split_once('=').ok_or_else(|| format!("`{s}`: expected NAME=ADDRESS"))?;
    let addr = addr.parse().map_err(|e| format!("`{s}`: {e}"))?;
    Ok((name.to_string(), addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn zone() -> Zone {
        Zone {
            records: vec![
                ("relay.icelab.test".into(), "198.51.100.10".parse().unwrap()),
                ("stun.icelab.test".into(), "198.51.100.12".parse().unwrap()),
                ("stun.icelab.test".into(), "2001:db8::198:51:100:12".parse().unwrap()),
            ],
            dns64: vec!["2001:db8:1::/64".parse().unwrap()],
            prefix: Some("2001:db8:ffff:64::/96".parse().unwrap()),
        }
    }

    fn ask(name: &str, t: RecordType, client: &str) -> Message {
        let mut q = Message::new(7, MessageType::Query, OpCode::Query);
        q.metadata.recursion_desired = true;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let bytes = zone().answer(&q.to_vec().unwrap(), client.parse().unwrap()).unwrap();
        Message::from_vec(&bytes).unwrap()
    }

    fn addrs(m: &Message) -> Vec<String> {
        m.answers
            .iter()
            .map(|r| match r.data {
                RData::A(a) => a.0.to_string(),
                RData::AAAA(a) => a.0.to_string(),
                ref other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn dns64_synthesizes_for_its_clients_only_and_only_without_a_native_aaaa() {
        let carrier = "2001:db8:1:0:192:168:1:10";
        assert_eq!(addrs(&ask("relay.icelab.test.", RecordType::AAAA, carrier)), ["2001:db8:ffff:64::c633:640a"]);
        // Elsewhere an IPv4-only name has no AAAA.
        let m = ask("relay.icelab.test.", RecordType::AAAA, "2001:db8:2:0:192:168:2:10");
        assert_eq!((m.metadata.response_code, addrs(&m).len()), (ResponseCode::NoError, 0));
        // A native AAAA wins over synthesis (RFC 6147 5.1.6).
        assert_eq!(addrs(&ask("stun.icelab.test.", RecordType::AAAA, carrier)), ["2001:db8::198:51:100:12"]);
        assert_eq!(addrs(&ask("RELAY.icelab.test.", RecordType::A, carrier)), ["198.51.100.10"]);
    }

    #[test]
    fn answers_keep_the_id_and_refuse_what_is_not_the_lab() {
        let m = ask("relay.icelab.test.", RecordType::A, "192.0.2.5");
        assert_eq!(
            (m.metadata.id, m.metadata.message_type, m.metadata.authoritative),
            (7, MessageType::Response, true)
        );
        assert_eq!(ask("example.com.", RecordType::A, "192.0.2.5").metadata.response_code, ResponseCode::Refused);
        assert_eq!(ask("nope.icelab.test.", RecordType::A, "192.0.2.5").metadata.response_code, ResponseCode::NXDomain);
        assert!(zone().answer(b"garbage", "192.0.2.5".parse().unwrap()).is_none());
    }

    #[test]
    fn records_parse_from_arguments() {
        assert_eq!(
            parse_record("a.icelab.test=192.0.2.1").unwrap(),
            ("a.icelab.test".into(), "192.0.2.1".parse().unwrap())
        );
        assert!(parse_record("a.icelab.test").unwrap_err().contains("NAME=ADDRESS"));
    }
}
