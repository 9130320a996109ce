//! Named network namespaces, created the way `ip netns add` does so that `ip netns`
//! sees them, and a way to run code inside one.
//!
//! Namespace changes happen on short-lived threads: `setns`/`unshare` affect only the
//! calling thread, so the process's own threads stay in the namespace they started in
//! and the host's root namespace is never touched.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

/// Where named namespaces are bind-mounted (shared with iproute2).
pub const NETNS_DIR: &str = "/run/netns";

/// Path of a named namespace.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Makes `/run/netns` exist and be a shared mount, as iproute2 does, so mounts
/// made here are seen by `ip netns` in other mount namespaces.
fn ensure_dir() -> Result<()> {
    fs::create_dir_all(NETNS_DIR).with_context(|| format!("creating {NETNS_DIR}"))?;
    let shared = || mount(Some(""), NETNS_DIR, Some("none"), MsFlags::MS_SHARED | MsFlags::MS_REC, None::<&str>);
    if shared().is_err() {
        mount(Some(NETNS_DIR), NETNS_DIR, Some("none"), MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .with_context(|| format!("bind-mounting {NETNS_DIR} on itself"))?;
        shared().with_context(|| format!("making {NETNS_DIR} a shared mount"))?;
    }
    Ok(())
}

/// Creates the named namespace and returns a handle to it.
pub fn create(name: &str) -> Result<OwnedFd> {
    static DIR_READY: std::sync::Once = std::sync::Once::new();
    let mut dir_err = None;
    DIR_READY.call_once(|| dir_err = ensure_dir().err());
    if let Some(e) = dir_err {
        return Err(e);
    }
    let target = path(name);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .with_context(|| format!("namespace {name} already exists or {NETNS_DIR} is not writable"))?;
    let t = target.clone();
    let made = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        let own = format!("/proc/self/task/{}/ns/net", nix::unistd::gettid());
        mount(Some(own.as_str()), &t, Some("none"), MsFlags::MS_BIND, None::<&str>)
            .context("bind-mounting the namespace")?;
        Ok(())
    })
    .join()
    .map_err(|_| anyhow!("namespace thread panicked"))?;
    if let Err(e) = made {
        let _ = fs::remove_file(&target);
        return Err(e.context(format!("creating namespace {name}")));
    }
    open(name)
}

/// Opens a handle to a named namespace.
pub fn open(name: &str) -> Result<OwnedFd> {
    Ok(File::open(path(name)).with_context(|| format!("opening namespace {name}"))?.into())
}

/// The namespace's inode: how `/proc/PID/ns/net` of its processes is recognised.
pub fn inode(name: &str) -> Result<u64> {
    Ok(fs::metadata(path(name))?.ino())
}

/// Unmounts and removes a named namespace. The kernel frees it once no process or
/// socket holds it any more.
pub fn delete(name: &str) -> Result<()> {
    let p = path(name);
    match umount2(&p, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(anyhow!("unmounting {}: {e}", p.display())),
    }
    match fs::remove_file(&p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("removing {}: {e}", p.display())),
    }
}

/// Names of all named namespaces that start with `prefix`.
pub fn list(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    v.sort();
    v
}

/// Runs `f` on a fresh thread that has joined the namespace `ns`.
pub fn run_in<T: Send + 'static>(ns: &OwnedFd, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let fd = ns.try_clone()?;
    std::thread::spawn(move || -> Result<T> {
        setns(fd.as_fd(), CloneFlags::CLONE_NEWNET).context("setns")?;
        Ok(f())
    })
    .join()
    .map_err(|_| anyhow!("namespace thread panicked"))?
}

/// Writes a `net.*` sysctl inside the namespace. `net.bridge.*` keys exist only
/// while br_netfilter is loaded; without it their wanted state (off) already holds.
pub fn sysctl(ns: &OwnedFd, key: &str, value: &str) -> Result<()> {
    let file = format!("/proc/sys/{}", key.replace('.', "/"));
    let value = value.to_string();
    let optional = is_optional_sysctl(key);
    run_in(ns, move || {
        if optional && !Path::new(&file).exists() {
            return Ok(());
        }
        fs::write(&file, value).with_context(|| format!("writing {file}"))
    })?
}

/// Sysctls that may be absent (module-provided).
pub fn is_optional_sysctl(key: &str) -> bool {
    key.starts_with("net.bridge.")
}

/// The unspecified address of `addr`'s family, port 0: what a socket that talks to `addr`
/// binds (an IPv4 socket cannot reach an IPv6 address, nor the reverse).
pub fn wildcard_for(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip: std::net::IpAddr =
        if addr.is_ipv6() { std::net::Ipv6Addr::UNSPECIFIED.into() } else { std::net::Ipv4Addr::UNSPECIFIED.into() };
    std::net::SocketAddr::new(ip, 0)
}
