//! A test harness that counts a kernel test it cannot run as ignored, not passed.
//!
//! Under the built-in harness a kernel test without root can only return
//! early, and libtest counts it as passed. A test file with kernel tests is
//! instead a `harness = false` target whose `main` is [`harness!`](crate::harness!):
//! it lists every test of the file with what it [`Need`]s. Before running
//! anything the harness checks each need once; a test whose needs are
//! missing is marked ignored, with one line `ignored <test>: <reason>` on
//! stderr, and counted as ignored in the `test result:` line. With
//! `EBPF_SDK_REQUIRE_KERNEL=1` (CI) it is not ignored: it runs and fails
//! with the reason. A test asked for with `--ignored` or `--include-ignored`
//! whose needs are missing fails the same way, so it is never counted as
//! passed without having run.
//!
//! Everything else is [libtest-mimic](https://docs.rs/libtest-mimic): the
//! output and the options of the built-in harness (a name filter, `--exact`,
//! `--skip`, `--list`, `--ignored`, `--include-ignored`, `--test-threads`
//! and `RUST_TEST_THREADS`, `-q`, `--format`). Each test runs on a thread
//! named after it, so a panic names the test as it does under libtest. One
//! difference: output is not captured (`--nocapture` is accepted and is what
//! always happens), so what a test prints appears as it runs.
//!
//! ```toml
//! # Cargo.toml
//! [[test]]
//! name = "kernel"
//! harness = false
//! ```
//!
//! ```no_run
//! // tests/kernel.rs: the `#[test]` attributes go, the list replaces them.
//! use ebpf_sdk_testkit::harness::Need;
//! use ebpf_sdk_testkit::{bpftool, require_kernel, BpffsDir};
//!
//! ebpf_sdk_testkit::harness! {
//!     reads_back: [Need::Kernel],
//!     pings: [Need::Kernel, Need::Programs(&["ip", "ping"])],
//!     parses_offline: [],
//! }
//!
//! fn reads_back() {
//!     // Only runs where the harness found the kernel environment, so this is `Some`.
//!     let _env = require_kernel("reads_back").unwrap();
//!     let dir = BpffsDir::new("rb").unwrap();
//!     let pin = dir.join("m");
//!     bpftool::map_create(&pin, "hash", 4, 4, 8, "rb", 0).unwrap();
//! }
//! # fn pings() {}
//! # fn parses_offline() {}
//! ```

use std::any::Any;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use libtest_mimic::{Arguments, Conclusion, Failed, Trial};

use crate::env::{kernel_env, kernel_required, REQUIRE_KERNEL_ENV};
use crate::netns::missing_programs;

/// Something a test needs from the machine it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Need {
    /// The kernel test environment [`require_kernel`](crate::require_kernel)
    /// checks: `CAP_BPF` (or `CAP_SYS_ADMIN`) and `CAP_NET_ADMIN`, bpffs at
    /// `/sys/fs/bpf` and `bpftool`.
    Kernel,
    /// Programs on `PATH` or in the sbin directories, as
    /// [`require_programs`](crate::require_programs) checks them.
    Programs(&'static [&'static str]),
    /// A file or directory a package installs, such as the BPF objects of
    /// Debian's xdp-tools.
    Path {
        /// Where it must be.
        path: &'static str,
        /// How to get it, e.g. `apt-get install xdp-tools`.
        hint: &'static str,
    },
}

impl Need {
    /// `None` when this machine has it, else why not.
    pub fn missing(&self) -> Option<String> {
        match *self {
            Need::Kernel => kernel_env().err().map(str::to_string),
            Need::Programs(programs) => missing_programs(programs),
            Need::Path { path, hint } => {
                (!Path::new(path).exists()).then(|| format!("{path} is missing ({hint})"))
            }
        }
    }
}

/// One test of a harness: its name, its body and what it needs.
#[derive(Debug, Clone)]
pub struct Test {
    name: &'static str,
    body: fn(),
    needs: Vec<Need>,
    ignore: Option<&'static str>,
}

impl Test {
    /// A test that needs nothing: an ordinary test.
    pub fn new(name: &'static str, body: fn()) -> Test {
        Test {
            name,
            body,
            needs: Vec::new(),
            ignore: None,
        }
    }

    /// Adds what the test needs.
    #[must_use]
    pub fn needs(mut self, needs: &[Need]) -> Test {
        self.needs.extend_from_slice(needs);
        self
    }

    /// Marks the test ignored for `reason`, like `#[ignore = "reason"]`:
    /// it runs only with `--ignored` or `--include-ignored`, also in CI.
    #[must_use]
    pub fn ignore(mut self, reason: &'static str) -> Test {
        self.ignore = Some(reason);
        self
    }

    /// Why it cannot run here: every missing need, or `None`.
    fn missing(&self) -> Option<String> {
        let reasons: Vec<String> = self.needs.iter().filter_map(Need::missing).collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

/// Declares the `main` of a `harness = false` test target: one line per
/// test function of the file, `name: [needs]`, optionally followed by
/// `ignore "reason"`. See the [`harness`](mod@crate::harness) module.
///
/// ```no_run
/// use ebpf_sdk_testkit::harness::Need;
///
/// ebpf_sdk_testkit::harness! {
///     offline: [],
///     loads_a_map: [Need::Kernel],
///     known_bug: [Need::Kernel] ignore "BUG: the refusal names the wrong map",
/// }
/// # fn offline() {}
/// # fn loads_a_map() {}
/// # fn known_bug() {}
/// ```
#[macro_export]
macro_rules! harness {
    ($( $name:ident : [ $($need:expr),* $(,)? ] $(ignore $why:literal)? ),* $(,)?) => {
        fn main() -> ::std::process::ExitCode {
            $crate::harness::run(::std::vec![
                $(
                    $crate::harness::Test::new(::std::stringify!($name), $name)
                        .needs(&[$($need),*])
                        $(.ignore($why))?
                ),*
            ])
        }
    };
}

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Whether this process is a harness's test binary: then
/// [`require_kernel`](crate::require_kernel) and
/// [`require_programs`](crate::require_programs) panic instead of skipping,
/// since a test that reaches them without its need declared would
/// otherwise pass without having run.
pub(crate) fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Runs `tests` with the command line's libtest options (see the module
/// docs); the exit code is 0 unless a test failed.
pub fn run(tests: Vec<Test>) -> ExitCode {
    ACTIVE.store(true, Ordering::Relaxed);
    let mut args = Arguments::from_args();
    if args.test_threads.is_none() {
        args.test_threads = std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.trim().parse().ok())
            .filter(|&n| n > 0);
    }
    run_with(&args, tests, kernel_required()).exit_code()
}

/// [`run`] with the arguments and the `EBPF_SDK_REQUIRE_KERNEL` setting given.
fn run_with(args: &Arguments, tests: Vec<Test>, required: bool) -> Conclusion {
    let trials: Vec<Trial> = tests
        .into_iter()
        .map(|test| {
            let missing = test.missing();
            let reason = ignore_reason(&test, missing.as_deref(), required);
            let trial = Trial::test(test.name, move || {
                if let Some(m) = missing {
                    return Err(cannot_run(&m, required));
                }
                run_on_named_thread(test.name, test.body)
            })
            .with_ignored_flag(reason.is_some());
            if let Some(reason) = reason {
                if !args.list && !args.is_filtered_out(&trial) && args.is_ignored(&trial) {
                    eprintln!("ignored {}: {reason}", trial.name());
                }
            }
            trial
        })
        .collect();
    libtest_mimic::run(args, trials)
}

/// Why a test is marked ignored: its own `ignore` reason, else its missing
/// needs unless those must fail instead (`EBPF_SDK_REQUIRE_KERNEL=1`).
fn ignore_reason(test: &Test, missing: Option<&str>, required: bool) -> Option<String> {
    match (test.ignore, missing) {
        (Some(why), _) => Some(why.to_string()),
        (None, Some(m)) if !required => Some(m.to_string()),
        _ => None,
    }
}

fn cannot_run(missing: &str, required: bool) -> Failed {
    if required {
        format!("{REQUIRE_KERNEL_ENV}=1 but this test cannot run here: {missing}").into()
    } else {
        format!("asked to run, but this test cannot run here: {missing}").into()
    }
}

/// Runs `body` on a thread named `name`, so a panic message names the test
/// (as libtest's threads do), and turns a panic into the test's failure.
fn run_on_named_thread(name: &str, body: fn()) -> Result<(), Failed> {
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .map_err(|e| Failed::from(format!("cannot start the test's thread: {e}")))?;
    thread.join().map_err(|payload| panic_message(&*payload))
}

fn panic_message(payload: &(dyn Any + Send)) -> Failed {
    let msg = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied());
    match msg {
        Some(msg) => format!("test panicked: {msg}").into(),
        None => "test panicked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABSENT: Need = Need::Programs(&["ebpf-sdk-no-such-tool"]);
    const PRESENT: Need = Need::Programs(&["sh"]);

    fn ok() {}
    fn fails() {
        panic!("boom");
    }

    /// Arguments as the command line would give them, output to a file.
    fn args(extra: &[&str], log: &Path) -> Arguments {
        let mut v = vec!["harness".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["--logfile".to_string(), log.display().to_string()]);
        Arguments::from_iter(v)
    }

    fn counts(c: &Conclusion) -> (u64, u64, u64, u64) {
        (
            c.num_passed,
            c.num_failed,
            c.num_ignored,
            c.num_filtered_out,
        )
    }

    fn suite() -> Vec<Test> {
        vec![
            Test::new("plain", ok),
            Test::new("has_tool", ok).needs(&[PRESENT]),
            Test::new("lacks_tool", ok).needs(&[PRESENT, ABSENT]),
            Test::new("known_bug", fails).ignore("BUG: fails"),
        ]
    }

    #[test]
    fn needs_say_what_is_missing() {
        assert_eq!(PRESENT.missing(), None);
        let m = ABSENT.missing().unwrap();
        assert!(m.starts_with("ebpf-sdk-no-such-tool not installed"), "{m}");
        let path = Need::Path {
            path: "/nonexistent/ebpf-sdk",
            hint: "apt-get install it",
        };
        assert_eq!(
            path.missing().unwrap(),
            "/nonexistent/ebpf-sdk is missing (apt-get install it)"
        );
        let both = Test::new("t", ok).needs(&[ABSENT, path]).missing().unwrap();
        assert!(
            both.contains("; /nonexistent/ebpf-sdk is missing"),
            "{both}"
        );
    }

    #[test]
    fn missing_needs_count_as_ignored_not_passed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let c = run_with(&args(&[], &log), suite(), false);
        assert_eq!(counts(&c), (2, 0, 2, 0));
        let out = std::fs::read_to_string(&log).unwrap();
        assert!(out.contains("test lacks_tool ... ignored"), "{out}");
        assert!(out.contains("2 passed; 0 failed; 2 ignored"), "{out}");
    }

    #[test]
    fn required_environment_fails_instead() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let c = run_with(&args(&[], &log), suite(), true);
        // The known bug stays ignored; the test without its tool fails.
        assert_eq!(counts(&c), (2, 1, 1, 0));
        let out = std::fs::read_to_string(&log).unwrap();
        assert!(
            out.contains("EBPF_SDK_REQUIRE_KERNEL=1 but this test cannot run here: ebpf-sdk-no-such-tool not installed"),
            "{out}"
        );
    }

    #[test]
    fn asking_for_ignored_tests_runs_or_fails_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let c = run_with(&args(&["--include-ignored"], &log), suite(), false);
        assert_eq!(counts(&c), (2, 2, 0, 0));
        let out = std::fs::read_to_string(&log).unwrap();
        assert!(
            out.contains("asked to run, but this test cannot run here"),
            "{out}"
        );
        assert!(out.contains("test panicked: boom"), "{out}");
        let c = run_with(&args(&["--ignored"], &log), suite(), false);
        assert_eq!(counts(&c), (0, 2, 0, 2));
    }

    #[test]
    fn filters_and_exact_select_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let c = run_with(&args(&["tool"], &log), suite(), false);
        assert_eq!(counts(&c), (1, 0, 1, 2));
        let c = run_with(&args(&["--exact", "plain"], &log), suite(), false);
        assert_eq!(counts(&c), (1, 0, 0, 3));
        let c = run_with(
            &args(&["--skip", "tool", "--test-threads", "1"], &log),
            suite(),
            false,
        );
        assert_eq!(counts(&c), (1, 0, 1, 2));
        let listed = run_with(&args(&["--list"], &log), suite(), false);
        assert_eq!(counts(&listed), (0, 0, 0, 0));
        let out = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            out.lines().filter(|l| l.ends_with(": test")).count(),
            4,
            "{out}"
        );
    }

    #[test]
    fn panics_are_failures_on_a_thread_named_after_the_test() {
        fn named() {
            assert_eq!(std::thread::current().name(), Some("named"));
        }
        assert!(run_on_named_thread("named", named).is_ok());
        let e = run_on_named_thread("fails", fails).unwrap_err();
        assert_eq!(e.message(), Some("test panicked: boom"));
    }
}
