//! Keeping the calling thread on one CPU.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::env::find_program;
use crate::TestkitError;

/// The calling thread pinned to the CPU it is on (`taskset -p -c N <tid>`)
/// until drop, which gives it back the CPUs it was allowed before.
///
/// `BPF_PROG_TEST_RUN` runs the program on the calling thread's CPU, and a
/// perf event array writes each event into that CPU's ring. A test that
/// reasons about one ring across several runs (it overflows; the kernel
/// reports the loss with the next sample written to that same ring) must not
/// move to another CPU between them, nor in the middle of a repeated run.
///
/// Not `Send`: it pins the thread that created it.
#[derive(Debug)]
pub struct PinnedThread {
    tid: String,
    cpu: u32,
    allowed: String,
    _this_thread: PhantomData<*const ()>,
}

impl PinnedThread {
    /// Pins the calling thread to the CPU it runs on now.
    pub fn to_current_cpu() -> Result<PinnedThread, TestkitError> {
        let me = Path::new("/proc/thread-self");
        let link = std::fs::read_link(me).map_err(|source| TestkitError::Io {
            what: "cannot read",
            path: me.to_path_buf(),
            source,
        })?;
        // "<pid>/task/<tid>"
        let tid = link
            .file_name()
            .and_then(|t| t.to_str())
            .filter(|t| t.parse::<u32>().is_ok())
            .ok_or_else(|| malformed(me, "<pid>/task/<tid>"))?
            .to_string();
        let thread = Path::new("/proc").join(link);
        let stat_path = thread.join("stat");
        let cpu = parse_stat_cpu(&read(&stat_path)?)
            .ok_or_else(|| malformed(&stat_path, "a processor field"))?;
        let status_path = thread.join("status");
        let allowed = parse_allowed_list(&read(&status_path)?)
            .ok_or_else(|| malformed(&status_path, "a Cpus_allowed_list line"))?;
        taskset(&cpu.to_string(), &tid)?;
        let pinned = PinnedThread {
            tid,
            cpu,
            allowed,
            _this_thread: PhantomData,
        };
        let now = parse_allowed_list(&read(&status_path)?);
        if now.as_deref() != Some(cpu.to_string().as_str()) {
            return Err(TestkitError::Missing {
                what: format!(
                    "CPU affinity {cpu} for thread {} (it has {now:?})",
                    pinned.tid
                ),
                hint: "check that taskset can set this thread's affinity",
            });
        }
        Ok(pinned)
    }

    /// The CPU the thread is pinned to.
    pub fn cpu(&self) -> u32 {
        self.cpu
    }
}

impl Drop for PinnedThread {
    fn drop(&mut self) {
        if let Err(e) = taskset(&self.allowed, &self.tid) {
            eprintln!("warning: cannot restore thread {}'s CPUs: {e}", self.tid);
        }
    }
}

fn taskset(cpus: &str, tid: &str) -> Result<(), TestkitError> {
    let taskset: PathBuf = find_program("taskset").ok_or(TestkitError::Missing {
        what: "taskset".into(),
        hint: "apt-get install util-linux",
    })?;
    crate::run_checked(&taskset, "taskset", &["-p", "-c", cpus, tid]).map(|_| ())
}

fn read(path: &Path) -> Result<String, TestkitError> {
    std::fs::read_to_string(path).map_err(|source| TestkitError::Io {
        what: "cannot read",
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(path: &Path, what: &str) -> TestkitError {
    TestkitError::Missing {
        what: format!("{what} in {}", path.display()),
        hint: "a Linux /proc is needed",
    }
}

/// Field 39, `processor`, of `/proc/<pid>/task/<tid>/stat`: the CPU the
/// thread last ran on. Counted after the `(comm)` field, which may hold spaces.
fn parse_stat_cpu(stat: &str) -> Option<u32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm
        .split_whitespace()
        .nth(39 - 3)
        .and_then(|f| f.parse().ok())
}

/// The `Cpus_allowed_list:` of a status file, as `taskset -c` takes it (`0-3,8`).
fn parse_allowed_list(status: &str) -> Option<String> {
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    Some(list.trim().to_string()).filter(|l| !l.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_fields() {
        // A comm with spaces and parentheses; processor (field 39) is 1.
        let stat = "1240 (a (b) c) S 1 1240 1240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 \
                    500 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(parse_stat_cpu(stat), Some(1));
        assert_eq!(parse_stat_cpu("no comm"), None);
        let status = "Name:\tx\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\n";
        assert_eq!(parse_allowed_list(status).as_deref(), Some("0-1"));
        assert_eq!(parse_allowed_list("Name:\tx\n"), None);
    }

    #[test]
    fn pins_this_thread_and_restores_its_cpus() {
        let status = || read(Path::new("/proc/thread-self/status")).unwrap();
        let before = parse_allowed_list(&status()).unwrap();
        {
            let pin = PinnedThread::to_current_cpu().unwrap();
            assert_eq!(parse_allowed_list(&status()), Some(pin.cpu().to_string()));
            let cpu = parse_stat_cpu(&read(Path::new("/proc/thread-self/stat")).unwrap());
            assert_eq!(cpu, Some(pin.cpu()));
        }
        assert_eq!(parse_allowed_list(&status()), Some(before));
    }
}
