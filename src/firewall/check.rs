//! Dry-run validation of a ruleset by the kernel's own parser.

use std::io::Write;
use std::process::{Command, Stdio};

/// Why `nft -c` rejected a ruleset (or could not run).
#[derive(Debug, thiserror::Error)]
pub enum NftCheckError {
    /// `nft` could not be started or fed.
    #[error("running nft: {0}")]
    Io(#[from] std::io::Error),
    /// `nft -c` reported an error.
    #[error("nft rejected the ruleset: {0}")]
    Rejected(String),
}

/// Runs `nft -c -f -` in the caller's network namespace: parses and checks the
/// ruleset against the kernel without committing anything (read-only).
pub fn check_with_nft(ruleset: &str) -> Result<(), NftCheckError> {
    let mut child = Command::new("nft")
        .args(["-c", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child.stdin.take().expect("piped stdin").write_all(ruleset.as_bytes())?;
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(NftCheckError::Rejected(String::from_utf8_lossy(&out.stderr).trim().to_string()))
    }
}
