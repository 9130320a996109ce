//! Browser peers: Chromium and Firefox, headless, playing one side of a call.
//!
//! `icelab browser-peer --browser chromium|firefox` is a peer-contract process (see
//! `docs/peer-contract.md`). It serves a page ([`page`]) on loopback inside the lab host's
//! namespace ([`server`]), starts the browser on it ([`launch`]) and relays: the other
//! side's signaling from stdin to the page, the page's reports to stdout as contract
//! events, re-timed to the adapter's monotonic clock ([`adapter`]).
//!
//! # Why a page server and not WebDriver/CDP
//!
//! The page only needs its config, a signaling feed and somewhere to report; plain HTTP on
//! loopback gives all three to both browsers the same way. Launching the browser with the
//! page's URL is all the control needed, so there is no driver process to install or keep
//! in step with the browser (chromedriver, geckodriver) and no protocol codec to write;
//! HTTP is the kept `tiny_http` crate.

pub mod adapter;
pub mod launch;
pub mod page;
pub mod server;

pub use adapter::run;
pub use launch::Browser;
