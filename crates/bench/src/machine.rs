//! What sigil-bench reads about the machine and its processes from `/proc`:
//! the CPU, the kernel, and a process's resident memory.

use serde::Serialize;

/// The machine a run was made on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs online.
    pub cpus: usize,
    /// The kernel release.
    pub kernel: String,
}

impl Machine {
    /// Reads the machine; unknown parts read "unknown".
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, name)| name.trim().to_owned());
        let cpus = cpuinfo
            .lines()
            .filter(|line| line.starts_with("processor"))
            .count();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_or_else(|_| "unknown".to_owned(), |text| text.trim().to_owned());
        Machine {
            cpu_model,
            cpus,
            kernel,
        }
    }
}

/// A process's memory, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// Resident set size now (VmRSS), in KiB.
    pub rss_kib: u64,
    /// Largest resident set size so far (VmHWM), in KiB.
    pub peak_rss_kib: u64,
}

impl Memory {
    /// The memory of process `pid`, if it is alive and readable.
    pub fn of(pid: u32) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        Some(Memory {
            rss_kib: status_kib(&status, "VmRSS:")?,
            peak_rss_kib: status_kib(&status, "VmHWM:")?,
        })
    }
}

/// The CPU time a process has used, user and system, over all its
/// threads, from `/proc/<pid>/stat`; `None` if it is gone or unreadable.
pub fn cpu_time(pid: u32) -> Option<std::time::Duration> {
    /// The kernel reports these fields in USER_HZ ticks, 100 per second on
    /// every Linux this runs on (the /proc ABI fixes it, whatever HZ is).
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: count
    // fields from the last ')'.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state is field 3, so utime (14) and stime (15) are
    // the 12th and 13th.
    let user: u64 = fields.nth(11)?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(std::time::Duration::from_millis(
        (user + system) * 1000 / TICKS_PER_SECOND,
    ))
}

fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let before = cpu_time(std::process::id()).expect("own /proc stat");
        // Burn at least two USER_HZ ticks of CPU, bounded by iterations.
        let mut hash = 0u64;
        for round in 0..2_000_000_000u64 {
            hash = hash.wrapping_mul(31).wrapping_add(round);
            if round % 1_000_000 == 0
                && cpu_time(std::process::id()).expect("own /proc stat")
                    >= before + std::time::Duration::from_millis(20)
            {
                break;
            }
        }
        std::hint::black_box(hash);
        assert!(cpu_time(std::process::id()).expect("own /proc stat") > before);
    }

    #[test]
    fn own_memory_is_readable() {
        let memory = Memory::of(std::process::id()).expect("own /proc status");
        assert!(memory.rss_kib > 0);
        assert!(memory.peak_rss_kib >= memory.rss_kib);
    }
}
