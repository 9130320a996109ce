//! `icelab probe` and the STUN server process.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use icelab::fabric::registry;
use icelab::stun::{ProbeOptions, StunServer, StunServerConfig};
use icelab::verify;

use super::error::{CliError, CliResult, Done, Kind, OrKind};
use super::out::{self, errln, outln};

pub(crate) fn probe(
    name: &str,
    node: &str,
    server: Option<SocketAddr>,
    lifetime_max: Option<f64>,
    json: bool,
) -> CliResult {
    super::lab_name(name)?;
    let rec = registry::load(name).or_kind(Kind::BadInput)?;
    let Some(n) = rec.plan.node(node) else {
        let known: Vec<&str> = rec.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        return Err(CliError::bad_input(format!("lab {name} has no node `{node}`; nodes: {}", known.join(", "))));
    };
    // An IPv6-only node probes the STUN server's IPv6 address.
    let default = || {
        let v4 = verify::stun_server(&rec.plan)?;
        if !n.addresses.is_empty() {
            return Ok(v4);
        }
        let stun = icelab::servers::ServiceKind::Stun.name();
        let node = rec.plan.service(stun).and_then(|s| rec.plan.node(&s.node));
        let v6 = node.and_then(|s| s.addresses6.first()).copied();
        v6.map(|a| SocketAddr::new(IpAddr::V6(a), v4.port())).ok_or_else(|| {
            anyhow::anyhow!(
                "node `{node_name}` has IPv6 alone, and the STUN server no IPv6 address",
                node_name = n.name
            )
        })
    };
    let server = server.map_or_else(default, Ok).or_kind(Kind::BadInput)?;
    let opts = ProbeOptions { lifetime_max: lifetime_max.map(Duration::from_secs_f64), ..Default::default() };
    if lifetime_max.is_some() && !json {
        errln!("measuring the mapping lifetime: this takes up to about {:.0} s", lifetime_max.unwrap_or(0.0) * 2.0);
    }
    let r = verify::probe_in(&n.ns, server, opts).or_kind(Kind::CouldNotRun)?;
    if json {
        out::json(&r);
    } else {
        outln!("{r}");
    }
    Ok(Done::Ok)
}

/// `icelab dns-server`: the lab's DNS, until the lab kills it.
pub(crate) async fn dns_server(zone: icelab::dns::Zone, listen: &[std::net::SocketAddr]) -> CliResult {
    icelab::dns::serve(zone, listen, || outln!("ready")).await.or_kind(Kind::CouldNotRun)?;
    Ok(Done::Ok)
}

/// `icelab stun-server`: one server on the IPv4 addresses and, with `v6`, one more on the
/// IPv6 addresses (same ports), so both families get RFC 5780 answers of their own.
/// With `stats`, both count their answers into one file of figures.
pub(crate) async fn stun_server(
    (primary, alternate): (IpAddr, Option<IpAddr>),
    v6: Option<(IpAddr, Option<IpAddr>)>,
    (port, alt_port): (u16, u16),
    stats: Option<std::path::PathBuf>,
) -> CliResult {
    let counters = stats.as_ref().map(|_| std::sync::Arc::new(icelab::counters::ServerCounters::default()));
    let mut servers = Vec::new();
    for (primary, alternate) in std::iter::once((primary, alternate)).chain(v6) {
        let cfg =
            StunServerConfig { primary, alternate, port, alt_port, counters: counters.clone(), ..Default::default() };
        servers.push(StunServer::start(cfg).await.or_kind(Kind::CouldNotRun)?);
    }
    let file = stats.zip(counters).map(|(path, stats)| icelab::counters::StatsFile { path, stats });
    let done = super::run::ready_until_terminated(file.as_ref(), "STUN").await;
    drop(servers);
    done
}
