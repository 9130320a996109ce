//! The command line's grammar (clap): every command, its arguments and their help.
//! `main` dispatches them to the handlers in the other `cli` modules.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// icelab: real networks of Linux namespaces for STUN/TURN/ICE path testing.
#[derive(Parser)]
#[command(version, about, long_about = None)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check this machine: root, nftables, iproute2, TUN, netem, coturn, browsers; says what to install (exit 1 when labs cannot run).
    Doctor {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The NAT matrix: side A configurations x side B, a lab and a call per cell, judged against the shipped expectations.
    Matrix {
        /// SPEC file: `a = ["OPEN", "PORT"]`, `b = [...]` (default: libwebrtc's ten against themselves).
        spec: Option<PathBuf>,
        /// Labs at a time (default: the number of cores).
        #[arg(long)]
        jobs: Option<usize>,
        /// Run only share i of n (1-based), for CI runners; `icelab merge` joins them.
        #[arg(long)]
        shard: Option<String>,
        /// Prove every cell's lab (as `icelab verify`) before its call; a lab not as declared fails the cell.
        #[arg(long)]
        verify: bool,
        /// Rerun a failed cell up to N times; the report marks the cells that needed it as flaky.
        #[arg(long, default_value_t = 0)]
        retries: u32,
        /// Write each cell's icelab file (e.g. `PORT-SYMM.toml`) to this directory and stop: a cell to rerun with `icelab run`.
        #[arg(long)]
        export: Option<PathBuf>,
        /// Keep every cell's captures in DIR/<cell>/: a pcap per link and `events.jsonl` (a failed cell's are always kept, in a temp directory the summary names).
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        #[command(flatten)]
        out: MatrixOutputs,
    },
    /// Join shard reports (`icelab matrix --shard i/n --json`) into one, in any format.
    Merge {
        /// The shards' JSON reports.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        out: MatrixOutputs,
    },
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
    /// List labs: kept by `up`, owned by a live process, or left over by a dead one.
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove leftovers: labs whose creating process died, and `icelab-*` namespaces
    /// without a record. Labs kept by `up` and labs of live processes stay.
    Cleanup {
        /// Remove this lab (whoever owns it) instead of the leftovers.
        name: Option<String>,
        /// Remove every lab, kept and live ones too.
        #[arg(long, conflicts_with = "name")]
        all: bool,
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
        /// Errors as JSON on stdout (the command's own output is passed through).
        #[arg(long)]
        json: bool,
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
        /// Print `{"script": ...}` and errors as JSON.
        #[arg(long)]
        json: bool,
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
    /// Exit 0 when every expectation holds (in every run), 1 when one does not, 2 on bad
    /// input, 3 when the run could not be done.
    Run {
        /// Topology file with a [scenario] section.
        file: PathBuf,
        /// Print the full outcome and verdict as JSON.
        #[arg(long)]
        json: bool,
        /// Run N times and report p50/p95 timings and the success rate.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
        /// Prove the lab (as `icelab verify`) before the call; a lab not as declared fails the verdict.
        #[arg(long)]
        verify: bool,
        /// Lab name (1-12 of a-z0-9); random when absent.
        #[arg(long)]
        name: Option<String>,
        /// Keep the lab running afterwards (single run only).
        #[arg(long)]
        keep: bool,
        /// Capture every link into DIR (a pcap per link, written by icelab) and the peers' events into DIR/events.jsonl (DIR/run-N/ with --repeat).
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        /// Play the call with these peers instead of the file's: `OFFERER,ANSWERER` or one
        /// kind for both (`built-in`).
        #[arg(long, value_name = "A[,B]")]
        peers: Option<String>,
        /// The built-in peer's ICE profile instead of the file's: `webrtc-rs` (the stack's
        /// acceptance waits) or `browser-like` (none).
        #[arg(long, value_name = "PROFILE")]
        ice_profile: Option<String>,
        /// Also write the results as JUnit XML (one testcase per call).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Also write the results as a self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// Also write the report model (every call, checks, timings, events) as JSON.
        #[arg(long, value_name = "FILE")]
        report_json: Option<PathBuf>,
    },
    /// Benchmarks in a lab of their own (`icelab bench relay`).
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Many calls in one lab at an open-loop arrival rate, and how call setup fared.
    ///
    /// FILE sets the calls, rate, concurrency cap, each call's data phase, the time
    /// bound and the lab (`lab = "FILE"` or a `[population]` mix); flags override it.
    /// Exit 0 when every call passed, 1 when one did not, 2 on bad input, 3 when the
    /// load could not be run.
    Load {
        /// Load file (see README, "Load").
        file: PathBuf,
        #[command(flatten)]
        args: LoadArgs,
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
        /// Play many calls' peers in this one process (the pooled wire, `icelab::peer::pool_wire`).
        #[arg(long, conflicts_with_all = ["config", "test_silent"])]
        pool: bool,
    },
    /// (internal) A browser peer (Chromium or Firefox, headless) speaking the peer contract.
    #[command(hide = true)]
    BrowserPeer {
        /// Which browser.
        #[arg(long, value_enum)]
        browser: icelab::browser::Browser,
    },
    /// (internal) Run the built-in TURN server (UDP 3478, TCP 3478, TLS 443) in this namespace.
    #[command(hide = true)]
    TurnServer {
        /// Address to listen on and to advertise in relay candidates.
        #[arg(long)]
        public_ip: std::net::IpAddr,
        /// IPv6 address to listen on too, and to give IPv6 relays (RFC 6156) from.
        #[arg(long)]
        public_ip6: Option<std::net::IpAddr>,
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
        /// Append the server's figures here as JSON lines: every second they changed,
        /// on SIGUSR1, and on SIGTERM before exiting.
        #[arg(long)]
        stats: Option<PathBuf>,
    },
    /// (internal) Run the lab's DNS server (its names, DNS64) in this namespace.
    #[command(hide = true)]
    DnsServer {
        /// UDP address to answer on (repeatable).
        #[arg(long, required = true)]
        listen: Vec<std::net::SocketAddr>,
        /// A name and one of its addresses, NAME=ADDRESS (repeatable).
        #[arg(long, value_parser = icelab::dns::parse_record)]
        record: Vec<(String, std::net::IpAddr)>,
        /// The NAT64 prefix DNS64 synthesizes AAAA records into.
        #[arg(long)]
        dns64_prefix: Option<ipnet::Ipv6Net>,
        /// A network whose clients get DNS64 answers (repeatable).
        #[arg(long)]
        dns64_client: Vec<ipnet::IpNet>,
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
        /// Primary IPv6 address: a second server of the same kind listens there.
        #[arg(long)]
        primary6: Option<std::net::IpAddr>,
        /// Alternate IPv6 address (RFC 5780 on IPv6).
        #[arg(long)]
        alternate6: Option<std::net::IpAddr>,
        /// Primary port.
        #[arg(long, default_value_t = 3478)]
        port: u16,
        /// Alternate port.
        #[arg(long, default_value_t = 3479)]
        alt_port: u16,
        /// Append the server's figures (answers by method, timed) to this JSON-lines file.
        #[arg(long)]
        stats: Option<PathBuf>,
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
    /// (internal) Send one request (JSON) to an impairment engine's control socket; for exported scripts.
    #[command(hide = true)]
    ImpairControl {
        /// The engine's control socket.
        control: PathBuf,
        /// The request, e.g. {"op":"set","link":0,"dir":"a-to-b","impairment":{...}}.
        request: String,
    },
    /// (internal) Write a fresh self-signed TLS certificate and key (PEM); for exported scripts.
    #[command(hide = true)]
    TlsCert {
        /// Certificate file.
        #[arg(long)]
        cert: PathBuf,
        /// Private key file.
        #[arg(long)]
        key: PathBuf,
        /// Subject alternative names (repeatable).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
    },
    /// (internal) Wait (10 s at most) until a STUN server answers at ADDR; for exported scripts.
    #[command(hide = true)]
    WaitStun {
        /// The server's UDP address.
        addr: std::net::SocketAddr,
    },
    /// (internal) Flush this namespace's conntrack table (ctnetlink); for exported scripts.
    #[command(hide = true)]
    ConntrackFlush,
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
pub(crate) enum EngineChoice {
    /// netem if the kernel has it, else userspace.
    Auto,
    /// Kernel netem + tbf.
    Netem,
    /// icelab's TAP engine.
    Userspace,
}

impl EngineChoice {
    /// The forced engine; `None` lets the lab decide from its topology and kernel.
    pub(crate) fn forced(self) -> Option<icelab::plan::ImpairEngine> {
        use icelab::plan::ImpairEngine;
        match self {
            EngineChoice::Auto => None,
            EngineChoice::Netem => Some(ImpairEngine::Netem),
            EngineChoice::Userspace => Some(ImpairEngine::Userspace),
        }
    }
}

impl Command {
    /// Whether errors are to be printed as JSON on stdout.
    pub(crate) fn json(&self) -> bool {
        match self {
            Command::Check { json, .. }
            | Command::Up { json, .. }
            | Command::Down { json, .. }
            | Command::Ls { json }
            | Command::Cleanup { json, .. }
            | Command::Exec { json, .. }
            | Command::Export { json, .. }
            | Command::Echo { json, .. }
            | Command::Probe { json, .. }
            | Command::Run { json, .. }
            | Command::Load { args: LoadArgs { json, .. }, .. }
            | Command::Doctor { json }
            | Command::Bench { what: BenchCommand::Relay { json, .. } }
            | Command::Matrix { out: MatrixOutputs { json, .. }, .. }
            | Command::Merge { out: MatrixOutputs { json, .. }, .. } => *json,
            _ => false,
        }
    }
}

/// `icelab load`'s flags: each overrides the load file.
#[derive(clap::Args)]
pub(crate) struct LoadArgs {
    /// Calls to place.
    #[arg(long)]
    pub(crate) calls: Option<u64>,
    /// Offered arrival rate, calls/s (open loop: a slow lab shows as queueing).
    #[arg(long)]
    pub(crate) rate: Option<f64>,
    /// Calls running at once at most; later arrivals wait for a slot.
    #[arg(long)]
    pub(crate) concurrency: Option<usize>,
    /// Each call's data phase after its channel opened, ms.
    #[arg(long)]
    pub(crate) duration_ms: Option<u64>,
    /// Each call's paced data, kbit/s each way.
    #[arg(long)]
    pub(crate) data_rate_kbps: Option<u64>,
    /// No call starts after this many seconds from the first arrival.
    #[arg(long)]
    pub(crate) time_limit_s: Option<f64>,
    /// Seed of the pairs (and of poisson arrivals).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Built-in peers: `per-host` (one process per host plays all its calls) or
    /// `per-call` (two processes per call).
    #[arg(long, value_name = "per-host|per-call")]
    pub(crate) peer_processes: Option<String>,
    /// Lab name (1-12 of a-z0-9); random when absent.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Print the lab and the schedule instead of running them (no root needed).
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// The load report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also write a self-contained HTML report: setup latency against the offered rate
    /// over time, and the summary's tables.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
}

/// How `icelab matrix` and `icelab merge` report.
#[derive(clap::Args)]
pub(crate) struct MatrixOutputs {
    /// The matrix report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// A Markdown table on stdout instead of the grid.
    #[arg(long)]
    pub(crate) markdown: bool,
    /// Also write JUnit XML (one testcase per cell).
    #[arg(long)]
    pub(crate) junit: Option<PathBuf>,
    /// Also write a self-contained HTML report.
    #[arg(long)]
    pub(crate) html: Option<PathBuf>,
}

/// `icelab bench`'s benchmarks.
#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// TURN relay load: N allocations at a set rate and size through each implementation to an echo peer.
    ///
    /// Builds a lab (a client host, one server node per implementation, an echo peer host),
    /// allocates on each server in turn, binds a channel to the peer and sends ChannelData
    /// paced at --rate per allocation; the peer echoes every packet back through the relay.
    /// Prints per implementation: packets/s and Mbit/s relayed (both directions), loss
    /// (round trip, and each leg), RTT p50/p99, the server's CPU (/proc/PID/stat, percent of
    /// one core) and the UDP receive-buffer drops in its namespace; then the built-in/coturn
    /// throughput ratio of this run. The lab is torn down on every path.
    ///
    /// Outside yardstick: --uclient also runs coturn's own load tool against each server,
    /// `turnutils_uclient -c -n MSGS -m N -l SIZE -z MS -e PEER -u icelab -w icelab SERVER`
    /// in the client's namespace with `turnutils_peer -L PEER` in the peer's.
    Relay {
        /// Allocations (one client socket each).
        #[arg(long, default_value_t = 10)]
        allocations: u32,
        /// Packets per second per allocation.
        #[arg(long, default_value_t = 100)]
        rate: u32,
        /// Payload bytes per packet.
        #[arg(long, default_value_t = 1200)]
        size: usize,
        /// Seconds of sending per implementation.
        #[arg(long, default_value_t = 5.0)]
        duration: f64,
        /// Implementations to run, in order: builtin, coturn.
        #[arg(long = "impl", default_value = "builtin,coturn")]
        implementations: String,
        /// Rounds, each running every implementation in turn (fairer on a busy machine); the figures add them up.
        #[arg(long, default_value_t = 1)]
        rounds: u32,
        /// Also run turnutils_uclient (coturn's load tool) against each implementation.
        #[arg(long)]
        uclient: bool,
        /// Lab name (1-12 of a-z0-9); random when absent.
        #[arg(long)]
        name: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}
