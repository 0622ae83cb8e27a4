//! What the `apply --watch` and `export` kernel tests share: a one-map
//! schema, long-running `ebpf-sdk` processes with their stderr read line by
//! line, HTTP GET, and map contents read with bpftool.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ebpf_sdk_testkit::bpftool;

/// A schema document with one hash map `name`: key `__u32`, value `__u64`.
pub fn schema_file(dir: &Path, name: &str) -> PathBuf {
    let u32_t = r#"{"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": false}"#;
    let u64_t = r#"{"name": "unsigned long long", "typedefs": ["__u64"], "size": 8, "kind": "int", "signed": false}"#;
    let text = format!(
        r#"{{"schema_version": 2, "source": {{"kind": "elf", "path": "test.o"}}, "maps": [
        {{"name": "{name}", "map_type": "hash", "map_type_id": 1, "key_size": 4, "value_size": 8,
          "max_entries": 1024, "flags": [], "map_flags": 0, "pinning": "by_name", "section": ".maps",
          "origin": "btf", "endian": "little", "key": {u32_t}, "value": {u64_t}}}]}}"#
    );
    let path = dir.join(format!("{name}.schema.json"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Creates the hash map of [`schema_file`] at `pin` with bpftool (no BTF:
/// ebpf-sdk checks its type and sizes against the schema).
pub fn create_map(pin: &Path, entries: u32) {
    bpftool::map_create(pin, "hash", 4, 8, entries, "ops_test", 0).unwrap();
}

/// The map's kernel id, from bpftool.
pub fn map_id(pin: &Path) -> u64 {
    bpftool::map_show(pin).unwrap()["id"].as_u64().unwrap()
}

/// The map's `u32 -> u64` entries, read with bpftool (not ebpf-sdk).
pub fn contents(pin: &Path) -> BTreeMap<u32, u64> {
    bpftool::map_dump(pin)
        .unwrap()
        .into_iter()
        .map(|e| {
            let k = u32::from_le_bytes(e.key[..4].try_into().unwrap());
            let v = e.value.expect("a value");
            (k, u64::from_le_bytes(v[..8].try_into().unwrap()))
        })
        .collect()
}

/// Writes `text` to `path` in place (truncate and write, as `>` does).
pub fn write_in_place(path: &Path, text: &str) {
    let mut f = std::fs::File::create(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// Writes `text` as an editor that saves by rename does: a new file
/// beside it, renamed over it.
pub fn write_by_rename(path: &Path, text: &str) {
    let tmp = path.with_extension("swp-new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A running `ebpf-sdk` whose stderr lines are collected as they come.
pub struct Running {
    pub child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `ebpf-sdk ARGS` with stderr piped.
    pub fn start(args: &[&std::ffi::OsStr]) -> Running {
        let child = Command::new(assert_cmd::cargo::cargo_bin("ebpf-sdk"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Running::from_child(child)
    }

    /// Collects the stderr lines of a child started with stderr piped.
    pub fn from_child(mut child: Child) -> Running {
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next stderr line that `pick` accepts, within `within`; panics
    /// with everything seen so far when none comes.
    pub fn wait_line<T>(&mut self, within: Duration, mut pick: impl FnMut(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    eprintln!("  | {line}");
                    self.seen.push(line.clone());
                    if let Some(t) = pick(&line) {
                        return t;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => panic!(
                    "no expected line within {within:?}; stderr so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The next JSON log line (a reconcile of `apply --watch --log-format json`).
    pub fn next_reconcile(&mut self, within: Duration) -> serde_json::Value {
        self.wait_line(within, |l| serde_json::from_str(l).ok())
    }

    /// Sends `signal` (`TERM`, `INT`) with `kill` and waits up to `within`
    /// for the process to exit.
    pub fn signal(&mut self, signal: &str, within: Duration) -> ExitStatus {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Whatever it printed last.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    eprintln!("  | {line}");
                    self.seen.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything read from stderr so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP/1.0 GET: (status, headers, body).
pub fn http_get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    http(addr, "GET", path, accept)
}

/// One HTTP/1.0 request.
pub fn http(addr: &str, method: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\n{accept}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A port on 127.0.0.1 nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
