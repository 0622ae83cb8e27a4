//! The JSON Schema of `ebpf-sdk json-schema` in a real editor's language
//! server: `yaml-language-server` (what VS Code's YAML extension, Neovim and
//! Helix run), from the npm registry at the version `tests/lsp/package-lock.json`
//! pins, installed with `npm ci` under the target directory (`bash
//! .ci/setup` does it ahead of time), driven over LSP on its stdin and
//! stdout as an editor drives it.
//!
//! A rule file made by `template --modeline` and then edited is opened; the
//! server must report a misspelt field and an out-of-range port on their
//! lines, nothing for valid files, and show a field's C type on hover.
//! `ebpf-sdk encode` reads the same files: it refuses the bad one and
//! takes the good ones. Without `node` and `npm` the test is counted as
//! ignored, with the reason (and fails under `EBPF_SDK_REQUIRE_KERNEL=1`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::TestLock;
use serde_json::{json, Value as J};

ebpf_sdk_testkit::harness! {
    the_language_server_reports_bad_fields_on_their_lines: [Need::Programs(&["node", "npm"])],
}

const TABLE: &str = "ingress_node_firewall_table_map";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The server's entry point, installed (once, under a lock) from the
/// committed package.json and lock file into the target directory.
fn server() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("yaml-language-server");
    let lsp = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp");
    std::fs::create_dir_all(&dir).unwrap();
    let _lock = TestLock::acquire_path(&dir.join(".lock")).unwrap();
    let entry = dir.join("node_modules/yaml-language-server/bin/yaml-language-server");
    let lock = std::fs::read(lsp.join("package-lock.json")).unwrap();
    let current = std::fs::read(dir.join("package-lock.json")).ok();
    if !entry.is_file() || current.as_deref() != Some(&lock[..]) {
        for f in ["package.json", "package-lock.json"] {
            std::fs::copy(lsp.join(f), dir.join(f)).unwrap();
        }
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ci in {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    entry
}

/// An LSP client of one server process: JSON-RPC messages with
/// `Content-Length` headers on the server's stdin and stdout.
struct Lsp {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<J>,
    next_id: i64,
}

impl Lsp {
    fn start(entry: &Path, root: &Path) -> Lsp {
        let mut child = Command::new("node")
            .arg(entry)
            .arg("--stdio")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || loop {
            let mut len = None;
            loop {
                let mut line = String::new();
                if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some(v) = line.strip_prefix("Content-Length:") {
                    len = v.trim().parse::<usize>().ok();
                }
            }
            let mut body = vec![0; len.expect("a Content-Length header")];
            if stdout.read_exact(&mut body).is_err() {
                return;
            }
            if tx.send(serde_json::from_slice(&body).unwrap()).is_err() {
                return;
            }
        });
        let mut lsp = Lsp {
            child,
            stdin,
            rx,
            next_id: 1,
        };
        let root_uri = format!("file://{}", root.display());
        let init = lsp.request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "rootUri": root_uri,
                "capabilities": {
                    "workspace": {"configuration": true},
                    "textDocument": {
                        "publishDiagnostics": {},
                        "hover": {"contentFormat": ["markdown", "plaintext"]},
                    },
                },
            }),
        );
        eprintln!("server: {}", init["serverInfo"]);
        lsp.notify("initialized", json!({}));
        lsp.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"yaml": settings()}}),
        );
        lsp
    }

    fn send(&mut self, msg: J) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: J) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Sends a request and waits for its response's result.
    fn request(&mut self, method: &str, params: J) -> J {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let m = self
            .wait(|m| m["id"] == id && m.get("method").is_none(), 60)
            .unwrap_or_else(|| panic!("no response to {method}"));
        m["result"].clone()
    }

    /// The next message `want` takes, answering the server's own requests
    /// on the way; `None` after `secs` seconds.
    fn wait(&mut self, want: impl Fn(&J) -> bool, secs: u64) -> Option<J> {
        let end = Instant::now() + Duration::from_secs(secs);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let m = match self.rx.recv_timeout(left) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!("the server exited"),
            };
            if let (Some(id), Some(method)) = (m.get("id"), m["method"].as_str()) {
                let result = match method {
                    "workspace/configuration" => J::Array(
                        m["params"]["items"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|item| match item["section"].as_str() {
                                Some("yaml") => settings(),
                                _ => J::Null,
                            })
                            .collect(),
                    ),
                    _ => J::Null,
                };
                let id = id.clone();
                self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}));
                continue;
            }
            if want(&m) {
                return Some(m);
            }
        }
    }

    /// Opens `path` and returns the diagnostics the server publishes for it.
    fn diagnostics(&mut self, path: &Path) -> Vec<J> {
        let uri = format!("file://{}", path.display());
        let text = std::fs::read_to_string(path).unwrap();
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}}),
        );
        let m = self
            .wait(
                |m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri,
                60,
            )
            .unwrap_or_else(|| panic!("no diagnostics for {uri}"));
        m["params"]["diagnostics"].as_array().unwrap().clone()
    }
}

impl Drop for Lsp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The YAML extension's settings: validate, hover, no schema store (no
/// network).
fn settings() -> J {
    json!({"validate": true, "hover": true, "completion": true, "schemaStore": {"enable": false}})
}

fn ebpf_sdk(args: &[&str], dir: &Path) -> std::process::Output {
    Command::cargo_bin("ebpf-sdk")
        .unwrap()
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn stdout(args: &[&str], dir: &Path) -> String {
    let out = ebpf_sdk(args, dir);
    assert!(
        out.status.success(),
        "ebpf-sdk {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The index of the first line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?}"))
}

fn the_language_server_reports_bad_fields_on_their_lines() {
    let entry = server();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fw = repo()
        .join("firewall-ebpf/firewall.bpf.o")
        .display()
        .to_string();
    let elf = ["--elf", fw.as_str(), "--map", TABLE];
    let out = ebpf_sdk(
        &[&["json-schema"], &elf[..], &["-o", "table.schema.json"]].concat(),
        d,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let template = stdout(
        &[
            &["template"],
            &elf[..],
            &["--modeline", "table.schema.json"],
        ]
        .concat(),
        d,
    );
    assert!(template.starts_with("# yaml-language-server: $schema=table.schema.json\n"));
    std::fs::write(d.join("template.yaml"), &template).unwrap();

    // Edited: a field misspelt, a port out of range.
    let bad = template
        .replace("      protocol: 0 ", "      protocl: 6  ")
        .replace("dstPortStart: 0 ", "dstPortStart: 70000 ");
    let (typo, port) = (line_of(&bad, "protocl:"), line_of(&bad, "dstPortStart:"));
    std::fs::write(d.join("bad.yaml"), &bad).unwrap();
    // Filled in with the forms ebpf-sdk reads.
    let filled = "# yaml-language-server: $schema=table.schema.json\n\
        - key: {prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}\n\
        \x20 value:\n\
        \x20   rules:\n\
        \x20   - {ruleId: 0x1, protocol: 6, dstPortStart: 80, dstPortEnd: 443, action: 1}\n\
        \x20   - {ruleId: '2', protocol: 1, icmpType: 8, action: 2}\n\
        - key: {prefixLen: 160, ip_data: '2001:db8::1'}\n\
        \x20 value: {rules: [{ruleId: 3, action: 1}]}\n";
    std::fs::write(d.join("filled.yaml"), filled).unwrap();

    // ebpf-sdk's own verdict on the same files.
    for good in ["template.yaml", "filled.yaml"] {
        stdout(&[&["encode"], &elf[..], &["-f", good]].concat(), d);
    }
    let refused = ebpf_sdk(&[&["encode"], &elf[..], &["-f", "bad.yaml"]].concat(), d);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("protocl: unknown field"));

    let mut lsp = Lsp::start(&entry, d);
    let diags = lsp.diagnostics(&d.join("bad.yaml"));
    for x in &diags {
        eprintln!(
            "bad.yaml:{}:{}: {}",
            x["range"]["start"]["line"].as_u64().unwrap() + 1,
            x["range"]["start"]["character"].as_u64().unwrap() + 1,
            x["message"]
        );
    }
    let on = |line: usize, text: &str| {
        diags.iter().any(|x| {
            x["range"]["start"]["line"] == line && x["message"].as_str().unwrap().contains(text)
        })
    };
    assert!(
        on(typo, "protocl"),
        "no diagnostic for the typo on line {typo}: {diags:#?}"
    );
    assert!(
        on(port, "65535"),
        "no diagnostic for the port on line {port}: {diags:#?}"
    );
    assert_eq!(diags.len(), 2, "{diags:#?}");

    for good in ["template.yaml", "filled.yaml"] {
        let diags = lsp.diagnostics(&d.join(good));
        assert!(diags.is_empty(), "{good}: {diags:#?}");
        eprintln!("{good}: no diagnostics");
    }

    // Hover shows the C type, size and offset from the schema.
    let uri = format!("file://{}", d.join("template.yaml").display());
    let line = line_of(&template, "dstPortStart:");
    let hover = lsp.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": 8}}),
    );
    let shown = hover["contents"]["value"]
        .as_str()
        .unwrap()
        .replace('\\', "");
    eprintln!("hover on dstPortStart: {shown:?}");
    assert!(
        shown.contains("__u16, 2 B at offset 5: ") && shown.contains("0..=65535"),
        "{hover:#}"
    );
}
