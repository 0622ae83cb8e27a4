//! Prometheus metrics from any map, from its BTF alone.
//!
//! Every numeric field of a map's value becomes a metric family named
//! `<prefix>_<map>_<field path>` (in `snake_case`, e.g.
//! `ebpf_ingress_node_firewall_statistics_map_deny_stats_packets_total`),
//! with the entry's key as labels: a scalar key is `key="..."`, a struct
//! key gives one label per field (`prefix_len`, `ingress_ifindex`,
//! `ip_data`), addresses as text and enum values by name, as `dump` shows
//! them. An array element's index is a label named after the array
//! (`rules_index="3"`). Per-CPU values are summed, or with
//! [`MetricsOptions::per_cpu_label`] kept apart by a `cpu` label.
//!
//! A field is a counter when its name ends with a word of
//! [`COUNTER_WORDS`] (`packets`, `bytes`, `count`, `total`, ...; for a map
//! whose whole value is one number, the map's name decides) and does not
//! start with one of [`GAUGE_FIRST_WORDS`] (`max`, `last`, ...), else a gauge;
//! enums and `_Bool` are always gauges. [`KindOverride`] sets it per field.
//! Counters' samples end in `_total`. `# HELP` names the map, the C type
//! of the value, the field's path in it and its C type.
//!
//! [`Exporter`] reads maps at their pins with the batch lookup path at
//! every scrape, reopens a map whose pin now holds another map (a program
//! reload), and reports on itself with `ebpf_sdk_scrape_duration_seconds`,
//! `ebpf_sdk_scrape_errors_total`, `ebpf_sdk_map_up`,
//! `ebpf_sdk_map_entries` and `ebpf_sdk_map_reopens_total`.
//!
//! ```no_run
//! use ebpf_sdk::Object;
//! use ebpf_sdk_ops::metrics::{Exporter, Exposition, MetricsOptions};
//!
//! let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
//! let name = "ingress_node_firewall_statistics_map";
//! let maps = vec![(obj.map(name)?.clone(), obj.pin_path(name)?)];
//! let mut exporter = Exporter::new(maps, &MetricsOptions::default())?;
//! let mut text = Vec::new();
//! exporter.scrape(Exposition::Text, &mut text);
//! print!("{}", String::from_utf8_lossy(&text));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod exporter;
mod layout;
mod names;

use std::io::Write;

pub use exporter::{Exporter, MapStatus, ScrapeEvent};
pub use layout::MapMetrics;
pub use names::{is_counter_name, snake, COUNTER_WORDS, GAUGE_FIRST_WORDS};

use crate::OpsError;
use layout::Family;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up (reset when the map is recreated); samples end in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

impl MetricKind {
    /// `counter` or `gauge`, as `# TYPE` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        }
    }
}

/// Sets one field's kind, overriding the name heuristic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindOverride {
    /// Only this map's field; `None`: the field of every exported map
    /// that has it.
    pub map: Option<String>,
    /// The field as `dump` names it, array indices left out:
    /// `deny_stats.packets`, `rules.ruleId`; `value` when the whole value is
    /// one number (a leading `value.` is accepted).
    pub field: String,
    /// What it is.
    pub kind: MetricKind,
}

impl KindOverride {
    /// Parses `[MAP:]FIELD`, e.g. `ingress_node_firewall_statistics_map:deny_stats.bytes`.
    pub fn parse(text: &str, kind: MetricKind) -> Result<KindOverride, OpsError> {
        let (map, field) = match text.split_once(':') {
            Some((m, f)) => (Some(m.to_string()), f),
            None => (None, text),
        };
        if field.is_empty() || map.as_deref() == Some("") {
            return Err(OpsError::BadOverride {
                text: text.to_string(),
            });
        }
        Ok(KindOverride {
            map,
            field: field.to_string(),
            kind,
        })
    }
}

/// How maps become metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsOptions {
    /// The first word of every metric name (default `ebpf`).
    pub prefix: String,
    /// Keep per-CPU values apart with a `cpu` label instead of summing them.
    pub per_cpu_label: bool,
    /// Per-field counter/gauge settings; a later one wins.
    pub kinds: Vec<KindOverride>,
    /// At most this many numeric fields (array elements counted) per value
    /// (default 10,000): a value with a large array of numbers is refused
    /// instead of exporting a metric per element.
    pub max_fields: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            prefix: "ebpf".into(),
            per_cpu_label: false,
            kinds: Vec::new(),
            max_fields: 10_000,
        }
    }
}

/// The exposition format of a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Exposition {
    /// The format a client asks for in its `Accept` header: OpenMetrics
    /// when it lists `application/openmetrics-text` (as Prometheus does),
    /// else the text format.
    pub fn negotiate(accept: Option<&str>) -> Exposition {
        let wants_om = accept.is_some_and(|a| {
            a.split(',').any(|part| {
                let mut params = part.split(';');
                let media = params.next().unwrap_or("").trim();
                let refused = params.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .is_some_and(|q| q.trim().parse::<f64>().is_ok_and(|q| q <= 0.0))
                });
                media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
            })
        });
        if wants_om {
            Exposition::OpenMetrics
        } else {
            Exposition::Text
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Exposition::Text => "text/plain; version=0.0.4; charset=utf-8",
            Exposition::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Checks that every override names a field some exported map has (and,
/// when it names a map, that this map is exported and has the field).
pub(crate) fn check_overrides(
    layouts: &[MapMetrics],
    opts: &MetricsOptions,
) -> Result<(), OpsError> {
    for o in &opts.kinds {
        let field = o.field.strip_prefix("value.").unwrap_or(&o.field);
        let candidates: Vec<&MapMetrics> = layouts
            .iter()
            .filter(|l| o.map.as_deref().is_none_or(|m| m == l.map()))
            .collect();
        if let Some(m) = &o.map {
            if candidates.is_empty() {
                return Err(OpsError::NotExported {
                    map: m.clone(),
                    exported: layouts.iter().map(|l| l.map().to_string()).collect(),
                });
            }
        }
        if !candidates
            .iter()
            .any(|l| l.fields().iter().any(|f| f == field))
        {
            let l = candidates.first().copied();
            return Err(OpsError::NoSuchField {
                map: l.map_or_else(String::new, |l| l.map().to_string()),
                field: o.field.clone(),
                fields: l.map(|l| l.fields()).unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Writes one family: `# HELP`, `# TYPE` and its samples (already
/// rendered, one per line).
pub(crate) fn write_family(out: &mut Vec<u8>, family: &Family, samples: &[u8], format: Exposition) {
    let name = match format {
        Exposition::OpenMetrics => &family.base,
        Exposition::Text => &family.sample,
    };
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, "# HELP {name} {}", family.help);
    let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
    out.extend_from_slice(samples);
}

/// A family built in code (the exporter's own metrics).
pub(crate) fn own_family(name: &str, kind: MetricKind, help: &str) -> Family {
    let base = match kind {
        MetricKind::Counter => name.strip_suffix("_total").unwrap_or(name).to_string(),
        MetricKind::Gauge => name.to_string(),
    };
    Family {
        sample: match kind {
            MetricKind::Counter => format!("{base}_total"),
            MetricKind::Gauge => base.clone(),
        },
        base,
        kind,
        help: help.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_negotiation() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Exposition::negotiate(Some(prom)), Exposition::OpenMetrics);
        assert_eq!(Exposition::negotiate(None), Exposition::Text);
        assert_eq!(Exposition::negotiate(Some("*/*")), Exposition::Text);
        assert_eq!(
            Exposition::negotiate(Some("application/openmetrics-text;q=0, text/plain")),
            Exposition::Text
        );
    }

    #[test]
    fn overrides_parse() {
        let o = KindOverride::parse("stats:deny_stats.bytes", MetricKind::Gauge).unwrap();
        assert_eq!(o.map.as_deref(), Some("stats"));
        assert_eq!(o.field, "deny_stats.bytes");
        assert!(KindOverride::parse("", MetricKind::Gauge).is_err());
        assert!(KindOverride::parse(":x", MetricKind::Gauge).is_err());
        assert!(KindOverride::parse("m:", MetricKind::Gauge).is_err());
    }
}
