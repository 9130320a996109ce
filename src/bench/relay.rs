//! The relay benchmark's model (pure): its settings, the lab it runs in, the figures one
//! implementation's run yields, and their text rendering.
//!
//! A run sends `allocations x rate` ChannelData packets of `size` bytes per second from
//! one client host through the relay to an echo peer, which sends each back the same way.
//! Every packet crosses the relay twice; both crossings count as relayed.

use std::time::Duration;

use serde::Serialize;

use crate::servers::Implementation;

/// Bounds that keep a run's count and time small.
pub const MAX_ALLOCATIONS: u32 = 1000;
/// Longest send phase.
pub const MAX_DURATION_S: f64 = 120.0;
/// Highest total offered rate (packets per second, all allocations).
pub const MAX_TOTAL_PPS: u64 = 200_000;
/// Most rounds.
pub const MAX_ROUNDS: u32 = 10;
/// Smallest payload: allocation index, sequence number and send time.
pub const MIN_SIZE: usize = 20;
/// Largest payload that fits a 1500-byte MTU with IPv4, UDP and ChannelData headers.
pub const MAX_SIZE: usize = 1400;

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchConfig {
    /// Allocations (one client socket each).
    pub allocations: u32,
    /// Packets per second per allocation.
    pub rate: u32,
    /// Payload bytes per packet (the relayed data, without the 4-byte ChannelData header).
    pub size: usize,
    /// Length of the send phase.
    pub duration: Duration,
    /// Implementations, in run order.
    pub implementations: Vec<Implementation>,
    /// Rounds: each runs every implementation once, in turn, so background load on a
    /// shared machine falls on all of them alike; the figures add up the rounds.
    pub rounds: u32,
    /// Also run coturn's `turnutils_uclient` against each implementation.
    pub uclient: bool,
}

impl Default for BenchConfig {
    fn default() -> Self {
        BenchConfig {
            allocations: 10,
            rate: 100,
            size: 1200,
            duration: Duration::from_secs(5),
            implementations: Implementation::ALL.to_vec(),
            rounds: 1,
            uclient: false,
        }
    }
}

impl BenchConfig {
    /// Checks the bounds; the message says which one is off.
    pub fn validate(&self) -> Result<(), String> {
        if self.allocations == 0 || self.allocations > MAX_ALLOCATIONS {
            return Err(format!("--allocations must be 1..={MAX_ALLOCATIONS}, not {}", self.allocations));
        }
        if self.rate == 0 {
            return Err("--rate must be at least 1 packet per second".into());
        }
        let total = u64::from(self.allocations) * u64::from(self.rate);
        if total > MAX_TOTAL_PPS {
            return Err(format!(
                "--allocations x --rate is {total} packets/s; at most {MAX_TOTAL_PPS} (two cores cannot offer more)"
            ));
        }
        if !(MIN_SIZE..=MAX_SIZE).contains(&self.size) {
            return Err(format!("--size must be {MIN_SIZE}..={MAX_SIZE} bytes, not {}", self.size));
        }
        let d = self.duration.as_secs_f64();
        if !(d > 0.0 && d <= MAX_DURATION_S) {
            return Err(format!("--duration must be more than 0 and at most {MAX_DURATION_S} s, not {d}"));
        }
        if !(1..=MAX_ROUNDS).contains(&self.rounds) {
            return Err(format!("--rounds must be 1..={MAX_ROUNDS}, not {}", self.rounds));
        }
        if self.implementations.is_empty() {
            return Err("--impl names no implementation".into());
        }
        Ok(())
    }
}

/// `--impl`'s list: `builtin` (or `built-in`) and `coturn`, comma-separated, no repeats.
pub fn parse_implementations(list: &str) -> Result<Vec<Implementation>, String> {
    let mut out = Vec::new();
    for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let i = match word {
            "builtin" | "built-in" => Implementation::BuiltIn,
            "coturn" => Implementation::Coturn,
            _ => return Err(format!("--impl: unknown implementation `{word}` (builtin, coturn)")),
        };
        if out.contains(&i) {
            return Err(format!("--impl: `{word}` given twice"));
        }
        out.push(i);
    }
    if out.is_empty() {
        return Err("--impl names no implementation (builtin, coturn)".into());
    }
    Ok(out)
}

/// The server node that runs `imp`'s TURN service in the bench lab.
pub fn server_node(imp: Implementation) -> &'static str {
    match imp {
        Implementation::BuiltIn => "builtin",
        Implementation::Coturn => "coturn",
    }
}

/// Node of the load generator.
pub const CLIENT_NODE: &str = "client";
/// Node of the echo peer.
pub const PEER_NODE: &str = "peer";

/// The bench lab: the client and the echo peer straight on the internet, and one server
/// node per implementation, each running only its TURN service.
pub fn topology_source(implementations: &[Implementation]) -> String {
    let mut s = String::from(
        "# icelab bench relay: load generator -> TURN relay -> echo peer\n\
         [host.client]\non = \"internet\"\n\n[host.peer]\non = \"internet\"\n",
    );
    for imp in implementations {
        s.push_str(&format!(
            "\n[server.{}]\nservices = [{{ kind = \"turn\", implementation = \"{}\" }}]\n",
            server_node(*imp),
            imp.name()
        ));
    }
    s
}

/// What the generator and the echo peer counted for one implementation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Packets the client sent (ChannelData to the server).
    pub sent: u64,
    /// Packets the echo peer received from the relay (and sent back).
    pub peer_received: u64,
    /// Echoes the client received back through the relay.
    pub received: u64,
    /// Round-trip time of every echo received, in microseconds.
    pub rtt_us: Vec<u32>,
    /// From the first send to the last (the offered-load window).
    pub send_window: Duration,
    /// Server CPU time (user + system, in clock ticks) over the measurement.
    pub server_cpu_ticks: Option<u64>,
    /// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
    pub clock_ticks_per_s: u64,
    /// Wall time over which the server CPU was read (send window + drain).
    pub cpu_window: Duration,
    /// UDP receive-buffer drops (`RcvbufErrors` in `/proc/net/snmp`) in the server's namespace.
    pub server_rcvbuf_drops: Option<u64>,
    /// The same in the client's and peer's namespaces (drops at the generator, not the relay).
    pub endpoint_rcvbuf_drops: Option<u64>,
}

impl Tally {
    /// Adds another round's counts to these (a figure one round lacks is lacking).
    pub fn add(&mut self, o: Tally) {
        self.sent += o.sent;
        self.peer_received += o.peer_received;
        self.received += o.received;
        self.rtt_us.extend(o.rtt_us);
        self.send_window += o.send_window;
        self.cpu_window += o.cpu_window;
        self.clock_ticks_per_s = o.clock_ticks_per_s;
        let sum = |a: Option<u64>, b: Option<u64>| a.zip(b).map(|(a, b)| a + b);
        self.server_cpu_ticks = sum(self.server_cpu_ticks, o.server_cpu_ticks);
        self.server_rcvbuf_drops = sum(self.server_rcvbuf_drops, o.server_rcvbuf_drops);
        self.endpoint_rcvbuf_drops = sum(self.endpoint_rcvbuf_drops, o.endpoint_rcvbuf_drops);
    }
}

/// One implementation's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImplResult {
    /// `built-in` or `coturn`.
    pub implementation: String,
    /// Packets sent by the client.
    pub sent: u64,
    /// Packets the peer received through the relay.
    pub peer_received: u64,
    /// Echoes received back by the client.
    pub received: u64,
    /// Round-trip loss, percent of `sent`.
    pub loss_pct: f64,
    /// Loss client -> peer, percent of `sent`.
    pub forward_loss_pct: f64,
    /// Loss peer -> client, percent of what the peer echoed.
    pub return_loss_pct: f64,
    /// Packets relayed per second (both directions: peer_received + received over the send window).
    pub relayed_pps: f64,
    /// Payload megabits per second relayed (both directions).
    pub relayed_mbps: f64,
    /// Round-trip time, median (ms); `None` when nothing came back.
    pub rtt_p50_ms: Option<f64>,
    /// Round-trip time, 99th percentile (ms).
    pub rtt_p99_ms: Option<f64>,
    /// Server CPU, percent of one core, over send + drain.
    pub server_cpu_pct: Option<f64>,
    /// UDP receive-buffer drops in the server's namespace during the run.
    pub server_rcvbuf_drops: Option<u64>,
    /// UDP receive-buffer drops in the client's and peer's namespaces.
    pub endpoint_rcvbuf_drops: Option<u64>,
    /// Send window (s).
    pub send_window_s: f64,
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

/// The `q` quantile (0..=1) of sorted values, nearest rank.
pub fn quantile(sorted: &[u32], q: f64) -> Option<u32> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The figures of one implementation's tally.
pub fn summarize(imp: Implementation, cfg: &BenchConfig, mut t: Tally) -> ImplResult {
    t.rtt_us.sort_unstable();
    let window = t.send_window.as_secs_f64();
    let relayed = t.peer_received + t.received;
    let relayed_pps = if window > 0.0 { relayed as f64 / window } else { 0.0 };
    let ms = |v: Option<u32>| v.map(|us| f64::from(us) / 1000.0);
    let cpu = t
        .server_cpu_ticks
        .filter(|_| t.clock_ticks_per_s > 0 && !t.cpu_window.is_zero())
        .map(|ticks| 100.0 * ticks as f64 / t.clock_ticks_per_s as f64 / t.cpu_window.as_secs_f64());
    ImplResult {
        implementation: imp.name().into(),
        sent: t.sent,
        peer_received: t.peer_received,
        received: t.received,
        loss_pct: pct(t.sent.saturating_sub(t.received), t.sent),
        forward_loss_pct: pct(t.sent.saturating_sub(t.peer_received), t.sent),
        return_loss_pct: pct(t.peer_received.saturating_sub(t.received), t.peer_received),
        relayed_pps,
        relayed_mbps: relayed_pps * cfg.size as f64 * 8.0 / 1e6,
        rtt_p50_ms: ms(quantile(&t.rtt_us, 0.50)),
        rtt_p99_ms: ms(quantile(&t.rtt_us, 0.99)),
        server_cpu_pct: cpu,
        server_rcvbuf_drops: t.server_rcvbuf_drops,
        endpoint_rcvbuf_drops: t.endpoint_rcvbuf_drops,
        send_window_s: window,
    }
}

/// One `turnutils_uclient` run (the outside yardstick), as it printed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UclientRun {
    /// Implementation it ran against.
    pub implementation: String,
    /// The command line (run in the client's namespace).
    pub command: String,
    /// Its summary lines (`Total lost packets`, `Average round trip delay` ...), or why it did not run.
    pub summary: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// The settings.
    pub config: BenchConfig,
    /// Offered load, packets per second (all allocations, one direction).
    pub offered_pps: u64,
    /// One entry per implementation, in run order.
    pub results: Vec<ImplResult>,
    /// built-in relayed pps / coturn relayed pps, when both ran.
    pub builtin_coturn_ratio: Option<f64>,
    /// `turnutils_uclient` runs, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub uclient: Vec<UclientRun>,
}

impl BenchReport {
    /// The report of these results.
    pub fn new(config: BenchConfig, results: Vec<ImplResult>, uclient: Vec<UclientRun>) -> Self {
        let of = |imp: Implementation| results.iter().find(|r| r.implementation == imp.name()).map(|r| r.relayed_pps);
        let builtin_coturn_ratio = match (of(Implementation::BuiltIn), of(Implementation::Coturn)) {
            (Some(b), Some(c)) if c > 0.0 => Some(b / c),
            _ => None,
        };
        let offered_pps = u64::from(config.allocations) * u64::from(config.rate);
        BenchReport { config, offered_pps, results, builtin_coturn_ratio, uclient }
    }

    /// The human-readable table.
    pub fn text(&self) -> String {
        let c = &self.config;
        let mut s = format!(
            "relay bench: {} allocations x {} pkt/s x {} B for {:.1} s x {} round(s) (offered {} pkt/s each way, {:.1} Mbit/s)\n",
            c.allocations,
            c.rate,
            c.size,
            c.duration.as_secs_f64(),
            c.rounds,
            self.offered_pps,
            self.offered_pps as f64 * c.size as f64 * 8.0 / 1e6
        );
        s.push_str(&format!(
            "{:<9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>19} {:>9} {:>9} {:>7} {:>9}\n",
            "impl",
            "sent",
            "received",
            "relay/s",
            "Mbit/s",
            "loss%",
            "fwd/ret loss%",
            "rtt p50",
            "rtt p99",
            "cpu%",
            "srv drops"
        ));
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |x| format!("{x:.2}{unit}"));
        for r in &self.results {
            s.push_str(&format!(
                "{:<9} {:>9} {:>9} {:>9.0} {:>8.1} {:>8.3} {:>19} {:>9} {:>9} {:>7} {:>9}\n",
                r.implementation,
                r.sent,
                r.received,
                r.relayed_pps,
                r.relayed_mbps,
                r.loss_pct,
                format!("{:.3}/{:.3}", r.forward_loss_pct, r.return_loss_pct),
                opt(r.rtt_p50_ms, "ms"),
                opt(r.rtt_p99_ms, "ms"),
                r.server_cpu_pct.map_or("-".into(), |x| format!("{x:.0}")),
                r.server_rcvbuf_drops.map_or("-".into(), |x| x.to_string()),
            ));
        }
        if let Some(ratio) = self.builtin_coturn_ratio {
            s.push_str(&format!("built-in/coturn throughput ratio: {ratio:.3}\n"));
        }
        for u in &self.uclient {
            s.push_str(&format!("turnutils_uclient vs {}: {}\n", u.implementation, u.command));
            for l in &u.summary {
                s.push_str(&format!("  {l}\n"));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let ok = BenchConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut BenchConfig)| {
            let mut c = BenchConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.allocations = 0).contains("--allocations"));
        assert!(bad(|c| c.size = 1500).contains("--size"));
        assert!(bad(|c| c.duration = Duration::ZERO).contains("--duration"));
        assert!(bad(|c| c.rate = 1_000_000).contains("packets/s"));
    }

    #[test]
    fn implementations_parse() {
        assert_eq!(parse_implementations("builtin,coturn"), Ok(Implementation::ALL.to_vec()));
        assert_eq!(parse_implementations("coturn"), Ok(vec![Implementation::Coturn]));
        assert!(parse_implementations("nginx").unwrap_err().contains("nginx"));
        assert!(parse_implementations("coturn,coturn").is_err());
    }

    #[test]
    fn figures_follow_from_the_tally() {
        let cfg = BenchConfig { size: 1000, ..BenchConfig::default() };
        let t = Tally {
            sent: 1000,
            peer_received: 990,
            received: 980,
            rtt_us: (1..=100).rev().map(|x| x * 100).collect(),
            send_window: Duration::from_secs(2),
            server_cpu_ticks: Some(50),
            clock_ticks_per_s: 100,
            cpu_window: Duration::from_secs(1),
            ..Tally::default()
        };
        let r = summarize(Implementation::BuiltIn, &cfg, t);
        assert_eq!((r.loss_pct, r.forward_loss_pct), (2.0, 1.0));
        assert!((r.return_loss_pct - 100.0 * 10.0 / 990.0).abs() < 1e-9);
        assert_eq!(r.relayed_pps, 985.0);
        assert_eq!(r.relayed_mbps, 985.0 * 8000.0 / 1e6);
        assert_eq!((r.rtt_p50_ms, r.rtt_p99_ms), (Some(5.0), Some(9.9)));
        assert_eq!(r.server_cpu_pct, Some(50.0));
    }

    #[test]
    fn ratio_is_builtin_over_coturn() {
        let cfg = BenchConfig::default();
        let t = |received| Tally {
            sent: 100,
            peer_received: 100,
            received,
            send_window: Duration::from_secs(1),
            ..Tally::default()
        };
        let results =
            vec![summarize(Implementation::BuiltIn, &cfg, t(50)), summarize(Implementation::Coturn, &cfg, t(100))];
        assert_eq!(BenchReport::new(cfg.clone(), results, vec![]).builtin_coturn_ratio, Some(0.75));
        let only = vec![summarize(Implementation::Coturn, &cfg, t(100))];
        assert_eq!(BenchReport::new(cfg, only, vec![]).builtin_coturn_ratio, None);
    }

    #[test]
    fn the_lab_has_one_server_per_implementation() {
        let spec = crate::spec::parse_str("bench.toml", &topology_source(&Implementation::ALL)).unwrap();
        let names: Vec<&str> = spec.topology.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["builtin", "coturn"]);
        assert_eq!(spec.topology.hosts.len(), 2);
    }
}
