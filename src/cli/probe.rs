//! `icelab probe` and the STUN server process.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use icelab::fabric::registry;
use icelab::stun::{ProbeOptions, StunServer, StunServerConfig};
use icelab::verify;

use super::{BAD_INPUT, FAILED, fail, print_json};

pub fn probe(name: &str, node: &str, server: Option<SocketAddr>, lifetime_max: Option<f64>, json: bool) -> ExitCode {
    let rec = match registry::load(name) {
        Ok(r) => r,
        Err(e) => return fail(BAD_INPUT, format!("{e:#}")),
    };
    let Some(n) = rec.plan.node(node) else {
        let known: Vec<&str> = rec.plan.nodes.iter().map(|n| n.name.as_str()).collect();
        return fail(BAD_INPUT, format!("lab {name} has no node `{node}`; nodes: {}", known.join(", ")));
    };
    let server = match server.map_or_else(|| verify::stun_server(&rec.plan), Ok) {
        Ok(s) => s,
        Err(e) => return fail(BAD_INPUT, e),
    };
    let opts = ProbeOptions { lifetime_max: lifetime_max.map(Duration::from_secs_f64), ..Default::default() };
    if lifetime_max.is_some() && !json {
        eprintln!("measuring the mapping lifetime: this takes up to about {:.0} s", lifetime_max.unwrap_or(0.0) * 2.0);
    }
    match verify::probe_in(&n.ns, server, opts) {
        Ok(r) => {
            if json {
                print_json(&r);
            } else {
                println!("{r}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}

pub async fn stun_server(primary: IpAddr, alternate: Option<IpAddr>, port: u16, alt_port: u16) -> ExitCode {
    let cfg = StunServerConfig { primary, alternate, port, alt_port, ..Default::default() };
    match StunServer::start(cfg).await {
        Ok(server) => {
            println!("ready");
            // Runs until the lab kills it.
            std::future::pending::<()>().await;
            drop(server);
            ExitCode::SUCCESS
        }
        Err(e) => fail(FAILED, format!("{e:#}")),
    }
}
