//! NAT mapping lifetime measurement (RFC 5780 §4.6) using the icelab
//! ICELAB-RESPONSE-TARGET extension.
//!
//! One check: socket X gets a mapping, stays idle T, then socket Y asks the
//! server to send a Binding response to X's mapped address. If X receives it,
//! the mapping survived T seconds of idleness. Because every check uses a
//! fresh socket pair, checks are independent and run in parallel: first all
//! doubling points (res, 2·res, 4·res, …, max) at once, then rounds of
//! `parallel` evenly spaced points inside the remaining interval. Wall time is
//! roughly `lifetime · (1 + log_{parallel+1}(lifetime / res))` — still minutes
//! for long-lived mappings, which is why it is opt-in.

use super::client::{Request, Timing, binding, recv_matching, retransmit};
use anyhow::{Result, anyhow, bail};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Outcome of the search, in seconds of idleness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetime {
    /// Longest idle time after which the mapping was still alive.
    pub alive_s: f64,
    /// Shortest idle time after which it was gone (None: alive up to max).
    pub dead_s: Option<f64>,
}

/// Does a fresh mapping survive `idle` seconds without traffic?
pub async fn alive_after(server: SocketAddr, local_ip: IpAddr, idle: Duration, t: Timing) -> Result<bool> {
    let x = UdpSocket::bind((local_ip, 0)).await?;
    let mapped = binding(&x, server, Request::default(), t)
        .await?
        .ok_or_else(|| anyhow!("no response from STUN server {server}"))?
        .mapped;
    tokio::time::sleep(idle).await;
    let y = UdpSocket::bind((local_ip, 0)).await?;
    let (tid, bytes) = Request { response_target: Some(mapped), ..Default::default() }.encode()?;
    let deadline = Instant::now() + t.deadline;
    Ok(tokio::select! {
        r = recv_matching(&x, tid, deadline) => r.is_some(),
        _ = retransmit(&y, server, &bytes, t, deadline) => false,
    })
}

/// Measures the lifetime against `server` from `local_ip`, up to `max`.
pub async fn measure(
    server: SocketAddr,
    local_ip: IpAddr,
    max: Duration,
    resolution: Duration,
    parallel: usize,
    t: Timing,
) -> Result<Lifetime> {
    if !alive_after(server, local_ip, Duration::ZERO, t).await? {
        bail!("server {server} does not honour ICELAB-RESPONSE-TARGET");
    }
    search(max, resolution, parallel, move |d| alive_after(server, local_ip, d, t)).await
}

/// The parallel search, generic over the check so it can be unit-tested.
pub async fn search<F, Fut>(max: Duration, res: Duration, parallel: usize, check: F) -> Result<Lifetime>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Result<bool>> + Send + 'static,
{
    let (max, res) = (max.as_secs_f64(), res.as_secs_f64().max(0.01));
    let mut points = Vec::new();
    let mut p = res;
    while p < max {
        points.push(p);
        p *= 2.0;
    }
    points.push(max);
    let (mut lo, mut hi) = (0.0, None);
    batch(&points, &check, &mut lo, &mut hi).await?;
    while let Some(h) = hi {
        if h - lo <= res {
            break;
        }
        let step = (h - lo) / (parallel.max(1) + 1) as f64;
        let pts: Vec<f64> = (1..=parallel.max(1)).map(|i| lo + step * i as f64).collect();
        batch(&pts, &check, &mut lo, &mut hi).await?;
    }
    Ok(Lifetime { alive_s: lo, dead_s: hi })
}

/// Runs checks at `points` in parallel; once one is dead, longer ones are
/// cancelled (a mapping dead after T is dead after any T' > T).
async fn batch<F, Fut>(points: &[f64], check: &F, lo: &mut f64, hi: &mut Option<f64>) -> Result<()>
where
    F: Fn(Duration) -> Fut,
    Fut: Future<Output = Result<bool>> + Send + 'static,
{
    let mut set = JoinSet::new();
    let mut handles = Vec::new();
    for &p in points {
        let fut = check(Duration::from_secs_f64(p));
        handles.push((p, set.spawn(async move { (p, fut.await) })));
    }
    let mut alive = Vec::new();
    while let Some(r) = set.join_next().await {
        let Ok((p, r)) = r else { continue }; // cancelled
        if r? {
            alive.push(p);
        } else if hi.is_none_or(|h| p < h) {
            *hi = Some(p);
            handles.iter().filter(|(q, _)| *q > p).for_each(|(_, h)| h.abort());
        }
    }
    let bound = hi.unwrap_or(f64::INFINITY);
    for p in alive.into_iter().filter(|&p| p < bound) {
        *lo = lo.max(p);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn finds_lifetime_within_resolution() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let check = move |d: Duration| {
            c.fetch_add(1, Ordering::SeqCst);
            async move { Ok(d.as_secs_f64() < 37.3) }
        };
        let res = Duration::from_millis(500);
        let l = search(Duration::from_secs(120), res, 7, check).await.unwrap();
        assert!(l.alive_s < 37.3 && l.dead_s.unwrap() >= 37.3, "{l:?}");
        assert!(l.dead_s.unwrap() - l.alive_s <= 0.5);
        // 9 doubling points + a few rounds of 7, far fewer than a linear scan.
        assert!(calls.load(Ordering::SeqCst) <= 9 + 3 * 7);
    }

    #[tokio::test]
    async fn alive_up_to_max() {
        let l = search(Duration::from_secs(10), Duration::from_millis(500), 4, |_| async { Ok(true) }).await.unwrap();
        assert_eq!(l, Lifetime { alive_s: 10.0, dead_s: None });
    }
}
