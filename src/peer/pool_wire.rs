//! The pooled peer's wire: many calls' peer contracts multiplexed on one stdin/stdout.
//!
//! One `icelab peer --pool` process per host plays that host's side of every call of a
//! load, so a call costs a peer connection, not a process. Each line carries the call's
//! number, a word and the contract's own JSON, verbatim:
//!
//! ```text
//! in:   7 start {PeerConfig}     a new peer for call 7
//!       7 signal {SignalMsg}     the other side's signaling, as on a peer's stdin
//!       7 abort                  give up on call 7 (its deadline passed here)
//! out:  7 event {PeerEvent}      as on a peer's stdout
//!       7 exit                   call 7's peer ended as a process would exit 0
//!       7 exit TEXT              ... or failed (TEXT says why)
//! ```
//!
//! A text framing rather than a JSON envelope: the JSON inside is passed through without
//! being parsed again, which a load of thousands of events per second notices.

/// A line to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolIn<'a> {
    /// Start a peer for `call` with this `PeerConfig` JSON.
    Start {
        /// Call number.
        call: u64,
        /// The peer's configuration, JSON.
        config: &'a str,
    },
    /// The other side's signaling for `call`, one `SignalMsg` JSON.
    Signal {
        /// Call number.
        call: u64,
        /// The message, JSON.
        msg: &'a str,
    },
    /// Stop `call`'s peer now.
    Abort {
        /// Call number.
        call: u64,
    },
}

/// A line from the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolOut<'a> {
    /// One of `call`'s peer events, `PeerEvent` JSON.
    Event {
        /// Call number.
        call: u64,
        /// The event, JSON.
        event: &'a str,
    },
    /// `call`'s peer ended: `None` as a process exiting 0, else why it failed.
    Exit {
        /// Call number.
        call: u64,
        /// The failure, if any.
        error: Option<&'a str>,
    },
}

impl PoolIn<'_> {
    /// The line, without its newline.
    pub fn encode(&self) -> String {
        match self {
            PoolIn::Start { call, config } => format!("{call} start {config}"),
            PoolIn::Signal { call, msg } => format!("{call} signal {msg}"),
            PoolIn::Abort { call } => format!("{call} abort"),
        }
    }

    /// Reads one line (without its newline).
    pub fn decode(line: &str) -> Result<PoolIn<'_>, String> {
        let (call, word, rest) = split(line)?;
        match (word, rest) {
            ("start", Some(config)) => Ok(PoolIn::Start { call, config }),
            ("signal", Some(msg)) => Ok(PoolIn::Signal { call, msg }),
            ("abort", None) => Ok(PoolIn::Abort { call }),
            _ => Err(format!("bad pool line {line:?}: expected `N start JSON`, `N signal JSON` or `N abort`")),
        }
    }
}

impl PoolOut<'_> {
    /// The line, without its newline.
    pub fn encode(&self) -> String {
        match self {
            PoolOut::Event { call, event } => format!("{call} event {event}"),
            PoolOut::Exit { call, error: None } => format!("{call} exit"),
            // One line: a multi-line error is folded.
            PoolOut::Exit { call, error: Some(e) } => format!("{call} exit {}", e.replace('\n', " ")),
        }
    }

    /// Reads one line (without its newline).
    pub fn decode(line: &str) -> Result<PoolOut<'_>, String> {
        let (call, word, rest) = split(line)?;
        match (word, rest) {
            ("event", Some(event)) => Ok(PoolOut::Event { call, event }),
            ("exit", error) => Ok(PoolOut::Exit { call, error }),
            _ => Err(format!("bad pool output {line:?}: expected `N event JSON` or `N exit [TEXT]`")),
        }
    }
}

/// `N word [rest]`.
fn split(line: &str) -> Result<(u64, &str, Option<&str>), String> {
    let mut parts = line.splitn(3, ' ');
    let call =
        parts.next().and_then(|n| n.parse().ok()).ok_or_else(|| format!("pool line {line:?}: no call number"))?;
    let word = parts.next().ok_or_else(|| format!("pool line {line:?}: nothing after the call number"))?;
    Ok((call, word, parts.next()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let ins = [
            PoolIn::Start { call: 3, config: r#"{"role":"offerer"}"# },
            PoolIn::Signal { call: 12, msg: r#"{"type":"end_of_candidates"}"# },
            PoolIn::Abort { call: 0 },
        ];
        for i in ins {
            assert_eq!(PoolIn::decode(&i.encode()), Ok(i.clone()));
        }
        let outs = [
            PoolOut::Event { call: 9, event: r#"{"event":"done","t_ms":1.5}"# },
            PoolOut::Exit { call: 9, error: None },
            PoolOut::Exit { call: 9, error: Some("Timeout in phase Ice: deadline") },
        ];
        for o in outs {
            assert_eq!(PoolOut::decode(&o.encode()), Ok(o.clone()));
        }
    }

    #[test]
    fn multi_line_errors_stay_on_one_line() {
        let line = PoolOut::Exit { call: 1, error: Some("a\nb") }.encode();
        assert_eq!(line, "1 exit a b");
    }

    #[test]
    fn bad_lines_say_what_was_expected() {
        assert!(PoolIn::decode("x start {}").unwrap_err().contains("no call number"));
        assert!(PoolIn::decode("4").unwrap_err().contains("nothing after"));
        assert!(PoolIn::decode("4 start").unwrap_err().contains("N start JSON"));
        assert!(PoolIn::decode("4 abort now").is_err());
        assert!(PoolOut::decode("4 hello").unwrap_err().contains("N event JSON"));
    }
}
