//! The whole file as written: its top level, with each part's raw tables handed to
//! the layer that interprets it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::scenario::{RawExpect, RawScenario};
use crate::timeline::RawEvent;
use crate::topology::raw::{RawHost, RawRouter, RawServer, RawTopology};

/// Top level of an icelab file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    /// Free text shown by `icelab check` and reports.
    pub description: Option<String>,
    /// Routers by name: `[router.home]`.
    #[serde(default)]
    pub router: BTreeMap<String, Spanned<RawRouter>>,
    /// Hosts by name: `[host.alice]`.
    #[serde(default)]
    pub host: BTreeMap<String, Spanned<RawHost>>,
    /// Servers on the internet by name: `[server.stun]`.
    #[serde(default)]
    pub server: BTreeMap<String, Spanned<RawServer>>,
    /// The call to place in the lab.
    pub scenario: Option<Spanned<RawScenario>>,
    /// What the call must show.
    pub expect: Option<Spanned<RawExpect>>,
    /// What happens to the lab during the call.
    #[serde(default)]
    pub event: Vec<Spanned<RawEvent>>,
}

/// The parts that are not the network.
pub(super) struct RawRest {
    pub scenario: Option<Spanned<RawScenario>>,
    pub expect: Option<Spanned<RawExpect>>,
    pub event: Vec<Spanned<RawEvent>>,
}

impl RawFile {
    /// The network tables apart from the call and its events.
    pub(super) fn split(self) -> (RawTopology, RawRest) {
        let RawFile { description, router, host, server, scenario, expect, event } = self;
        (RawTopology { description, router, host, server }, RawRest { scenario, expect, event })
    }
}
