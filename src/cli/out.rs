//! All printing goes through here: a closed stdout (`icelab check F | head -1`) ends
//! the output quietly instead of panicking, as `println!` would.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes `text` to stdout. After the reader has gone (EPIPE), output is dropped.
pub(crate) fn text(text: &str) {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        // Nobody reads any more; other write errors are as final for output.
        let _ = e;
        STDOUT_CLOSED.store(true, Ordering::Relaxed);
    }
}

/// Writes one line to stdout.
pub(crate) fn line(s: &str) {
    text(&format!("{s}\n"));
}

/// Writes a line to stderr, ignoring a closed stderr.
pub(crate) fn err(s: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{s}");
}

/// Writes text to stderr without a newline (progress lines), ignoring errors.
pub(crate) fn err_text(s: &str) {
    let _ = write!(std::io::stderr().lock(), "{s}");
}

/// Pretty-prints a value as JSON on stdout.
pub(crate) fn json(v: &impl serde::Serialize) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => line(&s),
        Err(e) => err(&format!("icelab: cannot encode JSON: {e}")),
    }
}

/// `println!` through [`line`].
macro_rules! outln {
    () => { $crate::cli::out::line("") };
    ($($t:tt)*) => { $crate::cli::out::line(&format!($($t)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::cli::out::err("") };
    ($($t:tt)*) => { $crate::cli::out::err(&format!($($t)*)) };
}

pub(crate) use {errln, outln};
