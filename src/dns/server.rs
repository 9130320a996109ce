//! The UDP loop of the lab's DNS server (`icelab dns-server`).

use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::net::UdpSocket;

use super::Zone;

/// Answers queries on every address of `listen` until the process is killed; `ready` runs
/// once every socket is bound.
pub async fn serve(zone: Zone, listen: &[SocketAddr], ready: impl FnOnce()) -> Result<()> {
    let mut socks = Vec::new();
    for a in listen {
        socks.push(UdpSocket::bind(a).await.with_context(|| format!("binding DNS on {a}"))?);
    }
    ready();
    let zone = std::sync::Arc::new(zone);
    let mut tasks = tokio::task::JoinSet::new();
    for sock in socks {
        let zone = zone.clone();
        tasks.spawn(async move {
            let mut buf = [0u8; 1500];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else { continue };
                if let Some(reply) = zone.answer(&buf[..n], from.ip()) {
                    let _ = sock.send_to(&reply, from).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}
