//! `icelab doctor`: can this machine run labs, and with what? Each line says what was
//! checked, what was found, and exactly what to install or enable when it is missing.
//! Exit 0 when everything labs need is here (optional parts may be absent), else 1.

use std::process::Command;

use icelab::peer::driver::find_program;
use serde::Serialize;

use super::error::{CliResult, Done};
use super::out::{self, outln};

/// One check.
#[derive(Serialize)]
struct Line {
    /// What was checked.
    what: &'static str,
    /// Needed for every lab (else only for some features).
    required: bool,
    /// Found and working.
    ok: bool,
    /// What was found, or what to do.
    detail: String,
}

fn version(program: &str, arg: &str) -> Option<String> {
    let o = Command::new(program).arg(arg).output().ok()?;
    let text = String::from_utf8_lossy(if o.stdout.is_empty() { &o.stderr } else { &o.stdout }).into_owned();
    Some(text.lines().next().unwrap_or("").trim().to_string())
}

fn program(what: &'static str, required: bool, name: &str, package: &str, arg: &str) -> Line {
    match find_program(name) {
        Some(p) => {
            let v = version(name, arg).unwrap_or_default();
            Line { what, required, ok: true, detail: format!("{} {v}", p.display()).trim().to_string() }
        }
        None => Line { what, required, ok: false, detail: format!("`{name}` not found: apt-get install {package}") },
    }
}

fn checks() -> Vec<Line> {
    let root = nix::unistd::geteuid().is_root();
    let mut v = vec![Line {
        what: "root (network namespaces, nftables)",
        required: true,
        ok: root,
        detail: if root {
            "running as root".into()
        } else {
            "run icelab as root (sudo -i), or grant CAP_NET_ADMIN and CAP_SYS_ADMIN".into()
        },
    }];
    v.push(program("nftables (nft)", true, "nft", "nftables", "--version"));
    v.push(program("iproute2 (ip)", true, "ip", "iproute2", "-V"));
    let tun = std::path::Path::new("/dev/net/tun").exists();
    v.push(Line {
        what: "TUN device (userspace impairment engine)",
        required: true,
        ok: tun,
        detail: if tun {
            "/dev/net/tun".into()
        } else {
            "no /dev/net/tun: modprobe tun (or run with --device /dev/net/tun in a container)".into()
        },
    });
    let netem = root && icelab::impair::netem::netem_available();
    v.push(Line {
        what: "kernel netem (sch_netem)",
        required: false,
        ok: netem,
        detail: if netem {
            "present: impaired links use netem + tbf".into()
        } else {
            "absent: impaired links use icelab's userspace engine (modprobe sch_netem to use the kernel's)".into()
        },
    });
    let cpu = icelab::fabric::cgroup::Hierarchy::find();
    v.push(Line {
        what: "cgroup cpu controller (server cpu limits)",
        required: false,
        ok: cpu.is_ok(),
        detail: match cpu {
            Ok(h) => format!("{} ({})", h.root().display(), h.version_name()),
            Err(e) => format!("{e:#}"),
        },
    });
    v.push(program("coturn (relay implementation)", false, "turnserver", "coturn", "--version"));
    v.push(program("Chromium (browser peers)", false, "chromium", "chromium", "--version"));
    v.push(program("Firefox (browser peers)", false, "firefox-esr", "firefox-esr", "--version"));
    v.push(program("tshark (reading captures)", false, "tshark", "tshark", "--version"));
    v
}

/// `icelab doctor`.
pub(crate) fn doctor(json: bool) -> CliResult {
    let lines = checks();
    let ready = lines.iter().all(|l| l.ok || !l.required);
    if json {
        out::json(&serde_json::json!({ "ready": ready, "checks": lines }));
    } else {
        for l in &lines {
            let mark = match (l.ok, l.required) {
                (true, _) => "ok  ",
                (false, true) => "FAIL",
                (false, false) => "--  ",
            };
            outln!("{mark} {:<42} {}", l.what, l.detail);
        }
        outln!("{}", if ready { "ready: this machine can run labs" } else { "not ready: fix the FAIL lines" });
    }
    Ok(if ready { Done::Ok } else { Done::CheckFailed })
}
