//! Interop: coturn's `turnutils_natdiscovery` (RFC 5780) and `stun` from the
//! `stun-client` package (RFC 3489) against our server on loopback.
//! A missing tool FAILS the test unless ICELAB_SKIP_ROOT_TESTS=1.

use icelab::stun::{Behaviour, StunServer, StunServerConfig, parse_natdiscovery_output};
use std::process::Output;
use std::time::Duration;

fn tool_present(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("ICELAB_SKIP_ROOT_TESTS").as_deref() != Ok("1") {
        panic!("{name} not installed (apt-get install coturn stun-client), or set ICELAB_SKIP_ROOT_TESTS=1");
    }
    found
}

async fn server() -> StunServer {
    StunServer::start(StunServerConfig {
        primary: "127.0.0.1".parse().unwrap(),
        alternate: Some("127.0.0.2".parse().unwrap()),
        port: 0,
        alt_port: 0,
        ..Default::default()
    })
    .await
    .unwrap()
}

async fn run(cmd: &str, args: &[String]) -> Output {
    let fut = tokio::process::Command::new(cmd).args(args).kill_on_drop(true).output();
    tokio::time::timeout(Duration::from_secs(30), fut).await.unwrap_or_else(|_| panic!("{cmd} hung")).unwrap()
}

#[tokio::test]
async fn turnutils_natdiscovery_agrees() {
    if !tool_present("turnutils_natdiscovery") {
        return;
    }
    let srv = server().await;
    let port = srv.primary().port().to_string();
    let args = ["-m", "-f", "-p", &port, "127.0.0.1"].map(String::from);
    let out = run("turnutils_natdiscovery", &args).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    // Our server answered from the socket CHANGE-REQUEST asked for.
    let other = srv.other().unwrap();
    assert!(text.contains(&format!("Response origin: : {other}")), "{text}");
    let (m, f) = parse_natdiscovery_output(&text).unwrap();
    assert_eq!(m, Behaviour::EndpointIndependent, "{text}");
    assert_eq!(f, Behaviour::EndpointIndependent, "{text}");
}

#[tokio::test]
async fn stun_client_sees_open_internet() {
    if !tool_present("stun") {
        return;
    }
    let srv = server().await;
    let args = [srv.primary().to_string(), "-v".into()];
    let out = run("stun", &args).await;
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // RFC 3489 verdict for no NAT: "Open" (exit code 1 in the stun tool's encoding).
    assert!(!text.contains("problem parsing"), "{text}");
    assert!(text.contains("Primary: Open"), "{text}");
    // It learnt CHANGED-ADDRESS and got answers to the change tests.
    assert!(text.contains("test II = 1"), "{text}");
    assert!(text.contains("test I(2) = 1"), "{text}");
}
