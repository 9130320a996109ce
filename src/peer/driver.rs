//! The peer driver: which program plays one side of a call, and how it is started.
//!
//! Every kind of peer is a process that speaks the peer contract (`docs/peer-contract.md`):
//! it gets its [`PeerConfig`] as JSON in the environment, reads the other side's signaling
//! as JSON lines on stdin, writes signaling, timestamped events and its outcome as JSON
//! lines on stdout, and exits 0 after `done`. icelab's own webrtc-rs peer (`icelab peer`)
//! is one implementation; a user's program is another. A new stack (a browser adapter, say)
//! is a new [`PeerKind`], matched on here and nowhere else.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::config::PeerConfig;

/// Version of the peer contract this icelab speaks; given to every peer.
pub const CONTRACT_VERSION: u32 = 1;
/// Environment variable that carries the [`PeerConfig`] JSON.
pub const CONFIG_ENV: &str = "ICELAB_PEER_CONFIG";
/// Environment variable that carries [`CONTRACT_VERSION`].
pub const CONTRACT_ENV: &str = "ICELAB_PEER_CONTRACT";

/// Which program plays one side of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum PeerKind {
    /// icelab's own webrtc-rs peer (`icelab peer`).
    #[default]
    BuiltIn,
    /// Headless Chromium (Debian `chromium`), driven by `icelab browser-peer`.
    Chromium,
    /// Headless Firefox (Debian `firefox-esr`), driven by `icelab browser-peer`.
    Firefox,
    /// A user's program, started with these arguments (the first is the program).
    Command {
        /// Program and arguments.
        argv: Vec<String>,
    },
}

impl fmt::Display for PeerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKind::BuiltIn => f.write_str("built-in"),
            PeerKind::Chromium => f.write_str("chromium"),
            PeerKind::Firefox => f.write_str("firefox"),
            PeerKind::Command { argv } => write!(f, "command `{}`", argv.join(" ")),
        }
    }
}

impl PeerKind {
    /// The names accepted where a peer is chosen by word (`--peers`, `peer = "..."`).
    pub const NAMES: [&'static str; 3] = ["built-in", "chromium", "firefox"];

    /// A peer chosen by word; `cmd:PROGRAM ARG...` is a command peer (split on whitespace),
    /// so `--peers` can name one without editing the file.
    pub fn from_name(word: &str) -> Result<Self, String> {
        if let Some(cmd) = word.strip_prefix("cmd:") {
            let argv: Vec<String> = cmd.split_whitespace().map(str::to_string).collect();
            if argv.is_empty() {
                return Err("`cmd:` needs a program, e.g. cmd:python3 examples/aiortc-peer/peer.py".into());
            }
            return Ok(PeerKind::Command { argv });
        }
        match word {
            "built-in" | "builtin" | "webrtc-rs" => Ok(PeerKind::BuiltIn),
            "chromium" | "chrome" => Ok(PeerKind::Chromium),
            "firefox" | "firefox-esr" => Ok(PeerKind::Firefox),
            other => Err(format!(
                "unknown peer `{other}`: use one of {}, or cmd:PROGRAM ARGS (`{{ command = [...] }}` in a file)",
                Self::NAMES.join(", ")
            )),
        }
    }

    /// A peer as written in a file: a word, or `{ command = ["prog", "arg", ...] }`.
    pub fn from_toml(v: &toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) => Self::from_name(s),
            toml::Value::Table(t) => {
                if let Some(k) = t.keys().find(|k| *k != "command") {
                    return Err(format!("unknown peer field `{k}`: a peer table takes only `command`"));
                }
                let argv = t
                    .get("command")
                    .and_then(|c| c.as_array())
                    .map(|a| a.iter().map(|w| w.as_str().map(str::to_string)).collect::<Option<Vec<_>>>())
                    .ok_or("a peer table needs `command = [\"program\", \"arg\", ...]`")?
                    .ok_or("every word of `command` must be a string")?;
                if argv.first().is_none_or(|p| p.is_empty()) {
                    return Err("`command` needs at least the program".into());
                }
                Ok(PeerKind::Command { argv })
            }
            _ => Err("a peer is a name (\"built-in\") or a table `{ command = [...] }`".into()),
        }
    }

    /// Time this kind may take to start before its call begins (a browser's launch), added
    /// to the scenario's deadline.
    pub fn startup_allowance_ms(&self) -> u64 {
        if self.browser().is_some() { 60_000 } else { 0 }
    }

    /// The browser this kind runs, if it is a browser peer.
    pub fn browser(&self) -> Option<crate::browser::Browser> {
        match self {
            PeerKind::Chromium => Some(crate::browser::Browser::Chromium),
            PeerKind::Firefox => Some(crate::browser::Browser::Firefox),
            _ => None,
        }
    }

    /// Whether this peer can run on this machine, checked before a lab is built so a missing
    /// program is bad input, not a failed call.
    pub fn check_available(&self) -> Result<(), String> {
        self.check_with(find_program)
    }

    /// [`Self::check_available`] with the program lookup given (tests pass a fake one).
    fn check_with(&self, find_program: impl Fn(&str) -> Option<PathBuf>) -> Result<(), String> {
        match self {
            PeerKind::BuiltIn => Ok(()),
            PeerKind::Chromium | PeerKind::Firefox => {
                let (program, package) = self.browser().expect("a browser kind").program();
                find_program(program).map(|_| ()).ok_or_else(|| {
                    format!("peer `{self}` needs `{program}`, not found: install it with `apt-get install {package}`")
                })
            }
            PeerKind::Command { argv } => {
                find_program(&argv[0]).map(|_| ()).ok_or_else(|| format!("peer program `{}` not found", argv[0]))
            }
        }
    }

    /// The process to start for one side: program, arguments and the contract's environment.
    /// The caller places it in a namespace and wires its stdio.
    pub fn command(&self, cfg: &PeerConfig) -> anyhow::Result<std::process::Command> {
        let mut cmd = match self {
            PeerKind::BuiltIn => {
                let mut c = std::process::Command::new(crate::fabric::icelab_exe()?);
                c.arg("peer");
                c
            }
            PeerKind::Chromium | PeerKind::Firefox => {
                let mut c = std::process::Command::new(crate::fabric::icelab_exe()?);
                c.args(["browser-peer", "--browser", self.browser().expect("a browser kind").name()]);
                c
            }
            PeerKind::Command { argv } => {
                let program = find_program(&argv[0]).with_context(|| format!("peer program `{}`", argv[0]))?;
                let mut c = std::process::Command::new(program);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.env(CONFIG_ENV, serde_json::to_string(cfg)?).env(CONTRACT_ENV, CONTRACT_VERSION.to_string());
        Ok(cmd)
    }
}

/// `program` as a path (when it has a `/`) or found on `PATH`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).is_file().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_from_words_and_tables() {
        assert_eq!(PeerKind::from_name("built-in"), Ok(PeerKind::BuiltIn));
        assert_eq!(PeerKind::from_name("chromium"), Ok(PeerKind::Chromium));
        assert_eq!(PeerKind::from_name("firefox"), Ok(PeerKind::Firefox));
        assert!(PeerKind::from_name("netscape").unwrap_err().contains("built-in"));
        assert_eq!(
            PeerKind::from_name("cmd:python3  peer.py"),
            Ok(PeerKind::Command { argv: vec!["python3".into(), "peer.py".into()] })
        );
        assert!(PeerKind::from_name("cmd: ").is_err());
        let t: toml::Value = toml::from_str("p = { command = [\"python3\", \"peer.py\"] }").unwrap();
        assert_eq!(
            PeerKind::from_toml(&t["p"]),
            Ok(PeerKind::Command { argv: vec!["python3".into(), "peer.py".into()] })
        );
        let bad: toml::Value = toml::from_str("p = { command = [] }").unwrap();
        assert!(PeerKind::from_toml(&bad["p"]).is_err());
        let bad: toml::Value = toml::from_str("p = { cmd = [\"x\"] }").unwrap();
        assert!(PeerKind::from_toml(&bad["p"]).unwrap_err().contains("cmd"));
    }

    #[test]
    fn missing_programs_are_reported_before_a_run() {
        let k = PeerKind::Command { argv: vec!["/nonexistent/peer".into()] };
        assert!(k.check_available().unwrap_err().contains("/nonexistent/peer"));
        assert!(PeerKind::Command { argv: vec!["sh".into()] }.check_available().is_ok());
        let none = |_: &str| None;
        assert!(PeerKind::Chromium.check_with(none).unwrap_err().contains("apt-get install chromium"));
        assert!(PeerKind::Firefox.check_with(none).unwrap_err().contains("apt-get install firefox-esr"));
    }

    #[test]
    fn the_contract_travels_in_the_environment() {
        let k = PeerKind::Command { argv: vec!["sh".into(), "-c".into(), "true".into()] };
        let cmd = k.command(&PeerConfig::default()).unwrap();
        let env: Vec<_> = cmd.get_envs().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert!(env.contains(&CONFIG_ENV.to_string()) && env.contains(&CONTRACT_ENV.to_string()));
        assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-c", "true"]);
    }
}
