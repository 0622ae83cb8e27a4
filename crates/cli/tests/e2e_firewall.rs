//! End to end on a real kernel: the bundled XDP firewall attached to a veth
//! pair into a network namespace, programmed only with the `ebpf-sdk`
//! binary, with real traffic (ICMP, TCP, UDP over IPv4, and `ICMPv6`) sent from
//! the namespace to the host end.
//!
//! Needs root, `ip`, `ping` and `socat`: without them the harness counts it
//! as ignored; it fails instead when `EBPF_SDK_REQUIRE_KERNEL=1` (CI). `examples/firewall-demo.sh` runs
//! the same flow by hand; `docs/e2e-demo.md` shows its output.
//!
//! Everything is torn down by guards, also when a step fails: the XDP
//! attachment, then the namespace and veth pair, then the pins.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{
    bpftool, firewall_object, require_kernel, require_programs, FirewallGuard, Netns,
};
use serde_json::Value;

ebpf_sdk_testkit::harness! {
    firewall_end_to_end: [
        Need::Kernel,
        Need::Programs(&["ip", "ping", "socat", "timeout", "kill"]),
    ],
}

const TABLE: &str = "ingress_node_firewall_table_map";
const STATS: &str = "ingress_node_firewall_statistics_map";
const EVENTS: &str = "ingress_node_firewall_events_map";
const PROG: &str = "xdp_ingress_node_firewall_process";

/// Echo requests per ping step (`ping -c`).
const PINGS: u64 = 3;
/// An echo request of `ping` (56 data bytes) as the XDP program sees it:
/// Ethernet 14 + IPv4 20 + ICMP 8 + 56.
const PING_FRAME_LEN: u16 = 98;
/// How long a probe waits before calling a packet dropped.
const DROP_WAIT: Duration = Duration::from_secs(1);

const ICMP: u8 = 1;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMPV6: u8 = 58;
const DENY: u8 = 1;
const ALLOW: u8 = 2;

/// Runs `ebpf-sdk` against the firewall's private pins.
struct Sdk {
    elf: PathBuf,
    pin_dir: PathBuf,
}

impl Sdk {
    /// `ebpf-sdk SUB --elf firewall.bpf.o --pin-dir DIR`.
    fn cmd(&self, sub: &str) -> Command {
        let mut c = Command::cargo_bin("ebpf-sdk").unwrap();
        c.arg(sub)
            .arg("--elf")
            .arg(&self.elf)
            .arg("--pin-dir")
            .arg(&self.pin_dir)
            .env("NO_COLOR", "1")
            .timeout(Duration::from_secs(20));
        c
    }

    /// Runs `ebpf-sdk SUB ARGS`, asserts success, returns (stdout, stderr).
    fn run(&self, sub: &str, args: &[&str]) -> (String, String) {
        run_sdk(
            self.cmd(sub).args(args),
            &format!("{sub} {}", args.join(" ")),
        )
    }

    /// Per rule id: the statistics `total` (summed over CPUs), checked
    /// against the per-CPU values it sums.
    fn stats(&self) -> BTreeMap<u64, Counts> {
        let out = self
            .cmd("dump")
            .args(["--map", STATS, "-o", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dump {STATS}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries: Value = serde_json::from_slice(&out.stdout).unwrap();
        let entries = entries.as_array().expect("dump -o json prints an array");
        assert_eq!(entries.len(), 100, "statistics map has 100 rule ids");
        let mut stats = BTreeMap::new();
        for e in entries {
            let id = e["key"].as_u64().expect("numeric key");
            let total = Counts::from_json(&e["total"]);
            let cpus = e["value"].as_array().expect("per-CPU value list");
            let summed = cpus
                .iter()
                .map(Counts::from_json)
                .fold(Counts::default(), |a, b| Counts {
                    allow: a.allow + b.allow,
                    deny: a.deny + b.deny,
                });
            assert_eq!(total, summed, "rule {id}: total is the sum over CPUs");
            stats.insert(id, total);
        }
        stats
    }
}

/// Runs a prepared `ebpf-sdk` command (shown as `ebpf-sdk SHOWN`), asserts
/// success, returns (stdout, stderr).
fn run_sdk(c: &mut Command, shown: &str) -> (String, String) {
    let out = c.output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "ebpf-sdk {shown} failed ({}):\n{stderr}{stdout}",
        out.status
    );
    eprintln!("$ ebpf-sdk {shown}\n{stderr}{}", short(&stdout));
    (stdout, stderr)
}

/// Packet counters of one rule id.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    allow: u64,
    deny: u64,
}

impl Counts {
    fn allow(n: u64) -> Counts {
        Counts { allow: n, deny: 0 }
    }

    fn deny(n: u64) -> Counts {
        Counts { allow: 0, deny: n }
    }

    fn from_json(v: &Value) -> Counts {
        let packets = |side: &str| {
            v[side]["packets"]
                .as_u64()
                .unwrap_or_else(|| panic!("{side}.packets in {v}"))
        };
        Counts {
            allow: packets("allow_stats"),
            deny: packets("deny_stats"),
        }
    }
}

/// What changed for `id` between two statistics snapshots.
fn delta(before: &BTreeMap<u64, Counts>, after: &BTreeMap<u64, Counts>, id: u64) -> Counts {
    let (b, a) = (before[&id], after[&id]);
    Counts {
        allow: a.allow - b.allow,
        deny: a.deny - b.deny,
    }
}

/// Asserts that no rule but `except` counted anything between two snapshots.
fn only_changed(before: &BTreeMap<u64, Counts>, after: &BTreeMap<u64, Counts>, except: &[u64]) {
    for (id, b) in before {
        if !except.contains(id) {
            assert_eq!(after[id], *b, "rule {id} must not count");
        }
    }
}

fn short(s: &str) -> String {
    const MAX: usize = 1200;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n... ({} bytes)\n", &s[..end], s.len())
}

/// Sends `PINGS` echo requests from the namespace (asserting that exactly
/// that many were sent); returns how many were answered.
fn ping(net: &Netns, to: IpAddr) -> u64 {
    // No `-w`: with a deadline ping keeps sending until `-c` replies arrive.
    let mut c = net.exec("timeout");
    c.args(["10", "ping"]);
    if to.is_ipv6() {
        c.arg("-6");
    }
    let out = c
        .args(["-q", "-n", "-i", "0.2", "-W", "1", "-c"])
        .arg(PINGS.to_string())
        .arg(to.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |what: &str| -> u64 {
        text.split([',', '\n'])
            .find_map(|part| part.trim().strip_suffix(what))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{what}` in ping output: {text}"))
    };
    assert_eq!(count(" packets transmitted"), PINGS, "{text}");
    let received = count(" received");
    eprintln!("ping {to} from {}: {received}/{PINGS} answered", net.name());
    received
}

/// A TCP listener on the host end; counts the connections that completed.
struct Listener {
    sock: TcpListener,
}

impl Listener {
    fn accepted(&self) -> usize {
        let mut n = 0;
        // Non-blocking: drains the handshakes the kernel already completed.
        while self.sock.accept().is_ok() {
            n += 1;
        }
        n
    }
}

/// Connects from the namespace to `to:port` with `socat` (1 s connect
/// timeout); whether the connection was made.
fn tcp_connects(net: &Netns, to: IpAddr, port: u16) -> bool {
    let target = match to {
        IpAddr::V4(a) => format!("TCP4:{a}:{port},connect-timeout=1"),
        IpAddr::V6(a) => format!("TCP6:[{a}]:{port},connect-timeout=1"),
    };
    let out = net
        .exec("timeout")
        .args(["5", "socat", "-u", "OPEN:/dev/null", &target])
        .output()
        .unwrap();
    let ok = out.status.success();
    eprintln!(
        "tcp {to}:{port} from {}: {}",
        net.name(),
        if ok { "connected" } else { "no connection" }
    );
    ok
}

/// Sends one datagram with a unique payload from the namespace to the host
/// socket `sock`; whether it arrived within [`DROP_WAIT`].
fn udp_arrives(net: &Netns, sock: &UdpSocket, payload: &str) -> bool {
    let to = sock.local_addr().unwrap();
    let target = match to {
        SocketAddr::V4(a) => format!("UDP4:{a}"),
        SocketAddr::V6(a) => format!("UDP6:{a}"),
    };
    let mut child = net
        .exec("timeout")
        .args(["5", "socat", "-u", "STDIN", &target])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(payload.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "socat sending to {target}");
    let deadline = Instant::now() + DROP_WAIT;
    let mut buf = [0u8; 256];
    let arrived = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break false;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, _)) if &buf[..n] == payload.as_bytes() => break true,
            Ok(_) => {} // Something else: keep waiting.
            Err(_) => break false,
        }
    };
    eprintln!(
        "udp {to} from {}: {}",
        net.name(),
        if arrived { "arrived" } else { "not arrived" }
    );
    arrived
}

/// Host-side sockets on free ports: TCP listeners on `tcp_lo - 1`, `tcp_lo`,
/// `tcp_hi`, `tcp_hi + 1` and UDP sockets on `udp` and `udp + 1`.
struct Ports {
    tcp_lo: u16,
    tcp_hi: u16,
    udp: u16,
    tcp: BTreeMap<u16, Listener>,
    udp_socks: BTreeMap<u16, UdpSocket>,
}

impl Ports {
    fn bind(addr: IpAddr) -> Ports {
        for base in (20000u16..40000).step_by(1000) {
            let (tcp_lo, tcp_hi, udp) = (base + 100, base + 200, base + 500);
            let tcp: Option<BTreeMap<u16, Listener>> = [tcp_lo - 1, tcp_lo, tcp_hi, tcp_hi + 1]
                .into_iter()
                .map(|p| {
                    let sock = TcpListener::bind((addr, p)).ok()?;
                    sock.set_nonblocking(true).ok()?;
                    Some((p, Listener { sock }))
                })
                .collect();
            let udp_socks: Option<BTreeMap<u16, UdpSocket>> = [udp, udp + 1]
                .into_iter()
                .map(|p| Some((p, UdpSocket::bind((addr, p)).ok()?)))
                .collect();
            if let (Some(tcp), Some(udp_socks)) = (tcp, udp_socks) {
                return Ports {
                    tcp_lo,
                    tcp_hi,
                    udp,
                    tcp,
                    udp_socks,
                };
            }
        }
        panic!("no free ports on {addr} between 20000 and 40000");
    }
}

/// `bpftool -j map event_pipe pinned EVENTS` in the background: an
/// independent reader of the firewall's perf events.
struct EventPipe {
    child: Child,
    reader: Option<JoinHandle<Vec<u8>>>,
}

impl EventPipe {
    fn start(bpftool: &Path, events: &Path) -> EventPipe {
        let mut child = std::process::Command::new(bpftool)
            .args(["-j", "map", "event_pipe", "pinned"])
            .arg(events)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let pipe = EventPipe {
            child,
            reader: Some(reader),
        };
        // Ready once bpftool holds its per-CPU perf event fds (it stores them
        // in the map right after opening them).
        let fds = PathBuf::from(format!("/proc/{}/fd", pipe.child.id()));
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let perf_fds = std::fs::read_dir(&fds).map_or(0, |rd| {
                rd.flatten()
                    .filter(|e| {
                        std::fs::read_link(e.path())
                            .is_ok_and(|l| l.to_string_lossy().contains("perf_event"))
                    })
                    .count()
            });
            if perf_fds > 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "bpftool event_pipe did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        pipe
    }

    /// Stops bpftool with SIGINT (it then closes its JSON array) and returns
    /// the `data` bytes of every sample.
    fn stop(mut self) -> Vec<Vec<u8>> {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -INT {pid}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "bpftool event_pipe did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = self.reader.take().unwrap().join().unwrap();
        let v: Value = serde_json::from_slice(&out)
            .unwrap_or_else(|e| panic!("event_pipe JSON ({e}): {}", String::from_utf8_lossy(&out)));
        v.as_array()
            .expect("event_pipe prints an array")
            .iter()
            .filter_map(|e| e.get("data"))
            .map(|d| {
                d.as_array()
                    .expect("data is a byte list")
                    .iter()
                    .map(|b| u8::try_from(b.as_u64().expect("a byte")).expect("a byte"))
                    .collect()
            })
            .collect()
    }
}

impl Drop for EventPipe {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A table-map key as YAML: `{prefixLen, ingress_ifindex, ip_data}`.
fn key_yaml(prefix_len: u32, ifindex: u32, ip: &str) -> String {
    format!("{{prefixLen: {prefix_len}, ingress_ifindex: {ifindex}, ip_data: \"{ip}\"}}")
}

/// One rule as YAML.
fn rule_yaml(id: u32, protocol: u8, ports: (u16, u16), icmp: (u8, u8), action: u8) -> String {
    format!(
        "{{ruleId: {id}, protocol: {protocol}, dstPortStart: {}, dstPortEnd: {}, \
         icmpType: {}, icmpCode: {}, action: {action}}}",
        ports.0, ports.1, icmp.0, icmp.1
    )
}

/// The 24 key bytes the firewall looks up: prefixLen and ifindex in host
/// order, the address in network order, zero-filled.
fn key_bytes(prefix_len: u32, ifindex: u32, ip: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(24);
    k.extend_from_slice(&prefix_len.to_le_bytes());
    k.extend_from_slice(&ifindex.to_le_bytes());
    k.extend_from_slice(ip);
    k.resize(24, 0);
    k
}

/// Asserts with bpftool (not ebpf-sdk) that the table holds `key` and that
/// its value starts with the 12-byte `first_rule`, the other 99 slots zero.
fn assert_table_bytes(table: &Path, key: &[u8], first_rule: [u8; 12]) {
    let entries = bpftool::map_dump(table).unwrap();
    let entry = entries
        .iter()
        .find(|e| e.key == key)
        .unwrap_or_else(|| panic!("bpftool: key {key:02x?} not in {TABLE}: {entries:?}"));
    let value = entry.value.as_deref().expect("LPM value bytes");
    assert_eq!(value.len(), 1200);
    assert_eq!(value[..12], first_rule, "first rule bytes");
    assert!(value[12..].iter().all(|&b| b == 0), "rules 1..99 are zero");
    eprintln!("bpftool {TABLE}: key {key:02x?} -> rule {first_rule:02x?} (+ 1188 zero bytes)");
}

/// The 12 bytes of a packed `struct ruleType_st`.
fn rule_bytes(id: u32, protocol: u8, ports: (u16, u16), icmp: (u8, u8), action: u8) -> [u8; 12] {
    let mut r = [0u8; 12];
    r[..4].copy_from_slice(&id.to_le_bytes());
    r[4] = protocol;
    r[5..7].copy_from_slice(&ports.0.to_le_bytes());
    r[7..9].copy_from_slice(&ports.1.to_le_bytes());
    r[9] = icmp.0;
    r[10] = icmp.1;
    r[11] = action;
    r
}

/// A step of the flow: its title and what it does.
type Step = (&'static str, fn(&E2e));

/// What the steps share: the namespace, the pins, the host sockets.
struct E2e {
    net: Netns,
    sdk: Sdk,
    bpftool: PathBuf,
    table: PathBuf,
    stats_pin: PathBuf,
    events_pin: PathBuf,
    ports: Ports,
    tmp: tempfile::TempDir,
    /// Ifindex of the host end: the `ingress_ifindex` of every key.
    idx: u32,
    host4: IpAddr,
    host6: IpAddr,
    /// The key for the namespace's IPv4 address (/32), as YAML.
    key4: String,
    /// The key for the namespace's IPv6 /64, as YAML.
    key6: String,
}

impl E2e {
    fn new(fw: &FirewallGuard, net: Netns, bpftool: PathBuf) -> E2e {
        let pin = |name| fw.map_path(name).expect("map pinned").to_path_buf();
        let idx = net.host_ifindex();
        let host4 = IpAddr::V4(net.host_v4());
        E2e {
            sdk: Sdk {
                elf: firewall_object(),
                pin_dir: fw.dir().to_path_buf(),
            },
            bpftool,
            table: pin(TABLE),
            stats_pin: pin(STATS),
            events_pin: pin(EVENTS),
            ports: Ports::bind(host4),
            tmp: tempfile::tempdir().unwrap(),
            idx,
            host4,
            host6: IpAddr::V6(net.host_v6()),
            key4: key_yaml(32 + 32, idx, &net.ns_v4().to_string()),
            key6: key_yaml(32 + 64, idx, &net.v6_prefix().to_string()),
            net,
        }
    }

    fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn empty_table_passes(&self) {
        let (sdk, net, ports) = (&self.sdk, &self.net, &self.ports);
        let (out, _) = sdk.run("dump", &["--map", TABLE]);
        assert_eq!(out.trim(), "[]", "the table starts empty");
        let before = sdk.stats();
        assert!(
            before.values().all(|c| *c == Counts::default()),
            "all statistics are zero: {before:?}"
        );
        assert_eq!(ping(net, self.host4), PINGS);
        assert_eq!(ping(net, self.host6), PINGS);
        assert!(tcp_connects(net, self.host4, ports.tcp_lo));
        assert_eq!(ports.tcp[&ports.tcp_lo].accepted(), 1);
        assert!(udp_arrives(net, &ports.udp_socks[&ports.udp], "empty"));
        assert_eq!(sdk.stats(), before, "nothing matched, nothing counted");
    }

    fn create_deny_in_editor(&self) {
        let (sdk, net) = (&self.sdk, &self.net);
        let seen = self.tmp.path().join("template-seen.yaml");
        let editor = self.write_file(
            "editor.sh",
            &format!(
                "#!/bin/sh\n\
                 # Test editor for `ebpf-sdk create`: keep the template it got, write the entry.\n\
                 set -e\n\
                 cp \"$1\" '{seen}'\n\
                 cat > \"$1\" <<'EOF'\n\
                 key: {key}\n\
                 value: {{rules: [{{ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 1}}]}}\n\
                 EOF\n",
                seen = seen.display(),
                key = self.key4,
            ),
        );
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (_, err) = run_sdk(
            sdk.cmd("create")
                .args(["--map", TABLE])
                .env_remove("VISUAL")
                .env("EDITOR", &editor),
            &format!("create --map {TABLE}  (EDITOR={})", editor.display()),
        );
        assert!(err.contains("1 written"), "{err}");
        let template = std::fs::read_to_string(&seen).expect("the editor ran");
        assert!(
            template.starts_with(&format!("# {TABLE}: lpm_trie"))
                && template.contains("prefixLen:"),
            "the editor got the template: {template}"
        );
        assert_table_bytes(
            &self.table,
            &key_bytes(64, self.idx, &net.ns_v4().octets()),
            rule_bytes(7, ICMP, (0, 0), (8, 0), DENY),
        );
        let before = sdk.stats();
        assert_eq!(ping(net, self.host4), 0, "DENY drops the echo requests");
        let after = sdk.stats();
        assert_eq!(delta(&before, &after, 7), Counts::deny(PINGS));
        only_changed(&before, &after, &[7]);
        // The same counter read by bpftool: deny_stats.packets at offset 16, per CPU.
        let by_bpftool: u64 = bpftool::map_lookup(&self.stats_pin, &7u32.to_le_bytes())
            .unwrap()
            .expect("statistics[7]")
            .per_cpu
            .iter()
            .map(|(_, v)| u64::from_le_bytes(v[16..24].try_into().unwrap()))
            .sum();
        assert_eq!(
            by_bpftool, after[&7].deny,
            "bpftool agrees on statistics[7]"
        );
        assert_eq!(
            ping(net, self.host6),
            PINGS,
            "the IPv4 rule leaves IPv6 alone"
        );
    }

    fn update_to_allow(&self) {
        let sdk = &self.sdk;
        let allow7 = format!("{{rules: [{}]}}", rule_yaml(7, ICMP, (0, 0), (8, 0), ALLOW));
        let args = [
            "--map", TABLE, "--exist", "--key", &self.key4, "--value", &allow7,
        ];
        sdk.run("update", &args);
        let before = sdk.stats();
        assert_eq!(ping(&self.net, self.host4), PINGS);
        let after = sdk.stats();
        assert_eq!(delta(&before, &after, 7), Counts::allow(PINGS));
        only_changed(&before, &after, &[7]);
    }

    fn apply_port_rules(&self) {
        let (sdk, net, ports) = (&self.sdk, &self.net, &self.ports);
        let rules = self.write_file(
            "rules.yaml",
            &format!(
                "# Rules for {ns} arriving on {host_if}; the first matching rule wins.\n\
                 key: {key}\n\
                 value:\n  rules:\n\
                 \x20   - {icmp}  # ICMP echo: allow\n\
                 \x20   - {tcp}  # TCP {lo}..={hi}: deny\n\
                 \x20   - {udp}  # UDP {u}: deny\n",
                ns = net.ns_v4(),
                host_if = net.host_if(),
                key = self.key4,
                icmp = rule_yaml(7, ICMP, (0, 0), (8, 0), ALLOW),
                tcp = rule_yaml(10, TCP, (ports.tcp_lo, ports.tcp_hi), (0, 0), DENY),
                udp = rule_yaml(11, UDP, (ports.udp, 0), (0, 0), DENY),
                lo = ports.tcp_lo,
                hi = ports.tcp_hi,
                u = ports.udp,
            ),
        );
        let rules = rules.to_str().unwrap();
        let (out, _) = sdk.run("apply", &["--map", TABLE, "-f", rules, "--dry-run"]);
        assert!(
            out.contains("0 added, 1 changed, 0 removed, 0 unchanged (dry run: nothing written)"),
            "{out}"
        );
        let (out, _) = sdk.run("dump", &["--map", TABLE, "-o", "json"]);
        assert!(
            !out.contains("\"ruleId\":10"),
            "the dry run wrote nothing: {out}"
        );
        let (out, _) = sdk.run("apply", &["--map", TABLE, "-f", rules]);
        assert!(out.contains("1 written, 0 deleted"), "{out}");

        let before = sdk.stats();
        for (port, passes) in [
            (ports.tcp_lo - 1, true),
            (ports.tcp_lo, false),
            (ports.tcp_hi, false),
            (ports.tcp_hi + 1, true),
        ] {
            assert_eq!(
                tcp_connects(net, self.host4, port),
                passes,
                "tcp port {port}"
            );
            let accepted = ports.tcp[&port].accepted();
            assert_eq!(accepted, usize::from(passes), "connections on {port}");
        }
        let (u_deny, u_pass) = (ports.udp, ports.udp + 1);
        assert!(!udp_arrives(net, &ports.udp_socks[&u_deny], "denied-port"));
        assert!(udp_arrives(net, &ports.udp_socks[&u_pass], "other-port"));
        assert_eq!(
            ping(net, self.host4),
            PINGS,
            "rule 7 still allows ICMP echo"
        );
        let after = sdk.stats();
        // A dropped SYN may be retransmitted once within the 1 s connect timeout.
        let tcp_denied = delta(&before, &after, 10);
        assert!(
            tcp_denied.allow == 0 && (2..=4).contains(&tcp_denied.deny),
            "two connection attempts into the range, 1-2 SYNs each: {tcp_denied:?}"
        );
        assert_eq!(delta(&before, &after, 11), Counts::deny(1));
        assert_eq!(delta(&before, &after, 7), Counts::allow(PINGS));
        only_changed(&before, &after, &[7, 10, 11]);
    }

    fn ipv6_prefix_denies_echo(&self) {
        let (sdk, net) = (&self.sdk, &self.net);
        let file = self.write_file(
            "v6.yaml",
            &format!(
                "key: {}\nvalue:\n  rules:\n    - {}  # ICMPv6 echo request: deny\n",
                self.key6,
                rule_yaml(20, ICMPV6, (0, 0), (128, 0), DENY)
            ),
        );
        let (_, err) = sdk.run("create", &["--map", TABLE, "-f", file.to_str().unwrap()]);
        assert!(err.contains("1 written"), "{err}");
        assert_table_bytes(
            &self.table,
            &key_bytes(96, self.idx, &net.v6_prefix().octets()),
            rule_bytes(20, ICMPV6, (0, 0), (128, 0), DENY),
        );
        let before = sdk.stats();
        assert_eq!(ping(net, self.host6), 0, "ICMPv6 echo requests dropped");
        assert_eq!(ping(net, self.host4), PINGS, "IPv4 still allowed");
        let after = sdk.stats();
        assert_eq!(delta(&before, &after, 20), Counts::deny(PINGS));
        assert_eq!(delta(&before, &after, 7), Counts::allow(PINGS));
        only_changed(&before, &after, &[7, 20]);
    }

    fn delete_restores_traffic(&self) {
        let (sdk, net, ports) = (&self.sdk, &self.net, &self.ports);
        for key in [&self.key4, &self.key6] {
            let (_, err) = sdk.run("delete", &["--map", TABLE, "--key", key]);
            assert!(err.contains("deleted"), "{err}");
        }
        let again = sdk
            .cmd("delete")
            .args(["--map", TABLE, "--key", &self.key4])
            .output()
            .unwrap();
        assert_eq!(
            again.status.code(),
            Some(1),
            "deleting again: not found, exit 1"
        );
        let (out, _) = sdk.run("dump", &["--map", TABLE]);
        assert_eq!(out.trim(), "[]");
        let before = sdk.stats();
        assert_eq!(ping(net, self.host4), PINGS);
        assert_eq!(ping(net, self.host6), PINGS);
        assert!(tcp_connects(net, self.host4, ports.tcp_lo));
        assert_eq!(ports.tcp[&ports.tcp_lo].accepted(), 1);
        assert!(udp_arrives(
            net,
            &ports.udp_socks[&ports.udp],
            "after-delete"
        ));
        assert_eq!(sdk.stats(), before, "no rule, no count");
    }

    /// The samples are read with `bpftool map event_pipe` (`ebpf-sdk` has no
    /// `events` command yet); each one is decoded with
    /// `ebpf-sdk decode --type event_hdr_st` and its bytes checked raw.
    fn deny_emits_events(&self) {
        let deny7 = format!("{{rules: [{}]}}", rule_yaml(7, ICMP, (0, 0), (8, 0), DENY));
        let args = ["--map", TABLE, "--key", &self.key4, "--value", &deny7];
        self.sdk.run("update", &args);
        let pipe = EventPipe::start(&self.bpftool, &self.events_pin);
        assert_eq!(ping(&self.net, self.host4), 0);
        let events = pipe.stop();
        assert_eq!(
            events.len() as u64,
            PINGS,
            "one event per drop: {events:02x?}"
        );
        let ifid = u16::try_from(self.idx & 0xffff).unwrap().to_le_bytes();
        let len = PING_FRAME_LEN.to_le_bytes();
        for ev in &events {
            // struct event_hdr_st: ifId, ruleId (u16 LE), action, pad, pktLength (u16 LE).
            let header = [ifid[0], ifid[1], 7, 0, DENY, 0, len[0], len[1]];
            assert_eq!(ev[..8], header, "event {ev:02x?}");
            // Then the frame: Ethernet (type IPv4), IPv4 from the namespace.
            assert_eq!(ev[8 + 12..8 + 14], [0x08, 0x00], "ethertype");
            assert_eq!(ev[8 + 14 + 9], ICMP, "IPv4 protocol");
            assert_eq!(ev[8 + 26..8 + 30], self.net.ns_v4().octets(), "IPv4 source");

            let hex: String = ev.iter().map(|b| format!("{b:02x}")).collect();
            let (out, _) = run_sdk(
                Command::cargo_bin("ebpf-sdk")
                    .unwrap()
                    .args(["decode", "--elf"])
                    .arg(&self.sdk.elf)
                    .args(["--type", "event_hdr_st", "-o", "json", "--value", &hex]),
                &format!("decode --type event_hdr_st -o json --value {hex}"),
            );
            let decoded: Value = serde_json::from_str(&out).unwrap();
            let v = &decoded[0]["value"];
            let field = |name: &str| v[name].as_u64().unwrap_or_else(|| panic!("{name} in {v}"));
            assert_eq!(
                [
                    field("ifId"),
                    field("ruleId"),
                    field("action"),
                    field("pad"),
                    field("pktLength")
                ],
                [
                    u64::from(self.idx & 0xffff),
                    7,
                    u64::from(DENY),
                    0,
                    u64::from(PING_FRAME_LEN)
                ],
                "decoded {v}"
            );
            let rest = v["rest"]
                .as_str()
                .expect("the frame after the header as `rest`");
            assert_eq!(
                rest.trim_start_matches("0x"),
                &hex[16..],
                "rest is the frame"
            );
        }
    }
}

impl E2e {
    /// Issue #8: continuous pings from the namespace, allowed by a rule that
    /// is in every rule set, while `apply --prune` swaps between two rule
    /// sets of 600 other entries each. Not one ping may be lost: a kernel
    /// update of an LPM entry replaces it whole, and prune never removes a
    /// key the new set has.
    fn forwarding_survives_rewrites(&self) {
        let set = |tag: u32| -> PathBuf {
            let mut text = format!(
                "- key: {}\n  value: {{rules: [{}]}}\n",
                self.key4,
                rule_yaml(20 + tag, 1, (0, 0), (8, 0), 2)
            );
            for i in 0..600u32 {
                // Other sources, different in each set: adds and prunes.
                let third = 10 + tag * 3 + i / 250;
                text.push_str(&format!(
                    "- key: {}\n  value: {{rules: [{}]}}\n",
                    key_yaml(64, self.idx, &format!("10.250.{third}.{}", i % 250 + 1)),
                    rule_yaml(30 + tag, 6, (1000 + i as u16, 0), (0, 0), 1)
                ));
            }
            self.write_file(&format!("set{tag}.yaml"), &text)
        };
        let (a, b) = (set(0), set(1));
        let apply = |f: &Path| {
            self.sdk.run(
                "apply",
                &[
                    "--map",
                    TABLE,
                    "-f",
                    f.to_str().unwrap(),
                    "--prune",
                    "--no-backup",
                    "-q",
                ],
            );
        };
        apply(&a);
        let count = 150;
        let pinger = self
            .net
            .exec("timeout")
            .args(["15", "ping", "-q", "-n", "-i", "0.02", "-W", "1", "-c"])
            .arg(count.to_string())
            .arg(self.host4.to_string())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut rewrites = 0;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(2500) {
            apply(if rewrites % 2 == 0 { &b } else { &a });
            rewrites += 1;
        }
        let out = pinger.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("{rewrites} rewrites of 601 entries during: {}", text.trim());
        assert!(rewrites >= 2, "only {rewrites} rewrites while pinging");
        assert!(
            text.contains(&format!("{count} packets transmitted, {count} received")),
            "pings were lost while rules were rewritten: {text}"
        );
    }
}

fn firewall_end_to_end() {
    let Some(env) = require_kernel("e2e_firewall") else {
        return;
    };
    if !require_programs("e2e_firewall", &["ip", "ping", "socat", "timeout", "kill"]) {
        return;
    }
    let started = Instant::now();
    // Dropped in reverse order: the XDP program detached; the namespace, veth
    // pair and host sockets closed; the pins removed (and the firewall lock
    // released). Also when a step panics.
    let fw = FirewallGuard::load_bundled().unwrap();
    let e2e = E2e::new(&fw, Netns::new("e2efw").unwrap(), env.bpftool.clone());
    let net = &e2e.net;
    let _xdp = net
        .attach_xdp(fw.prog_path(PROG).expect("program pinned"))
        .unwrap();
    eprintln!(
        "netns {} ({} {} {}) <-> host {} ifindex {} ({} {}); pins in {}",
        net.name(),
        net.peer_if(),
        net.ns_v4(),
        net.ns_v6(),
        net.host_if(),
        e2e.idx,
        e2e.host4,
        e2e.host6,
        fw.dir().display()
    );
    let steps: [Step; 8] = [
        (
            "1. empty table: traffic passes, no rule counts",
            E2e::empty_table_passes,
        ),
        (
            "2. create a DENY rule in $EDITOR: pings dropped and counted",
            E2e::create_deny_in_editor,
        ),
        (
            "3. update the rule to ALLOW: pings pass and are counted",
            E2e::update_to_allow,
        ),
        (
            "4. apply TCP port range + UDP port rules (dry run first)",
            E2e::apply_port_rules,
        ),
        (
            "5. IPv6 /64 prefix: ICMPv6 echo denied",
            E2e::ipv6_prefix_denies_echo,
        ),
        (
            "6. delete both keys: everything passes, nothing counts",
            E2e::delete_restores_traffic,
        ),
        (
            "7. events: one perf event per dropped packet",
            E2e::deny_emits_events,
        ),
        (
            "8. pings keep flowing while the rule set is rewritten",
            E2e::forwarding_survives_rewrites,
        ),
    ];
    for (name, step) in steps {
        eprintln!("\n== {name} (at {:.1?})", started.elapsed());
        step(&e2e);
    }
    eprintln!("\nall steps passed in {:.1?}", started.elapsed());
}
