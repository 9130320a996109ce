//! Starting a headless browser on the page, in a fresh profile that is removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// Which browser plays the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Browser {
    /// Debian's `chromium`.
    Chromium,
    /// Debian's `firefox-esr`.
    Firefox,
}

impl Browser {
    /// The program that is started, and the Debian package that provides it.
    pub fn program(self) -> (&'static str, &'static str) {
        match self {
            Browser::Chromium => ("chromium", "chromium"),
            Browser::Firefox => ("firefox-esr", "firefox-esr"),
        }
    }

    /// The word used for this browser in `--peers` and `[scenario]`.
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }
}

/// Firefox preferences for a lab peer (written to the profile's `user.js`).
const FIREFOX_PREFS: &[(&str, &str)] = &[
    // Real host addresses in candidates, on every interface.
    ("media.peerconnection.ice.obfuscate_host_addresses", "false"),
    ("media.peerconnection.ice.default_address_only", "false"),
    // The fake microphone that grants interface enumeration, without a prompt.
    ("media.navigator.permission.disabled", "true"),
    ("media.navigator.streams.fake", "true"),
    // And a standing media permission: Firefox gathers on every interface only while a
    // page captures or holds a permission (the page's microphone is stopped before the
    // call); otherwise on its default addresses, found by routing towards IPv4 first,
    // which fails on an IPv6-only host: "failed to find default addresses", and not a
    // single candidate.
    ("permissions.default.microphone", "1"),
    ("permissions.default.camera", "1"),
    // Nothing but the page: no first-run pages, updates, telemetry or background fetches.
    ("browser.shell.checkDefaultBrowser", "false"),
    ("browser.startup.homepage_override.mstone", "\"ignore\""),
    ("browser.aboutwelcome.enabled", "false"),
    ("datareporting.policy.dataSubmissionEnabled", "false"),
    ("toolkit.telemetry.reportingpolicy.firstRun", "false"),
    ("app.update.enabled", "false"),
    ("extensions.update.enabled", "false"),
    ("network.captive-portal-service.enabled", "false"),
    ("network.connectivity-service.enabled", "false"),
    ("browser.safebrowsing.malware.enabled", "false"),
    ("browser.safebrowsing.phishing.enabled", "false"),
    ("network.dns.disablePrefetch", "true"),
];

/// A running browser: killed (its whole process group) and its profile removed on drop.
pub struct Running {
    child: Child,
    profile: tempfile::TempDir,
}

impl Running {
    /// Whether the browser has exited (crashed, or refused to start), with its status.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The profile directory (for diagnostics).
    pub fn profile(&self) -> &Path {
        self.profile.path()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // The browser leads its own process group: renderers and helpers go with it.
        let pid = self.child.id() as i32;
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` on `PATH`.
pub fn find(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(program)).find(|p| p.is_file())
}

/// The command line for `browser` on `url` with profile `dir`.
pub fn command(browser: Browser, program: &Path, url: &str, dir: &Path) -> anyhow::Result<Command> {
    let mut cmd = Command::new(program);
    match browser {
        Browser::Chromium => {
            cmd.args([
                "--headless",
                // Lab peers run as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                // Real host addresses instead of mDNS names.
                "--disable-features=WebRtcHideLocalIpsWithMdns",
                // Enumerate every interface (with the media permission below), not only
                // the default route's.
                "--force-webrtc-ip-handling-policy=default",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                // The lab's TURN/TLS server has a self-signed certificate (lab only).
                "--ignore-certificate-errors",
            ]);
            cmd.arg(format!("--user-data-dir={}", dir.display()));
            cmd.arg(url);
        }
        Browser::Firefox => {
            let prefs: String = FIREFOX_PREFS.iter().map(|(k, v)| format!("user_pref(\"{k}\", {v});\n")).collect();
            std::fs::write(dir.join("user.js"), prefs).context("writing the Firefox profile")?;
            cmd.args(["--headless", "--no-remote", "--profile"]).arg(dir).arg(url);
            cmd.env("MOZ_HEADLESS", "1");
        }
    }
    // The browser writes its caches under HOME: keep them in the throwaway profile.
    cmd.env("HOME", dir).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
    Ok(cmd)
}

/// Profiles are `icelab-browser-<adapter pid>-<random>` in the temp dir.
const PROFILE_PREFIX: &str = "icelab-browser-";

/// Removes profiles whose adapter is gone (killed before it could clean up).
fn sweep_stale_profiles() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(PROFILE_PREFIX).and_then(|r| r.split('-').next()?.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Starts `browser` headless on `url` in a fresh temporary profile.
pub fn start(browser: Browser, url: &str) -> anyhow::Result<Running> {
    let (program, package) = browser.program();
    let path = find(program).with_context(|| format!("`{program}` not found: apt-get install {package}"))?;
    sweep_stale_profiles();
    let profile = tempfile::Builder::new()
        .prefix(&format!("{PROFILE_PREFIX}{}-", std::process::id()))
        .tempdir()
        .context("making a browser profile")?;
    let mut cmd = command(browser, &path, url, profile.path())?;
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // Dies with the adapter even if the adapter is killed outright.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let child = cmd.spawn().with_context(|| format!("starting {program}"))?;
    Ok(Running { child, profile })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chromium_gets_real_addresses_and_a_fresh_profile() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = command(Browser::Chromium, Path::new("/usr/bin/chromium"), "http://x/", dir.path()).unwrap();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        for want in ["--headless", "--no-sandbox", "--disable-features=WebRtcHideLocalIpsWithMdns"] {
            assert!(args.iter().any(|a| a == want), "{want} missing from {args:?}");
        }
        assert!(args.contains(&format!("--user-data-dir={}", dir.path().display())));
        assert_eq!(args.last().unwrap(), "http://x/");
    }

    #[test]
    fn firefox_prefs_turn_off_mdns() {
        let dir = tempfile::tempdir().unwrap();
        command(Browser::Firefox, Path::new("/usr/bin/firefox-esr"), "http://x/", dir.path()).unwrap();
        let js = std::fs::read_to_string(dir.path().join("user.js")).unwrap();
        assert!(js.contains("user_pref(\"media.peerconnection.ice.obfuscate_host_addresses\", false);"));
        assert!(js.contains("user_pref(\"permissions.default.microphone\", 1);"), "every interface, IPv6-only too");
    }
}
