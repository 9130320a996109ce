//! `icelab browser-peer`: one side of a call played by a headless browser.

use icelab::browser::Browser;

use super::error::{CliResult, Done};

/// Runs the browser peer; blocking (the adapter has its own threads). Its exit code is the
/// peer contract's (0 done, 1 failed, 2 bad configuration), passed through.
pub(crate) fn browser_peer(browser: Browser) -> CliResult {
    let code = tokio::task::block_in_place(|| icelab::browser::run(browser));
    Ok(if code == 0 { Done::Ok } else { Done::Code(code) })
}
