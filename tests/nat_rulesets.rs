//! Snapshot tests of generated NAT and firewall rulesets (pure, no root needed).

use icelab::nat::{self, Filtering, Mapping, NatMode, NatPreset, NatSpec, RouterNat};

const MAPPINGS: [Mapping; 3] =
    [Mapping::EndpointIndependent, Mapping::AddressDependent, Mapping::AddressAndPortDependent];
const FILTERINGS: [Filtering; 3] =
    [Filtering::EndpointIndependent, Filtering::AddressDependent, Filtering::AddressAndPortDependent];

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

mod firewall_rulesets {
    use icelab::firewall::{self, FirewallCtx, FirewallPreset, FirewallSpec, FwRole};

    fn router() -> FirewallCtx {
        FirewallCtx { role: FwRole::Router { wan_if: "wan0".into(), lan_if: "lan0".into() } }
    }

    #[test]
    fn each_preset_router_and_host() {
        for p in FirewallPreset::ALL {
            let spec = FirewallSpec { presets: vec![p], rules: vec![] };
            let host = FirewallCtx { role: FwRole::Host };
            insta::assert_snapshot!(format!("fw_router_{}", p.name()), firewall::ruleset(&spec, &router()));
            insta::assert_snapshot!(format!("fw_host_{}", p.name()), firewall::ruleset(&spec, &host));
        }
    }

    #[test]
    fn table_with_custom_rules() {
        let spec: FirewallSpec = toml::from_str::<toml::Table>(
            "fw = { preset = [\"udp-blocked\", \"inbound-blocked\"], rules = [\"tcp dport { 22, 23 } drop\"] }",
        )
        .unwrap()["fw"]
            .clone()
            .try_into()
            .unwrap();
        insta::assert_snapshot!(firewall::ruleset(&spec, &router()));
    }
}

mod parsing {
    use icelab::firewall::{FirewallPreset, FirewallSpec};
    use icelab::nat::{Filtering, Mapping, NatMode, NatSpec, PortPreservation};

    fn parse<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
        let t: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
        t["v"].clone().try_into().map_err(|e: toml::de::Error| e.to_string())
    }

    #[test]
    fn nat_preset_string_and_overrides() {
        let s: NatSpec = parse("\"symmetric\"").unwrap();
        let NatMode::Napt(b) = s.resolve().unwrap() else { panic!() };
        assert_eq!((b.mapping, b.filtering), (Mapping::AddressAndPortDependent, Filtering::AddressAndPortDependent));
        let s: NatSpec = parse(
            "{ preset = \"full-cone\", filtering = \"address-dependent\", port-preservation = false, timeout = 5 }",
        )
        .unwrap();
        let NatMode::Napt(b) = s.resolve().unwrap() else { panic!() };
        assert_eq!(b.mapping, Mapping::EndpointIndependent);
        assert_eq!(b.filtering, Filtering::AddressDependent);
        assert_eq!(b.port_preservation, PortPreservation::Random);
        assert_eq!(b.timeout_s, 5);
        assert_eq!(parse::<NatSpec>("\"none\"").unwrap().resolve().unwrap(), NatMode::None);
    }

    #[test]
    fn nat_errors() {
        assert!(parse::<NatSpec>("\"fullcone\"").unwrap_err().contains("unknown NAT preset"));
        assert!(parse::<NatSpec>("{ mapping = \"eim\" }").is_err());
        assert!(parse::<NatSpec>("{ preset = \"full-cone\", colour = 1 }").unwrap_err().contains("colour"));
        assert!(parse::<NatSpec>("{ preset = \"none\", timeout = 5 }").unwrap_err().contains("does not translate"));
        assert!(parse::<NatSpec>("{ timeout = 0 }").is_err());
    }

    #[test]
    fn firewall_forms() {
        let one: FirewallSpec = parse("\"tcp-443-only\"").unwrap();
        assert_eq!(one.presets, [FirewallPreset::TcpOnly443]);
        let many: FirewallSpec = parse("[\"udp-blocked\", \"stun-port-blocked\"]").unwrap();
        assert_eq!(many.presets, [FirewallPreset::UdpBlocked, FirewallPreset::StunPortBlocked]);
        let table: FirewallSpec = parse("{ rules = [\"udp dport 53 drop\"] }").unwrap();
        assert!(table.presets.is_empty());
        assert!(parse::<FirewallSpec>("\"udp-block\"").unwrap_err().contains("unknown firewall preset"));
        assert!(parse::<FirewallSpec>("{ rules = [\"drop; flush ruleset\"] }").is_err());
        assert!(parse::<FirewallSpec>("{ rules = [\"tcp dport { 1, 2 drop\"] }").is_err());
        assert!(parse::<FirewallSpec>("{ rules = [\"drop\"], extra = 1 }").is_err());
    }
}
