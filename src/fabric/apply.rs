//! Executes plan steps against the kernel: rtnetlink for links, addresses and
//! routes (one netlink socket opened inside each namespace), `nft -f` for rulesets,
//! ctnetlink for conntrack, and the lab's services. The same applier builds a lab and,
//! attached to a running one, fires its events' steps.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{child, netns, procs, ready, registry};
use crate::impair::engine::{ControlReply, ControlRequest};
use crate::plan::{ICELAB_PROGRAM, Readiness, Step};

/// Deadline for one `nft -f` and for a service to report that it is ready.
const CHILD_DEADLINE: Duration = Duration::from_secs(10);
/// How long a stopped service may take to disappear.
const KILL_DEADLINE: Duration = Duration::from_secs(2);

struct Ns {
    fd: OwnedFd,
    nl: Handle,
    index: HashMap<String, u32>,
}

/// Applies steps in order; holds per-namespace netlink sockets while it lives.
pub struct Applier {
    /// The lab's state directory: service logs and pid files.
    state: PathBuf,
    spaces: HashMap<String, Ns>,
    /// Opens existing `icelab-*` namespaces by name (a running lab's), not only its own.
    attached: bool,
    /// Rulesets being loaded: consecutive `nft` runs (one per namespace) overlap.
    pending_nft: Vec<(String, std::process::Child)>,
}

impl Applier {
    /// An applier that builds lab `lab`: it acts only in namespaces it created.
    pub fn new(lab: &str) -> Self {
        Applier { state: registry::lab_dir(lab), spaces: HashMap::new(), attached: false, pending_nft: Vec::new() }
    }

    /// An applier for the running lab `lab`: it opens the lab's namespaces by name (and
    /// connects netlink inside them) the first time a step needs one.
    pub fn attach(lab: &str) -> Self {
        Applier { attached: true, ..Applier::new(lab) }
    }

    /// Runs one step.
    pub async fn apply(&mut self, step: &Step) -> Result<()> {
        if !matches!(step, Step::Nftables { .. }) {
            self.finish()?;
        }
        let t0 = std::time::Instant::now();
        let r = self.apply_inner(step).await.with_context(|| format!("step `{step}` failed"));
        // `ICELAB_LOG=icelab=debug` shows where build time goes.
        tracing::debug!(elapsed_us = t0.elapsed().as_micros() as u64, "{step}");
        r
    }

    async fn apply_inner(&mut self, step: &Step) -> Result<()> {
        if self.attached {
            self.open_existing(step.ns())?;
            if let Step::AddVeth { peer_ns, .. } = step {
                self.open_existing(peer_ns)?;
            }
        }
        match step {
            Step::AddNamespace { ns } => {
                let fd = netns::create(ns)?;
                let nl = connect(&fd)?;
                self.spaces.insert(ns.clone(), Ns { fd, nl, index: HashMap::new() });
            }
            Step::Sysctl { ns, key, value } => netns::sysctl(&self.get(ns)?.fd, key, value)?,
            Step::AddBridge { ns, name } => {
                // Created down, like `ip link add type bridge`; the plan brings it up after its addresses.
                self.get(ns)?.nl.link().add(LinkMessageBuilder::<LinkBridge>::new(name).build()).execute().await?;
            }
            Step::AddVeth { ns, name, peer_ns, peer_name } => {
                let peer_fd = self.get(peer_ns)?.fd.as_raw_fd();
                // The peer is created directly in its own namespace: nothing passes through ours.
                let peer = LinkMessageBuilder::<LinkUnspec>::new().name(peer_name.clone()).setns_by_fd(peer_fd).build();
                let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                    .name(name.clone())
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                    .build();
                self.get(ns)?.nl.link().add(msg).execute().await?;
            }
            Step::SetMaster { ns, dev, master } => {
                let dev = self.index(ns, dev).await?;
                let master = self.index(ns, master).await?;
                let msg = LinkUnspec::new_with_index(dev).controller(master).build();
                self.get(ns)?.nl.link().set(msg).execute().await?;
            }
            Step::LinkUp { ns, dev } | Step::LinkDown { ns, dev } => {
                let i = self.index(ns, dev).await?;
                let msg = LinkUnspec::new_with_index(i);
                let msg = if matches!(step, Step::LinkUp { .. }) { msg.up() } else { msg.down() }.build();
                self.get(ns)?.nl.link().set(msg).execute().await?;
            }
            Step::AddAddress { ns, dev, address } => {
                let i = self.index(ns, dev).await?;
                self.get(ns)?.nl.address().add(i, address.addr(), address.prefix_len()).execute().await?;
            }
            Step::AddRoute { ns, dst, via } | Step::ReplaceRoute { ns, dst, via } => {
                let msg = match (dst, via) {
                    (IpNet::V4(d), IpAddr::V4(v)) => RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(d.network(), d.prefix_len())
                        .gateway(*v)
                        .build(),
                    (IpNet::V6(d), IpAddr::V6(v)) => RouteMessageBuilder::<Ipv6Addr>::new()
                        .destination_prefix(d.network(), d.prefix_len())
                        .gateway(*v)
                        .build(),
                    _ => bail!("route {dst} via {via}: mixed address families"),
                };
                let add = self.get(ns)?.nl.route().add(msg);
                let add = if matches!(step, Step::ReplaceRoute { .. }) { add.replace() } else { add };
                add.execute().await?;
            }
            Step::AddDeviceRoute { ns, dst, dev } => {
                let i = self.index(ns, dev).await?;
                let msg = match dst {
                    // Link scope, as `ip route add ... dev` gives an IPv4 route with no gateway.
                    IpNet::V4(d) => RouteMessageBuilder::<Ipv4Addr>::new()
                        .destination_prefix(d.network(), d.prefix_len())
                        .output_interface(i)
                        .scope(rtnetlink::packet_route::route::RouteScope::Link)
                        .build(),
                    IpNet::V6(d) => RouteMessageBuilder::<Ipv6Addr>::new()
                        .destination_prefix(d.network(), d.prefix_len())
                        .output_interface(i)
                        .build(),
                };
                self.get(ns)?.nl.route().add(msg).execute().await?;
            }
            Step::FlushConntrack { ns } => super::conntrack::flush(&self.get(ns)?.fd)?,
            Step::WaitCarrier { ns } => self.wait_carrier(ns).await?,
            Step::Nftables { ns, ruleset, .. } => {
                let child = start_nft(&self.get(ns)?.fd, ruleset)?;
                self.pending_nft.push((ns.clone(), child));
            }
            Step::WriteFile { path, text, .. } => {
                std::fs::write(path, text).with_context(|| format!("writing {path}"))?;
            }
            Step::TlsCert { names, cert, key, .. } => {
                crate::turn::write_self_signed(names.clone(), cert.as_ref(), key.as_ref())?;
            }
            Step::Spawn { ns, service, program, args, ready, creates } => {
                let log = self.state.join(format!("{service}-{ns}.log"));
                let devices: Vec<&str> = creates.iter().filter(|(c, _)| c == ns).map(|(_, d)| d.as_str()).collect();
                let pid = spawn_service(&self.get(ns)?.fd, program, args, (*ready, &devices), &log).await?;
                // The service's plan identity -> its pid, for a later StopService (and the script's).
                std::fs::write(self.state.join(crate::plan::shell::pid_file(service, ns)), format!("{pid}\n"))?;
            }
            Step::StopService { ns, service } => self.stop_service(ns, service)?,
            Step::EngineSet { control, link, dir, impairment, .. } => {
                let req = ControlRequest::Set { link: *link, dir: *dir, impairment: impairment.clone() };
                match crate::impair::engine::request(std::path::Path::new(control), &req)? {
                    ControlReply::Ok => {}
                    other => bail!("impair engine refused: {other:?}"),
                }
            }
            Step::CpuLimit { ns, cgroup, cores, services } => {
                let pids = services
                    .iter()
                    .map(|svc| self.service_pid(ns, svc).map(|(pid, _)| pid as u32))
                    .collect::<Result<Vec<u32>>>()?;
                let (quota, period) = (crate::plan::cpu_quota_us(*cores), crate::plan::CPU_PERIOD_US);
                super::cgroup::limit(cgroup, quota, period, &pids)?;
            }
            Step::Netem { ns, dev, impairment, seed } => {
                crate::impair::netem::apply_seeded(ns, dev, impairment, Some(*seed))?;
            }
        }
        Ok(())
    }

    /// Waits for every ruleset still loading; call after the last step.
    pub fn finish(&mut self) -> Result<()> {
        for (ns, child) in self.pending_nft.drain(..) {
            check_nft(child).with_context(|| format!("loading nftables in {ns}"))?;
        }
        Ok(())
    }

    /// Opens a running lab's namespace and its netlink socket, if not yet open (only
    /// `icelab-*` ones: nothing else is ours to change). Steps open what they need; calling
    /// this ahead of time takes that cost off the first step.
    pub fn open_existing(&mut self, ns: &str) -> Result<()> {
        if self.spaces.contains_key(ns) {
            return Ok(());
        }
        if !ns.starts_with(registry::NS_PREFIX) {
            bail!("namespace {ns} is not a lab namespace");
        }
        let fd = netns::open(ns)?;
        let nl = connect(&fd)?;
        self.spaces.insert(ns.to_string(), Ns { fd, nl, index: HashMap::new() });
        Ok(())
    }

    /// Kills the service whose pid its `Spawn` recorded, after checking that the pid
    /// still lives in `ns` (pids are reused).
    fn stop_service(&self, ns: &str, service: &str) -> Result<()> {
        let (pid, file) = self.service_pid(ns, service)?;
        child::kill_and_wait(pid, KILL_DEADLINE)?;
        let _ = std::fs::remove_file(&file);
        Ok(())
    }

    /// The pid its `Spawn` recorded for the service, and the pid file, after checking
    /// that the pid still lives in `ns` (pids are reused).
    fn service_pid(&self, ns: &str, service: &str) -> Result<(i32, PathBuf)> {
        let file = self.state.join(crate::plan::shell::pid_file(service, ns));
        let text = std::fs::read_to_string(&file).with_context(|| format!("{service} in {ns} has no pid file"))?;
        let pid: i32 = text.trim().parse().with_context(|| format!("bad pid in {}", file.display()))?;
        let here =
            std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == netns::inode(ns).unwrap_or(0));
        if !here || procs::is_zombie(pid) {
            bail!("{service} in {ns} is not running (pid {pid})");
        }
        Ok((pid, file))
    }

    fn get(&self, ns: &str) -> Result<&Ns> {
        self.spaces.get(ns).ok_or_else(|| anyhow!("namespace {ns} was not created by this plan"))
    }

    /// Polls the namespace's links until every one that is up is running (has carrier).
    async fn wait_carrier(&mut self, ns: &str) -> Result<()> {
        use rtnetlink::packet_route::link::LinkFlags;
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let mut waiting = Vec::new();
            let mut links = self.get(ns)?.nl.link().get().execute();
            while let Some(l) = links.try_next().await? {
                let f = l.header.flags;
                if f.contains(LinkFlags::Up) && !f.contains(LinkFlags::Loopback) && !f.contains(LinkFlags::Running) {
                    waiting.push(l.header.index);
                }
            }
            if waiting.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                bail!("links {waiting:?} in {ns} have no carrier after 3 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn index(&mut self, ns: &str, dev: &str) -> Result<u32> {
        if let Some(i) = self.get(ns)?.index.get(dev) {
            return Ok(*i);
        }
        let mut links = self.get(ns)?.nl.link().get().match_name(dev.to_string()).execute();
        let link = links.try_next().await?.ok_or_else(|| anyhow!("no device {dev} in {ns}"))?;
        let i = link.header.index;
        self.spaces.get_mut(ns).unwrap().index.insert(dev.to_string(), i);
        Ok(i)
    }
}

/// Opens a route netlink socket inside the namespace; the socket stays bound to it.
pub(crate) fn connect(ns: &OwnedFd) -> Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let (conn, handle, _) = netns::run_in(ns, move || {
        let _guard = rt.enter();
        rtnetlink::new_connection()
    })??;
    tokio::spawn(conn);
    Ok(handle)
}

fn start_nft(ns: &OwnedFd, ruleset: &str) -> Result<std::process::Child> {
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    procs::enter_netns(&mut cmd, ns)?;
    let mut nft = cmd.spawn().context("running nft (is the nftables package installed?)")?;
    // Rulesets are a few KiB: the pipe takes them whole, then closes.
    nft.stdin.take().unwrap().write_all(ruleset.as_bytes())?;
    Ok(nft)
}

fn check_nft(nft: std::process::Child) -> Result<()> {
    let out = child::wait_output(nft, CHILD_DEADLINE)?;
    if !out.status.success() {
        bail!("nft rejected the ruleset: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// The `icelab` program that runs lab services: `$ICELAB_BIN`, else this program
/// when it is `icelab`, else `icelab` beside it (benchmarks and tests live in `deps/`).
pub fn icelab_exe() -> Result<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("ICELAB_BIN") {
        return Ok(p.into());
    }
    let me = std::env::current_exe()?;
    if me.file_name().is_some_and(|n| n == "icelab") {
        return Ok(me);
    }
    let dir = me.parent().map(|d| d.to_path_buf()).unwrap_or_default();
    [dir.join("icelab"), dir.join("../icelab")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("cannot find the icelab program to start lab services; set ICELAB_BIN"))
}

/// Starts `program ARGS` (`icelab` is this program) detached inside the namespace, waits
/// until it is `ready` (with [`Readiness::Devices`], until the named devices exist in the
/// namespace) and returns its pid. The log is appended to: a restarted service keeps its
/// history.
async fn spawn_service(
    ns: &OwnedFd,
    program: &str,
    args: &[String],
    (ready, devices): (Readiness, &[&str]),
    log: &std::path::Path,
) -> Result<u32> {
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log)?;
    let exe = if program == ICELAB_PROGRAM { icelab_exe()? } else { program.into() };
    let mut cmd = Command::new(&exe);
    let stdout = match ready {
        Readiness::ReadyLine => Stdio::piped(),
        Readiness::StunAnswers { .. } | Readiness::Devices => Stdio::from(log_file.try_clone()?),
    };
    cmd.args(args).stdin(Stdio::null()).stdout(stdout).stderr(log_file);
    procs::enter_netns(&mut cmd, ns)?;
    // Its own session: a Ctrl-C meant for `icelab up` must not kill the lab's services.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut svc = cmd.spawn().with_context(|| format!("starting {}", exe.display()))?;
    let r = match ready {
        Readiness::ReadyLine => match child::first_line(svc.stdout.take().unwrap(), CHILD_DEADLINE) {
            Some(line) if line.trim() == "ready" => Ok(()),
            Some(line) => Err(anyhow!("service exited before it was ready ({})", line.trim())),
            None => Err(anyhow!("service not ready within {CHILD_DEADLINE:?}")),
        },
        Readiness::StunAnswers { addr } => {
            let alive = || match svc.try_wait()? {
                Some(status) => bail!("{program} exited ({status}) before it answered STUN at {addr}"),
                None => Ok(()),
            };
            ready::stun_answers(ns, addr, CHILD_DEADLINE, alive).await
        }
        Readiness::Devices => {
            let alive = || match svc.try_wait()? {
                Some(status) => bail!("{program} exited ({status}) before it created {}", devices.join(", ")),
                None => Ok(()),
            };
            ready::devices_exist(ns, devices, CHILD_DEADLINE, alive).await
        }
    };
    match r {
        Ok(()) => Ok(svc.id()),
        Err(e) => {
            let _ = svc.kill();
            let _ = svc.wait();
            Err(anyhow!("{e:#}; see {}", log.display()))
        }
    }
}
