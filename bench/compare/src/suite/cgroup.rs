//! Memory cgroups (v1 `memory` controller) for the engines that rely on the
//! page cache, out of memory: the driver creates one per measurement with
//! the budget as its limit, the measurement process moves itself in before
//! it opens anything, and the driver removes the group once the process has
//! ended. Everything the process touches is charged to it: heap, caches,
//! and the page cache of the files it reads and writes.

use std::path::{Path, PathBuf};

/// Where the v1 memory controller is mounted on these machines.
const ROOT: &str = "/sys/fs/cgroup/memory";

/// A memory cgroup this process created; removed on drop.
pub struct Cgroup {
    path: PathBuf,
}

impl Cgroup {
    /// Creates `snowfall-suite-<pid>-<n>` limited to `bytes`, or says why it
    /// cannot (no v1 memory controller, not root).
    pub fn create(n: u32, bytes: u64) -> Result<Cgroup, String> {
        let root = Path::new(ROOT);
        if !root.join("memory.limit_in_bytes").exists() {
            return Err(format!("no cgroup v1 memory controller at {ROOT}"));
        }
        let path = root.join(format!("snowfall-suite-{}-{n}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let group = Cgroup { path };
        let limit = group.path.join("memory.limit_in_bytes");
        std::fs::write(&limit, bytes.to_string()).map_err(|e| format!("{}: {e}", limit.display()))?;
        Ok(group)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The most memory the group held (`memory.max_usage_in_bytes`).
    pub fn max_usage(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.max_usage_in_bytes"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// How often the limit was hit (`memory.failcnt`).
    pub fn failures(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.failcnt")).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0)
    }

    /// How many of its processes the kernel's out-of-memory killer killed
    /// (`oom_kill` in `memory.oom_control`).
    pub fn oom_kills(&self) -> u64 {
        std::fs::read_to_string(self.path.join("memory.oom_control"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok()))
            .unwrap_or(0)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Pages still charged (cached files already deleted) move to the
        // parent; empty the group first so rmdir does not wait on them.
        let _ = std::fs::write(self.path.join("memory.force_empty"), "0");
        if let Err(e) = std::fs::remove_dir(&self.path) {
            eprintln!("warning: could not remove {}: {e}", self.path.display());
        }
    }
}

/// Moves this process into the cgroup at `path` (before it opens anything).
pub fn join(path: &str) {
    let procs = Path::new(path).join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string())
        .unwrap_or_else(|e| panic!("joining {}: {e}", procs.display()));
}
