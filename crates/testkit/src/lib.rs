//! Shared helpers for ebpf-sdk kernel tests.
//!
//! Kernel tests run as root on a machine with BPF and bpffs; everywhere else
//! they must show as ignored, not passed, and in CI they must all run. This
//! crate gives every test crate the same answers:
//!
//! - [`harness!`] is the `main` of a `harness = false` test file: it lists
//!   each test with what it [needs](harness::Need) (the kernel environment,
//!   programs such as `ip` and `ping`, files a package installs). A test
//!   whose needs are missing is counted as ignored, with
//!   `ignored <test>: <reason>` on stderr; with `EBPF_SDK_REQUIRE_KERNEL=1`
//!   (CI) it runs and fails with the reason instead. The options of
//!   libtest's harness work as before (see [`harness`](mod@harness)).
//! - [`require_kernel`] is the check behind [`Need::Kernel`](harness::Need::Kernel):
//!   capabilities (CapEff: `CAP_BPF` or `CAP_SYS_ADMIN`, plus
//!   `CAP_NET_ADMIN`), bpffs at `/sys/fs/bpf` (mounting it when possible)
//!   and `bpftool`. A test body calls it for the [`KernelEnv`]; under the
//!   harness it only runs when the answer is yes.
//! - [`unique_name`] makes names that fit 15-byte map and interface names.
//! - [`BpffsDir`] is a unique directory on bpffs, removed with every pin in it on drop.
//! - [`TestLock`] is a cross-process `flock` lock (tests run as separate
//!   processes under cargo-nextest, so an in-process mutex serializes nothing).
//! - [`FirewallGuard`] loads the bundled firewall object under the firewall
//!   lock and removes every pin it created on drop.
//! - [`bpftool`] runs `bpftool -j` and parses its output, so tests check
//!   bytes with a reader independent of ebpf-sdk.
//! - [`Netns`] is a network namespace joined to the host by a veth pair,
//!   with free addresses on both ends, deleted on drop; it attaches XDP
//!   programs to the host end ([`XdpAttachment`], detached on drop).
//!   [`require_programs`] is the check behind [`Need::Programs`](harness::Need::Programs).
//! - [`PinnedThread`] keeps the calling thread on one CPU until dropped, for
//!   tests whose BPF program must write every event into the same CPU's ring.
//! - [`corpus`] finds the real-world eBPF objects: those Debian packages
//!   ship (files, and skeletons embedded in programs) and our own fixtures.
//!
//! A test file `tests/maps.rs`, declared in `Cargo.toml` as
//! `[[test]] name = "maps"` with `harness = false`:
//!
//! ```no_run
//! use ebpf_sdk_testkit::harness::Need;
//! use ebpf_sdk_testkit::{bpftool, require_kernel, BpffsDir};
//!
//! ebpf_sdk_testkit::harness! {
//!     reads_back: [Need::Kernel],
//! }
//!
//! fn reads_back() {
//!     let _env = require_kernel("reads_back").expect("the harness checked");
//!     let dir = BpffsDir::new("rb").unwrap();
//!     let pin = dir.join("m");
//!     bpftool::map_create(&pin, "hash", 4, 4, 8, "rb", 0).unwrap();
//!     bpftool::map_update(&pin, &[1, 0, 0, 0], &[2, 0, 0, 0], "any").unwrap();
//!     let entry = bpftool::map_lookup(&pin, &[1, 0, 0, 0]).unwrap().unwrap();
//!     assert_eq!(entry.value.unwrap(), [2, 0, 0, 0]);
//! } // `dir` and the pin in it are removed here.
//! ```
//!
//! Without root, `cargo test --test maps` prints
//! `ignored reads_back: needs CAP_BPF or CAP_SYS_ADMIN (CapEff 0x0); run as root`
//! and ends with `test result: ok. 0 passed; 0 failed; 1 ignored; ...`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod bpftool;
pub mod corpus;
mod cpu;
mod env;
mod firewall;
mod fs;
pub mod harness;
pub mod netns;

pub use cpu::PinnedThread;
pub use env::{kernel_required, require_kernel, KernelEnv, REQUIRE_KERNEL_ENV};
pub use firewall::{firewall_object, FirewallGuard, FIREWALL_LOCK};
pub use fs::{unique_name, BpffsDir, TestLock, BPFFS_ROOT};
pub use netns::{require_programs, Netns, XdpAttachment};

use std::path::PathBuf;

/// Errors of the test helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// A command could not be started.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The error.
        source: std::io::Error,
    },
    /// A command exited unsuccessfully.
    #[error("`{cmd}` failed ({status}): {stderr}{stdout}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// Its standard error.
        stderr: String,
        /// Its standard output (bpftool -j prints errors there).
        stdout: String,
    },
    /// `bpftool -j` printed something that is not the expected JSON.
    #[error("`{cmd}` printed unexpected JSON ({what}): {output}")]
    Json {
        /// The command line.
        cmd: String,
        /// What was expected.
        what: &'static str,
        /// The output.
        output: String,
    },
    /// A file or directory operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A needed tool or fixture is missing.
    #[error("missing {what}: {hint}")]
    Missing {
        /// What is missing.
        what: String,
        /// How to get it.
        hint: &'static str,
    },
}

impl TestkitError {
    /// A command that ran and failed: its line, status and both outputs.
    pub(crate) fn failed(cmd: String, out: &std::process::Output) -> TestkitError {
        TestkitError::Command {
            cmd,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        }
    }
}

/// Runs `program args` (shown as `name args` in errors) and returns its
/// standard output; a failure is an error carrying both outputs.
pub(crate) fn run_checked(
    program: &std::path::Path,
    name: &str,
    args: &[&str],
) -> Result<String, TestkitError> {
    let cmd = || format!("{name} {}", args.join(" "));
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .map_err(|source| TestkitError::Spawn { cmd: cmd(), source })?;
    if !out.status.success() {
        return Err(TestkitError::failed(cmd(), &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
