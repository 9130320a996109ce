//! CPU limits of lab servers: one cgroup of the cpu controller per limited server,
//! named like its namespace (`icelab-<lab>-<server>`), directly under the controller's
//! root. cgroup v1 (`/sys/fs/cgroup/cpu`, `cpu.cfs_quota_us` / `cpu.cfs_period_us`) is
//! used where it is mounted, else cgroup v2 (`/sys/fs/cgroup`, `cpu.max`).
//!
//! Like namespaces, the cgroups are found again by name alone, so teardown and
//! `icelab cleanup` remove what a killed run left. Only `icelab-*` cgroups are ever
//! created, changed or removed; the host's own cgroups are left as they are (on v2 the
//! root's `cgroup.subtree_control` gets `+cpu` if it lacks it, or no child could be
//! limited).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::registry::NS_PREFIX;

/// Where cgroup v1 mounts the cpu controller.
const V1_ROOT: &str = "/sys/fs/cgroup/cpu";
/// Where cgroup v2 is mounted.
const V2_ROOT: &str = "/sys/fs/cgroup";

/// The cpu controller's hierarchy on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// cgroup v1's cpu controller at this root (`cpu.cfs_quota_us`).
    V1(PathBuf),
    /// cgroup v2 with the cpu controller at this root (`cpu.max`).
    V2(PathBuf),
}

impl Hierarchy {
    /// The cpu controller here, or an error that says what is missing.
    pub fn find() -> Result<Hierarchy> {
        if Path::new(V1_ROOT).join("cpu.cfs_quota_us").is_file() {
            return Ok(Hierarchy::V1(V1_ROOT.into()));
        }
        let controllers = fs::read_to_string(Path::new(V2_ROOT).join("cgroup.controllers")).unwrap_or_default();
        if controllers.split_whitespace().any(|c| c == "cpu") {
            return Ok(Hierarchy::V2(V2_ROOT.into()));
        }
        bail!(
            "a cpu limit needs the cgroup cpu controller, and this machine has neither cgroup v1's \
             ({V1_ROOT}/cpu.cfs_quota_us) nor cgroup v2's (`cpu` in {V2_ROOT}/cgroup.controllers); \
             mount one (e.g. `mount -t cgroup -o cpu cgroup {V1_ROOT}`) or leave `cpu` out"
        )
    }

    /// `cgroup v1 cpu.cfs_quota_us` or `cgroup v2 cpu.max`: what limits CPU here.
    pub fn version_name(&self) -> &'static str {
        match self {
            Hierarchy::V1(_) => "cgroup v1, cpu.cfs_quota_us",
            Hierarchy::V2(_) => "cgroup v2, cpu.max",
        }
    }

    /// The controller's root directory.
    pub fn root(&self) -> &Path {
        match self {
            Hierarchy::V1(p) | Hierarchy::V2(p) => p,
        }
    }

    /// The directory of cgroup `name`.
    pub fn dir(&self, name: &str) -> PathBuf {
        self.root().join(name)
    }

    /// The processes in cgroup `name` here (none when it does not exist).
    pub fn pids(&self, name: &str) -> Vec<u32> {
        let text = fs::read_to_string(self.dir(name).join("cgroup.procs")).unwrap_or_default();
        text.lines().filter_map(|l| l.trim().parse().ok()).collect()
    }

    /// The cgroup's quota and period in microseconds (`None` for the quota: unlimited).
    pub fn quota(&self, name: &str) -> Result<(Option<u64>, u64)> {
        let read = |f: &str| {
            let p = self.dir(name).join(f);
            fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        let num = |s: &str| s.trim().parse::<u64>().ok();
        Ok(match self {
            Hierarchy::V1(_) => {
                let period = num(&read("cpu.cfs_period_us")?).context("bad cpu.cfs_period_us")?;
                (num(&read("cpu.cfs_quota_us")?), period)
            }
            Hierarchy::V2(_) => {
                let max = read("cpu.max")?;
                let mut it = max.split_whitespace();
                let quota = it.next().and_then(num);
                (quota, it.next().and_then(num).context("bad cpu.max")?)
            }
        })
    }
}

/// Creates cgroup `name` (an `icelab-*` name) if it is missing, gives it `quota_us` of
/// CPU time per `period_us` and moves each process of `pids` (every thread) into it.
pub fn limit(name: &str, quota_us: u64, period_us: u64, pids: &[u32]) -> Result<()> {
    check(name)?;
    let h = Hierarchy::find()?;
    let dir = h.dir(name);
    let write = |file: &str, text: String| {
        let p = dir.join(file);
        fs::write(&p, &text).with_context(|| format!("writing `{}` to {}", text.trim(), p.display()))
    };
    if let Hierarchy::V2(root) = &h {
        let ctl = root.join("cgroup.subtree_control");
        let enabled = fs::read_to_string(&ctl).unwrap_or_default();
        if !enabled.split_whitespace().any(|c| c == "cpu") {
            fs::write(&ctl, "+cpu").with_context(|| format!("enabling the cpu controller in {}", ctl.display()))?;
        }
    }
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating cgroup {}", dir.display())),
    }
    match h {
        Hierarchy::V1(_) => {
            // A period shorter than the old quota is fine: v1 checks each value alone.
            write("cpu.cfs_period_us", period_us.to_string())?;
            write("cpu.cfs_quota_us", quota_us.to_string())?;
        }
        Hierarchy::V2(_) => write("cpu.max", format!("{quota_us} {period_us}"))?,
    }
    for pid in pids {
        write("cgroup.procs", pid.to_string())?;
    }
    Ok(())
}

/// The processes in cgroup `name` (none when it does not exist).
pub fn pids(name: &str) -> Vec<u32> {
    Hierarchy::find().map(|h| h.pids(name)).unwrap_or_default()
}

/// The cgroups whose names start with `prefix` (an `icelab-*` prefix).
pub fn list(prefix: &str) -> Vec<String> {
    let Ok(h) = Hierarchy::find() else { return Vec::new() };
    let mut v: Vec<String> = fs::read_dir(h.root())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix) && n.starts_with(NS_PREFIX))
        .collect();
    v.sort();
    v
}

/// Removes cgroup `name`: SIGKILLs what is still in it (the lab's namespaces' processes
/// are normally gone already; zombies do not hold a cgroup) and removes the directory,
/// retrying until `deadline`. Returns whether there was one to remove.
pub fn remove(name: &str, deadline: Duration) -> Result<bool> {
    check(name)?;
    let Ok(h) = Hierarchy::find() else { return Ok(false) };
    let dir = h.dir(name);
    let start = Instant::now();
    loop {
        match fs::remove_dir(&dir) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) if start.elapsed() > deadline => {
                return Err(e).with_context(|| {
                    format!("removing cgroup {} (processes left: {:?})", dir.display(), h.pids(name))
                });
            }
            Err(_) => {
                for pid in h.pids(name) {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Removes every cgroup whose name starts with `prefix`; returns how many there were.
pub fn remove_all(prefix: &str, deadline: Duration) -> Result<usize> {
    let mut n = 0;
    let mut errors = Vec::new();
    for g in list(prefix) {
        match remove(&g, deadline) {
            Ok(removed) => n += usize::from(removed),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("; "));
    }
    Ok(n)
}

/// Only `icelab-*` cgroups, one level under the root, are ours.
fn check(name: &str) -> Result<()> {
    if !name.starts_with(NS_PREFIX) || name.contains('/') || name.contains("..") {
        bail!("cgroup `{name}` is not a lab cgroup (icelab-<lab>-<server>)");
    }
    Ok(())
}
