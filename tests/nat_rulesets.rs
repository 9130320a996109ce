//! Snapshot tests of generated NAT and firewall rulesets (pure, no root needed).

use icelab::nat::{self, Filtering, Mapping, NatMode, NatPreset, NatSpec, RouterNat};

const MAPPINGS: [Mapping; 3] = [
    Mapping::EndpointIndependent,
    Mapping::AddressDependent,
    Mapping::AddressAndPortDependent,
];
const FILTERINGS: [Filtering; 3] = [
    Filtering::EndpointIndependent,
    Filtering::AddressDependent,
    Filtering::AddressAndPortDependent,
];

fn router(mode: NatMode) -> RouterNat {
    RouterNat {
        wan_if: "wan0".into(),
        wan_addr: "203.0.113.2".parse().unwrap(),
        lan_if: "lan0".into(),
        lan_subnet: "192.168.1.0/24".parse().unwrap(),
        one_to_one_host: Some("192.168.1.10".parse().unwrap()),
        mode,
    }
}

#[test]
fn preset_rulesets() {
    for p in nat::PRESETS {
        let rs = nat::ruleset(&router(p.preset.mode()));
        insta::assert_snapshot!(format!("preset_{}", p.name), rs);
    }
}

#[test]
fn combination_rulesets() {
    for m in MAPPINGS {
        for f in FILTERINGS {
            let spec: NatSpec = toml::from_str::<toml::Table>(&format!(
                "nat = {{ mapping = \"{}\", filtering = \"{}\", timeout = 2 }}",
                kebab(m.abbrev()),
                kebab(f.abbrev())
            ))
            .unwrap()["nat"]
                .clone()
                .try_into()
                .unwrap();
            let rs = nat::ruleset(&router(spec.resolve().unwrap()));
            insta::assert_snapshot!(format!("combo_{}_{}", m.abbrev(), f.abbrev()), rs);
        }
    }
}

/// RFC abbreviation back to the topology-file spelling.
fn kebab(abbrev: &str) -> &'static str {
    match abbrev {
        "EIM" | "EIF" => "endpoint-independent",
        "ADM" | "ADF" => "address-dependent",
        _ => "address-and-port-dependent",
    }
}

#[test]
fn one_to_one_without_host_says_so() {
    let mut r = router(NatPreset::OneToOne.mode());
    r.one_to_one_host = None;
    assert!(nat::ruleset(&r).contains("inbound translation disabled"));
}

#[test]
fn presets_markdown_table() {
    insta::assert_snapshot!(nat::presets_markdown());
}
