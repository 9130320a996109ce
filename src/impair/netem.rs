//! The kernel engine: `netem` (+ `tbf` for rate) on an interface inside a namespace.
//!
//! Layout per interface, matching the userspace engine's order of stages:
//!
//! ```text
//! nft netdev egress: meta length > mtu+14 drop      (only with `mtu`)
//! root 1:   netem  delay/jitter/loss/duplicate/reorder, limit 100000 (never the bottleneck)
//! 1:1 → 10: tbf    rate, burst = Impairment::burst_bytes, limit = queue bytes
//! 10:1 → 100: pfifo limit N                          (only with `queue-packets`)
//! ```
//!
//! Command generation is pure ([`commands`]) so it is snapshot-tested on any machine;
//! [`apply`] runs the commands in the namespace. This kernel has no classifier or
//! action modules, so the MTU black hole uses nftables' netdev egress hook instead of
//! a `tc filter`.

use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Result, bail};

use super::spec::{ETH_HEADER, Impairment, JitterDistribution, Loss, QueueLimit};
use crate::fabric::{child, netns, procs};

/// Deadline of one `tc` or `nft` run.
const TOOL_DEADLINE: Duration = Duration::from_secs(5);

/// One command of the kernel configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCommand {
    /// Program (`tc` or `nft`).
    pub program: &'static str,
    /// Arguments.
    pub args: Vec<String>,
    /// Text fed on stdin (the nft script).
    pub stdin: Option<String>,
    /// Failure is expected and harmless (removing what may not exist).
    pub may_fail: bool,
}

impl std::fmt::Display for ToolCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.program, self.args.join(" "))?;
        if let Some(s) = &self.stdin {
            write!(f, " <<'EOF'\n{s}EOF")?;
        }
        if self.may_fail {
            write!(f, " || true")?;
        }
        Ok(())
    }
}

/// Whether the running kernel has `sch_netem`: tries `tc qdisc add dev lo root netem
/// delay 1ms` in a throwaway anonymous namespace (never the root namespace) and caches
/// the answer for the life of the process.
pub fn netem_available() -> bool {
    static ANSWER: OnceLock<bool> = OnceLock::new();
    *ANSWER.get_or_init(|| probe().unwrap_or(false))
}

fn probe() -> Result<bool> {
    // A child forked from a thread inherits that thread's namespace, so unsharing on a
    // short-lived thread gives `tc` a private namespace that dies with it, unnamed.
    std::thread::spawn(|| -> Result<bool> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
        let ok = Command::new("tc")
            .args(["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        Ok(ok)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netem probe thread panicked"))?
}

fn us(ms: f64) -> String {
    format!("{}us", (ms * 1000.0).round() as u64)
}

fn pct(p: f64) -> String {
    format!("{p}%")
}

fn nft_table(dev: &str) -> String {
    format!("icelab_mtu_{dev}").replace(['-', '.'], "_")
}

/// The netem arguments after `netem` (empty values are left out: netem rejects
/// `loss random 0%` and `duplicate 0%` on some versions).
pub fn netem_args(i: &Impairment) -> Vec<String> {
    let mut a = vec!["limit".to_string(), "100000".to_string()];
    if i.delay_ms > 0.0 || i.jitter_ms > 0.0 {
        a.extend(["delay".into(), us(i.delay_ms)]);
        if i.jitter_ms > 0.0 {
            a.push(us(i.jitter_ms));
            match i.jitter_distribution {
                JitterDistribution::Uniform => {}
                JitterDistribution::Normal => a.extend(["distribution".into(), "normal".into()]),
                JitterDistribution::Pareto => a.extend(["distribution".into(), "pareto".into()]),
            }
        }
    }
    match i.loss {
        Loss::None => {}
        Loss::Random { percent: 0.0 } => {}
        Loss::Random { percent } => a.extend(["loss".into(), "random".into(), pct(percent)]),
        Loss::GilbertElliott { p, r, bad_loss, good_loss } => {
            a.extend(["loss".into(), "gemodel".into(), pct(p), pct(r), pct(bad_loss), pct(good_loss)])
        }
    }
    if i.duplicate_percent > 0.0 {
        a.extend(["duplicate".into(), pct(i.duplicate_percent)]);
    }
    if i.reorder_percent > 0.0 {
        a.extend(["reorder".into(), pct(i.reorder_percent), "gap".into(), i.gap().to_string()]);
    }
    a
}

/// The commands that give `dev` the impairment `i` on egress, starting from whatever
/// was there (the old root qdisc and MTU table are removed first).
pub fn commands(dev: &str, i: &Impairment) -> Vec<ToolCommand> {
    commands_seeded(dev, i, None)
}

/// [`commands`] with netem's PRNG seeded (`seed N`, Linux and iproute2 ≥ 6.5), so a
/// run replays; the kernel's PRNG is not the userspace engine's, so the two engines
/// replay different (equally distributed) patterns.
pub fn commands_seeded(dev: &str, i: &Impairment, seed: Option<u64>) -> Vec<ToolCommand> {
    let tc = |args: Vec<String>, may_fail| ToolCommand { program: "tc", args, stdin: None, may_fail };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let table = nft_table(dev);
    let mut out = vec![
        tc(s(&["qdisc", "del", "dev", dev, "root"]), true),
        ToolCommand { program: "nft", args: s(&["delete", "table", "netdev", &table]), stdin: None, may_fail: true },
    ];
    if let Some(mtu) = i.mtu {
        // `meta length` at netdev egress counts the Ethernet header.
        out.push(ToolCommand {
            program: "nft",
            args: s(&["-f", "-"]),
            stdin: Some(format!(
                "table netdev {table} {{\n  chain egress {{\n    type filter hook egress device \"{dev}\" priority 0;\n    meta length > {} drop\n  }}\n}}\n",
                mtu + ETH_HEADER
            )),
            may_fail: false,
        });
    }
    if i.is_perfect() || (i.mtu.is_some() && Impairment { mtu: None, ..i.clone() }.is_perfect()) {
        return out;
    }
    let mut root = s(&["qdisc", "add", "dev", dev, "root", "handle", "1:", "netem"]);
    root.extend(netem_args(i));
    if let Some(seed) = seed {
        root.extend(["seed".into(), seed.to_string()]);
    }
    out.push(tc(root, false));
    if let (Some(rate), Some(burst), Some(q)) = (i.rate_kbit, i.burst_bytes(), i.queue_limit()) {
        let limit = match q {
            QueueLimit::Bytes(b) => b,
            // The pfifo below does the limiting; tbf's own byte limit must not bite first.
            QueueLimit::Packets(n) => u64::from(n) * 65_536,
        };
        out.push(tc(
            s(&[
                "qdisc",
                "add",
                "dev",
                dev,
                "parent",
                "1:1",
                "handle",
                "10:",
                "tbf",
                "rate",
                &format!("{rate}kbit"),
                "burst",
                &burst.to_string(),
                "limit",
                &limit.to_string(),
            ]),
            false,
        ));
        if let QueueLimit::Packets(n) = q {
            out.push(tc(
                s(&["qdisc", "add", "dev", dev, "parent", "10:1", "handle", "100:", "pfifo", "limit", &n.to_string()]),
                false,
            ));
        }
    }
    out
}

/// Renders commands as a shell script body (for snapshots and `--dry-run` style output).
pub fn render(cmds: &[ToolCommand]) -> String {
    cmds.iter().map(|c| format!("{c}\n")).collect()
}

/// Configures `dev` in namespace `ns` (each command runs as a process that entered the
/// namespace). Fails when netem is missing; check [`netem_available`] first.
pub fn apply(ns: &str, dev: &str, i: &Impairment) -> Result<()> {
    apply_seeded(ns, dev, i, None)
}

/// [`apply`] with a seeded netem PRNG (see [`commands_seeded`]).
pub fn apply_seeded(ns: &str, dev: &str, i: &Impairment, seed: Option<u64>) -> Result<()> {
    i.validate()?;
    let handle = netns::open(ns)?;
    for c in commands_seeded(dev, i, seed) {
        let mut cmd = Command::new(c.program);
        cmd.args(&c.args);
        procs::enter_netns(&mut cmd, &handle)?;
        let out = child::run(cmd, c.stdin.as_deref(), TOOL_DEADLINE)?;
        if !out.status.success() && !c.may_fail {
            bail!("in namespace {ns}: `{c}` failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_link_only_cleans_up() {
        insta::assert_snapshot!(render(&commands("eth0", &Impairment::default())), @r"
        tc qdisc del dev eth0 root || true
        nft delete table netdev icelab_mtu_eth0 || true
        ");
    }
}
