//! Pinning to one CPU with `taskset` (util-linux), so the server and the
//! load do not take each other's core. `taskset` rather than
//! `sched_setaffinity` because the workspace forbids `unsafe`.

use std::{
    ffi::OsStr,
    process::{Command, Stdio},
};

use crate::cpu_limit::CpuLimit;

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
/// `0-1`) when given, and inside the cgroup of `limit` when given.
pub fn command_on(
    cpus: Option<&str>,
    limit: Option<&CpuLimit>,
    program: impl AsRef<OsStr>,
) -> Command {
    let mut words: Vec<&OsStr> = Vec::new();
    if let Some(cpus) = cpus {
        words.extend([OsStr::new("taskset"), OsStr::new("-c"), OsStr::new(cpus)]);
    }
    words.push(program.as_ref());
    match limit {
        Some(limit) => limit.wrap(words[0], &words[1..]),
        None => {
            let mut command = Command::new(words[0]);
            command.args(&words[1..]);
            command
        }
    }
}

/// The number of CPUs in a `taskset -c` list (`0,1`, `0-3`, `0,2-3`), or
/// `None` when it is not one.
pub fn cpus_in(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.split(',') {
        count += match part.split_once('-') {
            Some((first, last)) => {
                let (first, last) = (first.parse::<usize>().ok()?, last.parse::<usize>().ok()?);
                last.checked_sub(first)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use super::cpus_in;

    #[test]
    fn counts_the_cpus_of_a_taskset_list() {
        assert_eq!(cpus_in("0"), Some(1));
        assert_eq!(cpus_in("0,1"), Some(2));
        assert_eq!(cpus_in("0-3"), Some(4));
        assert_eq!(cpus_in("0,2-3"), Some(3));
        assert_eq!(cpus_in("3-1"), None);
        assert_eq!(cpus_in(""), None);
        assert_eq!(cpus_in("0,,1"), None);
        assert_eq!(cpus_in("a"), None);
    }
}
