//! Applying a plan to the kernel, and taking a lab down again.
//!
//! [`Lab::up`] records the lab, creates its namespaces and applies every step; a
//! [`Lab`] that is dropped without [`Lab::keep`] tears itself down, so an error, a
//! panic or an interrupted build leaves nothing behind. [`teardown`] and
//! [`cleanup`] work from the kernel's view (namespaces named `icelab-*` and the
//! processes inside them), so they also clean up after a `kill -9`; [`cleanup`] reads
//! the records' owners to remove only what a dead process left (see [`registry`]).
//! A CPU-limited server's cgroup is named like its namespace ([`cgroup`]) and goes
//! the same way, once the processes in it are gone.

mod apply;
pub mod capture;
pub mod cgroup;
pub mod child;
pub mod conntrack;
pub mod netns;
pub mod procs;
pub mod ready;
pub mod registry;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

pub(crate) use apply::connect;
pub use apply::{Applier, icelab_exe};
pub use registry::LabRecord;

use crate::plan::{ImpairEngine, Plan, PlanOptions, Step};
use crate::timeline::TimelineEvent;
use crate::topology::Topology;

/// Options for this machine: netem where the kernel has it, the userspace engine
/// otherwise. Probing the kernel costs a scratch namespace and a `tc` run, so it only
/// happens for topologies that impair a link.
pub fn default_options(topo: &Topology) -> PlanOptions {
    let engine = if topo.has_impairments() && crate::impair::netem::netem_available() {
        ImpairEngine::Netem
    } else {
        ImpairEngine::Userspace
    };
    PlanOptions { engine, ..PlanOptions::default() }
}

/// How long teardown waits for a lab's processes to die.
const KILL_DEADLINE: Duration = Duration::from_secs(5);

/// A running lab. Dropping it tears it down unless [`Lab::keep`] was called.
pub struct Lab {
    /// What was recorded about it.
    pub record: LabRecord,
    armed: bool,
}

/// Timings of one build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    /// Lab name.
    pub name: String,
    /// Number of steps applied.
    pub steps: usize,
    /// Wall time of the build.
    pub elapsed_ms: f64,
}

impl Lab {
    /// Builds the network of `topo` (no events) named `name`. `progress` sees each step
    /// before it runs.
    pub async fn up(topo: &Topology, name: &str, progress: impl FnMut(usize, &Step)) -> Result<(Lab, BuildReport)> {
        Self::up_with(topo, &[], name, &default_options(topo), progress).await
    }

    /// Builds the lab with its `events` planned (so a call can fire them and the
    /// export script can replay them) and explicit plan options (engine, seed).
    pub async fn up_with(
        topo: &Topology,
        events: &[TimelineEvent],
        name: &str,
        opts: &PlanOptions,
        mut progress: impl FnMut(usize, &Step),
    ) -> Result<(Lab, BuildReport)> {
        registry::check_name(name)?;
        let start = Instant::now();
        let prefix = registry::prefix_of(name);
        let plan = crate::plan::plan_with(topo, events, &prefix, opts);
        let record = LabRecord {
            name: name.to_string(),
            prefix: prefix.clone(),
            topology: topo.file.clone(),
            nodes: plan.nodes.iter().map(|n| (n.name.clone(), n.ns.clone())).collect(),
            plan: plan.clone(),
            builder_pid: std::process::id(),
            created_unix: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        };
        if !netns::list(&format!("{prefix}-")).is_empty() {
            anyhow::bail!(
                "namespaces of a lab named `{name}` already exist; run `icelab down {name}` or `icelab cleanup`"
            );
        }
        registry::create(&record)?;
        // From here on, dropping `lab` removes whatever was built.
        let lab = Lab { record, armed: true };
        apply_plan(name, &plan, &mut progress).await?;
        let report = BuildReport {
            name: name.to_string(),
            steps: plan.steps.len(),
            elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
        };
        Ok((lab, report))
    }

    /// Keeps the lab running after this value is dropped (for `icelab up`): its owner
    /// becomes [`registry::Owner::Kept`], so `icelab cleanup` leaves it alone. On error the
    /// lab stays armed and is torn down when dropped.
    pub fn keep(mut self) -> Result<LabRecord> {
        registry::set_owner(&self.record.name, registry::Owner::Kept)?;
        self.armed = false;
        Ok(self.record.clone())
    }

    /// Tears the lab down now and reports what was removed.
    pub fn down(mut self) -> Result<TeardownReport> {
        self.armed = false;
        teardown(&self.record.name)
    }

    /// The lab's plan.
    pub fn plan(&self) -> &Plan {
        &self.record.plan
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = teardown(&self.record.name)
        {
            eprintln!("icelab: teardown of lab {} failed: {e:#}", self.record.name);
        }
    }
}

async fn apply_plan(name: &str, plan: &Plan, progress: &mut impl FnMut(usize, &Step)) -> Result<()> {
    // Fault injection for teardown tests: fail or panic before step N (1-based).
    let fault = |var: &str| std::env::var(var).ok().and_then(|v| v.parse::<usize>().ok());
    let (fail_at, panic_at) = (fault("ICELAB_FAULT_FAIL_AT_STEP"), fault("ICELAB_FAULT_PANIC_AT_STEP"));
    let mut applier = Applier::new(name);
    for (i, step) in plan.steps.iter().enumerate() {
        progress(i, step);
        if fail_at == Some(i + 1) {
            anyhow::bail!("injected failure before step {} ({step})", i + 1);
        }
        if panic_at == Some(i + 1) {
            panic!("injected panic before step {} ({step})", i + 1);
        }
        applier.apply(step).await?;
    }
    applier.finish()
}

/// What a teardown removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TeardownReport {
    /// Lab name.
    pub name: String,
    /// Namespaces removed.
    pub namespaces: usize,
    /// Processes killed.
    pub processes: usize,
    /// CPU-limit cgroups removed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cgroups: usize,
    /// Wall time.
    pub elapsed_ms: f64,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Removes every namespace of lab `name`, the processes inside them and its record.
pub fn teardown(name: &str) -> Result<TeardownReport> {
    let prefix = format!("{}-", registry::prefix_of(name));
    let mut r = remove_namespaces(&netns::list(&prefix))?;
    r.cgroups = cgroup::remove_all(&prefix, KILL_DEADLINE)?;
    registry::remove(name);
    r.name = name.to_string();
    Ok(r)
}

/// What `cleanup` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CleanupScope {
    /// Leftovers only: labs whose owner process died, broken records, and `icelab-*`
    /// namespaces without any record.
    Leftovers,
    /// Everything named `icelab-*`, kept and live labs too.
    All,
}

/// What a cleanup did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanupReport {
    /// Labs removed (one report each).
    pub removed: Vec<TeardownReport>,
    /// Labs left alone (kept, live or of unknown owner), by name.
    pub kept: Vec<String>,
    /// Namespaces removed in all.
    pub namespaces: usize,
    /// Processes killed in all.
    pub processes: usize,
    /// CPU-limit cgroups removed in all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cgroups: usize,
    /// Wall time.
    pub elapsed_ms: f64,
}

/// Removes leftovers (or, with [`CleanupScope::All`], every lab): their namespaces, the
/// processes inside them and their records.
pub fn cleanup(scope: CleanupScope) -> Result<CleanupReport> {
    let start = Instant::now();
    // Namespaces before records: a record is written before its lab's first namespace,
    // so a namespace seen here whose record is missing below really has none.
    let mut groups: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for ns in netns::list(registry::NS_PREFIX) {
        let lab = registry::lab_of_namespace(&ns).unwrap_or_default().to_string();
        groups.entry(lab).or_default().push(ns);
    }
    // A cgroup outlives its namespace when a teardown was cut short: its lab is a
    // leftover too when nothing records it.
    let mut cgroup_labs: BTreeSet<String> = BTreeSet::new();
    for g in cgroup::list(registry::NS_PREFIX) {
        cgroup_labs.insert(registry::lab_of_namespace(&g).unwrap_or_default().to_string());
    }
    let entries = registry::entries();
    let mut doomed: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for e in &entries {
        if scope == CleanupScope::All || e.status.is_leftover() {
            doomed.push(e.name.clone());
        } else {
            kept.push(e.name.clone());
        }
    }
    doomed.extend(groups.keys().chain(&cgroup_labs).filter(|lab| !entries.iter().any(|e| &e.name == *lab)).cloned());
    doomed.sort();
    doomed.dedup();
    let mut report = CleanupReport { kept, ..Default::default() };
    let mut errors = Vec::new();
    for lab in doomed {
        let removed = remove_namespaces(groups.get(&lab).map_or(&[][..], Vec::as_slice)).and_then(|mut r| {
            r.cgroups = cgroup::remove_all(&format!("{}-", registry::prefix_of(&lab)), KILL_DEADLINE)?;
            Ok(r)
        });
        match removed {
            Ok(mut r) => {
                registry::remove(&lab);
                r.name = lab;
                report.namespaces += r.namespaces;
                report.processes += r.processes;
                report.cgroups += r.cgroups;
                report.removed.push(r);
            }
            Err(e) => errors.push(format!("lab {lab}: {e:#}")),
        }
    }
    for dir in registry::dead_scratch_dirs() {
        let _ = std::fs::remove_dir_all(dir);
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("; "));
    }
    report.elapsed_ms = start.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}

fn remove_namespaces(names: &[String]) -> Result<TeardownReport> {
    let start = Instant::now();
    let inodes: BTreeSet<u64> = names.iter().filter_map(|n| netns::inode(n).ok()).collect();
    let processes = procs::kill_all_in(&inodes, KILL_DEADLINE);
    let mut errors = Vec::new();
    for n in names {
        if let Err(e) = netns::delete(n) {
            errors.push(format!("{e:#}"));
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("could not remove every namespace: {}", errors.join("; "));
    }
    Ok(TeardownReport {
        name: String::new(),
        namespaces: names.len(),
        processes,
        cgroups: 0,
        elapsed_ms: start.elapsed().as_secs_f64() * 1e3,
    })
}
