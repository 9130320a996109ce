//! Helpers shared by integration tests.
#![allow(dead_code)]

use std::process::{Command, Output};

/// True when root-only tests may run. Without root they fail, unless
/// `ICELAB_SKIP_ROOT_TESTS=1` says to skip them (CI never sets it).
pub(crate) fn require_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("ICELAB_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("skipped: needs root (ICELAB_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!("this test needs root (network namespaces); run as root or set ICELAB_SKIP_ROOT_TESTS=1 to skip");
}

/// Runs the icelab binary.
pub(crate) fn icelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_icelab")).args(args).output().expect("run icelab")
}

/// Text of stdout.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Text of stderr.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique lab name for this test process.
pub(crate) fn lab_name(tag: &str) -> String {
    format!("{tag}{}", std::process::id() % 100_000)
}

/// Takes a lab down when dropped, so a failing test leaves nothing behind.
pub(crate) struct LabGuard(pub String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = icelab(&["down", &self.0]);
    }
}

/// Namespaces of a lab (by prefix).
pub(crate) fn lab_namespaces(name: &str) -> Vec<String> {
    icelab::fabric::netns::list(&format!("icelab-{name}-"))
}

/// Runs a shell command and returns stdout.
pub(crate) fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The host's root namespace as seen by the tools the acceptance names, IPv6 included
/// (addresses, routes and rules of both families; every `net.` sysctl). Lifetimes and
/// expiry counters are left out: they tick on their own on a host with SLAAC or DHCP.
pub(crate) fn root_snapshot() -> String {
    [
        "ip -d link",
        "ip -o -4 addr show | awk '{print $2, $4}'",
        "ip -o -6 addr show | awk '{print $2, $4}'",
        "ip route",
        "ip -6 route | sed 's/ expires [0-9]*sec//'",
        "ip rule",
        "ip -6 rule",
        "nft list ruleset",
        "sysctl -a 2>/dev/null | grep '^net\\.'",
    ]
    .iter()
    .map(|c| format!("## {c}\n{}", sh(c)))
    .collect()
}

/// Path of a bundled topology.
pub(crate) fn topology(name: &str) -> String {
    format!("{}/topologies/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Sends `sig` to `child` and waits (at most 10 s, then kills it and fails) for it to exit.
pub(crate) fn signal_and_wait(
    child: &mut std::process::Child,
    sig: nix::sys::signal::Signal,
    what: &str,
) -> std::process::ExitStatus {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > until {
            let _ = child.kill();
            panic!("{what} did not exit within 10 s of {sig}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
