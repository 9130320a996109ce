//! Waiting on child processes with a deadline: the one place that knows how.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Waits for `child` to exit and collects its output; SIGKILLs it after `deadline`.
pub fn wait_output(child: Child, deadline: Duration) -> Result<Output> {
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    match rx.recv_timeout(deadline) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            bail!("child process {pid} did not finish within {deadline:?}")
        }
    }
}

/// Runs `cmd` (stdout and stderr captured, `stdin` fed when given) to its end within `deadline`.
pub fn run(mut cmd: Command, stdin: Option<&str>, deadline: Duration) -> Result<Output> {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().with_context(|| format!("running {program}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // Inputs are a few KiB: the pipe takes them whole, then closes.
        pipe.write_all(text.as_bytes())?;
    }
    wait_output(child, deadline)
}

/// The first line `out` prints, or `None` when it closes or `deadline` passes first.
pub fn first_line(out: ChildStdout, deadline: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(deadline).ok()
}

/// SIGKILLs `pid` and waits until it is gone: no `/proc` entry, or a zombie (its
/// sockets are closed either way).
pub fn kill_and_wait(pid: i32, deadline: Duration) -> Result<()> {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let start = Instant::now();
    while !super::procs::is_zombie(pid) {
        if start.elapsed() > deadline {
            bail!("process {pid} survived SIGKILL for {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
