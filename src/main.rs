//! The `icelab` command line: clap definitions only; the work is in `cli::*`.

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// icelab: real networks of Linux namespaces for STUN/TURN/ICE path testing.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a topology file (exit 2 with file:line:col errors when it is wrong).
    Check {
        /// Topology file.
        file: PathBuf,
        /// Print the resolved topology (with assigned addresses) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build a lab and keep it running; prints its name.
    Up {
        /// Topology file.
        file: PathBuf,
        /// Lab name (1-12 of a-z0-9); random when absent.
        #[arg(long)]
        name: Option<String>,
        /// Print the plan instead of building it.
        #[arg(long)]
        dry_run: bool,
        /// After building, prove every NAT and firewall (see `icelab verify`); tear down if one is not what the file says.
        #[arg(long)]
        verify: bool,
        /// Link impairment engine: netem where the kernel has it (auto), or forced.
        #[arg(long, value_enum, default_value_t = EngineChoice::Auto)]
        impair_engine: EngineChoice,
        /// Seed for impairment randomness (same seed, same drops).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Tear a lab down: its processes, namespaces and links.
    Down {
        /// Lab name.
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// List running labs (and namespaces left behind by crashed runs).
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove every lab and every leftover `icelab-*` namespace and process.
    Cleanup {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a node of a lab (stdio passed through, exit code propagated).
    Exec {
        /// Lab name.
        name: String,
        /// Node name.
        node: String,
        /// The command and its arguments (after `--`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        command: Vec<String>,
    },
    /// Print the shell script (ip + nft) that builds the same lab by hand.
    Export {
        /// Topology file.
        file: PathBuf,
        /// Default namespace prefix in the script (`icelab-<name>`).
        #[arg(long, default_value = "sh")]
        name: String,
    },
    /// Send echo probes (UDP by default) and report the round trips; exit 1 if none return.
    Echo {
        /// Target address, e.g. 203.0.113.10 or 203.0.113.10:7.
        target: String,
        /// Use TCP instead of UDP.
        #[arg(long)]
        tcp: bool,
        /// Number of probes.
        #[arg(long, default_value_t = 3)]
        count: u32,
        /// Per-probe deadline in milliseconds.
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Classify the NAT(s) in front of a node with an RFC 5780 probe against the lab's STUN server.
    Probe {
        /// Lab name.
        name: String,
        /// Node to probe from.
        node: String,
        /// STUN server (default: the lab's first server with the stun service).
        #[arg(long)]
        server: Option<std::net::SocketAddr>,
        /// Also measure the mapping lifetime, searching up to this many seconds.
        #[arg(long)]
        lifetime_max: Option<f64>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Prove a running lab: every NAT (RFC 5780) and every firewall, expected vs observed.
    ///
    /// Exit 0 when all is as declared, 1 on a mismatch, 2 on bad input, 3 when the checks cannot run.
    Verify {
        /// Lab name.
        name: String,
        /// Topology file (default: the one the lab was built from).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Also measure each NAT's mapping lifetime, searching up to this many seconds.
        #[arg(long)]
        lifetime_max: Option<f64>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Run the topology's [scenario]: build the lab, place a WebRTC call, judge [expect].
    ///
    /// Exit 0 when every expectation holds (in every run), 1 when one does not, 2 on bad input.
    Run {
        /// Topology file with a [scenario] section.
        file: PathBuf,
        /// Print the full outcome and verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Run N times and report p50/p95 timings and the success rate.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Lab name (1-12 of a-z0-9); random when absent.
        #[arg(long)]
        name: Option<String>,
        /// Keep the lab running afterwards (single run only).
        #[arg(long)]
        keep: bool,
    },
    /// (internal) One WebRTC peer, JSON-lines signaling on stdin/stdout.
    #[command(hide = true)]
    Peer {
        /// PeerConfig as JSON; read from the first stdin line when absent.
        #[arg(long)]
        config: Option<String>,
        /// Test hook: never answer (read and ignore signaling until killed).
        #[arg(long)]
        test_silent: bool,
    },
    /// (internal) Run the built-in TURN server (UDP 3478, TCP 3478, TLS 443) in this namespace.
    #[command(hide = true)]
    TurnServer {
        /// Address to listen on and to advertise in relay candidates.
        #[arg(long)]
        public_ip: std::net::IpAddr,
        /// Long-term credential realm.
        #[arg(long)]
        realm: String,
        /// User name.
        #[arg(long)]
        user: String,
        /// Password.
        #[arg(long)]
        password: String,
        /// Subnets relays may exchange data with (repeatable); none = anyone.
        #[arg(long)]
        allow: Vec<ipnet::IpNet>,
    },
    /// (internal) Run the built-in STUN server (RFC 5389 + RFC 5780) in this namespace.
    #[command(hide = true)]
    StunServer {
        /// Primary address.
        #[arg(long)]
        primary: std::net::IpAddr,
        /// Alternate address (RFC 5780).
        #[arg(long)]
        alternate: Option<std::net::IpAddr>,
        /// Primary port.
        #[arg(long, default_value_t = 3478)]
        port: u16,
        /// Alternate port.
        #[arg(long, default_value_t = 3479)]
        alt_port: u16,
    },
    /// (internal) Run the userspace impairment engine for the given TAP links.
    #[command(hide = true)]
    ImpairEngine {
        /// The links, as JSON.
        #[arg(long)]
        links: String,
        /// Unix socket for live changes.
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// (internal) Serve UDP/TCP echo inside the given namespaces.
    #[command(hide = true)]
    EchoServer {
        /// Namespaces to serve.
        #[arg(long = "netns", required = true)]
        namespaces: Vec<String>,
        /// Port.
        #[arg(long, default_value_t = icelab::plan::ECHO_PORT)]
        port: u16,
    },
}

/// `--impair-engine`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum EngineChoice {
    /// netem if the kernel has it, else userspace.
    Auto,
    /// Kernel netem + tbf.
    Netem,
    /// icelab's TAP engine.
    Userspace,
}

impl EngineChoice {
    /// The forced engine; `None` lets the lab decide from its topology and kernel.
    fn forced(self) -> Option<icelab::plan::ImpairEngine> {
        use icelab::plan::ImpairEngine;
        match self {
            EngineChoice::Auto => None,
            EngineChoice::Netem => Some(ImpairEngine::Netem),
            EngineChoice::Userspace => Some(ImpairEngine::Userspace),
        }
    }
}

fn main() -> ExitCode {
    // This program starts the lab's services, whatever its file is called.
    if std::env::var_os("ICELAB_BIN").is_none()
        && let Ok(me) = std::env::current_exe()
    {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("ICELAB_BIN", me) };
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ICELAB_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
    let code = rt.block_on(async {
        match args.command {
            Command::Check { file, json } => cli::check(&file, json),
            Command::Up { file, name, dry_run, verify, impair_engine, seed, json } => {
                cli::up(&file, name, dry_run, verify, (impair_engine.forced(), seed), json).await
            }
            Command::Probe { name, node, server, lifetime_max, json } => {
                cli::probe::probe(&name, &node, server, lifetime_max, json)
            }
            Command::Verify { name, file, lifetime_max, json } => {
                cli::verify::verify(&name, file, lifetime_max, json).await
            }
            Command::StunServer { primary, alternate, port, alt_port } => {
                cli::probe::stun_server(primary, alternate, port, alt_port).await
            }
            Command::Run { file, json, repeat, name, keep } => {
                cli::run::run(&file, cli::run::RunArgs { json, repeat, name, keep }).await
            }
            Command::Peer { config, test_silent } => cli::run::peer(config, test_silent).await,
            Command::TurnServer { public_ip, realm, user, password, allow } => {
                cli::run::turn_server(public_ip, realm, user, password, allow).await
            }
            Command::Down { name, json } => cli::down(&name, json),
            Command::Ls { json } => cli::ls(json),
            Command::Cleanup { json } => cli::cleanup(json),
            Command::Exec { name, node, command } => cli::exec(&name, &node, &command),
            Command::Export { file, name } => cli::export(&file, &name),
            Command::Echo { target, tcp, count, timeout_ms, json } => {
                cli::echo(&target, tcp, count, timeout_ms, json).await
            }
            Command::ImpairEngine { links, control } => cli::impair_engine(&links, control.as_deref()),
            Command::EchoServer { namespaces, port } => cli::echo_server(&namespaces, port).await,
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    code
}
