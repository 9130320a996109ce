//! What peers are told: the `RTCIceServer`s of a scenario, built from the lab's services.

use std::net::IpAddr;

use anyhow::anyhow;

use super::{Implementation, LAB_CREDENTIALS, Service, ServiceKind, port};
use crate::peer::IceServer;
use crate::plan::Plan;
use crate::scenario::Scenario;
use crate::topology::Server;
use crate::turn::TLS_PORT as TURN_TLS_PORT;

/// Where a URL points: an address, or a name the lab's DNS answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlHost {
    /// A literal address.
    Addr(IpAddr),
    /// A DNS name.
    Name(String),
}

impl UrlHost {
    /// As written in a URL: IPv6 in brackets (RFC 7064 / RFC 3986).
    fn text(&self) -> String {
        match self {
            UrlHost::Addr(IpAddr::V4(a)) => a.to_string(),
            UrlHost::Addr(IpAddr::V6(a)) => format!("[{a}]"),
            UrlHost::Name(n) => n.clone(),
        }
    }
}

/// The `stun:` URL of a service that answers binding requests at `host`.
pub fn stun_url(svc: Service, host: &UrlHost) -> String {
    let host = host.text();
    match svc.implementation {
        // A TURN server answers STUN on its own port, which is the STUN port too.
        Implementation::BuiltIn | Implementation::Coturn => {
            format!("stun:{host}:{}", port(Service::built_in(ServiceKind::Stun)))
        }
    }
}

/// The `turn:`/`turns:` URL of TURN service `svc` at `host` over `transport`
/// (`udp`, `tcp`; anything else is TLS).
pub fn turn_url(svc: Service, host: &UrlHost, transport: &str) -> String {
    let host = host.text();
    match svc.implementation {
        // Both listen on UDP and TCP 3478 and TLS 443.
        Implementation::BuiltIn | Implementation::Coturn => {
            let p = port(svc);
            match transport {
                "udp" => format!("turn:{host}:{p}?transport=udp"),
                "tcp" => format!("turn:{host}:{p}?transport=tcp"),
                _ => format!("turns:{host}:{TURN_TLS_PORT}"),
            }
        }
    }
}

/// ICE servers for the peers, from the scenario, the lab's servers and the plan's addresses.
///
/// With a DNS service in the lab, URLs name the server (`relay.icelab.test`), as in
/// production: each peer resolves it with the lab's DNS (DNS64 on a NAT64 carrier).
/// Without one, they are literal addresses. In an IPv6 lab a server's literal URLs name
/// its IPv6 address too, after the IPv4 one (a browser resolving a dual-stack name gets
/// both): webrtc-rs asks each server only from local sockets of the address's family, so
/// a v6-only host uses the IPv6 URLs alone, on every transport (the peer's TCP/TLS shim
/// listens on IPv6 loopback there).
pub fn ice_servers(plan: &Plan, servers: &[Server], scn: &Scenario) -> anyhow::Result<Vec<IceServer>> {
    let node = |name: &str| plan.node(name).ok_or_else(|| anyhow!("server `{name}` is not in the plan"));
    let by_name = plan.service(ServiceKind::Dns.name()).is_some();
    // The server's hosts for URLs: its name, or its first IPv4 address then its IPv6 one.
    let hosts = |name: &str| -> anyhow::Result<Vec<UrlHost>> {
        let n = node(name)?;
        let v4 = n.addresses.first().copied().ok_or_else(|| anyhow!("server `{name}` has no address"))?;
        if by_name {
            return Ok(vec![UrlHost::Name(crate::dns::fqdn(name))]);
        }
        let v6 = n.addresses6.first().map(|a| UrlHost::Addr(IpAddr::V6(*a)));
        Ok(std::iter::once(UrlHost::Addr(IpAddr::V4(v4))).chain(v6).collect())
    };
    // The server's first service that `wants` accepts (validation made sure there is one).
    let service = |node: &str, wants: fn(ServiceKind) -> bool| {
        servers
            .iter()
            .find(|s| s.name == node)
            .and_then(|s| s.services.iter().copied().find(|v| wants(v.kind)))
            .ok_or_else(|| anyhow!("server `{node}` runs no such service"))
    };
    let mut out = Vec::new();
    for s in &scn.stun {
        let svc = service(s, ServiceKind::answers_stun)?;
        let urls = hosts(s)?.iter().map(|h| stun_url(svc, h)).collect();
        out.push(IceServer { urls, ..Default::default() });
    }
    if let Some(t) = &scn.turn {
        // By default all three transports, as a browser would be configured: UDP, TCP on
        // the same port, TLS on 443. The peer carries TCP/TLS through its TURN shim.
        let (svc, hosts) = (service(t, |k| k == ServiceKind::Turn)?, hosts(t)?);
        let urls: Vec<String> =
            hosts.iter().flat_map(|h| scn.turn_transports.iter().map(move |tr| turn_url(svc, h, tr))).collect();
        out.push(IceServer {
            urls,
            username: LAB_CREDENTIALS.user.into(),
            credential: LAB_CREDENTIALS.password.into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPO: &str = r#"
[host.a]
on = "internet"
[host.b]
on = "internet"
[server.st]
services = ["stun"]
[server.tu]
services = [{ kind = "turn", implementation = "built-in" }]
[scenario]
offerer = "a"
answerer = "b"
stun = ["st", "tu"]
turn = "tu"
"#;

    #[test]
    fn urls_and_credentials_come_from_the_services() {
        let spec = crate::spec::parse_str("t.toml", TOPO).unwrap();
        let topo = &spec.topology;
        let plan = crate::plan::plan(topo, "icelab-t");
        let scn = spec.scenario.clone().unwrap();
        let ip = |n: &str| topo.servers.iter().find(|s| s.name == n).unwrap().addresses[0];
        let (st, tu) = (ip("st"), ip("tu"));
        let got = ice_servers(&plan, &topo.servers, &scn).unwrap();
        let urls: Vec<Vec<String>> = got.iter().map(|s| s.urls.clone()).collect();
        assert_eq!(
            urls,
            vec![
                vec![format!("stun:{st}:3478")],
                vec![format!("stun:{tu}:3478")],
                vec![
                    format!("turn:{tu}:3478?transport=udp"),
                    format!("turn:{tu}:3478?transport=tcp"),
                    format!("turns:{tu}:443"),
                ],
            ]
        );
        assert_eq!((got[0].username.as_str(), got[0].credential.as_str()), ("", ""));
        assert_eq!((got[2].username.as_str(), got[2].credential.as_str()), ("icelab", "icelab"));
    }

    #[test]
    fn a_server_missing_from_the_plan_is_an_error() {
        let spec = crate::spec::parse_str("t.toml", TOPO).unwrap();
        let mut plan = crate::plan::plan(&spec.topology, "icelab-t");
        plan.nodes.retain(|n| n.name != "tu");
        let e = ice_servers(&plan, &spec.topology.servers, spec.scenario.as_ref().unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "server `tu` is not in the plan");
    }
}
