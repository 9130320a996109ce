//! A load file: how many calls, how fast they arrive, how many at once, what each call
//! does, the overall bound, and the lab: an icelab file (`lab = "FILE"`, its
//! `[scenario]` pairs taken in turn) or a generated `[population]`.
//!
//! ```toml
//! calls = 40            # calls to place
//! rate = 8.0            # offered arrivals, calls/s (open loop: a slow lab queues)
//! arrivals = "uniform"  # or "poisson" (exponential gaps, seeded)
//! concurrency = 16      # calls running at once at most; later arrivals wait
//! duration-ms = 1000    # each call's data phase after its channel opened
//! data-rate-kbps = 500  # each call's paced data, each way
//! time-limit-s = 60     # no call starts after this (from the first arrival)
//! seed = 1              # pairs and poisson gaps
//! ice-profile = "browser-like"  # the built-in peers' (default: the lab's)
//! peer = "chromium"     # both ends' peer (default: the lab's), as a scenario's `peer`
//! peer-processes = "per-host"  # built-in peers: one process per host for all its
//!                       # calls (default), or "per-call": two processes per call
//!
//! [population]          # instead of lab = "FILE"
//! hosts-per-kind = 3    # hosts of each kind on each side (offering, answering)
//! mix = { PORT = 55, SYMM = 10, "!UDP" = 5, HTTP = 5, OPEN = 10, CONE = 15 }
//! impair = "lte"        # optional: a slowdown, this preset on every host's uplink
//! relay-impair = "wifi" # optional: this preset on the TURN server's uplink
//! relay-cpu = 0.1       # optional: the TURN server gets a tenth of a core (a cpu cgroup)
//! relay = "coturn"      # optional: the TURN server's program (default "built-in")
//! stun = "coturn"       # optional: the STUN server's program (default "built-in")
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::population::Population;
use crate::diag::{FileError, Reporter, locate};
use crate::matrix::Config;
use crate::servers::Implementation;

/// Most calls one load places.
pub const MAX_LOAD_CALLS: u64 = 100_000;

/// How arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Every 1/rate seconds.
    #[default]
    Uniform,
    /// Exponential gaps of mean 1/rate (seeded).
    Poisson,
}

/// How the peers of a load's calls are run. Only the built-in peer pools: with any other
/// peer the load runs [`PeerProcesses::PerCall`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PeerProcesses {
    /// One pool process per host plays its side of every call: a call costs a peer
    /// connection, not a process.
    #[default]
    PerHost,
    /// Two processes per call, as `icelab run` starts them.
    PerCall,
}

impl PeerProcesses {
    /// As written in a file or on the command line.
    pub fn from_name(word: &str) -> Option<Self> {
        match word {
            "per-host" => Some(PeerProcesses::PerHost),
            "per-call" => Some(PeerProcesses::PerCall),
            _ => None,
        }
    }
}

/// Where the calls run.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabSource {
    /// An icelab file, its `[scenario]` pairs placed in turn (path as written, relative
    /// to the load file).
    File(String),
    /// A generated population.
    Population(Population),
}

/// A load, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadSpec {
    /// Calls to place.
    pub calls: u64,
    /// Offered arrival rate, calls/s.
    pub rate: f64,
    /// Spacing of arrivals.
    pub arrivals: Arrivals,
    /// Calls at once at most.
    pub concurrency: usize,
    /// Each call's data phase, ms (absent: the lab file's).
    pub duration_ms: Option<u64>,
    /// Each call's paced data, kbit/s each way (absent: the lab file's).
    pub data_rate_kbps: Option<u64>,
    /// No call starts after this many seconds from the first arrival.
    pub time_limit_s: f64,
    /// Seed of the pairs and of poisson gaps.
    pub seed: u64,
    /// The built-in peers' ICE profile (`webrtc-rs`, `browser-like`); absent: the lab's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ice_profile: Option<String>,
    /// Both ends' peer (`built-in`, `chromium`, `firefox`, a command); absent: the lab's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// How the built-in peers are run.
    pub peer_processes: PeerProcesses,
    /// The lab.
    pub lab: LabSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLoad {
    calls: Option<Spanned<i64>>,
    rate: Option<Spanned<f64>>,
    arrivals: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
    duration_ms: Option<Spanned<i64>>,
    data_rate_kbps: Option<Spanned<i64>>,
    time_limit_s: Option<Spanned<f64>>,
    seed: Option<Spanned<i64>>,
    ice_profile: Option<Spanned<String>>,
    peer: Option<Spanned<String>>,
    peer_processes: Option<Spanned<String>>,
    lab: Option<Spanned<String>>,
    population: Option<Spanned<RawPopulation>>,
    /// `[[event]]`s: read against the lab once it is known (`crate::spec::load_events`).
    #[serde(default)]
    #[allow(dead_code)]
    event: Vec<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPopulation {
    hosts_per_kind: Option<Spanned<i64>>,
    mix: Spanned<BTreeMap<String, Spanned<f64>>>,
    impair: Option<Spanned<String>>,
    relay_impair: Option<Spanned<String>>,
    relay_cpu: Option<Spanned<f64>>,
    relay: Option<Spanned<String>>,
    stun: Option<Spanned<String>>,
}

/// Defaults: a short, gentle load.
const DEFAULT_CALLS: u64 = 20;
const DEFAULT_RATE: f64 = 5.0;
const DEFAULT_CONCURRENCY: usize = 16;
const DEFAULT_TIME_LIMIT_S: f64 = 120.0;
const DEFAULT_HOSTS_PER_KIND: usize = 2;
/// Most hosts per kind (each is a namespace).
pub const MAX_HOSTS_PER_KIND: usize = 16;

impl LoadSpec {
    /// Reads a load file's text; every mistake is located (file:line:col).
    pub fn parse(file: &str, src: &str) -> Result<LoadSpec, FileError> {
        let raw: RawLoad = toml::from_str(src).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            FileError { diagnostics: vec![locate(file, src, offset, e.message().trim().to_string(), None)] }
        })?;
        let mut rep = Reporter::new(file, src);
        let spec = interpret(&mut rep, raw);
        rep.finish()?;
        Ok(spec.expect("a load with no errors is complete"))
    }
}

fn whole(rep: &mut Reporter, v: &Option<Spanned<i64>>, key: &str, range: (i64, i64)) -> Option<u64> {
    let v = v.as_ref()?;
    let n = *v.get_ref();
    if !(range.0..=range.1).contains(&n) {
        rep.error(
            v.span(),
            format!("{key} = {n} is out of range"),
            Some(format!("{key} is from {} to {}", range.0, range.1)),
        );
        return None;
    }
    Some(n as u64)
}

fn positive(rep: &mut Reporter, v: &Option<Spanned<f64>>, key: &str, max: f64) -> Option<f64> {
    let v = v.as_ref()?;
    let x = *v.get_ref();
    if !(x > 0.0 && x <= max) {
        rep.error(
            v.span(),
            format!("{key} = {x} is out of range"),
            Some(format!("{key} is above 0 and at most {max}")),
        );
        return None;
    }
    Some(x)
}

fn interpret(rep: &mut Reporter, raw: RawLoad) -> Option<LoadSpec> {
    let calls = whole(rep, &raw.calls, "calls", (1, MAX_LOAD_CALLS as i64)).unwrap_or(DEFAULT_CALLS);
    let rate = positive(rep, &raw.rate, "rate", 10_000.0).unwrap_or(DEFAULT_RATE);
    let arrivals = match &raw.arrivals {
        None => Arrivals::Uniform,
        Some(a) => match a.get_ref().as_str() {
            "uniform" => Arrivals::Uniform,
            "poisson" => Arrivals::Poisson,
            other => {
                rep.error(
                    a.span(),
                    format!("unknown arrivals `{other}`"),
                    Some("use \"uniform\" or \"poisson\"".into()),
                );
                Arrivals::Uniform
            }
        },
    };
    let concurrency =
        whole(rep, &raw.concurrency, "concurrency", (1, 4096)).map_or(DEFAULT_CONCURRENCY, |n| n as usize);
    let duration_ms = whole(rep, &raw.duration_ms, "duration-ms", (0, 3_600_000));
    let data_rate_kbps = whole(rep, &raw.data_rate_kbps, "data-rate-kbps", (1, 10_000_000));
    let time_limit_s = positive(rep, &raw.time_limit_s, "time-limit-s", 86_400.0).unwrap_or(DEFAULT_TIME_LIMIT_S);
    let seed = whole(rep, &raw.seed, "seed", (0, i64::MAX)).unwrap_or(1);
    let ice_profile = raw.ice_profile.and_then(|p| match p.get_ref().as_str() {
        "webrtc-rs" | "browser-like" => Some(p.into_inner()),
        other => {
            rep.error(
                p.span(),
                format!("unknown ice-profile `{other}`"),
                Some("use \"webrtc-rs\" or \"browser-like\"".into()),
            );
            None
        }
    });
    let peer = raw.peer.and_then(|p| match crate::peer::PeerKind::from_name(p.get_ref()) {
        Ok(_) => Some(p.into_inner()),
        Err(e) => {
            rep.error(p.span(), e, Some("built-in, chromium, firefox, or cmd:PROGRAM ARGS".into()));
            None
        }
    });
    let peer_processes = match &raw.peer_processes {
        None => PeerProcesses::default(),
        Some(p) => PeerProcesses::from_name(p.get_ref()).unwrap_or_else(|| {
            let hint = Some("use \"per-host\" (one process per host, the default) or \"per-call\"".into());
            rep.error(p.span(), format!("unknown peer-processes `{}`", p.get_ref()), hint);
            PeerProcesses::default()
        }),
    };
    let lab = match (raw.lab, raw.population) {
        (Some(f), None) => LabSource::File(f.into_inner()),
        (None, Some(p)) => {
            LabSource::Population(Population { ice_profile: ice_profile.clone(), ..population(rep, p)? })
        }
        (Some(f), Some(_)) => {
            let hint = Some("a load runs in one lab: an icelab file, or a generated population".into());
            rep.error(f.span(), "`lab` beside [population]", hint);
            return None;
        }
        (None, None) => {
            let hint = Some("add lab = \"FILE.toml\" or a [population] with a mix".into());
            rep.error(0..0, "the load names no lab", hint);
            return None;
        }
    };
    Some(LoadSpec {
        calls,
        rate,
        arrivals,
        concurrency,
        duration_ms,
        data_rate_kbps,
        time_limit_s,
        seed,
        ice_profile,
        peer,
        peer_processes,
        lab,
    })
}

fn population(rep: &mut Reporter, p: Spanned<RawPopulation>) -> Option<Population> {
    let p = p.into_inner();
    let hosts_per_kind = whole(rep, &p.hosts_per_kind, "hosts-per-kind", (1, MAX_HOSTS_PER_KIND as i64))
        .map_or(DEFAULT_HOSTS_PER_KIND, |n| n as usize);
    let mut mix = Vec::new();
    let all: Vec<&str> = Config::ALL.iter().map(|c| c.label()).collect();
    for (label, w) in p.mix.get_ref() {
        let Some(c) = Config::from_label(label) else {
            // The key's own span is not kept by TOML tables; the weight sits beside it.
            rep.error(w.span(), format!("unknown kind `{label}`"), Some(format!("kinds: {}", all.join(", "))));
            continue;
        };
        let x = *w.get_ref();
        if !(x > 0.0 && x.is_finite()) {
            rep.error(
                w.span(),
                format!("weight of {label} must be above 0"),
                Some("leave a kind out to give it none".into()),
            );
            continue;
        }
        mix.push((c, x));
    }
    if p.mix.get_ref().is_empty() {
        rep.error(p.mix.span(), "the mix is empty", Some("e.g. mix = { PORT = 60, SYMM = 40 }".into()));
    }
    // A slowdown over the whole load: a preset on every host's uplink.
    let presets: Vec<&str> = crate::impair::presets::ALL.iter().map(|p| p.name()).collect();
    for w in [&p.impair, &p.relay_impair].into_iter().flatten() {
        if !presets.contains(&w.get_ref().as_str()) {
            rep.error(
                w.span(),
                format!("unknown impairment preset `{}`", w.get_ref()),
                Some(format!("presets: {}", presets.join(", "))),
            );
        }
    }
    // A starved relay: the TURN server's own `cpu`.
    let relay_cpu = p.relay_cpu.as_ref().and_then(|c| match crate::topology::cpu_limit(*c.get_ref()) {
        Ok(x) => Some(x),
        Err(e) => {
            let hint = format!(
                "cores the TURN server may use, from {} to {}, e.g. relay-cpu = 0.1",
                crate::topology::CPU_MIN,
                crate::topology::CPU_MAX
            );
            rep.error(c.span(), format!("relay-{e}"), Some(hint));
            None
        }
    });
    // The servers' programs: the built-in ones, or the user's coturn.
    let mut program = |w: &Option<Spanned<String>>, key: &str| {
        let w = w.as_ref()?;
        let i = Implementation::from_name(w.get_ref());
        if i.is_none() {
            let names: Vec<&str> = Implementation::ALL.iter().map(|i| i.name()).collect();
            rep.error(
                w.span(),
                format!("unknown server program `{}`", w.get_ref()),
                Some(format!("{key} = one of {}", names.join(", "))),
            );
        }
        i
    };
    let relay = program(&p.relay, "relay");
    let stun = program(&p.stun, "stun");
    if !rep.is_empty() {
        return None;
    }
    Some(Population {
        impair: p.impair.map(Spanned::into_inner),
        relay_impair: p.relay_impair.map(Spanned::into_inner),
        relay_cpu,
        relay: relay.unwrap_or_default(),
        stun: stun.unwrap_or_default(),
        ..Population::new(mix, hosts_per_kind)
    })
}
