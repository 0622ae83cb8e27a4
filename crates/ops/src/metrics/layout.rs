//! One map's metrics, compiled once from its schema: a metric family per
//! numeric field of the value, the labels each sample gets, and the
//! rendering of one entry's samples straight from its bytes.

use std::collections::HashSet;

use ebpf_sdk::backend::percpu;
use ebpf_sdk::codec::{Codec, LeafKind, Number, NumericLeaf, PathStep, Value};
use ebpf_sdk::schema::{MapSchema, TypeKind, TypeNode};
use ebpf_sdk::MapHandle;

use super::names::{escape_help, escape_label_value, is_counter_name, join, snake};
use super::{write_family, Exposition, MetricKind, MetricsOptions};
use crate::OpsError;

/// A metric family: one numeric field of the value (array elements are
/// its samples, told apart by index labels).
#[derive(Debug, Clone)]
pub(crate) struct Family {
    /// The name without a counter's `_total` (OpenMetrics' family name).
    pub(crate) base: String,
    /// The name samples carry: `base` plus `_total` for counters.
    pub(crate) sample: String,
    pub(crate) kind: MetricKind,
    pub(crate) help: String,
}

/// One numeric leaf and where its samples go.
#[derive(Debug, Clone)]
struct Slot {
    leaf: NumericLeaf,
    family: usize,
    /// `,name="i"` for each array index on the way to the leaf.
    index_labels: String,
}

/// One map's metric families and how to fill them from entries.
#[derive(Debug, Clone)]
pub struct MapMetrics {
    map: String,
    codec: Codec,
    families: Vec<Family>,
    slots: Vec<Slot>,
    /// The label that tells CPUs apart, when per-CPU values are kept apart.
    cpu_label: Option<String>,
    per_cpu: bool,
    /// The possible CPUs' ids, for per-CPU maps.
    cpus: Vec<u32>,
}

/// The field path of a leaf as users name it: struct members joined by
/// `.`, array indices left out (`rules.ruleId`); `value` for the root.
fn field_path(leaf: &NumericLeaf) -> String {
    let fields: Vec<&str> = leaf
        .path()
        .iter()
        .filter_map(|s| match s {
            PathStep::Field(f) => Some(&**f),
            PathStep::Index(_) => None,
        })
        .collect();
    if fields.is_empty() {
        "value".to_string()
    } else {
        fields.join(".")
    }
}

/// The label names a key's samples carry (see [`MapMetrics::key_labels`]),
/// from the key's type: `key` for a scalar, one per leaf field of a struct.
fn key_label_names(key: Option<&TypeNode>) -> HashSet<String> {
    fn walk(t: &TypeNode, prefix: &str, out: &mut HashSet<String>) {
        match &t.kind {
            TypeKind::Struct { members } | TypeKind::Union { members } => {
                for m in members {
                    let name = if m.name.is_empty() {
                        prefix.to_string()
                    } else if prefix.is_empty() {
                        m.name.clone()
                    } else {
                        format!("{prefix}_{}", m.name)
                    };
                    walk(&m.ty, &name, out);
                }
            }
            _ => {
                out.insert(if prefix.is_empty() {
                    "key".to_string()
                } else {
                    join(&[prefix])
                });
            }
        }
    }
    let mut out = HashSet::new();
    if let Some(k) = key {
        walk(k, "", &mut out);
    }
    out
}

/// `name`, or `value_<name>` when a key label already has it.
fn free_label(name: String, taken: &HashSet<String>) -> String {
    if taken.contains(&name) {
        format!("value_{name}")
    } else {
        name
    }
}

impl MapMetrics {
    /// Compiles the metrics of `schema` (exported as `schema.name`).
    ///
    /// Refused: maps whose entries cannot be listed (queues, stacks, bloom
    /// filters), maps of file descriptors (map-in-map, program and perf
    /// event arrays), values without a numeric field, and overrides in
    /// `opts` that name a field this map does not have.
    pub fn new(schema: &MapSchema, opts: &MetricsOptions) -> Result<MapMetrics, OpsError> {
        let map = schema.name.clone();
        let refuse = |reason: String| OpsError::NotExportable {
            map: map.clone(),
            reason,
        };
        if schema.map_type.keyless() || schema.map_type.holds_fds().is_some() {
            return Err(refuse(format!(
                "a {} holds no counters that can be read by key",
                schema.map_type
            )));
        }
        let codec = Codec::new(schema).map_err(|e| refuse(e.to_string()))?;
        let Some(plan) = codec.value_plan() else {
            return Err(refuse("it has no value".into()));
        };
        let leaves = plan
            .numeric_leaves(opts.max_fields)
            .map_err(|e| refuse(e.to_string()))?;
        if leaves.is_empty() {
            return Err(refuse("its value has no numeric field".into()));
        }
        let key_labels = key_label_names(schema.key.as_ref());
        let value_type = schema
            .value
            .as_ref()
            .map_or_else(|| "value".to_string(), |v| v.display_name().to_string());
        let per_cpu = schema.map_type.per_cpu();

        let mut families: Vec<Family> = Vec::new();
        let mut by_path: Vec<String> = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        let mut slots = Vec::with_capacity(leaves.len());
        for leaf in leaves {
            let path = field_path(&leaf);
            let family = match by_path.iter().position(|p| *p == path) {
                Some(i) => i,
                None => {
                    let kind = kind_of(&map, &path, &leaf, opts);
                    let f = family(
                        &map,
                        &path,
                        &leaf,
                        kind,
                        &value_type,
                        per_cpu,
                        opts,
                        &mut used,
                    );
                    families.push(f);
                    by_path.push(path);
                    families.len() - 1
                }
            };
            let index_labels = index_labels(leaf.path(), &key_labels);
            slots.push(Slot {
                leaf,
                family,
                index_labels,
            });
        }
        Ok(MapMetrics {
            map,
            codec,
            families,
            slots,
            cpu_label: (per_cpu && opts.per_cpu_label)
                .then(|| free_label("cpu".into(), &key_labels)),
            per_cpu,
            cpus: if per_cpu {
                percpu::possible_cpus().map_err(|e| OpsError::Sdk(e.into()))?
            } else {
                Vec::new()
            },
        })
    }

    /// The map's name.
    pub fn map(&self) -> &str {
        &self.map
    }

    /// The fields it exports, as overrides name them (`deny_stats.packets`).
    pub fn fields(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for s in &self.slots {
            let p = field_path(&s.leaf);
            if !seen.contains(&p) {
                seen.push(p);
            }
        }
        seen
    }

    /// The sample names it exports (counters with `_total`), in order.
    pub fn metric_names(&self) -> Vec<&str> {
        self.families.iter().map(|f| f.sample.as_str()).collect()
    }

    /// Reads every entry of `handle` (opened with this map's schema; any
    /// backend) with the batch lookup path and writes this map's families
    /// to `out`: `# HELP`, `# TYPE` and the samples of each. Nothing is
    /// written when reading fails part way. Returns the number of entries.
    ///
    /// ```no_run
    /// use ebpf_sdk::Object;
    /// use ebpf_sdk_ops::metrics::{Exposition, MapMetrics, MetricsOptions};
    ///
    /// let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
    /// let stats = obj.open("ingress_node_firewall_statistics_map")?;
    /// let metrics = MapMetrics::new(stats.schema(), &MetricsOptions::default())?;
    /// let mut text = Vec::new();
    /// metrics.write(&stats, Exposition::Text, &mut text)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(
        &self,
        handle: &MapHandle,
        format: Exposition,
        out: &mut Vec<u8>,
    ) -> Result<usize, OpsError> {
        let mut families: Vec<Vec<u8>> = vec![Vec::new(); self.families.len()];
        let cpus: Vec<u32> = if self.per_cpu {
            // One value slot per possible CPU, labelled with its id.
            (0..handle.ncpus())
                .map(|i| self.cpus.get(i).copied().unwrap_or(i as u32))
                .collect()
        } else {
            Vec::new()
        };
        let mut labels = String::with_capacity(128);
        let n = handle.for_each_raw(|k, v| {
            labels.clear();
            self.key_labels(k, &mut labels)?;
            self.samples(&labels, v, &cpus, &mut families)
        })?;
        for (f, samples) in self.families.iter().zip(&families) {
            write_family(out, f, samples, format);
        }
        Ok(n)
    }

    /// Appends the labels of `key` to `out` (`key="1"`, or one label per
    /// leaf of a struct key: `prefix_len="64",ip_data="10.0.0.2"`):
    /// addresses and enum names as decode shows them, arrays as
    /// comma-separated elements.
    fn key_labels(&self, key: &[u8], out: &mut String) -> Result<(), OpsError> {
        if self.codec.key_size() == 0 {
            return Ok(());
        }
        let v = self.codec.decode_key(key).map_err(|e| OpsError::Decode {
            map: self.map.clone(),
            reason: e.to_string(),
        })?;
        match &v {
            Value::Map(_) => flatten_key(&v, "", out),
            other => label(out, "key", other),
        }
        Ok(())
    }

    /// Appends every sample of one entry to its family's buffer in `out`
    /// (one buffer per family, in [`MapMetrics::families`] order). `labels`
    /// are the key's ([`MapMetrics::key_labels`]); `cpus` the possible CPUs'
    /// ids, for per-CPU values.
    fn samples(
        &self,
        labels: &str,
        value: &[u8],
        cpus: &[u32],
        out: &mut [Vec<u8>],
    ) -> Result<(), OpsError> {
        let stride = self.codec.per_cpu_stride();
        let size = self.codec.value_size();
        let slot_of = |i: usize| value.get(i * stride..i * stride + size);
        for s in &self.slots {
            let buf = &mut out[s.family];
            let fam = &self.families[s.family];
            if !self.per_cpu {
                let n = self.read(&s.leaf, value)?;
                write_sample(buf, &fam.sample, labels, &s.index_labels, None, n);
                continue;
            }
            let mut total: Option<Number> = None;
            for (i, cpu) in cpus.iter().enumerate() {
                let slot = slot_of(i).ok_or_else(|| self.short(value.len()))?;
                let n = self.read(&s.leaf, slot)?;
                match &self.cpu_label {
                    Some(name) => write_sample(
                        buf,
                        &fam.sample,
                        labels,
                        &s.index_labels,
                        Some((name, *cpu)),
                        n,
                    ),
                    None => total = Some(total.map_or(n, |t| t.saturating_add(n))),
                }
            }
            if let Some(t) = total {
                write_sample(buf, &fam.sample, labels, &s.index_labels, None, t);
            }
        }
        Ok(())
    }

    fn read(&self, leaf: &NumericLeaf, value: &[u8]) -> Result<Number, OpsError> {
        leaf.read(value).ok_or_else(|| self.short(value.len()))
    }

    fn short(&self, len: usize) -> OpsError {
        OpsError::Decode {
            map: self.map.clone(),
            reason: format!("a value of {len} bytes read back is too short for its type"),
        }
    }
}

/// Counter or gauge for the field at `path`: an override naming it, else
/// the name heuristic for integers and floats; enums and `_Bool` are gauges.
fn kind_of(map: &str, path: &str, leaf: &NumericLeaf, opts: &MetricsOptions) -> MetricKind {
    for o in opts.kinds.iter().rev() {
        let field = o.field.strip_prefix("value.").unwrap_or(&o.field);
        if field == path && o.map.as_deref().is_none_or(|m| m == map) {
            return o.kind;
        }
    }
    let name = match leaf.path().iter().rev().find_map(|s| match s {
        PathStep::Field(f) => Some(&**f),
        PathStep::Index(_) => None,
    }) {
        Some(f) => f,
        // The whole value is one number: the map's name says what it counts.
        None => map,
    };
    match leaf.kind() {
        LeafKind::Int { .. } | LeafKind::Float if is_counter_name(name) => MetricKind::Counter,
        _ => MetricKind::Gauge,
    }
}

/// The family of the field at `path`: its names and `# HELP` text.
#[allow(clippy::too_many_arguments)]
fn family(
    map: &str,
    path: &str,
    leaf: &NumericLeaf,
    kind: MetricKind,
    value_type: &str,
    per_cpu: bool,
    opts: &MetricsOptions,
    used: &mut HashSet<String>,
) -> Family {
    let mut parts: Vec<&str> = vec![&opts.prefix, map];
    if path != "value" {
        parts.extend(path.split('.'));
    }
    let mut base = join(&parts);
    if kind == MetricKind::Counter {
        if let Some(b) = base.strip_suffix("_total") {
            base = b.to_string();
        }
    }
    // Two fields whose names differ only in case or punctuation.
    let stem = base.clone();
    let mut n = 2;
    while !used.insert(base.clone()) {
        base = format!("{stem}_{n}");
        n += 1;
    }
    let sample = match kind {
        MetricKind::Counter => format!("{base}_total"),
        MetricKind::Gauge => base.clone(),
    };
    let shown = if path == "value" {
        String::new()
    } else {
        format!(".{}", leaf_path_shape(leaf))
    };
    let help = escape_help(&format!(
        "{map} ({value_type}){shown}: {}{}",
        leaf.c_type(),
        if per_cpu { ", summed over CPUs" } else { "" }
    ));
    Family {
        base,
        sample,
        kind,
        help,
    }
}

/// The leaf's path with every index as `[]`: `rules[].ruleId`.
fn leaf_path_shape(leaf: &NumericLeaf) -> String {
    let mut s = String::new();
    for step in leaf.path() {
        match step {
            PathStep::Field(f) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(f);
            }
            PathStep::Index(_) => s.push_str("[]"),
        }
    }
    s
}

/// `,rules_index="3"` for each array index on the path: the label is named
/// after the array's field (`value` for the root), `_2`, `_3` ... for the
/// inner dimensions of a multi-dimensional array.
fn index_labels(path: &[PathStep], key_labels: &HashSet<String>) -> String {
    let mut out = String::new();
    let mut field = "value";
    let mut depth = 0;
    for step in path {
        match step {
            PathStep::Field(f) => {
                field = f;
                depth = 0;
            }
            PathStep::Index(i) => {
                depth += 1;
                let mut name = format!("{}_index", snake(field));
                if depth > 1 {
                    name.push_str(&format!("_{depth}"));
                }
                let name = free_label(join(&[&name]), key_labels);
                out.push(',');
                out.push_str(&name);
                out.push_str("=\"");
                out.push_str(&i.to_string());
                out.push('"');
            }
        }
    }
    out
}

/// A struct key's fields as labels, nested names joined with `_`.
fn flatten_key(v: &Value, prefix: &str, out: &mut String) {
    match v {
        Value::Map(m) => {
            for (name, field) in m.iter() {
                let joined;
                let name = if prefix.is_empty() {
                    name
                } else {
                    joined = format!("{prefix}_{name}");
                    &joined
                };
                flatten_key(field, name, out);
            }
        }
        other => label(out, &join(&[prefix]), other),
    }
}

/// Appends `,name="text of v"` (no comma first).
fn label(out: &mut String, name: &str, v: &Value) {
    if !out.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    label_text(v, out);
    out.push('"');
}

fn label_text(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Value::Float(f) => out.push_str(&f.to_string()),
        Value::String(s) => escape_label_value(s, out),
        Value::List(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                label_text(item, out);
            }
        }
        Value::Map(_) => escape_label_value(&v.to_json(), out),
    }
}

/// One sample line: `name{labels} value`.
fn write_sample(
    buf: &mut Vec<u8>,
    name: &str,
    key_labels: &str,
    index_labels: &str,
    cpu: Option<(&str, u32)>,
    n: Number,
) {
    buf.extend_from_slice(name.as_bytes());
    let index_labels = if key_labels.is_empty() {
        index_labels.strip_prefix(',').unwrap_or(index_labels)
    } else {
        index_labels
    };
    if !key_labels.is_empty() || !index_labels.is_empty() || cpu.is_some() {
        buf.push(b'{');
        buf.extend_from_slice(key_labels.as_bytes());
        buf.extend_from_slice(index_labels.as_bytes());
        if let Some((label, id)) = cpu {
            if !key_labels.is_empty() || !index_labels.is_empty() {
                buf.push(b',');
            }
            buf.extend_from_slice(label.as_bytes());
            buf.extend_from_slice(b"=\"");
            buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
            buf.push(b'"');
        }
        buf.push(b'}');
    }
    buf.push(b' ');
    match n {
        Number::Unsigned(u) => buf.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        Number::Signed(i) => buf.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        f @ Number::Float(_) => buf.extend_from_slice(f.to_string().as_bytes()),
    }
    buf.push(b'\n');
}
