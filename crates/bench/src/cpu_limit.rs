//! A CPU bandwidth limit (the CFS quota of a cgroup's `cpu` controller)
//! for a server sigil-bench starts, so that on a machine with no core to
//! spare for the load generator a server can still be given "one core" and
//! "two cores" of the same speed: a share of each. Needs root, as does any
//! cgroup write.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::BenchError;

/// The quota is granted per period: a short one spreads a server's time
/// finely instead of letting it run for 50 ms and stall for 50 ms.
const PERIOD_MICROS: u64 = 10_000;

/// A cgroup of sigil-bench's own with a CPU quota; removed on drop, once
/// the process in it has exited.
#[derive(Debug)]
pub struct CpuLimit {
    dir: PathBuf,
}

impl CpuLimit {
    /// A cgroup named after this process and `name` allowing `cpus` CPUs'
    /// worth of time (`0.5`: half of one) per period, under cgroup v2's
    /// `cpu.max` or v1's `cpu.cfs_quota_us`, whichever this machine has.
    pub fn new(name: &str, cpus: f64) -> Result<CpuLimit, BenchError> {
        let quota = (cpus * PERIOD_MICROS as f64).round() as u64;
        let group = format!("sigil-bench-{}-{name}", std::process::id());
        let unified = Path::new("/sys/fs/cgroup");
        let v1 = Path::new("/sys/fs/cgroup/cpu");
        let cannot = |path: &Path, error: std::io::Error| {
            BenchError(format!(
                "cannot limit CPU time through {} (needs root and the cgroup cpu \
                 controller): {error}",
                path.display()
            ))
        };
        let (dir, files) = if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(&group);
            let files = vec![
                ("cpu.cfs_period_us", PERIOD_MICROS.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
            ];
            (dir, files)
        } else {
            let controllers = std::fs::read_to_string(unified.join("cgroup.subtree_control"))
                .map_err(|error| cannot(unified, error))?;
            if !controllers.split_whitespace().any(|name| name == "cpu") {
                return Err(BenchError(
                    "cannot limit CPU time: the cgroup v2 root does not delegate the cpu \
                     controller (cgroup.subtree_control)"
                        .into(),
                ));
            }
            let dir = unified.join(&group);
            (dir, vec![("cpu.max", format!("{quota} {PERIOD_MICROS}"))])
        };
        std::fs::create_dir(&dir).map_err(|error| cannot(&dir, error))?;
        let limit = CpuLimit { dir };
        for (file, value) in files {
            let path = limit.dir.join(file);
            std::fs::write(&path, value).map_err(|error| cannot(&path, error))?;
        }
        Ok(limit)
    }

    /// `program` with `args`, run inside this cgroup: a shell moves itself
    /// in, then `exec`s the program, whose first instruction so already
    /// runs under the limit.
    pub fn wrap(&self, program: &std::ffi::OsStr, args: &[&std::ffi::OsStr]) -> Command {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(r#"echo $$ > "$1/cgroup.procs" && shift && exec "$@""#)
            .arg("sh")
            .arg(&self.dir)
            .arg(program)
            .args(args);
        command
    }
}

impl Drop for CpuLimit {
    fn drop(&mut self) {
        // A cgroup is removed with rmdir, and only when empty.
        let _ = std::fs::remove_dir(&self.dir);
    }
}
