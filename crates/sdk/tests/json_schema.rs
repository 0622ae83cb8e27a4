//! [`Object::json_schema`] on the bundled firewall, whole files as editors
//! see them: documents ebpf-sdk reads (`parse_entries`, then encoding every
//! entry as `apply` does) validate against the schema, and a list of bad
//! documents is refused by both, each for its own reason. The validator is
//! the `jsonschema` crate (draft-07).

use ebpf_sdk::{parse_entries, EntryCodec, JsonSchemaOptions, Object, Value};

const TABLE: &str = "ingress_node_firewall_table_map";
const STATS: &str = "ingress_node_firewall_statistics_map";

fn firewall() -> Object {
    Object::from_elf(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firewall-ebpf/firewall.bpf.o"
    ))
    .unwrap()
}

/// The schema of `map` with this machine's possible CPUs, as a validator.
fn validator(obj: &Object, map: &str) -> jsonschema::Validator {
    let ncpus = ebpf_sdk::backend::num_possible_cpus().unwrap();
    let schema = obj
        .json_schema(&[map], &JsonSchemaOptions::default().ncpus(Some(ncpus)))
        .unwrap();
    jsonschema::draft7::new(&schema).unwrap()
}

/// Whether ebpf-sdk reads `text` as `apply --map` does: every entry
/// parses, and the map's own entries encode (a state file's entries of
/// other maps are skipped); the error otherwise.
fn sdk_reads(codec: &EntryCodec, text: &str) -> Result<usize, String> {
    let entries = parse_entries(text, "doc").map_err(|e| e.to_string())?;
    let name = &codec.schema().name;
    for e in entries
        .iter()
        .filter(|e| e.map.as_ref().is_none_or(|m| m == name))
    {
        codec
            .encode_key(&e.key, e.byte_order, &e.location)
            .map_err(|e| e.to_string())?;
        let v = e.value.clone().unwrap_or(Value::Null);
        codec
            .encode_value(&v, e.byte_order, &e.location)
            .map_err(|e| e.to_string())?;
    }
    Ok(entries.len())
}

/// Whether the schema takes `text` (one YAML document) as an editor reads it.
fn schema_takes(v: &jsonschema::Validator, text: &str) -> Result<(), String> {
    let value = ebpf_sdk::codec::parse_yaml(text).unwrap();
    let json = serde_json::to_value(&value).unwrap();
    let errors: Vec<String> = v
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

const RULE: &str = "
key: {prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}
value:
  rules:
  - {ruleId: 1, protocol: 6, dstPortStart: 80, dstPortEnd: 443, action: 1}
  - {ruleId: 2, protocol: 1, icmpType: 8, action: 2}
";

#[test]
fn what_ebpf_sdk_reads_validates() {
    let obj = firewall();
    let table = obj.codec(TABLE).unwrap();
    let v = validator(&obj, TABLE);
    let template = ebpf_sdk::codec::template(obj.map(TABLE).unwrap());
    let good = [
        RULE.to_string(),
        template,
        format!("- key: {{prefixLen: 32, ip_data: '2001:db8::1'}}\n  value: null\n- {}", "key: {ip_data: '0x0a0b'}"),
        format!("maps:\n  {TABLE}:\n  - key: {{prefixLen: 40, ip_data: 02:00:5e:10:00:01}}\n    value: {{rules: [{{ruleId: '0x10'}}]}}\n  other_map: [{{key: 1, value: [1, 2]}}]\n"),
        "[]".to_string(),
        String::new(),
    ];
    for text in &good {
        sdk_reads(&table, text).unwrap_or_else(|e| panic!("ebpf-sdk refuses {text}: {e}"));
        schema_takes(&v, text).unwrap_or_else(|e| panic!("the schema refuses {text}: {e}"));
    }
    // A per-CPU map: one value for all CPUs, one per CPU, and what dump
    // prints (with the total).
    let stats = obj.codec(STATS).unwrap();
    let ncpus = stats.per_cpu().unwrap();
    let v = validator(&obj, STATS);
    let per_cpu: Vec<String> = (0..ncpus)
        .map(|c| format!("{{allow_stats: {{packets: {c}}}}}"))
        .collect();
    let good = [
        "key: 3\nvalue: {deny_stats: {packets: 5, bytes: 300}}".to_string(),
        format!("key: 1\nvalue: [{}]\n", per_cpu.join(", ")),
        format!(
            "- key: 1\n  value: [{}]\n  total: {{allow_stats: {{packets: 99}}}}\n",
            per_cpu.join(", ")
        ),
    ];
    for text in &good {
        sdk_reads(&stats, text).unwrap_or_else(|e| panic!("ebpf-sdk refuses {text}: {e}"));
        schema_takes(&v, text).unwrap_or_else(|e| panic!("the schema refuses {text}: {e}"));
    }
}

#[test]
fn bad_documents_are_refused_by_both() {
    let obj = firewall();
    let table = obj.codec(TABLE).unwrap();
    let v = validator(&obj, TABLE);
    let many: Vec<String> = (0..101).map(|i| format!("{{ruleId: {i}}}")).collect();
    let bad = [
        (
            "a misspelt field",
            RULE.replace("protocol: 6", "protocl: 6"),
        ),
        (
            "a port out of range",
            RULE.replace("dstPortStart: 80", "dstPortStart: 70000"),
        ),
        (
            "a negative prefix",
            RULE.replace("prefixLen: 64", "prefixLen: -1"),
        ),
        (
            "a fraction",
            RULE.replace("prefixLen: 64", "prefixLen: 1.5"),
        ),
        (
            "a boolean for a number",
            RULE.replace("protocol: 6", "protocol: true"),
        ),
        (
            "a CIDR for an address",
            RULE.replace("10.10.10.2", "10.0.0.0/8"),
        ),
        ("text for an address", RULE.replace("10.10.10.2", "hello")),
        (
            "17 bytes of hex",
            RULE.replace("10.10.10.2", "'0x0102030405060708090a0b0c0d0e0f1011'"),
        ),
        (
            "101 rules",
            format!(
                "key: {{prefixLen: 32}}\nvalue: {{rules: [{}]}}",
                many.join(", ")
            ),
        ),
        ("an unknown entry field", RULE.replace("value:", "vlaue:")),
        ("an empty entry", "{}".to_string()),
        (
            "a number among entries",
            "- key: {prefixLen: 1}\n- 5\n".to_string(),
        ),
        (
            "a state file with more",
            format!("maps: {{{TABLE}: []}}\nextra: 1\n"),
        ),
        (
            "a key that is a list",
            "key: [1, 2]\nvalue: {}\n".to_string(),
        ),
        (
            "another map's entries that are numbers",
            format!("maps: {{{TABLE}: [], other_map: [1, 2]}}"),
        ),
    ];
    for (what, text) in &bad {
        let sdk = sdk_reads(&table, text);
        let schema = schema_takes(&v, text);
        assert!(sdk.is_err(), "{what}: ebpf-sdk reads {text}");
        assert!(schema.is_err(), "{what}: the schema takes {text}");
        eprintln!(
            "{what}: ebpf-sdk: {}\n  schema: {}",
            sdk.unwrap_err(),
            schema.unwrap_err()
        );
    }
    let stats = obj.codec(STATS).unwrap();
    let ncpus = stats.per_cpu().unwrap();
    let v = validator(&obj, STATS);
    let wrong_count: Vec<&str> = vec!["{}"; ncpus + 1];
    let text = format!("key: 1\nvalue: [{}]\n", wrong_count.join(", "));
    assert!(sdk_reads(&stats, &text).is_err() && schema_takes(&v, &text).is_err());
}

#[test]
fn maps_with_nothing_to_write_have_no_schema_and_state_files_name_maps() {
    let obj = firewall();
    let e = obj
        .json_schema(
            &["ingress_node_firewall_events_map"],
            &JsonSchemaOptions::default(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("ebpf-sdk events"), "{e}");
    // Every map: a state file, only with the maps that take entries.
    let all = obj.json_schema(&[], &JsonSchemaOptions::default()).unwrap();
    let names = all["properties"]["maps"]["properties"].as_object().unwrap();
    assert!(names.contains_key(TABLE) && names.contains_key(STATS));
    assert!(!names.contains_key("ingress_node_firewall_events_map"));
    let v = jsonschema::draft7::new(&all).unwrap();
    let state = format!(
        "maps:\n  {TABLE}:\n  - {}\n",
        RULE.trim().replace('\n', "\n    ")
    );
    schema_takes(&v, &state).unwrap();
    assert!(schema_takes(&v, "maps: {nosuchmap: []}").is_err());
    assert!(
        schema_takes(&v, RULE).is_err(),
        "a state file must name its maps"
    );
}
