//! Bad topology files: each mistake is reported at file:line:col with a hint.

use icelab::spec::parse_str;

/// Parses `src` and returns "line:col: message" of every diagnostic.
fn errors(src: &str) -> Vec<String> {
    let e = parse_str("t.toml", src).expect_err("the file should be rejected");
    e.diagnostics.iter().map(|d| format!("{}:{}: {}", d.line, d.col, d.message)).collect()
}

fn assert_one(src: &str, line_col: &str, needle: &str) {
    let errs = errors(src);
    assert!(
        errs.iter().any(|e| e.starts_with(line_col) && e.contains(needle)),
        "wanted {line_col} `{needle}`, got {errs:#?}"
    );
}

#[test]
fn toml_syntax_error_is_located() {
    assert_one("[router.a]\nwan = \"internet\n", "2:", "");
}

#[test]
fn unknown_field_is_located() {
    assert_one("[router.a]\nwan = \"internet\"\nlan_subnet = \"10.0.0.0/24\"\n", "3:1", "unknown field `lan_subnet`");
}

#[test]
fn missing_wan_is_reported() {
    assert_one("[router.a]\nlan = \"10.0.0.0/24\"\n", "1:", "missing field `wan`");
}

#[test]
fn malformed_address_is_located() {
    assert_one("[host.a]\non = \"internet\"\naddress = \"192.0.2.300\"\n", "3:11", "");
}

#[test]
fn unknown_router_referenced_by_host() {
    assert_one("[host.a]\non = \"hom\"\n", "2:6", "unknown router `hom`");
}

#[test]
fn host_on_a_host_is_explained() {
    let errs = parse_str("t.toml", "[host.a]\non = \"internet\"\n[host.b]\non = \"a\"\n").unwrap_err();
    assert!(errs.diagnostics[0].hint.as_deref().unwrap().contains("not a router"), "{errs}");
}

#[test]
fn router_wan_on_own_lan() {
    assert_one("[router.a]\nwan = \"a\"\n", "2:7", "its WAN on its own LAN");
}

#[test]
fn router_loop() {
    let errs = errors("[router.a]\nwan = \"b\"\n[router.b]\nwan = \"a\"\n");
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("2:7") && errs[0].contains("WAN loop"), "{errs:?}");
}

#[test]
fn nested_lans_overlap() {
    assert_one(
        "[router.a]\nwan = \"internet\"\nlan = \"10.0.0.0/16\"\n[router.b]\nwan = \"a\"\nlan = \"10.0.5.0/24\"\n",
        "6:7",
        "overlaps the LAN of `a`",
    );
}

#[test]
fn sibling_lans_may_overlap() {
    let t = parse_str(
        "t.toml",
        "[router.a]\nwan = \"internet\"\nlan = \"192.168.1.0/24\"\n[router.b]\nwan = \"internet\"\nlan = \"192.168.1.0/24\"\n",
    );
    assert!(t.is_ok(), "{}", t.unwrap_err());
}

#[test]
fn lan_in_public_range() {
    assert_one("[router.a]\nwan = \"internet\"\nlan = \"203.0.113.0/25\"\n", "3:7", "overlaps the simulated internet");
}

#[test]
fn lan_not_private() {
    assert_one("[router.a]\nwan = \"internet\"\nlan = \"8.8.0.0/16\"\n", "3:7", "not a private range");
}

#[test]
fn two_hosts_with_one_address() {
    assert_one(
        "[router.r]\nwan = \"internet\"\nlan = \"10.1.0.0/24\"\n[host.a]\non = \"r\"\naddress = \"10.1.0.5\"\n[host.b]\non = \"r\"\naddress = \"10.1.0.5\"\n",
        "9:11",
        "given to both `a` and `b`",
    );
}

#[test]
fn address_outside_lan() {
    assert_one(
        "[router.r]\nwan = \"internet\"\nlan = \"10.1.0.0/24\"\n[host.a]\non = \"r\"\naddress = \"10.2.0.5\"\n",
        "6:11",
        "not on the LAN of `r`",
    );
}

#[test]
fn public_address_outside_documentation_ranges() {
    assert_one("[host.a]\non = \"internet\"\naddress = \"8.8.8.8\"\n", "3:11", "not on the simulated internet");
}

#[test]
fn gateway_address_is_reserved() {
    assert_one("[router.r]\nwan = \"internet\"\nwan-address = \"203.0.113.1\"\n", "3:15", "reserved");
}

#[test]
fn invalid_and_reserved_names() {
    let errs = errors("[host.Alice]\non = \"internet\"\n[router.internet]\nwan = \"internet\"\n");
    assert!(errs.iter().any(|e| e.contains("invalid node name `Alice`")), "{errs:?}");
    assert!(errs.iter().any(|e| e.contains("`internet` is reserved")), "{errs:?}");
}

#[test]
fn duplicate_name_across_kinds() {
    assert_one("[router.x]\nwan = \"internet\"\n[host.x]\non = \"internet\"\n", "", "both as a router and as a host");
}

#[test]
fn unknown_service() {
    assert_one("[server.s]\nservices = [\"stun\", \"dhcp\"]\n", "2:21", "unknown service `dhcp`");
}

#[test]
fn empty_file() {
    assert_one("# nothing\n", "1:1", "no nodes");
}

#[test]
fn every_mistake_is_reported_at_once() {
    let errs = errors(
        "[host.a]\non = \"nowhere\"\n[host.b]\non = \"internet\"\naddress = \"1.1.1.1\"\n[server.s]\nservices = [\"ftp\"]\n",
    );
    assert_eq!(errs.len(), 3, "{errs:#?}");
}

#[test]
fn display_shows_file_line_col_source_and_hint() {
    let e = parse_str("lab.toml", "[host.a]\non = \"hom\"\n").unwrap_err();
    let text = e.to_string();
    assert!(text.starts_with("lab.toml:2:6: error: host `a` is on unknown router `hom`"), "{text}");
    assert!(text.contains("2 | on = \"hom\""), "{text}");
    assert!(text.contains("hint: known routers: none"), "{text}");
}

#[test]
fn addresses_are_assigned_without_collisions() {
    let t = parse_str(
        "t.toml",
        "[router.r]\nwan = \"internet\"\nlan = \"10.1.0.0/24\"\n[host.a]\non = \"r\"\naddress = \"10.1.0.10\"\n[host.b]\non = \"r\"\n[server.s]\n",
    )
    .unwrap()
    .topology;
    assert_eq!(t.hosts[0].uplink.address.to_string(), "10.1.0.10");
    assert_eq!(t.hosts[1].uplink.address.to_string(), "10.1.0.11");
    assert_eq!(t.routers[0].wan.address.to_string(), "203.0.113.10");
    assert_eq!(t.servers[0].addresses.len(), 2);
}

#[test]
fn host_count_makes_numbered_hosts_with_their_own_addresses() {
    let spec = parse_str(
        "t.toml",
        "[router.home]\nwan = \"internet\"\n[host.caller]\non = \"home\"\ncount = 3\n[host.bob]\non = \"internet\"\n",
    )
    .unwrap();
    let hosts: Vec<(&str, String)> =
        spec.topology.hosts.iter().map(|h| (h.name.as_str(), h.uplink.address.to_string())).collect();
    assert_eq!(hosts[..3].iter().map(|h| h.0).collect::<Vec<_>>(), ["caller-1", "caller-2", "caller-3"]);
    assert!(hosts.iter().all(|h| hosts.iter().filter(|x| x.1 == h.1).count() == 1), "{hosts:?}");
    assert!(spec.topology.hosts[..3].iter().all(|h| h.uplink.uplink == spec.topology.hosts[0].uplink.uplink));
}

#[test]
fn host_count_out_of_range_is_located() {
    assert_one("[host.a]\non = \"internet\"\ncount = 0\n", "3:9", "count = 0 is out of range");
    assert_one("[host.a]\non = \"internet\"\ncount = 65\n", "3:9", "count = 65 is out of range");
}

#[test]
fn host_count_with_one_address_is_located() {
    assert_one(
        "[host.a]\non = \"internet\"\ncount = 2\naddress = \"192.0.2.50\"\n",
        "4:11",
        "has count = 2 and one address",
    );
}

#[test]
fn host_count_names_that_are_too_long_or_clash_are_reported() {
    assert_one("[host.abcdefghijklmnopqr]\non = \"internet\"\ncount = 10\n", "3:9", "is too long");
    assert_one("[host.a]\non = \"internet\"\ncount = 2\n[host.a-2]\non = \"internet\"\n", "", "`a-2` is declared both");
}

#[test]
fn calls_may_name_counted_hosts() {
    let src = "[host.a]\non = \"internet\"\ncount = 2\n[scenario]\ncalls = [[\"a-1\", \"a-2\"]]\n";
    assert_eq!(parse_str("t.toml", src).unwrap().scenario.unwrap().calls.len(), 1);
    assert_one(&src.replace("\"a-2\"]", "\"a\"]"), "5:18", "unknown host `a`");
}

#[test]
fn ipv6_words_are_checked() {
    assert_one("[router.a]\nwan = \"internet\"\nipv6 = \"nat46\"\n", "3:8", "unknown ipv6 mode `nat46`");
    assert_one(
        "[server.s]\nservices = [\"stun\"]\nfamily = \"v6\"\n[router.a]\nwan = \"internet\"\nipv6 = \"public\"\n",
        "3:10",
        "unknown server family `v6`",
    );
    // NAT64 shares the router's IPv4 address through its NAPT.
    assert_one(
        "[router.a]\nwan = \"internet\"\nipv6 = \"nat64\"\nnat = \"none\"\n",
        "3:8",
        "its IPv4 NAT translates no ports",
    );
    // A routed /64 cannot sit behind a translated one.
    assert_one(
        "[router.a]\nwan = \"internet\"\nipv6 = \"nptv6\"\n[router.b]\nwan = \"a\"\nipv6 = \"public\"\n",
        "6:8",
        "which has ipv6 = \"nptv6\"",
    );
    assert_one("[host.a]\non = \"internet\"\nfamily = \"v5\"\n", "3:10", "unknown family `v5`");
}

#[test]
fn ipv6_host_behind_an_ipv4_only_router_is_located() {
    let src = "[router.home]\nwan = \"internet\"\n[host.a]\non = \"home\"\nfamily = \"v6\"\n[host.b]\non = \"internet\"\nfamily = \"dual\"\n";
    assert_one(src, "5:10", "host `a` has family = \"v6\" but its router `home` has no IPv6");
}

#[test]
fn ipv6_router_behind_an_ipv4_only_or_nat66_router_is_located() {
    let src = "[router.isp]\nwan = \"internet\"\n[router.home]\nwan = \"isp\"\nipv6 = \"public\"\n";
    assert_one(src, "5:8", "router `home` has ipv6 = \"public\" but its WAN router `isp` has no IPv6");
    let src = "[router.isp]\nwan = \"internet\"\nipv6 = \"nat66\"\n[router.home]\nwan = \"isp\"\nipv6 = \"public\"\n";
    assert_one(src, "6:8", "behind `isp`, which has ipv6 = \"nat66\"");
}

#[test]
fn ipv6_addresses_are_derived_from_the_ipv4_ones() {
    let src = "[router.home]\nwan = \"internet\"\nipv6 = \"public\"\n[router.ula]\nwan = \"internet\"\nipv6 = \"nat66\"\n\
               [host.a]\non = \"home\"\n[host.b]\non = \"ula\"\nfamily = \"v6\"\n[host.c]\non = \"internet\"\nfamily = \"v4\"\n\
               [server.stun]\nservices = [\"stun\"]\n";
    let t = parse_str("t.toml", src).unwrap().topology;
    assert!(t.is_ipv6());
    let home = t.router("home").unwrap().ipv6.unwrap();
    assert_eq!((home.lan.to_string(), home.wan.gateway.to_string()), ("2001:db8:1::/64".into(), "2001:db8::1".into()));
    let a = t.host("a").unwrap();
    assert_eq!(a.family, icelab::topology::ipv6::Family::Dual, "a host under an IPv6 router is dual by default");
    assert_eq!(a.ipv6.unwrap().address.to_string(), "2001:db8:1:0:192:168:1:10");
    let b = t.host("b").unwrap();
    assert_eq!(b.ipv6.unwrap().subnet.network().to_string(), "fd00:2::");
    assert!(t.host("c").unwrap().ipv6.is_none());
    assert_eq!(t.servers[0].addresses6.len(), t.servers[0].addresses.len());
    // A file that asks for no IPv6 gets none.
    let v4 = parse_str("t.toml", "[host.a]\non = \"internet\"\n").unwrap().topology;
    assert!(!v4.is_ipv6() && v4.hosts[0].ipv6.is_none());
}

#[test]
fn a_servers_cpu_limit_is_checked_and_located() {
    let server = |cpu: &str| format!("[server.relay]\nservices = [\"turn\"]\ncpu = {cpu}\n");
    let t = parse_str("t.toml", &server("0.25")).unwrap().topology;
    assert_eq!(t.server("relay").unwrap().cpu, Some(0.25));
    assert_eq!(parse_str("t.toml", &server("2")).unwrap().topology.servers[0].cpu, Some(2.0));
    assert_eq!(parse_str("t.toml", "[server.relay]\nservices = [\"turn\"]\n").unwrap().topology.servers[0].cpu, None);
    assert_one(&server("0.01"), "3:7", "server `relay`: cpu = 0.01 is outside 0.05..=64 cores");
    assert_one(&server("65"), "3:7", "cpu = 65 is outside");
    assert_one(&server("-1.0"), "3:7", "cpu = -1 is outside");
    assert_one(&server("nan"), "3:7", "cpu = NaN is outside");
    assert_one(&server("\"half\""), "3:7", "cpu must be a number of cores, not string");
    let hint = parse_str("t.toml", &server("0")).unwrap_err().diagnostics[0].hint.clone().unwrap();
    assert!(hint.contains("cpu = 0.25"), "{hint}");
    // Echo runs lab-wide, outside the server's namespace: nothing would be limited.
    assert_one("[server.e]\nservices = [\"echo\"]\ncpu = 1\n", "3:7", "runs no service of its own");
}
