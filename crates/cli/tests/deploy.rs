//! deploy/kubernetes against the code, offline: every container's
//! arguments are accepted by the real `ebpf-sdk`, the shipped state file
//! encodes against the shipped schema, and that schema is what `extract`
//! says about the bundled firewall today. (`deploy/check.py` validates the
//! manifests with kubernetes-validate and the Dockerfile's shape.)

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use ebpf_sdk::codec::parse_yaml_documents;
use ebpf_sdk::schema::Document;
use ebpf_sdk::{parse_entries, Object};
use serde_json::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes")
}

/// The documents of a manifest file, as JSON values.
fn manifests(name: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy().join(name)).unwrap();
    parse_yaml_documents(&text)
        .unwrap()
        .iter()
        .map(|d| serde_json::from_str(&d.to_json()).unwrap())
        .collect()
}

fn configmap_data(name: &str, key: &str) -> String {
    manifests("configmaps.yaml")
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .and_then(|d| d["data"][key].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("configmap {name} has no {key}"))
}

#[test]
fn container_arguments_are_accepted() {
    let ds = manifests("daemonset.yaml").remove(0);
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .to_vec();
    assert_eq!(containers.len(), 2);
    for c in &containers {
        let args: Vec<String> = c
            .get("args")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        // Every flag and value parses; `--help` then prints instead of running.
        let out = Command::cargo_bin("ebpf-sdk")
            .unwrap()
            .args(&args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: ebpf-sdk {} refused: {}",
            c["name"].as_str().unwrap(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        let caps = &c["securityContext"]["capabilities"];
        assert_eq!(caps["add"], serde_json::json!(["BPF"]));
        assert_eq!(caps["drop"], serde_json::json!(["ALL"]));
    }
    let args = |i: usize| containers[i]["args"].to_string();
    assert!(args(0).starts_with("[\"apply\"") && args(0).contains("\"--watch\""));
    assert!(args(0).contains("\"--prune\""));
    assert!(args(1).starts_with("[\"export\""));
}

#[test]
fn state_file_encodes_against_the_schema() {
    let schema =
        Document::from_json(&configmap_data("ebpf-sdk-schema", "firewall.schema.json")).unwrap();
    let obj = Object::from_document(schema.clone());
    let state = configmap_data("ebpf-sdk-state", "state.yaml");
    let entries = parse_entries(&state, "state.yaml").unwrap();
    assert_eq!(entries.len(), 2);
    for e in &entries {
        let map = e.map.as_deref().expect("the state file names its maps");
        let codec = obj.codec(map).unwrap();
        codec.encode_key(&e.key, None, &e.location).unwrap();
        let value = codec
            .encode_value(e.value.as_ref().unwrap(), None, &e.location)
            .unwrap();
        assert_eq!(value.len(), 1200);
    }

    // The shipped schema is today's extract of the bundled object.
    let elf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o");
    let fresh = Object::from_elf(elf).unwrap();
    for m in &schema.maps {
        let now = fresh.map(&m.name).unwrap();
        assert_eq!(m.key, now.key, "{}: regenerate deploy's schema", m.name);
        assert_eq!(m.value, now.value, "{}: regenerate deploy's schema", m.name);
        assert_eq!(m.map_type, now.map_type);
    }
}
