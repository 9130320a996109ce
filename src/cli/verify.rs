//! `icelab verify NAME` and `icelab up --verify`: prove a lab is what its file says.
//!
//! Exit codes: 0 every check as declared, 1 a mismatch, 2 bad input (unknown lab,
//! wrong file), 3 the checks could not run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use icelab::fabric::{Lab, registry};
use icelab::plan::Plan;
use icelab::topology::Topology;
use icelab::verify::{self, VerifyOptions, VerifyReport};

use super::{BAD_INPUT, FAILED, fail, load, print_json};

/// The checks could not run (probe server, namespaces).
const COULD_NOT_RUN: u8 = 3;
/// The copy of the topology file kept with a lab's record, for `icelab verify`.
const TOPOLOGY_COPY: &str = "topology.toml";

/// Keeps a copy of the file a lab was built from next to its record, so `icelab verify`
/// finds it whatever directory it runs in. Best effort: without it verify reads the
/// path in the record.
pub fn remember(name: &str, file: &Path) {
    let _ = std::fs::copy(file, registry::lab_dir(name).join(TOPOLOGY_COPY));
}

async fn run(topo: &Topology, plan: &Plan, opts: VerifyOptions) -> anyhow::Result<VerifyReport> {
    let (topo, plan) = (topo.clone(), plan.clone());
    tokio::task::spawn_blocking(move || verify::verify_lab(&topo, &plan, &opts)).await?
}

/// `up --verify`: proves the just-built lab. The report is returned for the lab's JSON
/// (text mode prints the table on stderr, stdout stays the lab name); on a mismatch or
/// an error the caller drops `lab`, which tears it down.
pub async fn after_up(topo: &Topology, lab: &Lab, json: bool) -> Result<VerifyReport, ExitCode> {
    match run(topo, lab.plan(), VerifyOptions::default()).await {
        Ok(r) => {
            if !json {
                eprint!("{r}");
            }
            if r.ok {
                return Ok(r);
            }
            if json {
                print_json(&serde_json::json!({ "name": lab.record.name, "verify": r }));
            }
            Err(fail(FAILED, "the lab does not behave as its file says (see the report); the lab was torn down"))
        }
        Err(e) => Err(fail(COULD_NOT_RUN, format!("could not verify: {e:#}; the lab was torn down"))),
    }
}

/// `icelab verify NAME`: proves a running lab from its record.
pub async fn verify(name: &str, file: Option<PathBuf>, lifetime_max: Option<f64>, json: bool) -> ExitCode {
    if let Err(e) = registry::check_name(name) {
        return fail(BAD_INPUT, e);
    }
    let rec = match registry::load(name) {
        Ok(r) => r,
        Err(e) => return fail(BAD_INPUT, format!("{e:#}")),
    };
    let file = file.unwrap_or_else(|| {
        let copy = registry::lab_dir(name).join(TOPOLOGY_COPY);
        if copy.is_file() { copy } else { PathBuf::from(&rec.topology) }
    });
    let topo = match load(&file, json) {
        Ok(t) => t,
        Err(c) => return c,
    };
    if let Err(e) = verify::check_lab(&topo, &rec.plan) {
        return fail(BAD_INPUT, format!("{} does not describe lab {name}: {e:#}", file.display()));
    }
    if let Some(s) = lifetime_max.filter(|_| !json) {
        eprintln!("measuring mapping lifetimes: this takes up to about {:.0} s", s * 2.0);
    }
    let opts = VerifyOptions { lifetime_max: lifetime_max.map(Duration::from_secs_f64) };
    match run(&topo, &rec.plan, opts).await {
        Ok(r) => {
            if json {
                print_json(&r);
            } else {
                print!("{r}");
            }
            if r.ok { ExitCode::SUCCESS } else { ExitCode::from(FAILED) }
        }
        Err(e) => fail(COULD_NOT_RUN, format!("could not verify lab {name}: {e:#}")),
    }
}
