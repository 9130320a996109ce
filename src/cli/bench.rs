//! `icelab bench relay`: checks the settings, runs [`icelab::bench::lab::run`] (Ctrl-C
//! drops it, which tears the lab down), prints the table or the JSON report.

use std::io::IsTerminal;
use std::time::Duration;

use icelab::bench::relay::{BenchConfig, parse_implementations, topology_source};
use icelab::fabric::registry;

use super::args::BenchCommand;
use super::error::{CliError, CliResult, Done};
use super::out::{self, errln};
use super::{Interrupts, new_lab_name, require_root};

pub(crate) async fn bench(what: BenchCommand) -> CliResult {
    match what {
        BenchCommand::Relay { allocations, rate, size, duration, implementations, rounds, uclient, name, json } => {
            if !(duration.is_finite() && duration > 0.0) {
                return Err(CliError::bad_input(format!(
                    "--duration must be a positive number of seconds, not {duration}"
                )));
            }
            let cfg = BenchConfig {
                allocations,
                rate,
                size,
                duration: Duration::from_secs_f64(duration),
                implementations: parse_implementations(&implementations).map_err(CliError::bad_input)?,
                rounds,
                uclient,
            };
            cfg.validate().map_err(CliError::bad_input)?;
            relay(cfg, name, json).await
        }
    }
}

async fn relay(cfg: BenchConfig, name: Option<String>, json: bool) -> CliResult {
    let spec = icelab::spec::parse_str("bench-relay.toml", &topology_source(&cfg.implementations))
        .map_err(|e| CliError::could_not_run(format!("the bench's own topology: {e}")))?;
    icelab::servers::check_programs(&spec.topology).map_err(CliError::bad_input)?;
    if cfg.uclient && icelab::peer::driver::find_program("turnutils_uclient").is_none() {
        return Err(CliError::bad_input(
            "--uclient needs `turnutils_uclient`: install it with `apt-get install coturn`",
        ));
    }
    require_root()?;
    let name = name.unwrap_or_else(registry::random_name);
    new_lab_name(&name)?;
    let interrupted = Interrupts::install()?;
    let tty = std::io::stderr().is_terminal() && !json;
    let run = icelab::bench::lab::run(&cfg, &name, |step| {
        if tty {
            out::err_text(&format!("\r\x1b[K{step}"));
        }
    });
    let result = tokio::select! {
        r = run => r,
        s = interrupted.wait() => {
            if tty { errln!(); }
            return Err(CliError::could_not_run(format!("interrupted by {s}; the bench lab was torn down")));
        }
    };
    if tty {
        out::err_text("\r\x1b[K");
    }
    let report = result.map_err(|e| CliError::could_not_run(format!("relay bench: {e:#}; the lab was torn down")))?;
    if json {
        out::json(&report);
    } else {
        out::text(&report.text());
    }
    Ok(Done::Ok)
}
