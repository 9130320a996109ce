//! Processes inside lab namespaces: starting them there and finding them again.
//!
//! A process is "in the lab" when its `/proc/PID/ns/net` is one of the lab's
//! namespaces. That test needs no bookkeeping, so it also finds what a killed
//! `icelab` left running.

use std::collections::BTreeSet;
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Makes `cmd` enter the namespace `ns` between fork and exec.
pub fn enter_netns(cmd: &mut Command, ns: &OwnedFd) -> std::io::Result<()> {
    let fd = ns.try_clone()?;
    // SAFETY: only async-signal-safe system calls run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// [`enter_netns`], and with `resolv_conf`, a mount namespace of its own in which that
/// file is bound over `/etc/resolv.conf` (what `ip netns exec` does with
/// `/etc/netns/NAME/resolv.conf`, without writing to the host's `/etc`): the process and
/// its children resolve names with the lab's DNS. The host's mounts are untouched.
pub fn enter_netns_resolving(cmd: &mut Command, ns: &OwnedFd, resolv_conf: Option<&str>) -> std::io::Result<()> {
    enter_netns(cmd, ns)?;
    let Some(file) = resolv_conf else { return Ok(()) };
    let to_c =
        |s: &str| std::ffi::CString::new(s).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e));
    let (src, dst, root) = (to_c(file)?, to_c("/etc/resolv.conf")?, to_c("/")?);
    // SAFETY: unshare and mount are system calls; the strings were made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Private first, so the bind below never propagates back to the host.
            let none = std::ptr::null();
            if libc::mount(none, root.as_ptr(), none, libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0
                || libc::mount(src.as_ptr(), dst.as_ptr(), none, libc::MS_BIND, std::ptr::null()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// PIDs of processes whose network namespace has one of these inodes.
pub fn pids_in(inodes: &BTreeSet<u64>) -> Vec<i32> {
    let me = std::process::id() as i32;
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .filter(|pid| fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| inodes.contains(&m.ino())))
        .collect()
}

/// SIGKILLs every process in these namespaces and waits (bounded) until they are gone.
/// Returns how many were killed.
pub fn kill_all_in(inodes: &BTreeSet<u64>, deadline: Duration) -> usize {
    let start = Instant::now();
    let mut killed = BTreeSet::new();
    loop {
        let pids = pids_in(inodes);
        // A zombie keeps its /proc entry but no longer holds the namespace.
        let alive: Vec<i32> = pids.into_iter().filter(|p| !is_zombie(*p)).collect();
        if alive.is_empty() || start.elapsed() > deadline {
            return killed.len();
        }
        for pid in alive {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            killed.insert(pid);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// True when `pid` is a zombie or gone.
pub(crate) fn is_zombie(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// The text of `/proc/PID/stat` and `/proc/PID/status`; `None` once the process is gone.
pub fn proc_text(pid: i32) -> Option<(String, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some((stat, status))
}

/// CPU seconds (user + system) and the largest resident set (KiB) of every child this
/// process has reaped so far.
pub fn reaped_children_usage() -> (f64, u64) {
    // SAFETY: getrusage only writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss.max(0) as u64)
}

/// Clock ticks per second of `/proc/PID/stat`'s CPU fields.
pub fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf reads a constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}
