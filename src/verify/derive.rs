//! Topology -> what to probe and what each probe must show (pure).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use serde::Serialize;

use super::fwplan;
use super::model::{self, Leg, Path, Proto, Verdict};
use super::nat::{self, NatExpect};
use crate::plan::STUN_PORTS;
use crate::servers::ServiceKind;
use crate::stun::Behaviour;
use crate::topology::Topology;

/// Ports of the probe server's second RFC 5780 grid, outside every preset's port list,
/// for NAT checks behind `stun-port-blocked` and for unsolicited-inbound probes.
pub const ALT_GRID: (u16, u16) = (40000, 40001);
/// TCP port of the probe server's call-back service (unsolicited TCP to a mapping),
/// outside every preset's port list.
pub const TCP_CALLBACK: u16 = 40002;

/// Where a probe is sent from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// A node of the lab.
    Node(String),
    /// The temporary probe server on the internet.
    ProbeServer,
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Action {
    /// A STUN Binding request; it passes when answered.
    Stun {
        /// Server address.
        to: SocketAddr,
    },
    /// A TCP connection and one echo through it.
    Tcp {
        /// Listener address.
        to: SocketAddr,
    },
    /// A Binding to `via` opens a mapping; then the answer to a Binding with
    /// CHANGE-REQUEST (address and port) arrives unsolicited from the other address.
    Unsolicited {
        /// The primary address of the grid.
        via: SocketAddr,
    },
    /// A TCP connection to the call-back service at `via` opens a mapping from a port
    /// that also listens; the service then connects to that mapping from its other
    /// address, unsolicited.
    UnsolicitedTcp {
        /// The call-back service (primary address).
        via: SocketAddr,
    },
    /// A STUN Binding request; it passes when answered with `mapped` as the mapped
    /// address (the port is not compared): what a translation or its absence shows.
    StunMapped {
        /// Server address.
        to: SocketAddr,
        /// The address the server must see.
        mapped: std::net::IpAddr,
    },
    /// One UDP echo.
    UdpEcho {
        /// Echo responder.
        to: SocketAddr,
    },
}

/// Pass or drop, as the file says, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    /// True: must pass; false: must be dropped; None: the model cannot tell.
    pub pass: Option<bool>,
    /// The reason.
    pub why: String,
}

impl Expectation {
    pub(super) fn from(v: Verdict) -> Self {
        match v {
            Verdict::Pass => Expectation { pass: Some(true), why: "allowed".into() },
            Verdict::Drop(why) => Expectation { pass: Some(false), why },
            Verdict::Unknown(why) => Expectation { pass: None, why },
        }
    }
}

/// One firewall probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FwProbe {
    /// Label, e.g. `udp 3478 out (STUN/TURN)`.
    pub what: String,
    /// Sender.
    pub from: Place,
    /// What it sends.
    pub action: Action,
    /// What the file says must happen.
    pub expected: Expectation,
}

/// The checks of one firewall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirewallPlan {
    /// Node with the firewall (router or host).
    pub node: String,
    /// Its presets and rules, as written.
    pub declared: String,
    /// Node the probes go out from.
    pub vantage: Option<String>,
    /// Probes in report order.
    pub probes: Vec<FwProbe>,
    /// Why something is not probed.
    pub notes: Vec<String>,
}

/// The check of one NAT (or of a plain router's transparency).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NatPlan {
    /// Router name.
    pub router: String,
    /// What the probe must see.
    pub expect: NatExpect,
    /// Filtering as seen through the firewalls on the path (Err: cannot tell, why).
    pub filtering: Option<Result<Behaviour, String>>,
    /// Node the probe runs in.
    pub vantage: Option<String>,
    /// STUN server (primary address) it uses.
    pub server: Option<SocketAddr>,
    /// True when that is the temporary probe server.
    pub own_server: bool,
    /// Why it is not checked.
    pub note: Option<String>,
}

/// What the temporary probe server listens on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeServerSpec {
    /// Primary and alternate address, unused by the lab, in 198.51.100.0/24.
    pub addresses: [Ipv4Addr; 2],
    /// RFC 5780 STUN grids (port, alternate port) on both addresses.
    pub grids: Vec<(u16, u16)>,
    /// Single-address STUN servers on the primary address.
    pub udp: Vec<u16>,
    /// TCP echo listeners on the primary address.
    pub tcp: Vec<u16>,
    /// The TCP call-back service's port on the primary address (it calls back from the
    /// alternate address).
    pub callback: Option<u16>,
}

/// Everything `verify` probes in one lab.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyPlan {
    /// One per router with something to check.
    pub nats: Vec<NatPlan>,
    /// One per firewall.
    pub firewalls: Vec<FirewallPlan>,
    /// The probe server, when anything needs it.
    pub probe_server: Option<ProbeServerSpec>,
    /// Remarks on the whole lab.
    pub notes: Vec<String>,
}

/// Two addresses of 198.51.100.0/24 that no node of the lab uses, from the top down.
pub fn free_addresses(topo: &Topology) -> Option<[Ipv4Addr; 2]> {
    let mut used: BTreeSet<Ipv4Addr> = topo.servers.iter().flat_map(|s| s.addresses.iter().copied()).collect();
    used.extend(topo.hosts.iter().map(|h| h.uplink.address));
    used.extend(topo.routers.iter().flat_map(|r| [r.wan.address, r.lan_address]));
    let mut free = (2..=254u8).rev().map(|i| Ipv4Addr::new(198, 51, 100, i)).filter(|a| !used.contains(a));
    Some([free.next()?, free.next()?])
}

pub(super) fn v4(a: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(a, port)
}

/// A STUN grid: primary and alternate address, port and alternate port.
#[derive(Clone, Copy)]
pub(super) struct Grid {
    pub(super) ips: [Ipv4Addr; 2],
    pub(super) ports: (u16, u16),
    pub(super) own: bool,
}

/// Whether the RFC 5780 exchange with `g` crosses the firewalls on `path`, and the
/// unsolicited answers of filtering tests II and III.
fn grid_reach(path: &Path, g: Grid) -> (Verdict, Verdict, Verdict) {
    let mut legs = Vec::new();
    for ip in g.ips {
        for port in [g.ports.0, g.ports.1] {
            legs.extend(Leg::request_reply(Proto::Udp, v4(ip, port)));
        }
    }
    let unsolicited = |ip, port| Leg { outbound: false, proto: Proto::Udp, far: v4(ip, port), near_port: 0, new: true };
    (
        model::evaluate(path, &legs),
        model::evaluate(path, &[unsolicited(g.ips[1], g.ports.1)]),
        model::evaluate(path, &[unsolicited(g.ips[0], g.ports.1)]),
    )
}

fn nat_plan(topo: &Topology, router: &str, expect: NatExpect, grids: &[Grid]) -> NatPlan {
    let mut p = NatPlan {
        router: router.into(),
        expect,
        filtering: None,
        vantage: None,
        server: None,
        own_server: false,
        note: None,
    };
    let mut members = nat::lan_members(topo, router);
    // The checks are IPv4 probes: an IPv6-only host has no IPv4 to send them from.
    members.retain(|m| topo.host(m).is_none_or(|h| h.family.has_v4()));
    if members.is_empty() {
        p.note = Some("nothing on its LAN to probe from (add a host on it to check it)".into());
        return p;
    }
    let mut blocked = None;
    for m in &members {
        let Some(path) = model::path(topo, m, None) else { continue };
        for g in grids {
            let (reach, t2, t3) = grid_reach(&path, *g);
            if reach != Verdict::Pass {
                blocked = blocked.or(Some(format!("from {m}: {}", reach.reason())));
                continue;
            }
            p.vantage = Some(m.to_string());
            p.server = Some(v4(g.ips[0], g.ports.0).into());
            p.own_server = g.own;
            if let NatExpect::Translates { filtering, .. } = expect {
                p.filtering = Some(nat::filtering_seen(filtering, &t2, &t3));
            }
            return p;
        }
    }
    let why = blocked.unwrap_or_default();
    p.note = Some(format!("no UDP path from its LAN to a STUN server ({why}); see the firewall lines"));
    p
}

/// Derives every check of a lab from its topology.
pub fn derive(topo: &Topology) -> Result<VerifyPlan, String> {
    let server = free_addresses(topo).ok_or("no free address in 198.51.100.0/24 for the probe server")?;
    let mut grids = Vec::new();
    if let Some(s) =
        topo.servers.iter().find(|s| s.services.iter().any(|x| x.kind == ServiceKind::Stun) && s.addresses.len() > 1)
    {
        grids.push(Grid { ips: [s.addresses[0], s.addresses[1]], ports: STUN_PORTS, own: false });
    }
    grids.push(Grid { ips: server, ports: STUN_PORTS, own: true });
    grids.push(Grid { ips: server, ports: ALT_GRID, own: true });
    let mut vp = VerifyPlan { nats: Vec::new(), firewalls: Vec::new(), probe_server: None, notes: Vec::new() };
    for r in &topo.routers {
        if let Some(e) = nat::expected(topo, &r.name) {
            vp.nats.push(nat_plan(topo, &r.name, e, &grids));
        }
    }
    let walls =
        topo.routers.iter().map(|r| (&r.name, &r.firewall)).chain(topo.hosts.iter().map(|h| (&h.name, &h.firewall)));
    for (node, fw) in walls {
        if let Some(fw) = fw {
            vp.firewalls.push(fwplan::firewall_plan(topo, node, fw, server));
        }
    }
    let fw_probes: Vec<&FwProbe> = vp.firewalls.iter().flat_map(|f| &f.probes).collect();
    if vp.nats.iter().any(|n| n.own_server) || !fw_probes.is_empty() {
        let mut spec = ProbeServerSpec {
            addresses: server,
            grids: vec![STUN_PORTS, ALT_GRID],
            udp: vec![],
            tcp: vec![],
            callback: None,
        };
        let grid_ports = [STUN_PORTS.0, STUN_PORTS.1, ALT_GRID.0, ALT_GRID.1];
        for pr in &fw_probes {
            match &pr.action {
                Action::Stun { to } if !grid_ports.contains(&to.port()) => spec.udp.push(to.port()),
                Action::Tcp { to } if to.ip() == std::net::IpAddr::V4(server[0]) => spec.tcp.push(to.port()),
                Action::UnsolicitedTcp { via } => spec.callback = Some(via.port()),
                _ => {}
            }
        }
        spec.udp.sort_unstable();
        spec.udp.dedup();
        spec.tcp.sort_unstable();
        spec.tcp.dedup();
        vp.probe_server = Some(spec);
    }
    // IPv6 probes use the lab's own STUN server: they never need the probe server.
    vp.firewalls.extend(super::v6plan::ipv6_plans(topo));
    if vp.nats.is_empty() && vp.firewalls.is_empty() {
        vp.notes.push("no NAT and no firewall: nothing to verify".into());
    }
    Ok(vp)
}
