//! Executes plan steps against the kernel: rtnetlink for links, addresses and
//! routes (one netlink socket opened inside each namespace), `nft -f` for rulesets.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::{netns, procs, registry};
use crate::plan::Step;

/// Deadline for one `nft -f` and for a service to report that it is ready.
const CHILD_DEADLINE: Duration = Duration::from_secs(10);

struct Ns {
    fd: OwnedFd,
    nl: Handle,
    index: HashMap<String, u32>,
}

/// Applies steps in order; holds per-namespace netlink sockets while it lives.
pub struct Applier {
    lab: String,
    spaces: HashMap<String, Ns>,
    /// Rulesets being loaded: consecutive `nft` runs (one per namespace) overlap.
    pending_nft: Vec<(String, std::process::Child)>,
}

impl Applier {
    /// An applier for lab `lab` (used to place service logs).
    pub fn new(lab: &str) -> Self {
        Applier { lab: lab.to_string(), spaces: HashMap::new(), pending_nft: Vec::new() }
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
            Step::LinkUp { ns, dev } => {
                let i = self.index(ns, dev).await?;
                let msg = LinkUnspec::new_with_index(i).up().build();
                self.get(ns)?.nl.link().set(msg).execute().await?;
            }
            Step::AddAddress { ns, dev, address } => {
                let i = self.index(ns, dev).await?;
                self.get(ns)?.nl.address().add(i, IpAddr::V4(address.addr()), address.prefix_len()).execute().await?;
            }
            Step::AddRoute { ns, dst, via } => {
                let msg = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(dst.network(), dst.prefix_len())
                    .gateway(*via)
                    .build();
                self.get(ns)?.nl.route().add(msg).execute().await?;
            }
            Step::Nftables { ns, ruleset, .. } => {
                let child = start_nft(&self.get(ns)?.fd, ruleset)?;
                self.pending_nft.push((ns.clone(), child));
            }
            Step::Spawn { ns, service, args, .. } => {
                let log = registry::lab_dir(&self.lab).join(format!("{service}-{ns}.log"));
                spawn_service(&self.get(ns)?.fd, args, &log)?;
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

    fn get(&self, ns: &str) -> Result<&Ns> {
        self.spaces.get(ns).ok_or_else(|| anyhow!("namespace {ns} was not created by this plan"))
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
fn connect(ns: &OwnedFd) -> Result<Handle> {
    let rt = tokio::runtime::Handle::current();
    let (conn, handle, _) = netns::run_in(ns, move || {
        let _guard = rt.enter();
        rtnetlink::new_connection()
    })??;
    tokio::spawn(conn);
    Ok(handle)
}

/// Runs `nft -f -` inside the namespace, with a deadline.
pub fn load_nft(ns: &OwnedFd, ruleset: &str) -> Result<()> {
    check_nft(start_nft(ns, ruleset)?)
}

fn start_nft(ns: &OwnedFd, ruleset: &str) -> Result<std::process::Child> {
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    procs::enter_netns(&mut cmd, ns)?;
    let mut child = cmd.spawn().context("running nft (is the nftables package installed?)")?;
    // Rulesets are a few KiB: the pipe takes them whole, then closes.
    child.stdin.take().unwrap().write_all(ruleset.as_bytes())?;
    Ok(child)
}

fn check_nft(child: std::process::Child) -> Result<()> {
    let out = wait_with_deadline(child, CHILD_DEADLINE)?;
    if !out.status.success() {
        bail!("nft rejected the ruleset: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

fn wait_with_deadline(child: std::process::Child, deadline: Duration) -> Result<std::process::Output> {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(deadline) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            bail!("child process {pid} did not finish within {deadline:?}")
        }
    }
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

/// Starts `icelab ARGS` detached inside the namespace and waits for its `ready` line.
pub fn spawn_service(ns: &OwnedFd, args: &[String], log: &std::path::Path) -> Result<()> {
    let mut cmd = Command::new(icelab_exe()?);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(std::fs::File::create(log)?);
    procs::enter_netns(&mut cmd, ns)?;
    // Its own session: a Ctrl-C meant for `icelab up` must not kill the lab's services.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    match rx.recv_timeout(CHILD_DEADLINE) {
        Ok(line) if line.trim() == "ready" => Ok(()),
        Ok(line) => {
            let _ = child.kill();
            bail!("service exited before it was ready ({}); see {}", line.trim(), log.display())
        }
        Err(_) => {
            let _ = child.kill();
            bail!("service not ready within {CHILD_DEADLINE:?}; see {}", log.display())
        }
    }
}
