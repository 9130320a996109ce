//! How the plan starts, stops and reaches each service (pure: plan steps and ports).

use ipnet::{Ipv4Net, Ipv6Net};

use super::{Implementation, LAB_CREDENTIALS, Service, ServiceKind};
use crate::plan::{ECHO_PORT, ICELAB_PROGRAM, Readiness, STUN_PORTS, Step, TURN_PORT};
use crate::topology::{PUBLIC_RANGES, Server, Topology};

/// The steps that start `svc` of `server` in its namespace `ns`; its files go in the
/// lab's state directory `state` (none for built-in echo: one lab-wide responder
/// serves every namespace).
pub fn launch(svc: Service, server: &Server, topo: &Topology, ns: &str, state: &str) -> Vec<Step> {
    match svc.implementation {
        // Built-in servers are `icelab` subcommands that print `ready` once listening.
        Implementation::BuiltIn => {
            built_in_args(svc.kind, server, topo, &super::stats::stats_file(state, svc.kind, ns))
                .map(|args| Step::Spawn {
                    ns: ns.into(),
                    service: svc.kind.name().into(),
                    program: ICELAB_PROGRAM.into(),
                    args,
                    ready: Readiness::ReadyLine,
                    creates: Vec::new(),
                })
                .into_iter()
                .collect()
        }
        Implementation::Coturn => super::coturn::launch(svc.kind, server, &relay_subnets(topo), ns, state),
    }
}

/// The steps that stop `svc` running in `ns`.
pub fn stop(svc: Service, ns: &str) -> Vec<Step> {
    match svc.implementation {
        // Both are one process with a pid file of the plan's.
        Implementation::BuiltIn | Implementation::Coturn => {
            vec![Step::StopService { ns: ns.into(), service: svc.kind.name().into() }]
        }
    }
}

/// The port clients reach `svc` on (UDP; TURN and echo also TCP).
pub fn port(svc: Service) -> u16 {
    match (svc.implementation, svc.kind) {
        (_, ServiceKind::Stun) => STUN_PORTS.0,
        (_, ServiceKind::Turn) => TURN_PORT,
        (_, ServiceKind::Echo) => ECHO_PORT,
        (_, ServiceKind::Dns) => crate::dns::PORT,
    }
}

/// Checks, before a lab is built, that every service's program (and a NAT64 router's
/// translator) is installed here, and that a CPU-limited server can have its cgroup.
pub fn check_programs(topo: &Topology) -> Result<(), String> {
    use crate::nat::nat64;
    if let Some((s, cores)) = topo.servers.iter().find_map(|s| Some((s, s.cpu?)))
        && let Err(e) = crate::fabric::cgroup::Hierarchy::find()
    {
        return Err(format!("server `{}` has cpu = {cores}, but {e:#}", s.name));
    }
    if let Some(r) = topo.routers.iter().find(|r| r.does_nat64())
        && crate::peer::driver::find_program(nat64::PROGRAM).is_none()
    {
        return Err(format!(
            "router `{}` does NAT64, but `{}` is not installed: install it with `apt-get install tayga`",
            r.name,
            nat64::PROGRAM
        ));
    }
    for s in &topo.servers {
        for svc in &s.services {
            if svc.implementation == Implementation::Coturn
                && crate::peer::driver::find_program(super::COTURN_PROGRAM).is_none()
            {
                return Err(format!(
                    "server `{}` runs {svc}, but `{}` is not installed: install it with `apt-get install coturn`",
                    s.name,
                    super::COTURN_PROGRAM
                ));
            }
        }
    }
    Ok(())
}

/// The subnets a relay may reach: the public ranges and every LAN of the lab.
pub(super) fn lab_subnets(topo: &Topology) -> Vec<Ipv4Net> {
    let public = PUBLIC_RANGES.iter().map(|r| r.parse().expect("a valid range"));
    public.chain(topo.routers.iter().map(|r| r.lan)).collect()
}

/// Every subnet a relay may reach, both families.
pub(super) fn relay_subnets(topo: &Topology) -> Vec<ipnet::IpNet> {
    let v4 = lab_subnets(topo).into_iter().map(ipnet::IpNet::V4);
    v4.chain(lab_subnets6(topo).into_iter().map(ipnet::IpNet::V6)).collect()
}

/// In an IPv6 lab, the IPv6 subnets a relay may reach: the documentation range (the
/// internet and every public LAN) and every NAT66 LAN.
pub(super) fn lab_subnets6(topo: &Topology) -> Vec<Ipv6Net> {
    if !topo.is_ipv6() {
        return Vec::new();
    }
    let public: Ipv6Net = crate::topology::ipv6::PUBLIC_RANGE_V6.parse().expect("a valid range");
    let nat66 = topo.routers.iter().filter_map(|r| r.ipv6).map(|v| v.lan).filter(|lan| !public.contains(lan));
    std::iter::once(public).chain(nat66).collect()
}

/// Command line of a built-in service after the `icelab` program name.
/// `stats` is the TURN server's stats file.
fn built_in_args(kind: ServiceKind, s: &Server, topo: &Topology, stats: &str) -> Option<Vec<String>> {
    match kind {
        ServiceKind::Turn => {
            let c = LAB_CREDENTIALS;
            let mut a = vec!["turn-server".to_string(), "--public-ip".into(), s.addresses[0].to_string()];
            if let Some(ip6) = s.addresses6.first() {
                a.extend(["--public-ip6".into(), ip6.to_string()]);
            }
            for (flag, value) in [("--realm", c.realm), ("--user", c.user), ("--password", c.password)] {
                a.extend([flag.to_string(), value.to_string()]);
            }
            // Relays reach the lab (public ranges and every LAN) and nothing else.
            for net in relay_subnets(topo) {
                a.extend(["--allow".into(), net.to_string()]);
            }
            a.extend(["--stats".into(), stats.into()]);
            Some(a)
        }
        ServiceKind::Stun => {
            let mut a = vec!["stun-server".to_string(), "--primary".into(), s.addresses[0].to_string()];
            if let Some(alt) = s.addresses.get(1) {
                a.extend(["--alternate".into(), alt.to_string()]);
            }
            if let Some(p6) = s.addresses6.first() {
                a.extend(["--primary6".into(), p6.to_string()]);
            }
            if let Some(alt6) = s.addresses6.get(1) {
                a.extend(["--alternate6".into(), alt6.to_string()]);
            }
            a.extend(["--port".into(), STUN_PORTS.0.to_string(), "--alt-port".into(), STUN_PORTS.1.to_string()]);
            a.extend(["--stats".into(), stats.into()]);
            Some(a)
        }
        ServiceKind::Echo => None,
        ServiceKind::Dns => Some(dns_args(s, topo)),
    }
}

/// `icelab dns-server`: it listens on the server's first address of each family and knows
/// every server of the lab by name; DNS64 for the LANs of NAT64 routers.
fn dns_args(s: &Server, topo: &Topology) -> Vec<String> {
    use crate::dns::{PORT, fqdn};
    let mut a = vec!["dns-server".to_string()];
    let first = |s: &Server| {
        let v4 = s.addresses.first().map(|x| std::net::IpAddr::V4(*x));
        v4.into_iter().chain(s.addresses6.first().map(|x| std::net::IpAddr::V6(*x)))
    };
    for ip in first(s) {
        a.extend(["--listen".into(), std::net::SocketAddr::new(ip, PORT).to_string()]);
    }
    for other in &topo.servers {
        for ip in first(other) {
            a.extend(["--record".into(), format!("{}={ip}", fqdn(&other.name))]);
        }
    }
    let carriers: Vec<Ipv6Net> =
        topo.routers.iter().filter(|r| r.does_nat64()).filter_map(|r| r.ipv6).map(|v| v.lan).collect();
    if !carriers.is_empty() {
        a.extend(["--dns64-prefix".into(), crate::nat::nat64::PREFIX.into()]);
        for lan in carriers {
            a.extend(["--dns64-client".into(), lan.to_string()]);
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topo(services: &str) -> Topology {
        let src = format!("[router.r]\nwan = \"internet\"\n[server.t]\nservices = {services}\n");
        crate::spec::parse_str("t.toml", &src).unwrap().topology
    }

    #[test]
    fn table_form_plans_exactly_like_the_name() {
        let by_name = crate::plan::plan(&topo(r#"["turn", "echo"]"#), "icelab-t");
        let by_table = crate::plan::plan(
            &topo(r#"[{ kind = "turn", implementation = "built-in" }, { kind = "echo" }]"#),
            "icelab-t",
        );
        assert_eq!(by_name, by_table);
    }

    #[test]
    fn timeline_restarts_coturn_with_its_own_spawn_step() {
        let src = r#"
[router.r]
wan = "internet"
[host.a]
on = "r"
[host.b]
on = "r"
[server.t]
services = [{ kind = "turn", implementation = "coturn" }]
[scenario]
offerer = "a"
answerer = "b"
turn = "t"
[[event]]
at-ms = 1
turn = "stop"
server = "t"
[[event]]
at-ms = 2
turn = "start"
server = "t"
"#;
        let spec = crate::spec::parse_str("t.toml", src).unwrap();
        let opts = crate::plan::PlanOptions::default();
        let plan = crate::plan::plan_with(&spec.topology, &spec.events, "icelab-t", &opts);
        let spawn = plan.steps.iter().find(|s| matches!(s, Step::Spawn { service, .. } if service == "turn")).unwrap();
        assert!(matches!(spawn, Step::Spawn { program, .. } if program == crate::servers::COTURN_PROGRAM));
        assert_eq!(plan.events[0].steps, vec![Step::StopService { ns: "icelab-t-t".into(), service: "turn".into() }]);
        assert_eq!(plan.events[1].steps, vec![spawn.clone()]);
    }

    #[test]
    fn built_in_turn_gets_the_lab_credentials_and_only_lab_subnets() {
        let t = topo(r#"["turn"]"#);
        let steps = launch(Service::built_in(ServiceKind::Turn), &t.servers[0], &t, "icelab-t-t", "/s");
        let [Step::Spawn { service, args, .. }] = steps.as_slice() else { panic!("one spawn: {steps:?}") };
        assert_eq!(service, "turn");
        let flag = |f: &str| args.iter().position(|a| a == f).map(|i| args[i + 1].as_str());
        assert_eq!(
            (flag("--realm"), flag("--user"), flag("--password")),
            (Some("icelab"), Some("icelab"), Some("icelab"))
        );
        let allowed: Vec<&str> = args.windows(2).filter(|w| w[0] == "--allow").map(|w| w[1].as_str()).collect();
        let lan = t.routers[0].lan.to_string();
        assert_eq!(allowed, [PUBLIC_RANGES.as_slice(), &[lan.as_str()]].concat());
        assert!(launch(Service::built_in(ServiceKind::Echo), &t.servers[0], &t, "icelab-t-t", "/s").is_empty());
        assert_eq!(
            stop(Service::built_in(ServiceKind::Turn), "icelab-t-t"),
            vec![Step::StopService { ns: "icelab-t-t".into(), service: "turn".into() }]
        );
    }
}
