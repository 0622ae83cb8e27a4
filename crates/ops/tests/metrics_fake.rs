//! Metrics of the firewall's maps (and of maps with enum and scalar keys)
//! rendered from the backend's in-memory fake, no kernel needed: exact
//! sample lines, then the same text checked by two independent readers,
//! `promtool check metrics` (Debian's prometheus package) and the official
//! Python client's parsers (text format and, strictly, OpenMetrics).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use ebpf_sdk::backend::FakeMap;
use ebpf_sdk::schema::{Document, MapSchema};
use ebpf_sdk::{parse_inline, MapHandle, UpdateFlags};
use ebpf_sdk_ops::metrics::{Exposition, KindOverride, MapMetrics, MetricKind, MetricsOptions};
use ebpf_sdk_testkit::harness::Need;

/// Where `.ci/setup` installs the Python client (prometheus-client).
const PYTHON: &str = "/opt/ebpf-sdk-venv/bin/python";

ebpf_sdk_testkit::harness! {
    samples_are_exact: [],
    per_cpu_label_keeps_cpus_apart: [],
    overrides_and_refusals: [],
    promtool_accepts_the_text: [Need::Programs(&["promtool"])],
    python_client_parses_both_formats: [Need::Path { path: PYTHON, hint: "bash .ci/setup (a venv with prometheus-client)" }],
}

const STATS: &str = "ingress_node_firewall_statistics_map";
const TABLE: &str = "ingress_node_firewall_table_map";
const DEBUG: &str = "ingress_node_firewall_debug_map";
const CONFIG: &str = "ingress_node_firewall_config_map";

fn firewall() -> Document {
    let obj = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
    ebpf_sdk::Object::from_elf(obj).unwrap().into_document()
}

/// A map with an enum key and a scalar value named like a counter, and one
/// with a scalar key whose whole value is one number.
fn extra_maps() -> Document {
    let u64_t = r#"{"name": "unsigned long long", "typedefs": ["__u64"], "size": 8, "kind": "int", "signed": false}"#;
    let text = format!(
        r#"{{"schema_version": 2, "source": {{"kind": "elf", "path": "extra.o"}}, "maps": [
        {{"name": "verdicts", "map_type": "hash", "map_type_id": 1, "key_size": 4, "value_size": 8,
          "max_entries": 8, "flags": [], "map_flags": 0, "pinning": "none", "section": ".maps",
          "origin": "btf", "endian": "little",
          "key": {{"name": "enum verdict", "size": 4, "kind": "enum", "signed": false,
                  "variants": [{{"name": "PASS", "value": 0}}, {{"name": "DROP", "value": 1}}]}},
          "value": {u64_t}}},
        {{"name": "drop_count", "map_type": "array", "map_type_id": 2, "key_size": 4, "value_size": 8,
          "max_entries": 2, "flags": [], "map_flags": 0, "pinning": "none", "section": ".maps",
          "origin": "btf", "endian": "little",
          "key": {{"name": "unsigned int", "typedefs": ["__u32"], "size": 4, "kind": "int", "signed": false}},
          "value": {u64_t}}}
        ]}}"#
    );
    Document::from_json(&text).unwrap()
}

fn fake(schema: &MapSchema, ncpus: usize) -> MapHandle {
    let mut info = ebpf_sdk::backend::MapInfo::new(
        schema.map_type,
        schema.key_size,
        schema.value_size,
        schema.max_entries,
    );
    info.name = schema.name.clone();
    MapHandle::with_backend(schema, Box::new(FakeMap::with_ncpus(info, ncpus))).unwrap()
}

fn put(h: &MapHandle, key: &str, value: &str) {
    let k = parse_inline(key, "key").unwrap();
    let v = parse_inline(value, "value").unwrap();
    h.update(&k, &v, UpdateFlags::Any).unwrap();
}

/// Every exportable map of the firewall and the extra ones, filled.
fn filled() -> Vec<MapHandle> {
    let fw = firewall();
    let extra = extra_maps();
    let stats = fake(fw.map(STATS).unwrap(), 2);
    put(
        &stats,
        "7",
        "[{allow_stats: {packets: 1, bytes: 98}, deny_stats: {packets: 2, bytes: 196}},
          {allow_stats: {packets: 10, bytes: 980}, deny_stats: {packets: 1, bytes: 98}}]",
    );
    let table = fake(fw.map(TABLE).unwrap(), 1);
    put(
        &table,
        "{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.0.0.2}",
        "{rules: [{ruleId: 7, protocol: 1, icmpType: 8, action: 1}]}",
    );
    let debug = fake(fw.map(DEBUG).unwrap(), 1);
    put(
        &debug,
        "{saddr: 10.0.0.2, sport: 443, proto: 6}",
        "{packets: 5, bytes: 300, last_rule_id: -1, last_action: 0, last_ifindex: 6}",
    );
    let config = fake(fw.map(CONFIG).unwrap(), 1);
    put(
        &config,
        "0",
        "{mode: FW_MODE_AUDIT, log_prio: FW_LOG_PRIO_LOW, features: FW_FEAT_NO_DEBUG_MAP, enabled: true, ttl_adjust: -3, name: \"a\\\"b\\\\c\"}",
    );
    let verdicts = fake(extra.map("verdicts").unwrap(), 1);
    put(&verdicts, "DROP", "12");
    put(&verdicts, "PASS", "30");
    let drops = fake(extra.map("drop_count").unwrap(), 1);
    put(&drops, "1", "18446744073709551615");
    vec![stats, table, debug, config, verdicts, drops]
}

fn render(handles: &[MapHandle], opts: &MetricsOptions, format: Exposition) -> String {
    let mut out = Vec::new();
    for h in handles {
        MapMetrics::new(h.schema(), opts)
            .unwrap()
            .write(h, format, &mut out)
            .unwrap();
    }
    if format == Exposition::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
    String::from_utf8(out).unwrap()
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line `{line}` in:\n{text}"
    );
}

fn samples_are_exact() {
    let text = render(&filled(), &MetricsOptions::default(), Exposition::Text);
    // Per-CPU counters summed over the two CPUs; HELP names the C types.
    let deny = "ebpf_ingress_node_firewall_statistics_map_deny_stats_packets_total";
    has(&text, &format!("# HELP {deny} {STATS} (struct ruleStatistics_st).deny_stats.packets: __u64, summed over CPUs"));
    has(&text, &format!("# TYPE {deny} counter"));
    has(&text, &format!("{deny}{{key=\"7\"}} 3"));
    has(&text, &format!("{deny}{{key=\"0\"}} 0"));
    has(
        &text,
        "ebpf_ingress_node_firewall_statistics_map_allow_stats_bytes_total{key=\"7\"} 1078",
    );
    // A struct key: one label per field, the address as text; array
    // elements told apart by an index label; camelCase made snake_case.
    has(&text, "ebpf_ingress_node_firewall_table_map_rules_rule_id{prefix_len=\"64\",ingress_ifindex=\"6\",ip_data=\"10.0.0.2\",rules_index=\"0\"} 7");
    has(&text, "ebpf_ingress_node_firewall_table_map_rules_icmp_type{prefix_len=\"64\",ingress_ifindex=\"6\",ip_data=\"10.0.0.2\",rules_index=\"99\"} 0");
    has(
        &text,
        "# TYPE ebpf_ingress_node_firewall_table_map_rules_rule_id gauge",
    );
    // Big-endian key fields read in network order; signed values stay signed.
    has(&text, "ebpf_ingress_node_firewall_debug_map_packets_total{saddr=\"10.0.0.2\",sport=\"443\",proto=\"6\"} 5");
    has(&text, "ebpf_ingress_node_firewall_debug_map_last_rule_id{saddr=\"10.0.0.2\",sport=\"443\",proto=\"6\"} -1");
    // Enums in the value are their numbers (gauges); ENUM64 beyond 32 bits.
    has(
        &text,
        "ebpf_ingress_node_firewall_config_map_mode{key=\"0\"} 1",
    );
    has(
        &text,
        "ebpf_ingress_node_firewall_config_map_log_prio{key=\"0\"} -1",
    );
    has(
        &text,
        "ebpf_ingress_node_firewall_config_map_features{key=\"0\"} 4294967296",
    );
    has(
        &text,
        "ebpf_ingress_node_firewall_config_map_ttl_adjust{key=\"0\"} -3",
    );
    has(
        &text,
        "ebpf_ingress_node_firewall_config_map_enabled{key=\"0\"} 1",
    );
    has(
        &text,
        "# TYPE ebpf_ingress_node_firewall_config_map_max_event_bytes gauge",
    );
    assert!(
        !text.contains("config_map_name"),
        "char[16] is text, not a number"
    );
    assert!(!text.contains("config_map_mac"), "a MAC is not a number");
    // An enum key by name; a value that is one number named by its map.
    has(&text, "ebpf_verdicts{key=\"DROP\"} 12");
    has(
        &text,
        "ebpf_drop_count_total{key=\"1\"} 18446744073709551615",
    );
    has(&text, "# TYPE ebpf_drop_count_total counter");
    // Every family once, samples right after their TYPE line.
    let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let helps = text.lines().filter(|l| l.starts_with("# HELP ")).count();
    assert_eq!(types, helps);

    // OpenMetrics: counters' family names without `_total`.
    let om = render(
        &filled(),
        &MetricsOptions::default(),
        Exposition::OpenMetrics,
    );
    has(
        &om,
        "# TYPE ebpf_ingress_node_firewall_statistics_map_deny_stats_packets counter",
    );
    has(&om, &format!("{deny}{{key=\"7\"}} 3"));
    assert!(om.ends_with("# EOF\n"));
}

fn per_cpu_label_keeps_cpus_apart() {
    let opts = MetricsOptions {
        per_cpu_label: true,
        prefix: "fw".into(),
        ..Default::default()
    };
    let text = render(&filled()[..1], &opts, Exposition::Text);
    let deny = "fw_ingress_node_firewall_statistics_map_deny_stats_packets_total";
    // The fake's CPUs are slots 0 and 1; on this machine they carry the ids
    // of the possible CPUs (0 and 1 on any machine with two or more).
    has(&text, &format!("{deny}{{key=\"7\",cpu=\"0\"}} 2"));
    has(&text, &format!("{deny}{{key=\"7\",cpu=\"1\"}} 1"));
    assert!(!text.contains(&format!("{deny}{{key=\"7\"}}")));
}

fn overrides_and_refusals() {
    let fw = firewall();
    let stats = fw.map(STATS).unwrap();
    let gauge =
        KindOverride::parse(&format!("{STATS}:deny_stats.bytes"), MetricKind::Gauge).unwrap();
    let counter = KindOverride::parse("value.max_event_bytes", MetricKind::Counter).unwrap();
    let opts = MetricsOptions {
        kinds: vec![gauge, counter],
        ..Default::default()
    };
    let m = MapMetrics::new(stats, &opts).unwrap();
    assert!(m
        .metric_names()
        .contains(&"ebpf_ingress_node_firewall_statistics_map_deny_stats_bytes"));
    assert!(m
        .metric_names()
        .contains(&"ebpf_ingress_node_firewall_statistics_map_deny_stats_packets_total"));
    let c = MapMetrics::new(fw.map(CONFIG).unwrap(), &opts).unwrap();
    assert!(c
        .metric_names()
        .contains(&"ebpf_ingress_node_firewall_config_map_max_event_bytes_total"));
    assert_eq!(
        m.fields(),
        [
            "allow_stats.packets",
            "allow_stats.bytes",
            "deny_stats.packets",
            "deny_stats.bytes"
        ]
    );

    // Refusals name the map and why.
    let events = MapMetrics::new(fw.map("ingress_node_firewall_events_map").unwrap(), &opts)
        .unwrap_err()
        .to_string();
    assert_eq!(
        events,
        "map `ingress_node_firewall_events_map` cannot be exported: a perf_event_array holds no counters that can be read by key"
    );
    assert!(KindOverride::parse("stats:", MetricKind::Gauge)
        .unwrap_err()
        .to_string()
        .contains("give the field as [MAP:]FIELD"));
}

/// Runs `program args` with `input` on stdin; (success, stdout + stderr).
fn run_with_input(program: &str, args: &[&str], input: &str) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn promtool_accepts_the_text() {
    for opts in [
        MetricsOptions::default(),
        MetricsOptions {
            per_cpu_label: true,
            ..Default::default()
        },
    ] {
        let text = render(&filled(), &opts, Exposition::Text);
        let (ok, said) = run_with_input("promtool", &["check", "metrics"], &text);
        assert!(
            ok && said.trim().is_empty(),
            "promtool check metrics: {said}"
        );
        eprintln!(
            "promtool check metrics: {} lines accepted, no lint problems",
            text.lines().count()
        );
    }
}

/// Parses with the official Python client and prints `name labels value`
/// per sample (labels sorted), so the numbers are checked by another reader.
const PARSE: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families as text_parse
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse
fmt, data = sys.argv[1], sys.stdin.read()
for fam in (om_parse if fmt == "om" else text_parse)(data):
    for s in fam.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        print(fam.type, s.name, labels, repr(float(s.value)))
"#;

fn python_client_parses_both_formats() {
    for (fmt, format) in [("text", Exposition::Text), ("om", Exposition::OpenMetrics)] {
        let text = render(&filled(), &MetricsOptions::default(), format);
        let (ok, parsed) = run_with_input(PYTHON, &["-c", PARSE, fmt], &text);
        assert!(ok, "the Python client refused the {fmt} output: {parsed}");
        let line = |want: &str| {
            assert!(
                parsed.lines().any(|l| l == want),
                "{fmt}: no `{want}` in the parsed samples:\n{parsed}"
            );
        };
        line(
            "counter ebpf_ingress_node_firewall_statistics_map_deny_stats_packets_total key=7 3.0",
        );
        line("gauge ebpf_ingress_node_firewall_table_map_rules_rule_id ingress_ifindex=6,ip_data=10.0.0.2,prefix_len=64,rules_index=0 7.0");
        line("gauge ebpf_ingress_node_firewall_debug_map_last_rule_id proto=6,saddr=10.0.0.2,sport=443 -1.0");
        line("gauge ebpf_verdicts key=DROP 12.0");
        line("counter ebpf_drop_count_total key=1 1.8446744073709552e+19");
        eprintln!(
            "prometheus_client ({fmt}): {} samples parsed",
            parsed.lines().count()
        );
    }
}
