//! `icelab verify NAME` and `icelab up --verify`: prove a lab is what its file says.
//!
//! Exit codes: 0 every check as declared, 1 a mismatch, 2 bad input (unknown lab,
//! wrong file), 3 the checks could not run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use icelab::fabric::{Lab, registry};
use icelab::plan::Plan;
use icelab::topology::Topology;
use icelab::verify::{self, VerifyOptions, VerifyReport};

use super::error::{CliError, CliResult, Done, Kind, OrKind};
use super::out::{self, errln};
use super::{lab_name, load};

/// The copy of the topology file kept with a lab's record, for `icelab verify`.
const TOPOLOGY_COPY: &str = "topology.toml";

/// Keeps a copy of the file a lab was built from next to its record, so `icelab verify`
/// finds it whatever directory it runs in. Best effort: without it verify reads the
/// path in the record.
pub(crate) fn remember(name: &str, file: &Path) {
    let _ = std::fs::copy(file, registry::lab_dir(name).join(TOPOLOGY_COPY));
}

async fn run(topo: &Topology, plan: &Plan, opts: VerifyOptions) -> anyhow::Result<VerifyReport> {
    let (topo, plan) = (topo.clone(), plan.clone());
    tokio::task::spawn_blocking(move || verify::verify_lab(&topo, &plan, &opts)).await?
}

/// `up --verify`: proves the just-built lab. The report is returned for the lab's JSON
/// (text mode prints the table on stderr, stdout stays the lab name); on a mismatch or
/// an error the caller drops `lab`, which tears it down.
pub(crate) async fn after_up(topo: &Topology, lab: &Lab, json: bool) -> Result<VerifyReport, CliError> {
    let r = run(topo, lab.plan(), VerifyOptions::default())
        .await
        .map_err(|e| CliError::could_not_run(format!("could not verify: {e:#}; the lab was torn down")))?;
    if !json {
        out::err_text(&r.to_string());
    }
    if r.ok {
        return Ok(r);
    }
    let details = serde_json::json!({ "name": lab.record.name, "verify": r });
    Err(CliError::failed("the lab does not behave as its file says (see the report); the lab was torn down")
        .with_details(details))
}

/// `icelab verify NAME`: proves a running lab from its record.
pub(crate) async fn verify(name: &str, file: Option<PathBuf>, lifetime_max: Option<f64>, json: bool) -> CliResult {
    lab_name(name)?;
    let rec = registry::load(name).or_kind(Kind::BadInput)?;
    let file = file.unwrap_or_else(|| {
        let copy = registry::lab_dir(name).join(TOPOLOGY_COPY);
        if copy.is_file() { copy } else { PathBuf::from(&rec.topology) }
    });
    let topo = load(&file)?.topology;
    verify::check_lab(&topo, &rec.plan)
        .map_err(|e| CliError::bad_input(format!("{} does not describe lab {name}: {e:#}", file.display())))?;
    if let Some(s) = lifetime_max.filter(|_| !json) {
        errln!("measuring mapping lifetimes: this takes up to about {:.0} s", s * 2.0);
    }
    let opts = VerifyOptions { lifetime_max: lifetime_max.map(Duration::from_secs_f64) };
    let r = run(&topo, &rec.plan, opts)
        .await
        .map_err(|e| CliError::could_not_run(format!("could not verify lab {name}: {e:#}")))?;
    if json {
        out::json(&r);
    } else {
        out::text(&r.to_string());
    }
    Ok(if r.ok { Done::Ok } else { Done::CheckFailed })
}
