//! Commands on running labs: `down`, `ls`, `cleanup`, `exec`.

use icelab::fabric::registry::{self, Status};
use icelab::fabric::{self, CleanupScope, netns, procs};

use super::error::{CliError, CliResult, Done, Kind, OrKind};
use super::out::{self, outln};

/// True when a lab of this name has a record or namespaces.
fn exists(name: &str) -> bool {
    let prefix = format!("{}-", registry::prefix_of(name));
    registry::lab_dir(name).exists() || !netns::list(&prefix).is_empty() || !fabric::cgroup::list(&prefix).is_empty()
}

/// `, N cpu cgroups` when a teardown removed any.
fn cgroups(n: usize) -> String {
    if n == 0 { String::new() } else { format!(", {n} cpu cgroups") }
}

fn unknown_lab(name: &str) -> CliError {
    CliError::bad_input(format!("no lab named `{name}` (see `icelab ls`)"))
}

/// Tears down the lab the user named, after checking the name, the lab and root.
fn teardown_named(name: &str) -> Result<fabric::TeardownReport, CliError> {
    super::lab_name(name)?;
    if !exists(name) {
        return Err(unknown_lab(name));
    }
    super::require_root()?;
    fabric::teardown(name).or_kind(Kind::CouldNotRun)
}

pub(crate) fn down(name: &str, json: bool) -> CliResult {
    let r = teardown_named(name)?;
    if json {
        out::json(&r);
    } else {
        let (ns, p, cg) = (r.namespaces, r.processes, cgroups(r.cgroups));
        outln!("lab {name} is down ({ns} namespaces, {p} processes{cg}, {:.0} ms)", r.elapsed_ms);
    }
    Ok(Done::Ok)
}

/// How `ls` words a lab's status.
fn describe(s: Status) -> String {
    match s {
        Status::Kept => "kept (icelab up)".into(),
        Status::Live { pid } => format!("owned by live pid {pid}"),
        Status::Dead { pid } => format!("LEFTOVER (owner pid {pid} died)"),
        Status::Unknown { builder_pid } => format!("owner unknown (older record, builder pid {builder_pid} gone)"),
        Status::Broken => "LEFTOVER (broken record)".into(),
    }
}

pub(crate) fn ls(json: bool) -> CliResult {
    let entries = registry::entries();
    let mut orphans: Vec<String> = netns::list(registry::NS_PREFIX);
    orphans.retain(|ns| !registry::lab_of_namespace(ns).is_some_and(|l| entries.iter().any(|e| e.name == l)));
    if json {
        out::json(&serde_json::json!({ "labs": entries.iter().map(|e| {
            let r = e.record.as_ref();
            serde_json::json!({
                "name": e.name,
                "topology": r.map(|r| r.topology.clone()),
                "nodes": r.map_or(0, |r| r.nodes.len()),
                "created_unix": r.map(|r| r.created_unix),
                "owner": e.owner,
                "status": e.status,
                "leftover": e.status.is_leftover(),
            })
        }).collect::<Vec<_>>(), "orphaned_namespaces": orphans }));
        return Ok(Done::Ok);
    }
    if entries.is_empty() {
        outln!("no labs");
    }
    for e in &entries {
        let (nodes, topo) =
            e.record.as_ref().map_or((0, "(claimed by hand)"), |r| (r.nodes.len(), r.topology.as_str()));
        outln!("{:<12} {:>3} nodes  {:<40} {}", e.name, nodes, topo, describe(e.status));
    }
    if !orphans.is_empty() {
        outln!("LEFTOVER namespaces without a record: {}", orphans.join(" "));
    }
    if entries.iter().any(|e| e.status.is_leftover()) || !orphans.is_empty() {
        outln!("`icelab cleanup` removes the leftovers");
    }
    Ok(Done::Ok)
}

pub(crate) fn cleanup(name: Option<&str>, all: bool, json: bool) -> CliResult {
    if let Some(name) = name {
        let r = teardown_named(name)?;
        if json {
            out::json(&r);
        } else {
            outln!(
                "removed lab {name}: {} namespaces, killed {} processes{}",
                r.namespaces,
                r.processes,
                cgroups(r.cgroups)
            );
        }
        return Ok(Done::Ok);
    }
    super::require_root()?;
    let scope = if all { CleanupScope::All } else { CleanupScope::Leftovers };
    let r = fabric::cleanup(scope).or_kind(Kind::CouldNotRun)?;
    if json {
        out::json(&r);
    } else {
        let labs: Vec<&str> = r.removed.iter().map(|t| t.name.as_str()).collect();
        outln!(
            "removed {} namespaces, killed {} processes{}{}",
            r.namespaces,
            r.processes,
            cgroups(r.cgroups),
            if labs.is_empty() { String::new() } else { format!(" (labs: {})", labs.join(", ")) }
        );
        if !r.kept.is_empty() {
            outln!("left alone (kept or live; `icelab cleanup NAME` or `--all` removes them): {}", r.kept.join(", "));
        }
    }
    Ok(Done::Ok)
}

pub(crate) fn exec(name: &str, node: &str, command: &[String]) -> CliResult {
    super::lab_name(name)?;
    let rec = registry::load(name).or_kind(Kind::BadInput)?;
    let Some((_, ns)) = rec.nodes.iter().find(|(n, _)| n == node) else {
        let known: Vec<&str> = rec.nodes.iter().map(|(n, _)| n.as_str()).collect();
        return Err(CliError::bad_input(format!("lab {name} has no node `{node}`; nodes: {}", known.join(", "))));
    };
    let fd = netns::open(ns).or_kind(Kind::CouldNotRun)?;
    let mut cmd = std::process::Command::new(&command[0]);
    cmd.args(&command[1..]);
    procs::enter_netns_resolving(&mut cmd, &fd, rec.plan.resolv_conf(ns).as_deref()).or_kind(Kind::CouldNotRun)?;
    let st = cmd.status().map_err(|e| CliError::could_not_run(format!("cannot run `{}`: {e}", command[0])))?;
    use std::os::unix::process::ExitStatusExt;
    let code = st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
    Ok(Done::Code(code as u8))
}
