//! coturn as a lab service: the config the plan writes for it (pure text) and the steps
//! that start it. Its files live in the lab's state directory, named after its namespace.

use std::net::{Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use super::{LAB_CREDENTIALS, ServiceKind};
use crate::plan::{Readiness, STUN_PORTS, Step, TURN_PORT};
use crate::topology::Server;
use crate::turn::TLS_PORT;

/// coturn's server program (Debian package `coturn`).
pub const COTURN_PROGRAM: &str = "turnserver";

/// Relay ports handed out for allocations (coturn's defaults, written out).
const RELAY_PORTS: (u16, u16) = (49152, 65535);

/// The files of the coturn instance in namespace `ns`.
struct Files {
    conf: String,
    log: String,
    pid: String,
    db: String,
    cert: String,
    key: String,
}

/// The log of the coturn instance in namespace `ns`, in the lab's state directory `state`.
pub fn coturn_log(state: &str, ns: &str) -> String {
    files(state, ns).log
}

fn files(state: &str, ns: &str) -> Files {
    let f = |what: &str| format!("{state}/coturn-{ns}.{what}");
    Files { conf: f("conf"), log: f("log"), pid: f("pid"), db: f("db"), cert: f("pem"), key: f("key") }
}

/// coturn's config for `kind` on `server`: relays may reach `lab_subnets` (either
/// family) and nothing else. In an IPv6 lab it listens and relays on the server's IPv6
/// address too (RFC 6156: a client that asks for no family gets an IPv4 relay). Paths
/// (log, pid, database, certificate) are on the command line, so the text depends only
/// on the topology.
pub fn coturn_config(kind: ServiceKind, server: &Server, lab_subnets: &[IpNet]) -> String {
    let mut c = format!("# coturn for `{}` ({kind}), written by icelab's plan\n", server.name);
    let mut line = |l: &str| {
        c.push_str(l);
        c.push('\n');
    };
    match kind {
        ServiceKind::Turn => {
            let ip = server.addresses[0];
            let lc = LAB_CREDENTIALS;
            if let Some(ip6) = server.addresses6.first() {
                line(&format!("listening-ip={ip6}"));
                line(&format!("relay-ip={ip6}"));
            }
            for l in [
                format!("listening-ip={ip}"),
                format!("relay-ip={ip}"),
                format!("listening-port={TURN_PORT}"),
                format!("tls-listening-port={TLS_PORT}"),
                format!("min-port={}", RELAY_PORTS.0),
                format!("max-port={}", RELAY_PORTS.1),
                "lt-cred-mech".into(),
                "fingerprint".into(),
                format!("realm={}", lc.realm),
                format!("user={}:{}", lc.user, lc.password),
                // Allowed ranges win over denied ones (coturn checks them first), so this
                // is "the lab's subnets and nothing else". Loopback stays refused.
                "denied-peer-ip=0.0.0.0-255.255.255.255".into(),
                "denied-peer-ip=::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            ] {
                line(&l);
            }
            for net in lab_subnets {
                line(&format!("allowed-peer-ip={}-{}", net.network(), net.broadcast()));
            }
            // The lab offers no DTLS, and RFC 5780 is the STUN service's job.
            for l in ["no-multicast-peers", "no-dtls", "no-rfc5780"] {
                line(l);
            }
        }
        _ => {
            // STUN only; with two addresses coturn answers RFC 5780's change requests
            // (its alternate port is the listening port + 1, icelab's alternate port).
            debug_assert_eq!(STUN_PORTS.1, STUN_PORTS.0 + 1);
            for a in &server.addresses {
                line(&format!("listening-ip={a}"));
            }
            for a in &server.addresses6 {
                line(&format!("listening-ip={a}"));
            }
            line(&format!("listening-port={}", STUN_PORTS.0));
            line("stun-only");
            line("no-tls");
            line("no-dtls");
            if server.addresses.len() < 2 {
                line("no-rfc5780");
            }
        }
    }
    // `verbose` logs each session and TURN request (not the relayed data) and a session's
    // usage when it closes; `log-binding` logs STUN bindings too, and every line starts
    // with its Unix time: the run's server-side figures are read from this log
    // (`stats::parse_coturn_log`).
    for l in [
        "verbose",
        "log-binding",
        "new-log-timestamp",
        "new-log-timestamp-format=%s",
        "no-cli",
        "no-stdout-log",
        "simple-log",
    ] {
        line(l);
    }
    c
}

/// The steps that start coturn for `kind` of `server` in `ns`: its certificate (TURN
/// only), its config, then the server, ready once it answers STUN on its UDP port.
pub(super) fn launch(kind: ServiceKind, server: &Server, lab_subnets: &[IpNet], ns: &str, state: &str) -> Vec<Step> {
    let f = files(state, ns);
    let ip: Ipv4Addr = server.addresses[0];
    let mut steps = Vec::new();
    let mut args = vec!["-c".to_string(), f.conf.clone()];
    for (flag, path) in [("--log-file", &f.log), ("--pidfile", &f.pid), ("--userdb", &f.db)] {
        args.extend([flag.to_string(), path.clone()]);
    }
    if kind == ServiceKind::Turn {
        let names = vec![ip.to_string(), "localhost".into()];
        steps.push(Step::TlsCert { ns: ns.into(), names, cert: f.cert.clone(), key: f.key.clone() });
        args.extend(["--cert".into(), f.cert, "--pkey".into(), f.key]);
    }
    steps.push(Step::WriteFile { ns: ns.into(), path: f.conf, text: coturn_config(kind, server, lab_subnets) });
    let port = if kind == ServiceKind::Turn { TURN_PORT } else { STUN_PORTS.0 };
    steps.push(Step::Spawn {
        ns: ns.into(),
        service: kind.name().into(),
        program: COTURN_PROGRAM.into(),
        args,
        ready: Readiness::StunAnswers { addr: SocketAddr::from((ip, port)) },
        creates: Vec::new(),
    });
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The config's `key=value` and flag lines.
    fn lines(conf: &str) -> Vec<&str> {
        conf.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn topo(services: &str) -> crate::topology::Topology {
        let src = format!(
            "[router.r]\nwan = \"internet\"\n[router.r2]\nwan = \"r\"\n[server.relay]\nservices = {services}\n"
        );
        crate::spec::parse_str("t.toml", &src).unwrap().topology
    }

    #[test]
    fn turn_config() {
        let t = topo(r#"[{ kind = "turn", implementation = "coturn" }]"#);
        let conf = coturn_config(ServiceKind::Turn, &t.servers[0], &super::super::launch::relay_subnets(&t));
        insta::assert_snapshot!(conf);
        let l = lines(&conf);
        assert!(l.contains(&"user=icelab:icelab") && l.contains(&"realm=icelab") && l.contains(&"no-cli"));
    }

    #[test]
    fn stun_config() {
        let t = topo(r#"[{ kind = "stun", implementation = "coturn" }]"#);
        insta::assert_snapshot!(coturn_config(ServiceKind::Stun, &t.servers[0], &[]));
    }

    #[test]
    fn turn_steps_write_cert_and_config_then_start_turnserver() {
        let t = topo(r#"[{ kind = "turn", implementation = "coturn" }]"#);
        let steps = launch(ServiceKind::Turn, &t.servers[0], &[], "icelab-t-relay", "/run/icelab/t");
        let [Step::TlsCert { cert, key, .. }, Step::WriteFile { path, .. }, Step::Spawn { program, args, ready, .. }] =
            steps.as_slice()
        else {
            panic!("cert, config, spawn: {steps:?}")
        };
        assert_eq!(program, COTURN_PROGRAM);
        assert_eq!(path, "/run/icelab/t/coturn-icelab-t-relay.conf");
        let flag = |f: &str| args.iter().position(|a| a == f).map(|i| args[i + 1].as_str());
        assert_eq!(
            (flag("-c"), flag("--cert"), flag("--pkey")),
            (Some(path.as_str()), Some(cert.as_str()), Some(key.as_str()))
        );
        let addr = SocketAddr::from((t.servers[0].addresses[0], 3478));
        assert_eq!(*ready, Readiness::StunAnswers { addr });
    }
}
