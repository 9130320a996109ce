//! `icelab browser-peer`: one side of a call played by a headless browser.

use std::process::ExitCode;

use icelab::browser::Browser;

/// Runs the browser peer; blocking (the adapter has its own threads).
pub fn browser_peer(browser: Browser) -> ExitCode {
    ExitCode::from(tokio::task::block_in_place(|| icelab::browser::run(browser)))
}
