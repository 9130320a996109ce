//! Where labs are recorded: `/run/icelab/<name>/lab.json` (what the lab is) and
//! `/run/icelab/<name>/owner.json` (who it belongs to).
//!
//! Both are written into a scratch directory that is renamed into place in one step,
//! before the first namespace is created: a lab whose builder was killed can still be
//! found, and a namespace without a record is a leftover. The owner is either
//! [`Owner::Kept`] (`icelab up`: stays until `icelab down`) or a process, named by pid
//! and start time so that a reused pid does not keep a dead run's lab alive.
//! [`Claim`] records only an owner, for namespaces built by hand (tests).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Root of lab records.
pub const STATE_DIR: &str = "/run/icelab";
/// Every lab namespace starts with this.
pub const NS_PREFIX: &str = "icelab-";
/// Scratch directories being filled start with this (then `<name>-<pid>`).
const NEW_PREFIX: &str = ".new-";
/// A record directory with neither file is a leftover once it is this old (an older
/// icelab created the directory before writing into it).
const EMPTY_DIR_GRACE: Duration = Duration::from_secs(10);

/// What is known about a lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabRecord {
    /// Lab name.
    pub name: String,
    /// Namespace prefix (`icelab-<name>`).
    pub prefix: String,
    /// Topology file it was built from.
    pub topology: String,
    /// Node name -> namespace.
    pub nodes: Vec<(String, String)>,
    /// The full plan, for `probe` and `exec` to find addresses.
    pub plan: crate::plan::Plan,
    /// PID of the process that built it.
    pub builder_pid: u32,
    /// Seconds since the epoch.
    pub created_unix: u64,
}

/// Who a lab belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Owner {
    /// Kept by `icelab up` (or `run --keep`): stays until `icelab down`.
    Kept,
    /// Lives as long as this process.
    Process {
        /// Its pid.
        pid: u32,
        /// Its start time (clock ticks after boot, `/proc/PID/stat` field 22).
        start_ticks: u64,
    },
}

impl Owner {
    /// The calling process.
    pub fn me() -> Result<Owner> {
        let pid = std::process::id();
        let start_ticks = process_start(pid).context("reading this process's start time")?;
        Ok(Owner::Process { pid, start_ticks })
    }
}

/// Where a lab stands, as `ls` shows it and `cleanup` decides on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Status {
    /// Kept by `icelab up`.
    Kept,
    /// Its owner process is running.
    Live {
        /// Owner pid.
        pid: u32,
    },
    /// Its owner process is gone: a leftover.
    Dead {
        /// The pid it had.
        pid: u32,
    },
    /// Recorded by an older icelab without an owner, and its builder is gone: kept by
    /// `up` or killed, nobody can tell; only `--all` or its name removes it.
    Unknown {
        /// The builder's pid.
        builder_pid: u32,
    },
    /// A record directory without a record: a leftover.
    Broken,
}

impl Status {
    /// True for what `icelab cleanup` removes without `--all`.
    pub fn is_leftover(self) -> bool {
        matches!(self, Status::Dead { .. } | Status::Broken)
    }
}

/// One record directory.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Lab name.
    pub name: String,
    /// The lab, when `lab.json` exists (claims have none).
    pub record: Option<LabRecord>,
    /// Its owner, when `owner.json` exists.
    pub owner: Option<Owner>,
    /// What that means now.
    pub status: Status,
}

/// Directory of one lab's record and logs.
pub fn lab_dir(name: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(name)
}

/// Namespace prefix of a lab.
pub fn prefix_of(name: &str) -> String {
    format!("{NS_PREFIX}{name}")
}

/// The lab a namespace belongs to: `icelab-<lab>-<node>` -> `<lab>`.
pub fn lab_of_namespace(ns: &str) -> Option<&str> {
    let rest = ns.strip_prefix(NS_PREFIX)?;
    Some(rest.split_once('-').map_or(rest, |(lab, _)| lab))
}

/// Lab names are short and without '-', so `icelab-<name>-` never prefixes another lab.
pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 12 || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        bail!(
            "invalid lab name `{name}`: use 1-12 characters a-z and 0-9 (no '-': it separates lab and node in namespace names)"
        );
    }
    Ok(())
}

/// A fresh random lab name.
pub fn random_name() -> String {
    format!("{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Start time of a process (ticks after boot), `None` when it is gone or a zombie.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if rest.first() == Some(&"Z") {
        return None;
    }
    rest.get(19)?.parse().ok()
}

fn alive(owner: Owner) -> bool {
    match owner {
        Owner::Kept => true,
        Owner::Process { pid, start_ticks } => process_start(pid) == Some(start_ticks),
    }
}

/// Writes the record and owner (this process) in one step. Fails if the lab exists.
pub fn create(rec: &LabRecord) -> Result<()> {
    publish(&rec.name, Some(rec))
}

/// Claims a lab name for namespaces made by hand (tests): while the claim lives, the
/// `icelab-<name>-*` namespaces belong to this process; if it dies they are leftovers.
/// Dropping the claim removes the record, so drop it after the namespaces are gone.
pub struct Claim {
    name: String,
}

impl Claim {
    /// Claims `name` for this process. Fails if a lab of that name exists.
    pub fn new(name: &str) -> Result<Claim> {
        check_name(name)?;
        publish(name, None)?;
        Ok(Claim { name: name.to_string() })
    }

    /// The claimed lab name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Prefix of the namespaces this claim covers: `icelab-<name>`.
    pub fn prefix(&self) -> String {
        prefix_of(&self.name)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        remove(&self.name);
    }
}

/// Fills a scratch directory and renames it to the lab's; the rename refuses to
/// replace an existing lab.
fn publish(name: &str, rec: Option<&LabRecord>) -> Result<()> {
    fs::create_dir_all(STATE_DIR).with_context(|| format!("creating {STATE_DIR}"))?;
    let scratch = PathBuf::from(STATE_DIR).join(format!("{NEW_PREFIX}{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    let fill = || -> Result<()> {
        fs::create_dir(&scratch)?;
        fs::write(scratch.join("owner.json"), serde_json::to_vec(&Owner::me()?)?)?;
        if let Some(rec) = rec {
            fs::write(scratch.join("lab.json"), serde_json::to_vec_pretty(rec)?)?;
        }
        Ok(())
    };
    let filled = fill().with_context(|| format!("writing {}", scratch.display()));
    let moved = filled.and_then(|()| {
        nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &scratch,
            nix::fcntl::AT_FDCWD,
            &lab_dir(name),
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .with_context(|| format!("lab `{name}` already exists (see `icelab ls`)"))
    });
    if moved.is_err() {
        let _ = fs::remove_dir_all(&scratch);
    }
    moved
}

/// Changes a lab's owner (atomically: write aside, rename over).
pub fn set_owner(name: &str, owner: Owner) -> Result<()> {
    let dir = lab_dir(name);
    let tmp = dir.join(format!(".owner.{}", std::process::id()));
    fs::write(&tmp, serde_json::to_vec(&owner)?).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, dir.join("owner.json")).with_context(|| format!("recording the owner of lab {name}"))
}

/// Reads a lab's record.
pub fn load(name: &str) -> Result<LabRecord> {
    let p = lab_dir(name).join("lab.json");
    let text = fs::read(&p).with_context(|| format!("no lab named `{name}` (see `icelab ls`)"))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", p.display()))
}

/// One record directory, judged.
pub fn entry(name: &str) -> Option<Entry> {
    let dir = lab_dir(name);
    if !dir.is_dir() {
        return None;
    }
    let record = load(name).ok();
    let owner: Option<Owner> = fs::read(dir.join("owner.json")).ok().and_then(|t| serde_json::from_slice(&t).ok());
    let status = match (owner, &record) {
        (Some(Owner::Kept), _) => Status::Kept,
        (Some(o @ Owner::Process { pid, .. }), _) => {
            if alive(o) {
                Status::Live { pid }
            } else {
                Status::Dead { pid }
            }
        }
        (None, Some(r)) if Path::new(&format!("/proc/{}", r.builder_pid)).exists() => {
            Status::Live { pid: r.builder_pid }
        }
        (None, Some(r)) => Status::Unknown { builder_pid: r.builder_pid },
        (None, None) if younger_than(&dir, EMPTY_DIR_GRACE) => Status::Live { pid: 0 },
        (None, None) => Status::Broken,
    };
    Some(Entry { name: name.to_string(), record, owner, status })
}

fn younger_than(p: &Path, age: Duration) -> bool {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .is_ok_and(|t| SystemTime::now().duration_since(t).unwrap_or_default() < age)
}

/// Every record directory (labs and claims), by name.
pub fn entries() -> Vec<Entry> {
    let mut v: Vec<Entry> = fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .filter_map(|n| entry(&n))
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// All recorded labs.
pub fn list() -> Vec<LabRecord> {
    entries().into_iter().filter_map(|e| e.record).collect()
}

/// Scratch directories whose writer died before renaming them into place.
pub fn dead_scratch_dirs() -> Vec<PathBuf> {
    fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let pid = n.strip_prefix(NEW_PREFIX).and_then(|r| r.rsplit_once('-')).and_then(|(_, p)| p.parse().ok());
            pid.is_some_and(|p: u32| process_start(p).is_none())
        })
        .map(|e| e.path())
        .collect()
}

/// Removes a lab's record and logs.
pub fn remove(name: &str) {
    let _ = fs::remove_dir_all(lab_dir(name));
}
