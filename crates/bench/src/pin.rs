//! Pinning to one CPU with `taskset` (util-linux), so the server and the
//! load do not take each other's core. `taskset` rather than
//! `sched_setaffinity` because the workspace forbids `unsafe`.

use std::process::{Command, Stdio};

/// Pins this process's calling thread to `cpu`; threads it starts later
/// inherit the pin, so call it before building the async runtime.
pub fn pin_this_process(cpu: usize) -> Result<(), String> {
    pin_task(cpu, &std::process::id().to_string())
}

/// Pins the calling thread (only) to `cpu`.
pub fn pin_this_thread(cpu: usize) -> Result<(), String> {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let link = std::fs::read_link("/proc/thread-self")
        .map_err(|error| format!("cannot find this thread's id: {error}"))?;
    let tid = link
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or("cannot find this thread's id")?
        .to_owned();
    pin_task(cpu, &tid)
}

/// `taskset -p -c cpu id`: pins one thread (the main thread, for a
/// process id).
fn pin_task(cpu: usize, id: &str) -> Result<(), String> {
    let status = Command::new("taskset")
        .args(["-p", "-c", &cpu.to_string(), id])
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

/// `program`, run pinned to `cpus` (a `taskset -c` list: `0`, `0,1`,
/// `0-1`) when given.
pub fn command_on(cpus: Option<&str>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    match cpus {
        Some(cpus) => {
            let mut command = Command::new("taskset");
            command.arg("-c").arg(cpus).arg(program);
            command
        }
        None => Command::new(program),
    }
}
