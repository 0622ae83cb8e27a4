//! `ebpf-sdk export` on real maps: the endpoint (formats, probes, methods),
//! a map that disappears and one replaced at its pin (reopened, not a
//! crash), and a real Prometheus server from Debian's package scraping the
//! endpoint on 127.0.0.1 and answering a query for the firewall's
//! denied-packets counter after real pings are dropped by the bundled XDP
//! firewall.
//!
//! Every process is stopped, and the namespace, XDP attachment, pins and
//! temporary directories removed, by guards (also when a step fails).
//! Prometheus listens on 127.0.0.1 only and scrapes only 127.0.0.1.

#[path = "common/ops.rs"]
mod ops;

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebpf_sdk_testkit::harness::Need;
use ebpf_sdk_testkit::{bpftool, firewall_object, require_kernel, BpffsDir, FirewallGuard, Netns};
use ops::{create_map, free_port, http, http_get, schema_file, Running};
use serde_json::Value;

ebpf_sdk_testkit::harness! {
    endpoint_survives_a_vanished_and_a_replaced_map: [Need::Kernel],
    prometheus_counts_denied_pings: [
        Need::Kernel,
        Need::Programs(&["ip", "ping", "timeout", "prometheus"]),
    ],
}

const MAP: &str = "pkt_count";

/// Starts `ebpf-sdk export ARGS --listen 127.0.0.1:0`; returns it and the
/// address it says it serves.
fn start_export(args: &[&OsStr]) -> (Running, String) {
    let mut all: Vec<&OsStr> = vec!["export".as_ref()];
    all.extend_from_slice(args);
    all.extend([OsStr::new("--listen"), OsStr::new("127.0.0.1:0")]);
    let mut run = Running::start(&all);
    let addr = run.wait_line(Duration::from_secs(20), |l| {
        let url = l.split("http://").nth(1)?;
        Some(url.split('/').next()?.to_string())
    });
    (run, addr)
}

/// The value of the sample line starting with `series ` in `text`.
fn sample(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

fn endpoint_survives_a_vanished_and_a_replaced_map() {
    let _ = require_kernel("export").expect("the harness checked");
    let pins = BpffsDir::new("expo").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let schema = schema_file(tmp.path(), MAP);
    let pin = pins.join(MAP);
    create_map(&pin, 64);
    bpftool::map_update(&pin, &7u32.to_le_bytes(), &41u64.to_le_bytes(), "any").unwrap();
    let (mut run, addr) = start_export(&[
        "--schema".as_ref(),
        schema.as_os_str(),
        "--pin-dir".as_ref(),
        pins.path().as_os_str(),
        "--map".as_ref(),
        MAP.as_ref(),
    ]);
    assert!(
        addr.starts_with("127.0.0.1:"),
        "localhost by default: {addr}"
    );
    let series = "ebpf_pkt_count_total{key=\"7\"}";

    // The text format by default; the whole value is one number, named by
    // the map (`count`: a counter).
    let (status, head, body) = http_get(&addr, "/metrics", None);
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    assert!(
        body.contains("# TYPE ebpf_pkt_count_total counter"),
        "{body}"
    );
    assert_eq!(sample(&body, series).as_deref(), Some("41"), "{body}");
    assert_eq!(
        sample(&body, "ebpf_sdk_map_up{map=\"pkt_count\"}").as_deref(),
        Some("1")
    );

    // OpenMetrics when asked for, as Prometheus asks.
    let (_, head, om) = http_get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        head.contains("application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(
        om.contains("# TYPE ebpf_pkt_count counter") && om.ends_with("# EOF\n"),
        "{om}"
    );

    // Probes, other paths and methods.
    assert_eq!(http_get(&addr, "/healthz", None).0, 200);
    assert_eq!(http_get(&addr, "/nope", None).0, 404);
    let (status, head, _) = http(&addr, "POST", "/metrics", None);
    assert_eq!(status, 405, "{head}");
    assert!(head.contains("Allow: GET, HEAD"), "{head}");

    // The map disappears: the scrape still answers, without its samples,
    // and says so.
    std::fs::remove_file(&pin).unwrap();
    let (status, _, body) = http_get(&addr, "/metrics", None);
    assert_eq!(status, 200);
    assert_eq!(sample(&body, series), None, "{body}");
    assert_eq!(
        sample(&body, "ebpf_sdk_map_up{map=\"pkt_count\"}").as_deref(),
        Some("0")
    );
    assert_eq!(
        sample(&body, "ebpf_sdk_scrape_errors_total{map=\"pkt_count\"}").as_deref(),
        Some("1")
    );
    run.wait_line(Duration::from_secs(5), |l| {
        (l.contains("pkt_count: not read") && l.contains(&pin.display().to_string())).then_some(())
    });

    // A new map at the pin (a program reload): read from the next scrape.
    create_map(&pin, 64);
    bpftool::map_update(&pin, &7u32.to_le_bytes(), &5u64.to_le_bytes(), "any").unwrap();
    let (_, _, body) = http_get(&addr, "/metrics", None);
    assert_eq!(sample(&body, series).as_deref(), Some("5"), "{body}");
    assert_eq!(
        sample(&body, "ebpf_sdk_map_up{map=\"pkt_count\"}").as_deref(),
        Some("1")
    );
    assert_eq!(
        sample(&body, "ebpf_sdk_map_reopens_total{map=\"pkt_count\"}").as_deref(),
        Some("1")
    );
    run.wait_line(Duration::from_secs(5), |l| {
        l.contains("another map is pinned now").then_some(())
    });
    let status = run.signal("TERM", Duration::from_secs(5));
    assert!(status.success(), "SIGTERM: exit 0, got {status}");
}

/// The firewall's table key and a rule denying ICMP echo requests as YAML.
const DENY_ECHO: &str = "{rules: [{ruleId: 7, protocol: 1, icmpType: 8, icmpCode: 0, action: 1}]}";
const DENIED: &str = "ebpf_ingress_node_firewall_statistics_map_deny_stats_packets_total";
const PINGS: u64 = 3;

/// A Prometheus server on 127.0.0.1 scraping `target` every second, with
/// its data in `dir`.
fn start_prometheus(dir: &Path, target: &str) -> (Running, String) {
    let port = free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: ebpf-sdk\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let data = dir.join("data");
    let args: Vec<String> = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", data.display()),
        format!("--web.listen-address={listen}"),
        "--log.level=warn".into(),
    ];
    let child = Command::new("prometheus")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (Running::from_child(child), listen)
}

/// Asks Prometheus `query` until `want` says yes or `within` passes.
fn query_until(prom: &str, query: &str, within: Duration, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    let encoded: String = query
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    loop {
        let last = std::net::TcpStream::connect(prom)
            .ok()
            .map(|_| http_get(prom, &format!("/api/v1/query?query={encoded}"), None))
            .and_then(|(status, _, body)| (status == 200).then_some(body))
            .and_then(|body| serde_json::from_str::<Value>(&body).ok());
        if let Some(v) = &last {
            if want(v) {
                return v.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not answer `{query}` as expected within {within:?}; last answer: {last:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Sends `PINGS` echo requests from the namespace; how many were answered.
fn ping(net: &Netns, to: IpAddr) -> u64 {
    let out = net
        .exec("timeout")
        .args(["10", "ping", "-q", "-n", "-i", "0.2", "-W", "1", "-c"])
        .arg(PINGS.to_string())
        .arg(to.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let received = text
        .split([',', '\n'])
        .find_map(|p| p.trim().strip_suffix(" received"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `received` in ping output: {text}"));
    assert!(
        text.contains(&format!("{PINGS} packets transmitted")),
        "{text}"
    );
    received
}

fn prometheus_counts_denied_pings() {
    let env = require_kernel("prometheus").expect("the harness checked");
    let fw = FirewallGuard::load_bundled().unwrap();
    let net = Netns::new("expro").unwrap();
    let _xdp = net
        .attach_xdp(fw.prog_path("xdp_ingress_node_firewall_process").unwrap())
        .unwrap();
    let elf = firewall_object();
    let tmp = tempfile::tempdir().unwrap();

    // Deny ICMP echo from the namespace's address, arriving on the host end.
    let key = format!(
        "{{prefixLen: 64, ingress_ifindex: {}, ip_data: {}}}",
        net.host_ifindex(),
        net.ns_v4()
    );
    let out = Command::new(assert_cmd::cargo::cargo_bin("ebpf-sdk"))
        .args(["update", "--elf"])
        .arg(&elf)
        .arg("--pin-dir")
        .arg(fw.dir())
        .args([
            "--map",
            "ingress_node_firewall_table_map",
            "--key",
            &key,
            "--value",
            DENY_ECHO,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_export, addr) = start_export(&[
        "--elf".as_ref(),
        elf.as_os_str(),
        "--pin-dir".as_ref(),
        fw.dir().as_os_str(),
        "--map".as_ref(),
        "ingress_node_firewall_statistics_map".as_ref(),
    ]);
    let (_prom, prom) = start_prometheus(tmp.path(), &addr);
    // Prometheus is up and has scraped once (the counter still 0).
    let q = format!("{DENIED}{{key=\"7\"}}");
    query_until(&prom, &q, Duration::from_secs(60), |v| {
        v["data"]["result"][0]["value"][1] == "0"
    });

    let t = Instant::now();
    assert_eq!(
        ping(&net, IpAddr::V4(net.host_v4())),
        0,
        "the rule drops every echo request"
    );
    let answer = query_until(&prom, &q, Duration::from_secs(30), |v| {
        v["data"]["result"][0]["value"][1] == PINGS.to_string().as_str()
    });
    eprintln!(
        "Prometheus answered {q} = {PINGS} {:.1?} after the pings started: {answer}",
        t.elapsed()
    );
    let labels = &answer["data"]["result"][0]["metric"];
    assert_eq!(labels["job"], "ebpf-sdk");
    assert_eq!(labels["instance"], addr.as_str());

    // The same counter read by bpftool: deny_stats.packets at offset 16, per CPU.
    let stats = fw.map_path("ingress_node_firewall_statistics_map").unwrap();
    let by_bpftool: u64 = bpftool::map_lookup(stats, &7u32.to_le_bytes())
        .unwrap()
        .unwrap()
        .per_cpu
        .iter()
        .map(|(_, v)| u64::from_le_bytes(v[16..24].try_into().unwrap()))
        .sum();
    assert_eq!(by_bpftool, PINGS, "bpftool agrees");
    // The exporter's own metrics arrive too.
    let up = query_until(&prom, "ebpf_sdk_map_up", Duration::from_secs(10), |v| {
        v["data"]["result"][0]["value"][1] == "1"
    });
    assert_eq!(
        up["data"]["result"][0]["metric"]["map"],
        "ingress_node_firewall_statistics_map"
    );
    drop(env);
}
