//! Pure parts of the impairment module: `tc`/`nft` generation, presets, the control
//! protocol's wire form. No root needed.

use icelab::impair::engine::{ControlReply, ControlRequest};
use icelab::impair::netem::{commands, commands_seeded, render};
use icelab::impair::presets::{ALL, markdown_table};
use icelab::impair::{Impairment, JitterDistribution, LinkImpairment, Loss, Preset};

#[test]
fn netem_and_tbf_with_byte_queue() {
    let full = Impairment {
        delay_ms: 20.5,
        jitter_ms: 4.0,
        jitter_distribution: JitterDistribution::Normal,
        loss: Loss::Random { percent: 1.5 },
        reorder_percent: 10.0,
        reorder_gap: Some(3),
        duplicate_percent: 0.5,
        rate_kbit: Some(20_000),
        ..Default::default()
    };
    insta::assert_snapshot!(render(&commands("eth0", &full)), @r"
    tc qdisc del dev eth0 root || true
    nft delete table netdev icelab_mtu_eth0 || true
    tc qdisc add dev eth0 root handle 1: netem limit 100000 delay 20500us 4000us distribution normal loss random 1.5% duplicate 0.5% reorder 10% gap 3
    tc qdisc add dev eth0 parent 1:1 handle 10: tbf rate 20000kbit burst 3028 limit 250000
    ");
}

#[test]
fn gilbert_elliott_packet_queue_mtu_and_seed() {
    let i = Impairment {
        loss: Loss::GilbertElliott { p: 1.0, r: 25.0, bad_loss: 50.0, good_loss: 0.0 },
        rate_kbit: Some(1000),
        queue_packets: Some(20),
        mtu: Some(1400),
        ..Default::default()
    };
    insta::assert_snapshot!(render(&commands_seeded("imp-0", &i, Some(7))), @r#"
    tc qdisc del dev imp-0 root || true
    nft delete table netdev icelab_mtu_imp_0 || true
    nft -f - <<'EOF'
    table netdev icelab_mtu_imp_0 {
      chain egress {
        type filter hook egress device "imp-0" priority 0;
        meta length > 1414 drop
      }
    }
    EOF
    tc qdisc add dev imp-0 root handle 1: netem limit 100000 loss gemodel 1% 25% 50% 0% seed 7
    tc qdisc add dev imp-0 parent 1:1 handle 10: tbf rate 1000kbit burst 3028 limit 1310720
    tc qdisc add dev imp-0 parent 10:1 handle 100: pfifo limit 20
    "#);
}

#[test]
fn mtu_only_needs_no_netem() {
    let i = Impairment { mtu: Some(1200), ..Default::default() };
    let cmds = commands("eth1", &i);
    assert!(cmds.iter().all(|c| !c.args.contains(&"netem".to_string())));
    assert!(render(&cmds).contains("meta length > 1214 drop"));
}

#[test]
fn every_preset_renders_and_parses() {
    for p in ALL {
        let l: LinkImpairment = toml::from_str(&format!("preset = \"{}\"", p.name())).unwrap();
        assert_eq!(l, p.link());
        assert!(render(&commands("x", &l.up)).contains("netem"));
    }
    let t = markdown_table();
    println!("{t}");
    assert!(t.contains("| satellite | down | 300 |"));
    assert_eq!(Preset::ThreeG.name(), "3g");
}

#[test]
fn control_requests_round_trip_as_json() {
    let req: ControlRequest =
        serde_json::from_str(r#"{"op":"set","link":0,"dir":"b-to-a","impairment":{"delay-ms":30}}"#).unwrap();
    assert!(matches!(req, ControlRequest::Set { link: 0, .. }));
    assert!(serde_json::from_str::<ControlRequest>(r#"{"op":"set","link":0}"#).is_err());
    let reply = serde_json::to_string(&ControlReply::Error("x".into())).unwrap();
    assert_eq!(reply, r#"{"error":"x"}"#);
}
