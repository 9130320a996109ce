//! Root tests: the bundled IPv6 scenarios, run by `icelab run`, and the root namespace
//! (IPv6 addresses, routes and rules included) untouched around an IPv6 lab. They fail
//! without root unless ICELAB_SKIP_ROOT_TESTS=1.

mod common;

use common::*;

/// Runs a bundled scenario, asserting it passes and leaves no namespace behind.
fn run_passes(file: &str, tag: &str) {
    let name = lab_name(tag);
    let o = icelab(&["run", &topology(file), "--name", &name]);
    assert_eq!(o.status.code(), Some(0), "{file}:\n{}{}", stdout(&o), stderr(&o));
    assert!(lab_namespaces(&name).is_empty(), "{file} left namespaces");
}

#[test]
fn dual_stack_homes_pick_an_ipv6_host_pair() {
    if !require_root() {
        return;
    }
    let before = root_snapshot();
    run_passes("call-ipv6-dual-stack.toml", "v6d");
    assert_eq!(before, root_snapshot(), "an IPv6 lab changed the root namespace");
}

#[test]
fn ipv6_firewalls_open_by_simultaneous_checks() {
    if !require_root() {
        return;
    }
    run_passes("call-ipv6-firewalls.toml", "v6f");
}

#[test]
fn ipv6_only_hosts_meet_through_the_relay() {
    if !require_root() {
        return;
    }
    run_passes("call-ipv6-relay.toml", "v6r");
}

/// IPv6 is on only in an IPv6 lab's namespaces, and its routers' firewalls drop
/// inbound new traffic: an IPv4 lab's hosts have no IPv6 at all.
#[test]
fn ipv6_is_on_only_where_the_lab_asks() {
    if !require_root() {
        return;
    }
    let v6 = lab_name("v6on");
    let o = icelab(&["up", &topology("call-ipv6-dual-stack.toml"), "--name", &v6]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _v6 = LabGuard(v6.clone());
    let v4 = lab_name("v4off");
    let o = icelab(&["up", &topology("two-home-routers.toml"), "--name", &v4]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _v4 = LabGuard(v4.clone());
    let sysctl = |lab: &str, node: &str| {
        sh(&format!("ip netns exec icelab-{lab}-{node} sysctl -n net.ipv6.conf.all.disable_ipv6")).trim().to_string()
    };
    assert_eq!(sysctl(&v6, "alice"), "0");
    assert_eq!(sysctl(&v4, "alice"), "1");
    let addrs = sh(&format!("ip -n icelab-{v6}-alice -6 -o addr show scope global"));
    assert!(addrs.contains("2001:db8:1:0:192:168:1:10/64"), "{addrs}");
    assert!(sh(&format!("ip -n icelab-{v4}-alice -6 -o addr show")).trim().is_empty());
    let fw = sh(&format!("ip netns exec icelab-{v6}-home1 nft list table ip6 icelab6"));
    assert!(fw.contains("iifname \"wan\" oifname \"lan\" drop"), "{fw}");
}
