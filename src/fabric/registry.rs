//! Where running labs are recorded: `/run/icelab/<name>/lab.json`.
//!
//! The record is written before the first namespace is created, so a lab whose
//! builder was killed can still be found. `cleanup` does not depend on it: every
//! namespace named `icelab-*` is a leftover candidate.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Root of lab records.
pub const STATE_DIR: &str = "/run/icelab";
/// Every lab namespace starts with this.
pub const NS_PREFIX: &str = "icelab-";

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

/// Directory of one lab's record and logs.
pub fn lab_dir(name: &str) -> PathBuf {
    PathBuf::from(STATE_DIR).join(name)
}

/// Namespace prefix of a lab.
pub fn prefix_of(name: &str) -> String {
    format!("{NS_PREFIX}{name}")
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

/// Writes the record (creating the directory). Fails if the lab exists.
pub fn create(rec: &LabRecord) -> Result<()> {
    let dir = lab_dir(&rec.name);
    fs::create_dir_all(STATE_DIR)?;
    fs::create_dir(&dir).with_context(|| format!("lab `{}` already exists (see `icelab ls`)", rec.name))?;
    fs::write(dir.join("lab.json"), serde_json::to_vec_pretty(rec)?)?;
    Ok(())
}

/// Reads a lab's record.
pub fn load(name: &str) -> Result<LabRecord> {
    let p = lab_dir(name).join("lab.json");
    let text = fs::read(&p).with_context(|| format!("no lab named `{name}` (see `icelab ls`)"))?;
    serde_json::from_slice(&text).with_context(|| format!("reading {}", p.display()))
}

/// All recorded labs.
pub fn list() -> Vec<LabRecord> {
    let mut v: Vec<LabRecord> = fs::read_dir(STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| load(e.file_name().to_str()?).ok())
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// Removes a lab's record and logs.
pub fn remove(name: &str) {
    let _ = fs::remove_dir_all(lab_dir(name));
}
