//! Pinning to one CPU with `taskset` (util-linux), so the server and the
//! load do not take each other's core. `taskset` rather than
//! `sched_setaffinity` because the workspace forbids `unsafe`.

use std::process::{Command, Stdio};

/// Pins this process's calling thread to `cpu`; threads it starts later
/// inherit the pin, so call it before building the async runtime.
pub fn pin_this_process(cpu: usize) -> Result<(), String> {
    let status = Command::new("taskset")
        .args([
            "-p",
            "-c",
            &cpu.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|error| format!("cannot run taskset to pin to CPU {cpu}: {error}"))?;
    if status.status.success() {
        Ok(())
    } else {
        Err(format!(
            "taskset could not pin to CPU {cpu}: {}",
            String::from_utf8_lossy(&status.stderr).trim()
        ))
    }
}

/// `program`, run pinned to `cpu` when one is given.
pub fn command_on(cpu: Option<usize>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match cpu {
        Some(cpu) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpu.to_string()).arg(program);
            command
        }
        None => Command::new(program),
    }
}
