//! CPU and memory of a load's processes, from the kernel's own accounting: the
//! servers (every process still in the lab's namespaces when the calls end: STUN/TURN,
//! echo, impairment engine) read from `/proc/PID/stat` and `status`, and the peers
//! (reaped children of the load driver) from `getrusage(RUSAGE_CHILDREN)` over the
//! calls. Pure: the shell hands in the files' text and the counters.

use serde::Serialize;

/// One group's use of the machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Usage {
    /// Processes counted.
    pub processes: usize,
    /// User + system CPU, s.
    pub cpu_s: f64,
    /// `cpu_s` over the wall time it was spent in: 1.0 is one core busy throughout.
    pub cores: f64,
    /// Largest resident set of any one process, MiB (the kernel's high-water mark).
    pub peak_rss_mib: f64,
}

/// CPU and memory of servers and peers over a load.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resources {
    /// Whether they were read.
    pub measured: bool,
    /// Processes in the lab when the calls ended, since the lab came up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub servers: Option<Usage>,
    /// Every peer process reaped during the calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers: Option<Usage>,
}

impl Resources {
    /// The slot before anything was read.
    pub fn unmeasured() -> Resources {
        Resources { measured: false, servers: None, peers: None }
    }

    /// One line for the terminal summary.
    pub fn note(&self) -> String {
        let u = |name: &str, u: &Option<Usage>| {
            u.as_ref().map(|u| {
                format!(
                    "{name} {} processes, {:.2} CPU s ({:.2} cores), peak RSS {:.1} MiB",
                    u.processes, u.cpu_s, u.cores, u.peak_rss_mib
                )
            })
        };
        let parts: Vec<String> = [u("servers", &self.servers), u("peers", &self.peers)].into_iter().flatten().collect();
        if parts.is_empty() { "not measured".into() } else { parts.join("; ") }
    }
}

/// A process as `/proc/PID/stat` and `/proc/PID/status` show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcSample {
    /// User + system CPU, clock ticks.
    pub cpu_ticks: u64,
    /// Peak resident set (`VmHWM`), KiB.
    pub hwm_kib: u64,
}

/// Reads a process's `stat` and `status` text; `None` when either is not what Linux writes.
pub fn parse_proc(stat: &str, status: &str) -> Option<ProcSample> {
    // The command name is in parentheses and may hold spaces or ')'; fields follow the last ')'.
    let close = stat.rfind(')')?;
    let rest: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (proc(5)).
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(ProcSample { cpu_ticks: utime + stime, hwm_kib })
}

/// The servers' usage: every process in the lab, over `wall_s` (the lab's life so far).
pub fn servers(procs: &[ProcSample], ticks_per_s: f64, wall_s: f64) -> Usage {
    let cpu_s = procs.iter().map(|p| p.cpu_ticks).sum::<u64>() as f64 / ticks_per_s;
    let peak = procs.iter().map(|p| p.hwm_kib).max().unwrap_or(0);
    Usage { processes: procs.len(), cpu_s, cores: share(cpu_s, wall_s), peak_rss_mib: peak as f64 / 1024.0 }
}

/// Reaped children's counters, as `getrusage(RUSAGE_CHILDREN)` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ChildrenUsage {
    /// User + system CPU of every reaped child, s.
    pub cpu_s: f64,
    /// Largest resident set of any reaped child, KiB.
    pub max_rss_kib: u64,
}

/// The peers' usage: the children reaped between `before` and `after`, over `wall_s`.
/// The high-water mark is the largest child's since the driver started (the kernel keeps
/// no per-interval maximum), which the peers set: they are the largest children.
pub fn peers(before: ChildrenUsage, after: ChildrenUsage, processes: usize, wall_s: f64) -> Usage {
    let cpu_s = (after.cpu_s - before.cpu_s).max(0.0);
    Usage { processes, cpu_s, cores: share(cpu_s, wall_s), peak_rss_mib: after.max_rss_kib as f64 / 1024.0 }
}

fn share(cpu_s: f64, wall_s: f64) -> f64 {
    if wall_s > 0.0 { cpu_s / wall_s } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (icelab turn) S 1 4242 4242 0 -1 4194560 900 0 0 0 150 37 0 0 20 0 9 0 1234 \
                        100000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
    const STATUS: &str = "Name:\ticelab\nVmPeak:\t  300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";

    #[test]
    fn reads_cpu_and_peak_rss_from_proc_text() {
        let p = parse_proc(STAT, STATUS).unwrap();
        assert_eq!(p, ProcSample { cpu_ticks: 187, hwm_kib: 20480 });
        assert_eq!(parse_proc("4242 (x) S 1 2", STATUS), None, "truncated stat");
    }

    #[test]
    fn servers_sum_cpu_and_keep_the_largest_process() {
        let a = ProcSample { cpu_ticks: 100, hwm_kib: 1024 };
        let b = ProcSample { cpu_ticks: 300, hwm_kib: 4096 };
        let u = servers(&[a, b], 100.0, 8.0);
        assert_eq!(u, Usage { processes: 2, cpu_s: 4.0, cores: 0.5, peak_rss_mib: 4.0 });
    }

    #[test]
    fn peers_take_the_interval_cpu() {
        let before = ChildrenUsage { cpu_s: 1.0, max_rss_kib: 2048 };
        let after = ChildrenUsage { cpu_s: 7.0, max_rss_kib: 30720 };
        let u = peers(before, after, 20, 3.0);
        assert_eq!(u, Usage { processes: 20, cpu_s: 6.0, cores: 2.0, peak_rss_mib: 30.0 });
        let r = Resources { measured: true, servers: None, peers: Some(u) };
        assert_eq!(r.note(), "peers 20 processes, 6.00 CPU s (2.00 cores), peak RSS 30.0 MiB");
    }
}
