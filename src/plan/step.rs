//! The step vocabulary: every change a lab ever sees, at build time or mid-call.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::impair::{Impairment, LinkDir};

/// One action on the kernel. Every step names the namespace it acts in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Create a named network namespace (visible to `ip netns`).
    AddNamespace {
        /// Namespace name.
        ns: String,
    },
    /// Write a sysctl inside a namespace (only `net.*` keys, which are per namespace).
    Sysctl {
        /// Namespace name.
        ns: String,
        /// Dotted key, e.g. `net.ipv4.ip_forward`.
        key: String,
        /// Value to write.
        value: String,
    },
    /// Create a bridge.
    AddBridge {
        /// Namespace name.
        ns: String,
        /// Bridge name.
        name: String,
    },
    /// Create a veth pair with one end in `ns` and the other in `peer_ns`.
    AddVeth {
        /// Namespace of the first end.
        ns: String,
        /// Name of the first end.
        name: String,
        /// Namespace of the other end.
        peer_ns: String,
        /// Name of the other end.
        peer_name: String,
    },
    /// Enslave a device to a bridge.
    SetMaster {
        /// Namespace name.
        ns: String,
        /// Device to enslave.
        dev: String,
        /// The bridge.
        master: String,
    },
    /// Bring a device up.
    LinkUp {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
    },
    /// Take a device down (the kernel drops the routes through it).
    LinkDown {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
    },
    /// Add an IPv4 or IPv6 address with its prefix.
    AddAddress {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
        /// Address and prefix length.
        address: IpNet,
    },
    /// Add a route (`0.0.0.0/0` and `::/0` are the default routes); `dst` and `via` are
    /// of one family.
    AddRoute {
        /// Namespace name.
        ns: String,
        /// Destination.
        dst: IpNet,
        /// Next hop.
        via: IpAddr,
    },
    /// Add a route out of a device with no next hop (a point-to-point TUN's, like the
    /// NAT64 translator's).
    AddDeviceRoute {
        /// Namespace name.
        ns: String,
        /// Destination.
        dst: IpNet,
        /// The device.
        dev: String,
    },
    /// Add or replace a route (puts back a route a link-down removed).
    ReplaceRoute {
        /// Namespace name.
        ns: String,
        /// Destination.
        dst: IpNet,
        /// Next hop.
        via: IpAddr,
    },
    /// Wait (bounded) until every link that is up in the namespace has carrier. The kernel
    /// reports carrier in batches up to a second late (linkwatch), and IPv6, unlike IPv4,
    /// neither answers nor sends neighbour discovery on a link before it has: without the
    /// wait an IPv6 lab's first second loses packets. Only IPv6 labs have the step.
    WaitCarrier {
        /// Namespace name.
        ns: String,
    },
    /// Delete every IPv4 conntrack entry of the namespace (ctnetlink, like `conntrack -F`).
    FlushConntrack {
        /// Namespace name.
        ns: String,
    },
    /// Load an nftables ruleset (`nft -f`) inside a namespace.
    Nftables {
        /// Namespace name.
        ns: String,
        /// What the ruleset is for (`nat`, `firewall`).
        purpose: String,
        /// The complete ruleset text.
        ruleset: String,
    },
    /// Write a file the next steps read (a service's configuration), replacing it.
    WriteFile {
        /// Namespace of the service the file is for.
        ns: String,
        /// Absolute path (in the lab's state directory).
        path: String,
        /// The complete text.
        text: String,
    },
    /// Make a fresh self-signed TLS certificate and its key (PEM files), as the built-in
    /// TURN server makes its own at start-up.
    TlsCert {
        /// Namespace of the service the certificate is for.
        ns: String,
        /// Subject alternative names (addresses or DNS names).
        names: Vec<String>,
        /// Certificate file.
        cert: String,
        /// Private key file.
        key: String,
    },
    /// Start a long-running service inside a namespace and wait until it is ready.
    Spawn {
        /// Namespace name.
        ns: String,
        /// Service name, used for its log and pid files.
        service: String,
        /// The program: [`ICELAB_PROGRAM`] for icelab's own services, else a program on `PATH`.
        #[serde(default = "icelab_program")]
        program: String,
        /// Its arguments.
        args: Vec<String>,
        /// How to know it is ready.
        #[serde(default)]
        ready: Readiness,
        /// Devices (namespace, name) the service creates before it reports ready.
        #[serde(default)]
        creates: Vec<(String, String)>,
    },
    /// SIGKILL a service the plan started (found by its recorded pid) and wait until it is gone.
    StopService {
        /// Namespace name.
        ns: String,
        /// Service name, as in its [`Step::Spawn`].
        service: String,
    },
    /// Set one direction of a userspace impairment engine link over its control socket.
    EngineSet {
        /// Namespace the engine runs in.
        ns: String,
        /// Its control socket.
        control: String,
        /// Index into the engine's links.
        link: usize,
        /// Direction.
        dir: LinkDir,
        /// The new impairment.
        impairment: Impairment,
    },
    /// Limit the CPU of services already started in `ns` (found by their recorded pids):
    /// create the cpu cgroup `cgroup` (or update it), give it a quota of `cores` times
    /// [`CPU_PERIOD_US`] per period ([`cpu_quota_us`]) and move the services' processes
    /// (every thread) into it. The cgroup is named like the namespace, so teardown and
    /// `icelab cleanup` find it by the lab's prefix.
    CpuLimit {
        /// Namespace of the services.
        ns: String,
        /// The cgroup's name (`icelab-<lab>-<server>`), under the cpu controller's root.
        cgroup: String,
        /// Cores the services share.
        cores: f64,
        /// The services (as in their [`Step::Spawn`]) whose processes it holds.
        services: Vec<String>,
    },
    /// Impair a device's egress with netem (+ tbf) qdiscs.
    Netem {
        /// Namespace name.
        ns: String,
        /// Device.
        dev: String,
        /// What its outgoing frames suffer.
        impairment: Impairment,
        /// Seed for netem's randomness.
        seed: u64,
    },
}

/// The CFS period of a [`Step::CpuLimit`]'s cgroup (the kernel's default, 100 ms).
pub const CPU_PERIOD_US: u64 = 100_000;

/// The CFS quota per [`CPU_PERIOD_US`] that gives `cores` cores (at least the kernel's
/// smallest, 1 ms).
pub fn cpu_quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1_000)
}

/// The program name of icelab's own services (run as this very program).
pub const ICELAB_PROGRAM: &str = "icelab";

fn icelab_program() -> String {
    ICELAB_PROGRAM.into()
}

/// How a started service shows that it is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Readiness {
    /// It prints a `ready` line on stdout (icelab's own services).
    #[default]
    ReadyLine,
    /// A STUN binding request to `addr`, sent from inside its namespace, is answered.
    StunAnswers {
        /// Where it listens (UDP).
        addr: SocketAddr,
    },
    /// Every device of the step's `creates` exists (a program that prints nothing, such
    /// as tayga, which creates its TUN device once it runs).
    Devices,
}

impl Step {
    /// The namespace the step acts in.
    pub fn ns(&self) -> &str {
        match self {
            Step::AddNamespace { ns }
            | Step::Sysctl { ns, .. }
            | Step::AddBridge { ns, .. }
            | Step::AddVeth { ns, .. }
            | Step::SetMaster { ns, .. }
            | Step::LinkUp { ns, .. }
            | Step::LinkDown { ns, .. }
            | Step::AddAddress { ns, .. }
            | Step::AddRoute { ns, .. }
            | Step::AddDeviceRoute { ns, .. }
            | Step::ReplaceRoute { ns, .. }
            | Step::FlushConntrack { ns }
            | Step::WaitCarrier { ns }
            | Step::Nftables { ns, .. }
            | Step::WriteFile { ns, .. }
            | Step::TlsCert { ns, .. }
            | Step::Spawn { ns, .. }
            | Step::StopService { ns, .. }
            | Step::EngineSet { ns, .. }
            | Step::CpuLimit { ns, .. }
            | Step::Netem { ns, .. } => ns,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::AddNamespace { ns } => write!(f, "namespace {ns}"),
            Step::Sysctl { ns, key, value } => write!(f, "{ns}: sysctl {key}={value}"),
            Step::AddBridge { ns, name } => write!(f, "{ns}: bridge {name}"),
            Step::AddVeth { ns, name, peer_ns, peer_name } => write!(f, "{ns}: veth {name} <-> {peer_ns}/{peer_name}"),
            Step::SetMaster { ns, dev, master } => write!(f, "{ns}: {dev} master {master}"),
            Step::LinkUp { ns, dev } => write!(f, "{ns}: {dev} up"),
            Step::LinkDown { ns, dev } => write!(f, "{ns}: {dev} down"),
            Step::AddAddress { ns, dev, address } => write!(f, "{ns}: {dev} address {address}"),
            Step::AddRoute { ns, dst, via } => write!(f, "{ns}: route {dst} via {via}"),
            Step::ReplaceRoute { ns, dst, via } => write!(f, "{ns}: route replace {dst} via {via}"),
            Step::AddDeviceRoute { ns, dst, dev } => write!(f, "{ns}: route {dst} dev {dev}"),
            Step::FlushConntrack { ns } => write!(f, "{ns}: conntrack flush"),
            Step::WaitCarrier { ns } => write!(f, "{ns}: wait for carrier"),
            Step::Nftables { ns, purpose, ruleset } => {
                write!(f, "{ns}: nftables {purpose} ({} lines)", ruleset.lines().count())
            }
            Step::WriteFile { ns, path, text } => write!(f, "{ns}: write {path} ({} lines)", text.lines().count()),
            Step::TlsCert { ns, names, cert, key } => {
                write!(f, "{ns}: self-signed TLS certificate for {} -> {cert}, {key}", names.join(", "))
            }
            Step::Spawn { ns, service, program, args, ready, .. } => {
                write!(f, "{ns}: start {service}: {program} {}", args.join(" "))?;
                match ready {
                    Readiness::ReadyLine => Ok(()),
                    Readiness::StunAnswers { addr } => write!(f, " (ready when STUN answers at {addr})"),
                    Readiness::Devices => write!(f, " (ready when its devices exist)"),
                }
            }
            Step::StopService { ns, service } => write!(f, "{ns}: stop {service}"),
            Step::EngineSet { ns, link, dir, impairment, .. } => {
                let dir = match dir {
                    LinkDir::AToB => "a-to-b",
                    LinkDir::BToA => "b-to-a",
                };
                write!(
                    f,
                    "{ns}: impair engine link {link} {dir}: {}",
                    serde_json::to_string(impairment).unwrap_or_default()
                )
            }
            Step::CpuLimit { ns, cgroup, cores, services } => write!(
                f,
                "{ns}: cpu limit {cores} cores ({} us per {CPU_PERIOD_US} us) for {} in cgroup {cgroup}",
                cpu_quota_us(*cores),
                services.join(", ")
            ),
            Step::Netem { ns, dev, impairment, seed } => {
                write!(f, "{ns}: netem {dev} {} (seed {seed})", crate::impair::netem::netem_args(impairment).join(" "))
            }
        }
    }
}
