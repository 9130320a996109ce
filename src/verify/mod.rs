//! Proving that each NAT behaves as its file says: the RFC 5780 probe run from a
//! node on the NAT's LAN against the lab's STUN server.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

use crate::fabric::netns;
use crate::nat::{Filtering, Mapping, NatMode};
use crate::plan::Plan;
use crate::stun::{Behaviour, ProbeOptions, ProbeReport};
use crate::topology::{Topology, Uplink};

/// Runs the RFC 5780 probe inside namespace `ns` (sockets are created there).
pub fn probe_in(ns: &str, server: SocketAddr, opts: ProbeOptions) -> Result<ProbeReport> {
    let fd = netns::open(ns)?;
    netns::run_in(&fd, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(crate::stun::probe(server, opts))
    })?
}

/// The STUN server a lab's probes use.
pub fn stun_server(plan: &Plan) -> Result<SocketAddr> {
    plan.service("stun")
        .map(|s| s.address)
        .ok_or_else(|| anyhow!("the lab has no STUN server: add a [server.NAME] with services = [\"stun\"]"))
}

/// Expected vs observed behaviour of one NAT.
#[derive(Debug, Clone, Serialize)]
pub struct NatCheck {
    /// Router name.
    pub router: String,
    /// Node the probe ran in.
    pub vantage: Option<String>,
    /// Expected mapping (composed with upstream NATs).
    pub expected_mapping: Behaviour,
    /// Expected filtering (composed with upstream NATs).
    pub expected_filtering: Behaviour,
    /// Expected hairpinning (only checked when no NAT is upstream).
    pub expected_hairpinning: Option<bool>,
    /// What the probe saw.
    pub observed: Option<ProbeReport>,
    /// True when everything checked matched.
    pub ok: bool,
    /// Why not, or why it was not checked.
    pub problems: Vec<String>,
}

fn mapping_word(m: Mapping) -> Behaviour {
    match m {
        Mapping::EndpointIndependent => Behaviour::EndpointIndependent,
        Mapping::AddressDependent => Behaviour::AddressDependent,
        Mapping::AddressAndPortDependent => Behaviour::AddressAndPortDependent,
    }
}

fn filtering_word(f: Filtering) -> Behaviour {
    match f {
        Filtering::EndpointIndependent => Behaviour::EndpointIndependent,
        Filtering::AddressDependent => Behaviour::AddressDependent,
        Filtering::AddressAndPortDependent => Behaviour::AddressAndPortDependent,
    }
}

fn rank(b: Behaviour) -> u8 {
    match b {
        Behaviour::EndpointIndependent => 0,
        Behaviour::AddressDependent => 1,
        Behaviour::AddressAndPortDependent => 2,
    }
}

/// (mapping, filtering, hairpinning) one NAT shows on its own; None for no NAT.
fn own_behaviour(mode: NatMode) -> Option<(Behaviour, Behaviour, bool)> {
    match mode {
        NatMode::None => None,
        // A static 1:1 mapping forwards everything: endpoint-independent both ways.
        NatMode::OneToOne => Some((Behaviour::EndpointIndependent, Behaviour::EndpointIndependent, true)),
        NatMode::Napt(b) => Some((mapping_word(b.mapping), filtering_word(b.filtering), b.hairpinning)),
    }
}

/// What a probe on `router`'s LAN should see: nested NATs compose to the most
/// dependent mapping and the most restrictive filtering on the path.
pub fn expected(topo: &Topology, router: &str) -> Option<(Behaviour, Behaviour, Option<bool>)> {
    let r = topo.router(router)?;
    let (mut m, mut f, hairpin) = own_behaviour(r.nat)?;
    let mut upstream_nat = false;
    let mut up = &r.wan.uplink;
    while let Uplink::Router(p) = up {
        let parent = topo.router(p)?;
        if let Some((pm, pf, _)) = own_behaviour(parent.nat) {
            upstream_nat = true;
            m = if rank(pm) > rank(m) { pm } else { m };
            f = if rank(pf) > rank(f) { pf } else { f };
        }
        up = &parent.wan.uplink;
    }
    Some((m, f, if upstream_nat { None } else { Some(hairpin) }))
}

/// A node directly on `router`'s LAN to probe from: a host, else a child router.
fn vantage(topo: &Topology, router: &str) -> Option<String> {
    let on = |u: &Uplink| matches!(u, Uplink::Router(p) if p == router);
    topo.hosts
        .iter()
        .find(|h| on(&h.uplink.uplink))
        .map(|h| h.name.clone())
        .or_else(|| topo.routers.iter().find(|c| on(&c.wan.uplink)).map(|c| c.name.clone()))
}

/// Probes every NAT of a running lab and compares with the file.
pub fn verify(topo: &Topology, plan: &Plan) -> Result<Vec<NatCheck>> {
    let server = stun_server(plan)?;
    let mut out = Vec::new();
    for r in &topo.routers {
        let Some((em, ef, eh)) = expected(topo, &r.name) else {
            continue;
        };
        let mut check = NatCheck {
            router: r.name.clone(),
            vantage: vantage(topo, &r.name),
            expected_mapping: em,
            expected_filtering: ef,
            expected_hairpinning: eh,
            observed: None,
            ok: false,
            problems: Vec::new(),
        };
        let Some(v) = check.vantage.clone() else {
            check.problems.push("no host or router on its LAN to probe from".into());
            out.push(check);
            continue;
        };
        let ns = plan.node(&v).map(|n| n.ns.clone()).context("vantage node missing from plan")?;
        let report = probe_in(&ns, server, ProbeOptions::default())
            .with_context(|| format!("probing NAT `{}` from `{v}`", r.name))?;
        if report.mapping != Some(em) {
            check.problems.push(format!("mapping: expected {em}, observed {}", show(report.mapping)));
        }
        if report.filtering != Some(ef) {
            check.problems.push(format!("filtering: expected {ef}, observed {}", show(report.filtering)));
        }
        if let Some(h) = eh
            && report.hairpinning != Some(h)
        {
            check.problems.push(format!("hairpinning: expected {h}, observed {:?}", report.hairpinning));
        }
        check.ok = check.problems.is_empty();
        check.observed = Some(report);
        out.push(check);
    }
    Ok(out)
}

fn show(b: Option<Behaviour>) -> String {
    b.map_or("nothing (untestable)".into(), |b| b.to_string())
}
