//! The temporary probe server: a namespace `<prefix>-_verify<pid>` plugged into the
//! lab's internet bridge with two unused addresses, serving the built-in STUN server
//! (RFC 5780 grids and single ports) and TCP echo listeners. Stopping it removes the
//! link and the namespace; it starts no process and writes no record. Node names
//! cannot start with `_`, so the name never meets a node's; `icelab down` still finds it
//! by the lab prefix if this process is killed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::derive::ProbeServerSpec;
use crate::fabric::{connect, netns};
use crate::plan::Plan;
use crate::stun::{StunServer, StunServerConfig};
use crate::topology::INTERNET;

/// Namespace-name marker of probe servers, after the lab prefix.
pub const TAG: &str = "_verify";
/// How long the server may take to come up.
const READY_DEADLINE: Duration = Duration::from_secs(10);
/// How long its link may take to come up.
const OPER_UP_DEADLINE: Duration = Duration::from_secs(3);
/// How long the probe server may take to answer from the internet once it is up.
const REACHABLE_DEADLINE: Duration = Duration::from_secs(5);
/// What a client of the call-back service sends, and what the call back says first.
pub const CALLBACK_HELLO: &[u8] = b"icelab-verify call back\n";
/// How long the call-back service tries to connect back; below the client's wait
/// ([`super::run::TCP_DEADLINE`]) so it can still say why, and above one SYN retransmission.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(2);

/// A running probe server; [`ProbeServer::stop`] (or drop) removes it.
pub struct ProbeServer {
    ns: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
}

/// Removes probe servers of this lab left by killed runs; refuses if one is alive.
fn clear_stale(prefix: &str) -> Result<()> {
    for ns in netns::list(&format!("{prefix}-{TAG}")) {
        let pid = ns.rsplit(TAG).next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            bail!("another verify (pid {pid}) is probing this lab; try again when it is done");
        }
        netns::delete(&ns)?;
    }
    Ok(())
}

impl ProbeServer {
    /// Creates the namespace, plugs it into the lab's internet and starts serving.
    pub fn start(plan: &Plan, spec: &ProbeServerSpec) -> Result<Self> {
        let inet = plan.node(INTERNET).context("the lab has no internet namespace")?.ns.clone();
        clear_stale(&plan.prefix)?;
        let ns = format!("{}-{TAG}{}", plan.prefix, std::process::id());
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let port = spec.grids.first().map_or(3478, |g| g.0);
        let target = SocketAddr::new(IpAddr::V4(spec.addresses[0]), port);
        let (ns2, spec) = (ns.clone(), spec.clone());
        let thread = std::thread::spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let served = serve(&ns2, &inet, &spec, ready_tx, stop_rx).await;
                let removed = remove(&ns2, &inet).await;
                served.and(removed)
            })
        });
        let mut me = ProbeServer { ns, stop: Some(stop_tx), thread: Some(thread) };
        match ready_rx.recv_timeout(READY_DEADLINE) {
            Ok(()) => match answers_from(&plan.node(INTERNET).context("no internet")?.ns, target) {
                Ok(()) => Ok(me),
                Err(e) => {
                    let _ = me.stop_and_join();
                    Err(e)
                }
            },
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                Err(me.join().err().unwrap_or_else(|| anyhow!("probe server stopped")))
            }
            Err(_) => {
                let _ = me.stop_and_join();
                bail!("probe server not ready within {READY_DEADLINE:?}")
            }
        }
    }

    /// Its namespace.
    pub fn ns(&self) -> &str {
        &self.ns
    }

    fn join(&mut self) -> Result<()> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("probe server thread panicked"))?,
            None => Ok(()),
        }
    }

    fn stop_and_join(&mut self) -> Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.join()
    }

    /// Stops serving and removes the link and the namespace.
    pub fn stop(mut self) -> Result<()> {
        self.stop_and_join().with_context(|| format!("removing probe server {}", self.ns))
    }
}

impl Drop for ProbeServer {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            eprintln!("icelab: removing probe server {}: {e:#}", self.ns);
        }
    }
}

/// Veth end in the internet namespace (IFNAMSIZ: at most 15 bytes).
fn port_name() -> String {
    format!("vp{}", std::process::id())
}

async fn index(h: &Handle, dev: &str) -> Result<Option<u32>> {
    let mut links = h.link().get().match_name(dev.to_string()).execute();
    match links.try_next().await {
        Ok(l) => Ok(l.map(|l| l.header.index)),
        // No such device is an error reply, not an empty dump.
        Err(rtnetlink::Error::NetlinkError(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn oper_up(h: &Handle, i: u32) -> Result<bool> {
    use rtnetlink::packet_route::link::{LinkAttribute, State};
    let mut links = h.link().get().match_index(i).execute();
    let Some(l) = links.try_next().await? else { return Ok(false) };
    Ok(l.attributes.iter().any(|a| matches!(a, LinkAttribute::OperState(State::Up))))
}

async fn up(h: &Handle, i: u32) -> Result<()> {
    Ok(h.link().set(LinkUnspec::new_with_index(i).up().build()).execute().await?)
}

/// A fixed MAC per address: the next probe server on the same address then matches
/// the internet's neighbour cache, which would otherwise send to the last one's MAC.
fn mac(a: Ipv4Addr) -> Vec<u8> {
    let o = a.octets();
    vec![0x02, 0x69, 0x63, 0x65, o[2], o[3]]
}

/// The MAC of the internet's end of the link: the highest unicast address. A bridge whose
/// MAC was never set takes its lowest port's, so a random MAC here would, about half the
/// time, become the internet gateway's MAC while the server is plugged in and go away with
/// it; the routers then keep sending to a MAC nobody owns until their neighbour entries
/// are probed again (seconds), and the next proof reads as NATs that drop everything.
/// Never lower than a port's, this one leaves the bridge's MAC alone.
const PORT_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];

/// Builds the namespace and its link: `eth0` with both addresses, the internet's end
/// on `br0`, default route via the internet's gateway of 198.51.100.0/24.
async fn plumb(fd: &OwnedFd, inet_fd: &OwnedFd, addrs: [Ipv4Addr; 2]) -> Result<()> {
    for key in ["net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"] {
        netns::sysctl(fd, key, "1")?;
    }
    let (me, inet) = (connect(fd)?, connect(inet_fd)?);
    let peer = LinkMessageBuilder::<LinkUnspec>::new()
        .name(port_name())
        .address(PORT_MAC.to_vec())
        .setns_by_fd(inet_fd.as_raw_fd())
        .build();
    let veth = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name("eth0".to_string())
        .address(mac(addrs[0]))
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
        .build();
    me.link().add(veth).execute().await.context("creating the probe server's link")?;
    let port = index(&inet, &port_name()).await?.context("probe server link missing in the internet")?;
    let br = index(&inet, "br0").await?.context("the internet has no br0")?;
    inet.link().set(LinkUnspec::new_with_index(port).controller(br).build()).execute().await?;
    up(&inet, port).await?;
    let eth = index(&me, "eth0").await?.context("eth0 missing")?;
    for a in addrs {
        me.address().add(eth, IpAddr::V4(a), 24).execute().await?;
    }
    up(&me, eth).await?;
    up(&me, index(&me, "lo").await?.context("lo missing")?).await?;
    // The bridge takes a new port into service when the kernel's link watcher reports
    // its carrier, up to a second later; until then packets to the server are lost.
    for (h, i) in [(&inet, port), (&me, eth)] {
        let deadline = tokio::time::Instant::now() + OPER_UP_DEADLINE;
        while !oper_up(h, i).await? {
            if tokio::time::Instant::now() > deadline {
                bail!("the probe server's link did not come up within {OPER_UP_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let gw = Ipv4Addr::new(198, 51, 100, 1);
    me.route().add(RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).build()).execute().await?;
    Ok(())
}

async fn echo_tcp(l: tokio::net::TcpListener) {
    while let Ok((mut s, _)) = l.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            // Bounded: a silent client is dropped after 10 s.
            while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// The call-back service: each client that greets it is called back from `from` at the
/// address and port it came from (its NAT mapping), greeted there, and told over its own
/// connection how that went.
async fn call_back(l: tokio::net::TcpListener, from: IpAddr) {
    while let Ok((mut s, peer)) = l.accept().await {
        tokio::spawn(async move {
            let mut buf = vec![0u8; CALLBACK_HELLO.len()];
            match tokio::time::timeout(CALLBACK_DEADLINE, s.read_exact(&mut buf)).await {
                Ok(Ok(_)) if buf == CALLBACK_HELLO => {}
                _ => return,
            }
            let call = async {
                let sock = tokio::net::TcpSocket::new_v4()?;
                sock.bind(SocketAddr::new(from, 0))?;
                let mut c = sock.connect(peer).await?;
                c.write_all(CALLBACK_HELLO).await?;
                anyhow::Ok(())
            };
            let said = match tokio::time::timeout(CALLBACK_DEADLINE, call).await {
                Ok(Ok(())) => format!("called {peer} back from {from}"),
                Ok(Err(e)) => format!("calling {peer} back: {e:#}"),
                Err(_) => format!("no answer from {peer} within {:.1} s", CALLBACK_DEADLINE.as_secs_f64()),
            };
            let _ = s.write_all(format!("{said}\n").as_bytes()).await;
            // Bounded: the client hangs up when it is done.
            let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await;
        });
    }
}

async fn serve(
    ns: &str,
    inet: &str,
    spec: &ProbeServerSpec,
    ready: std::sync::mpsc::Sender<()>,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<()> {
    let fd = netns::create(ns)?;
    plumb(&fd, &netns::open(inet)?, spec.addresses).await?;
    // This thread is ours: it joins the namespace, so every socket below is bound there.
    nix::sched::setns(fd.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).context("setns")?;
    let [a, b] = spec.addresses.map(IpAddr::V4);
    let mut stun = Vec::new();
    let software = "icelab verify".to_string();
    for (port, alt_port) in &spec.grids {
        let cfg = StunServerConfig {
            primary: a,
            alternate: Some(b),
            port: *port,
            alt_port: *alt_port,
            software: software.clone(),
            counters: None,
        };
        stun.push(StunServer::start(cfg).await?);
    }
    for port in &spec.udp {
        let cfg = StunServerConfig {
            primary: a,
            alternate: None,
            port: *port,
            alt_port: 0,
            software: software.clone(),
            counters: None,
        };
        stun.push(StunServer::start(cfg).await?);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for port in &spec.tcp {
        let l =
            tokio::net::TcpListener::bind(SocketAddr::new(a, *port)).await.with_context(|| format!("tcp {port}"))?;
        tasks.spawn(echo_tcp(l));
    }
    if let Some(port) = spec.callback {
        let l = tokio::net::TcpListener::bind(SocketAddr::new(a, port)).await.context("tcp call-back")?;
        tasks.spawn(call_back(l, b));
    }
    let _ = ready.send(());
    let _ = stop.await;
    tasks.abort_all();
    drop(stun);
    Ok(())
}

/// Deletes the link (both ends at once) and the namespace; fine if they are gone.
async fn remove(ns: &str, inet: &str) -> Result<()> {
    if let Ok(fd) = netns::open(inet) {
        let h = connect(&fd)?;
        if let Some(i) = index(&h, &port_name()).await? {
            h.link().del(i).execute().await.context("deleting the probe server's link")?;
        }
    }
    netns::delete(ns)
}

/// Waits until the server answers STUN from the lab's internet: a probe sent before it
/// serves would read as a NAT that drops everything. (The internet owns the bridge, so
/// this cannot see a change of the bridge's MAC that only its neighbours suffer: that is
/// what [`PORT_MAC`] prevents.)
fn answers_from(inet_ns: &str, target: SocketAddr) -> Result<()> {
    let fd = netns::open(inet_ns)?;
    netns::run_in(&fd, move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async {
            let t = crate::stun::client::Timing {
                initial_rto: Duration::from_millis(50),
                deadline: Duration::from_millis(400),
            };
            let until = tokio::time::Instant::now() + REACHABLE_DEADLINE;
            while tokio::time::Instant::now() < until {
                let sock = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
                if crate::stun::client::binding(&sock, target, Default::default(), t).await?.is_some() {
                    return Ok(());
                }
            }
            bail!("the probe server did not answer STUN at {target} within {REACHABLE_DEADLINE:?}")
        })
    })?
}
