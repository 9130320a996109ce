//! A population: a weighted mix of the matrix's NAT and firewall kinds
//! ([`crate::matrix::Config`]), a STUN and a TURN server on the internet, as one
//! generated icelab file. As in the matrix's cells, offerers and answerers sit on two
//! sides: each kind has an offering site (`port-a-1` .. behind `port-a-r1`) and an
//! answering one (`port-b-*` behind `port-b-r1`), `hosts-per-kind` hosts each, so two
//! hosts of one kind never share a NAT (which would make their call a LAN call). Calls
//! pair a host of each side, kinds drawn by weight; what each pair should show is the
//! matrix's expectation ([`crate::matrix::expect`]).

use serde::Serialize;

use super::schedule::Rng;
use crate::matrix::{Config, expect};
use crate::scenario::PathClass;
use crate::servers::Implementation;

/// One kind of the mix.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kind {
    /// The configuration its hosts sit behind.
    pub config: Config,
    /// Weight as written.
    pub weight: f64,
    /// Share of hosts drawn (weight over the total).
    pub share: f64,
}

/// A weighted mix of kinds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Population {
    /// The kinds, in [`Config::ALL`] order.
    pub kinds: Vec<Kind>,
    /// Hosts of each kind on each side.
    pub hosts_per_kind: usize,
    /// Peers' ICE profile (absent: the scenario default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_profile: Option<String>,
    /// An impairment preset on every host's uplink (a slowdown over the whole load).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impair: Option<String>,
    /// An impairment preset on the TURN server's uplink (so an `[[event]]` can change it
    /// mid-load: the userspace engine carries only links impaired from the start).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_impair: Option<String>,
    /// A CPU limit on the TURN server, in cores (`relay-cpu = 0.1`: its `cpu`), to show
    /// where setup time degrades when the relay is starved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_cpu: Option<f64>,
    /// The TURN server's program (`relay = "coturn"`: load-test coturn).
    #[serde(skip_serializing_if = "is_built_in")]
    pub relay: Implementation,
    /// The STUN server's program.
    #[serde(skip_serializing_if = "is_built_in")]
    pub stun: Implementation,
}

fn is_built_in(i: &Implementation) -> bool {
    *i == Implementation::BuiltIn
}

/// A server's `services` entry for one service kind and program.
fn service(kind: &str, program: Implementation) -> String {
    match program {
        Implementation::BuiltIn => format!("\"{kind}\""),
        other => format!("{{ kind = \"{kind}\", implementation = \"{}\" }}", other.name()),
    }
}

impl Population {
    /// A mix of `(kind, weight)` (weights above 0).
    pub fn new(mut mix: Vec<(Config, f64)>, hosts_per_kind: usize) -> Population {
        mix.sort_by_key(|(c, _)| *c);
        let total: f64 = mix.iter().map(|(_, w)| w).sum();
        let kinds = mix.into_iter().map(|(config, weight)| Kind { config, weight, share: weight / total }).collect();
        Population {
            kinds,
            hosts_per_kind,
            ice_profile: None,
            impair: None,
            relay_impair: None,
            relay_cpu: None,
            relay: Implementation::BuiltIn,
            stun: Implementation::BuiltIn,
        }
    }

    /// The hosts of one kind on one side (`'a'` offers, `'b'` answers): `port-a-1` ..
    pub fn hosts(&self, c: Config, side: char) -> Vec<String> {
        let base = Self::site(c, side);
        if self.hosts_per_kind == 1 {
            return vec![base];
        }
        (1..=self.hosts_per_kind).map(|i| format!("{base}-{i}")).collect()
    }

    fn site(c: Config, side: char) -> String {
        format!("{}-{side}", c.word())
    }

    /// A kind drawn by weight.
    pub fn draw(&self, rng: &mut Rng) -> Config {
        let mut x = rng.unit();
        for k in &self.kinds {
            if x < k.share {
                return k.config;
            }
            x -= k.share;
        }
        self.kinds.last().map_or(Config::Open, |k| k.config)
    }

    /// Share of calls the matrix expects relayed when both ends are drawn by weight.
    pub fn predicted_relayed_share(&self) -> f64 {
        let mut s = 0.0;
        for a in &self.kinds {
            for b in &self.kinds {
                if expect(a.config, b.config).path == PathClass::Relayed {
                    s += a.share * b.share;
                }
            }
        }
        s
    }

    /// The lab as an icelab file: every kind's routers and hosts, `stun` and `relay`
    /// servers, and a scenario (its one pair only makes the file whole: the load places
    /// its own). `data_ms` / `data_rate_kbps` set each call's data phase.
    pub fn lab_file(&self, data_ms: Option<u64>, data_rate_kbps: Option<u64>) -> String {
        let shares: Vec<String> = self.kinds.iter().map(|k| format!("{} {:.0} %", k.config, k.share * 100.0)).collect();
        let mut s =
            format!("description = \"load population: {}; {} hosts each\"\n\n", shares.join(", "), self.hosts_per_kind);
        let extra = self.impair.as_ref().map_or(String::new(), |p| format!("impair = \"{p}\"\n"));
        for side in ['a', 'b'] {
            for k in &self.kinds {
                let site = Self::site(k.config, side);
                s += &k.config.tables_with(&format!("{site}-r"), &site, self.hosts_per_kind, &extra);
            }
        }
        let mut relay = self.relay_impair.as_ref().map_or(String::new(), |p| format!("impair = \"{p}\"\n"));
        if let Some(c) = self.relay_cpu {
            relay += &format!("cpu = {c:?}\n");
        }
        let (stun, turn) = (service("stun", self.stun), service("turn", self.relay));
        s += &format!("[server.stun]\nservices = [{stun}]\n\n[server.relay]\nservices = [{turn}]\n{relay}\n");
        let first = self.kinds.first().map_or(Config::Open, |k| k.config);
        s += &format!(
            "[scenario]\nofferer = \"{}\"\nanswerer = \"{}\"\nstun = \"stun\"\nturn = \"relay\"\ndeadline-ms = 12000\n",
            self.hosts(first, 'a')[0],
            self.hosts(first, 'b')[0]
        );
        if let Some(p) = &self.ice_profile {
            s += &format!("ice-profile = \"{p}\"\n");
        }
        if let Some(ms) = data_ms {
            s += &format!("data-ms = {ms}\n");
        }
        // Media-like data, not a flood, unless asked: as in the matrix's cells.
        s += &format!("data-rate-kbps = {}\n", data_rate_kbps.unwrap_or(500));
        s
    }
}
