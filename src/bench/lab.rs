//! Runs the relay benchmark in a lab of its own: builds it ([`super::relay::topology_source`]),
//! drives each implementation in turn ([`super::load`]), reads the server's CPU and the
//! namespaces' UDP drop counters around each run, and tears the lab down. Teardown rides
//! on [`Lab`]'s `Drop`, so an error, a panic or a dropped future leaves nothing behind.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};

use super::load::{Endpoints, Session};
use super::relay::{
    BenchConfig, BenchReport, CLIENT_NODE, PEER_NODE, Tally, UclientRun, server_node, summarize, topology_source,
};
use crate::fabric::{Lab, netns, procs, registry};
use crate::plan::Plan;
use crate::servers::{Implementation, LAB_CREDENTIALS};

/// `turnutils_peer`'s port (its default, and `turnutils_uclient`'s default `-r`).
const UCLIENT_PEER_PORT: u16 = 3480;

/// Runs the bench in a new lab named `name`; `progress` sees what is happening.
pub async fn run(cfg: &BenchConfig, name: &str, mut progress: impl FnMut(&str)) -> anyhow::Result<BenchReport> {
    cfg.validate().map_err(|e| anyhow!(e))?;
    let spec = crate::spec::parse_str("bench-relay.toml", &topology_source(&cfg.implementations))
        .map_err(|e| anyhow!("the bench's own topology: {e}"))?;
    progress("building the lab");
    let (lab, _) = Lab::up(&spec.topology, name, |_, _| {}).await?;
    let plan = lab.plan();
    let node = |n: &str| plan.node(n).ok_or_else(|| anyhow!("the bench lab has no node `{n}`"));
    let (client, peer) = (node(CLIENT_NODE)?, node(PEER_NODE)?);
    let ep = Endpoints {
        client_ns: netns::open(&client.ns)?,
        peer_ns: netns::open(&peer.ns)?,
        client_ip: IpAddr::V4(client.addresses[0]),
        peer_ip: IpAddr::V4(peer.addresses[0]),
    };
    let mut tallies: Vec<Option<Tally>> = vec![None; cfg.implementations.len()];
    for round in 1..=cfg.rounds {
        for (slot, &imp) in tallies.iter_mut().zip(&cfg.implementations) {
            let what = format!("{} (round {round}/{})", imp.name(), cfg.rounds);
            let t = measure(cfg, name, plan, &ep, imp, |s| progress(&format!("{what}: {s}"))).await?;
            match slot {
                Some(sum) => sum.add(t),
                None => *slot = Some(t),
            }
        }
    }
    let results =
        cfg.implementations.iter().zip(tallies).map(|(&imp, t)| summarize(imp, cfg, t.unwrap_or_default())).collect();
    let mut uclient = Vec::new();
    if cfg.uclient {
        for &imp in &cfg.implementations {
            progress(&format!("{}: turnutils_uclient", imp.name()));
            let (server, _) = turn_endpoint(plan, imp)?;
            uclient.push(run_uclient(cfg, &ep, &client.ns, &peer.ns, server, imp).await);
        }
    }
    progress("tearing down");
    lab.down()?;
    Ok(BenchReport::new(cfg.clone(), results, uclient))
}

/// One run of `imp`: fresh allocations, the load, the server's CPU and drops around it.
async fn measure(
    cfg: &BenchConfig,
    name: &str,
    plan: &Plan,
    ep: &Endpoints,
    imp: Implementation,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<Tally> {
    progress(&format!("{} allocations", cfg.allocations));
    let (server, ns) = turn_endpoint(plan, imp)?;
    let pid = server_pid(name, &ns)?;
    let server_ns = netns::open(&ns)?;
    let session = Session::setup(ep, server, (cfg.allocations, cfg.rate, cfg.size, cfg.duration)).await?;
    progress(&format!("sending for {:.1} s", cfg.duration.as_secs_f64()));
    let cpu0 = cpu_ticks(pid);
    let drops0 = (rcvbuf_errors(&server_ns), endpoint_drops(ep));
    let t0 = Instant::now();
    let mut tally: Tally = session.run().await?;
    tally.cpu_window = t0.elapsed();
    tally.clock_ticks_per_s = clock_ticks();
    tally.server_cpu_ticks = cpu0.zip(cpu_ticks(pid)).map(|(a, b)| b.saturating_sub(a));
    let drops1 = (rcvbuf_errors(&server_ns), endpoint_drops(ep));
    tally.server_rcvbuf_drops = drops0.0.zip(drops1.0).map(|(a, b)| b.saturating_sub(a));
    tally.endpoint_rcvbuf_drops = drops0.1.zip(drops1.1).map(|(a, b)| b.saturating_sub(a));
    Ok(tally)
}

/// The TURN service of `imp`'s server node: its UDP address and namespace.
fn turn_endpoint(plan: &Plan, imp: Implementation) -> anyhow::Result<(SocketAddr, String)> {
    let node = server_node(imp);
    let svc = plan
        .services
        .iter()
        .find(|s| s.node == node && s.service == "turn")
        .ok_or_else(|| anyhow!("the bench lab's `{node}` runs no TURN service"))?;
    let ns = plan.node(node).ok_or_else(|| anyhow!("no node `{node}`"))?.ns.clone();
    Ok((svc.address, ns))
}

/// The TURN server's pid, from the plan's pid file.
fn server_pid(lab: &str, ns: &str) -> anyhow::Result<i32> {
    let file = registry::lab_dir(lab).join(format!("turn-{ns}.pid"));
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.trim().parse().with_context(|| format!("{}: not a pid", file.display()))
}

/// User + system CPU time of `pid` in clock ticks (`/proc/PID/stat` fields 14 and 15).
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    parse_stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `/proc/PID/stat` line (the command name may hold spaces and parens).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as u64 } else { 100 }
}

/// `Udp: RcvbufErrors` of `/proc/net/snmp` text.
pub fn parse_rcvbuf_errors(snmp: &str) -> Option<u64> {
    let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

/// UDP receive-buffer drops so far in namespace `ns`.
fn rcvbuf_errors(ns: &std::os::fd::OwnedFd) -> Option<u64> {
    netns::run_in(ns, || std::fs::read_to_string("/proc/thread-self/net/snmp").ok())
        .ok()
        .flatten()
        .and_then(|s| parse_rcvbuf_errors(&s))
}

fn endpoint_drops(ep: &Endpoints) -> Option<u64> {
    Some(rcvbuf_errors(&ep.client_ns)? + rcvbuf_errors(&ep.peer_ns)?)
}

/// The `turnutils_uclient` command line for this bench against `server` (run in the
/// client's namespace, with `turnutils_peer -L PEER` in the peer's).
pub fn uclient_args(cfg: &BenchConfig, server: SocketAddr, peer: IpAddr) -> Vec<String> {
    let c = LAB_CREDENTIALS;
    let messages = (f64::from(cfg.rate) * cfg.duration.as_secs_f64()).round().max(1.0) as u64;
    let interval_ms = (1000 / cfg.rate.max(1)).max(1);
    [
        "-c", // no RTCP allocation: one allocation per client, like the generator
        "-n",
        &messages.to_string(),
        "-m",
        &cfg.allocations.to_string(),
        "-l",
        &cfg.size.to_string(),
        "-z",
        &interval_ms.to_string(),
        "-e",
        &peer.to_string(),
        "-r",
        &UCLIENT_PEER_PORT.to_string(),
        "-u",
        c.user,
        "-w",
        c.password,
        "-p",
        &server.port().to_string(),
        &server.ip().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn run_uclient(
    cfg: &BenchConfig,
    ep: &Endpoints,
    client_ns: &str,
    peer_ns: &str,
    server: SocketAddr,
    imp: Implementation,
) -> UclientRun {
    let args = uclient_args(cfg, server, ep.peer_ip);
    let command = format!("icelab exec LAB {CLIENT_NODE} -- turnutils_uclient {}", args.join(" "));
    let summary = match uclient_summary(&args, client_ns, peer_ns, ep.peer_ip, cfg.duration).await {
        Ok(lines) => lines,
        Err(e) => vec![format!("did not run: {e:#}")],
    };
    UclientRun { implementation: imp.name().into(), command, summary }
}

/// A child that is killed when dropped.
struct KillOnDrop(tokio::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.start_kill();
    }
}

fn spawn_in(ns: &str, program: &str, args: &[String]) -> anyhow::Result<KillOnDrop> {
    let fd = netns::open(ns)?;
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    procs::enter_netns(&mut cmd, &fd)?;
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    Ok(KillOnDrop(cmd.spawn().with_context(|| format!("starting {program} (apt-get install coturn)"))?))
}

async fn uclient_summary(
    args: &[String],
    client_ns: &str,
    peer_ns: &str,
    peer_ip: IpAddr,
    duration: Duration,
) -> anyhow::Result<Vec<String>> {
    let peer_args = ["-L".to_string(), peer_ip.to_string(), "-p".into(), UCLIENT_PEER_PORT.to_string()];
    let _peer = spawn_in(peer_ns, "turnutils_peer", &peer_args)?;
    // turnutils_peer binds at once; its socket is there before the client's first allocation.
    let mut client = spawn_in(client_ns, "turnutils_uclient", args)?;
    let deadline = duration + Duration::from_secs(30);
    let mut out = String::new();
    let mut err = String::new();
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut o, mut e) = (client.0.stdout.take(), client.0.stderr.take());
        if let Some(o) = o.as_mut() {
            o.read_to_string(&mut out).await?;
        }
        if let Some(e) = e.as_mut() {
            e.read_to_string(&mut err).await?;
        }
        client.0.wait().await
    };
    let status = tokio::time::timeout(deadline, read)
        .await
        .map_err(|_| anyhow!("turnutils_uclient still running after {} s", deadline.as_secs()))??;
    let text = format!("{out}\n{err}");
    let mut lines: Vec<String> = Vec::new();
    for l in text.lines() {
        // `0: : Total lost packets 0 (0.000000%), ...`: from the keyword on, once each.
        if let Some(at) = l.find("Total").or_else(|| l.find("Average")) {
            let l = l[at..].trim().to_string();
            if !lines.contains(&l) {
                lines.push(l);
            }
        }
    }
    if lines.is_empty() {
        return Err(anyhow!("turnutils_uclient ({status}) printed no summary:\n{}", tail(&text)));
    }
    Ok(lines)
}

fn tail(s: &str) -> &str {
    let at = s.len().saturating_sub(600);
    let at = (at..s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
    &s[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_ticks_and_snmp_parse() {
        let stat = "1234 (turn server) S 1 2 3 4 5 6 7 8 9 10 150 25 0 0 20 0 4 0 100";
        assert_eq!(parse_stat_ticks(stat), Some(175));
        let snmp = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 0 7 9 7 0\n";
        assert_eq!(parse_rcvbuf_errors(snmp), Some(7));
    }

    #[test]
    fn uclient_command_matches_the_bench() {
        let cfg = BenchConfig { allocations: 10, rate: 50, size: 1200, ..BenchConfig::default() };
        let a = uclient_args(&cfg, "203.0.113.5:3478".parse().unwrap(), "203.0.113.9".parse().unwrap());
        let s = a.join(" ");
        assert!(s.contains("-n 250 -m 10 -l 1200 -z 20 -e 203.0.113.9"), "{s}");
        assert!(s.ends_with("-p 3478 203.0.113.5"), "{s}");
    }
}
