//! Deciding whether kernel tests can run here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::fs::BPFFS_ROOT;

/// Set to `1` to make missing kernel prerequisites fail tests instead of
/// skipping them (CI sets it).
pub const REQUIRE_KERNEL_ENV: &str = "EBPF_SDK_REQUIRE_KERNEL";

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// What a kernel test may rely on once [`require_kernel`] said yes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KernelEnv {
    /// The `bpftool` binary.
    pub bpftool: PathBuf,
    /// The bpffs mount (`/sys/fs/bpf`).
    pub bpffs: PathBuf,
    /// Effective capabilities (`CapEff` of /proc/self/status).
    pub cap_eff: u64,
}

/// Whether `EBPF_SDK_REQUIRE_KERNEL=1` is set.
pub fn kernel_required() -> bool {
    std::env::var(REQUIRE_KERNEL_ENV).is_ok_and(|v| v.trim() == "1")
}

/// Checks that kernel tests can run: `CAP_BPF` (or `CAP_SYS_ADMIN`) and
/// `CAP_NET_ADMIN` in CapEff, bpffs mounted at `/sys/fs/bpf` (mounted here
/// if missing and we may), and `bpftool` on `PATH`.
///
/// A test listed in a [`harness`](mod@crate::harness) with
/// [`Need::Kernel`](crate::harness::Need::Kernel) only runs when this holds,
/// so there it returns the environment. Anywhere else, when the environment
/// is missing, it prints `skipping <test>: <reason>` to stderr and returns
/// `None`; it panics with the reason instead when [`kernel_required`], or
/// when called under a harness by a test that did not declare the need.
pub fn require_kernel(test: &str) -> Option<KernelEnv> {
    match kernel_env() {
        Ok(env) => Some(env.clone()),
        Err(reason) if kernel_required() => {
            panic!("{test}: {REQUIRE_KERNEL_ENV}=1 but the kernel test environment is missing: {reason}")
        }
        Err(reason) if crate::harness::active() => panic!(
            "{test}: the kernel test environment is missing ({reason}); \
             declare Need::Kernel for this test in its harness list"
        ),
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            None
        }
    }
}

/// The kernel test environment, probed once per process, or why it is missing.
pub(crate) fn kernel_env() -> Result<&'static KernelEnv, &'static str> {
    static PROBE: OnceLock<Result<KernelEnv, String>> = OnceLock::new();
    PROBE.get_or_init(probe).as_ref().map_err(String::as_str)
}

fn probe() -> Result<KernelEnv, String> {
    let cap_eff = cap_eff()?;
    let has = |cap: u32| cap_eff & (1u64 << cap) != 0;
    if !(has(CAP_BPF) || has(CAP_SYS_ADMIN)) {
        return Err(format!(
            "needs CAP_BPF or CAP_SYS_ADMIN (CapEff {cap_eff:#x}); run as root"
        ));
    }
    if !has(CAP_NET_ADMIN) {
        return Err(format!(
            "needs CAP_NET_ADMIN (CapEff {cap_eff:#x}); run as root"
        ));
    }
    let bpffs = PathBuf::from(BPFFS_ROOT);
    if !bpffs_mounted(&bpffs)? {
        if !has(CAP_SYS_ADMIN) {
            return Err(format!(
                "bpffs is not mounted at {BPFFS_ROOT} and mounting it needs CAP_SYS_ADMIN"
            ));
        }
        let out = Command::new("mount")
            .args(["-t", "bpf", "bpf", BPFFS_ROOT])
            .output()
            .map_err(|e| {
                format!("bpffs is not mounted at {BPFFS_ROOT} and `mount` could not run: {e}")
            })?;
        if !out.status.success() || !bpffs_mounted(&bpffs)? {
            return Err(format!(
                "bpffs is not mounted at {BPFFS_ROOT} and `mount -t bpf bpf {BPFFS_ROOT}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    let bpftool = find_bpftool().ok_or("bpftool is not installed (apt-get install bpftool)")?;
    let ok = Command::new(&bpftool)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        return Err(format!("{} version failed", bpftool.display()));
    }
    Ok(KernelEnv {
        bpftool,
        bpffs,
        cap_eff,
    })
}

fn cap_eff() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    parse_cap_eff(&status).ok_or_else(|| "no CapEff line in /proc/self/status".to_string())
}

pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Whether a bpf filesystem is mounted exactly at `dir` (/proc/self/mountinfo).
fn bpffs_mounted(dir: &Path) -> Result<bool, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    Ok(mountinfo_has_bpffs(&info, dir))
}

pub(crate) fn mountinfo_has_bpffs(info: &str, dir: &Path) -> bool {
    info.lines().any(|l| {
        // "<id> <parent> <maj:min> <root> <mount point> <opts> ... - <fstype> <source> <opts>"
        let mut halves = l.splitn(2, " - ");
        let (Some(pre), Some(post)) = (halves.next(), halves.next()) else {
            return false;
        };
        pre.split(' ').nth(4).is_some_and(|m| Path::new(m) == dir)
            && post.split(' ').next() == Some("bpf")
    })
}

/// Finds `bpftool` on `PATH` or in the sbin directories.
pub(crate) fn find_bpftool() -> Option<PathBuf> {
    find_program("bpftool")
}

pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        assert_eq!(
            parse_cap_eff("Name:\tx\nCapEff:\t000001fffeffffff\n"),
            Some(0x1fffeffffff)
        );
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
    }

    #[test]
    fn finds_bpffs_in_mountinfo() {
        let info = "22 1 0:21 / /sys rw - sysfs sysfs rw\n42 23 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw\n";
        assert!(mountinfo_has_bpffs(info, Path::new("/sys/fs/bpf")));
        assert!(!mountinfo_has_bpffs(info, Path::new("/sys")));
        assert!(!mountinfo_has_bpffs(
            "22 1 0:21 / /sys/fs/bpf rw - tmpfs tmpfs rw\n",
            Path::new("/sys/fs/bpf")
        ));
    }

    #[test]
    fn skips_or_panics_consistently() {
        // Whatever this machine is, the answer must not depend on the test name.
        let a = std::panic::catch_unwind(|| require_kernel("a").is_some());
        let b = std::panic::catch_unwind(|| require_kernel("b").is_some());
        assert_eq!(a.is_ok(), b.is_ok());
    }
}
