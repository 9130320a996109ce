//! The `icelab` command line: parse (`cli::args`), dispatch to `cli::*`, exit by the contract.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::args::{Args, Command};

/// A step an exported script runs through icelab: done, or could not run (exit 3).
fn script_step(r: anyhow::Result<()>) -> cli::error::CliResult {
    use cli::error::OrKind;
    r.map(|()| cli::error::Done::Ok).or_kind(cli::error::Kind::CouldNotRun)
}

/// A clap error: help and version are output (exit 0), the rest usage errors (exit 2).
fn usage(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let text = e.render().to_string();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        cli::out::text(&text);
        return ExitCode::SUCCESS;
    }
    let first = text.lines().next().unwrap_or("bad usage").trim_start_matches("error: ").to_string();
    let mut err = cli::error::CliError::bad_input(first);
    err.rendered = Some(text.trim_end().to_string());
    err.report(json)
}

fn main() -> ExitCode {
    // This program starts the lab's services, whatever its file is called.
    if std::env::var_os("ICELAB_BIN").is_none()
        && let Ok(me) = std::env::current_exe()
    {
        // SAFETY: no other thread exists yet.
        unsafe { std::env::set_var("ICELAB_BIN", me) };
    }

    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ICELAB_LOG"))
        .with_writer(std::io::stderr)
        .finish();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let args = match Args::try_parse_from(&argv) {
        Ok(a) => a,
        Err(e) => {
            tracing_subscriber::util::SubscriberInitExt::init(subscriber);
            return usage(e, argv.iter().any(|a| a == "--json"));
        }
    };
    if matches!(args.command, Command::Peer { .. }) {
        // The peer reads webrtc-rs's log for its first successful check (peer::checks_log).
        let _ = tracing::subscriber::set_global_default(subscriber);
        // With ICELAB_LOG set, every level goes on to tracing and its filter decides (so
        // `ICELAB_LOG=rtc_ice=trace` shows the agent's checks); otherwise up to info.
        let forward =
            if std::env::var_os("ICELAB_LOG").is_some() { log::LevelFilter::Trace } else { log::LevelFilter::Info };
        let _ = icelab::peer::checks_log::install(forward);
    } else {
        tracing_subscriber::util::SubscriberInitExt::init(subscriber);
    }
    let json = args.command.json();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return cli::error::CliError::could_not_run(format!("tokio runtime: {e}")).report(json),
    };
    let result = rt.block_on(async {
        match args.command {
            Command::Check { file, json } => cli::check(&file, json),
            Command::Doctor { json } => cli::doctor::doctor(json),
            Command::Matrix { spec, jobs, shard, verify, retries, export, capture, out } => {
                let outputs = out;
                match export {
                    Some(dir) => cli::matrix::export(spec.as_deref(), &dir),
                    None => {
                        let checks = (verify, retries);
                        cli::matrix::matrix(
                            spec.as_deref(),
                            jobs,
                            shard.as_deref(),
                            checks,
                            capture.as_deref(),
                            outputs,
                        )
                        .await
                    }
                }
            }
            Command::Merge { files, out } => cli::matrix::merge(&files, out),
            Command::Up { file, name, dry_run, verify, impair_engine, seed, json } => {
                cli::up(&file, name, dry_run, verify, (impair_engine.forced(), seed), json).await
            }
            Command::Probe { name, node, server, lifetime_max, json } => {
                cli::probe::probe(&name, &node, server, lifetime_max, json)
            }
            Command::Verify { name, file, lifetime_max, json } => {
                cli::verify::verify(&name, file, lifetime_max, json).await
            }
            Command::DnsServer { listen, record, dns64_prefix, dns64_client } => {
                let zone = icelab::dns::Zone { records: record, dns64: dns64_client, prefix: dns64_prefix };
                cli::probe::dns_server(zone, &listen).await
            }
            Command::StunServer { primary, alternate, primary6, alternate6, port, alt_port, stats } => {
                cli::probe::stun_server(
                    (primary, alternate),
                    primary6.map(|p| (p, alternate6)),
                    (port, alt_port),
                    stats,
                )
                .await
            }
            Command::Run {
                file,
                json,
                repeat,
                verify,
                name,
                keep,
                capture,
                junit,
                html,
                report_json,
                peers,
                ice_profile,
            } => {
                let files = cli::run::ReportFiles { junit, html, json: report_json };
                let args = cli::run::RunArgs { json, verify, repeat, name, keep, capture, files, peers, ice_profile };
                cli::run::run(&file, args).await
            }
            Command::Bench { what } => cli::bench::bench(what).await,
            Command::Load { file, args } => cli::load::load(&file, args).await,
            Command::Peer { pool: true, .. } => cli::run::peer_pool().await,
            Command::Peer { config, test_silent, .. } => cli::run::peer(config, test_silent).await,
            Command::BrowserPeer { browser } => cli::browser::browser_peer(browser),
            Command::TurnServer { public_ip, public_ip6, realm, user, password, allow, stats } => {
                cli::run::turn_server((public_ip, public_ip6), realm, user, password, allow, stats).await
            }
            Command::Down { name, json } => cli::labs::down(&name, json),
            Command::Ls { json } => cli::labs::ls(json),
            Command::Cleanup { name, all, json } => cli::labs::cleanup(name.as_deref(), all, json),
            Command::Exec { name, node, command, json: _ } => cli::labs::exec(&name, &node, &command),
            Command::Export { file, name, json } => cli::export(&file, &name, json),
            Command::Echo { target, tcp, count, timeout_ms, json } => {
                cli::echo(&target, tcp, count, timeout_ms, json).await
            }
            Command::ImpairEngine { links, control } => cli::impair_engine(&links, control.as_deref()),
            Command::EchoServer { namespaces, port } => cli::echo_server(&namespaces, port).await,
            Command::ImpairControl { control, request } => {
                script_step(serde_json::from_str(&request).map_err(anyhow::Error::from).and_then(|r| {
                    match icelab::impair::engine::request(&control, &r)? {
                        icelab::impair::engine::ControlReply::Error(e) => anyhow::bail!("the engine refused: {e}"),
                        _ => Ok(()),
                    }
                }))
            }
            Command::ConntrackFlush => script_step(icelab::fabric::conntrack::flush_here()),
            Command::TlsCert { cert, key, names } => script_step(icelab::turn::write_self_signed(names, &cert, &key)),
            Command::WaitStun { addr } => {
                script_step(icelab::fabric::ready::stun_answers_here(addr, std::time::Duration::from_secs(10)).await)
            }
        }
    });
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(done) => done.into(),
        Err(e) => e.report(json),
    }
}
