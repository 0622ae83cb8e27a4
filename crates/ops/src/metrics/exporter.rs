//! [`Exporter`]: maps at their pins, read at every scrape, reopened when
//! the pin holds another map, and the exporter's own metrics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ebpf_sdk::backend::Map;
use ebpf_sdk::schema::MapSchema;
use ebpf_sdk::{MapHandle, SdkError};

use super::layout::MapMetrics;
use super::{check_overrides, own_family, write_family, Exposition, MetricKind, MetricsOptions};
use crate::OpsError;

/// What an exporter knows about one map after a scrape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapStatus {
    /// Whether the last scrape read it.
    pub up: bool,
    /// The kernel id of the map it read (0 before the first success).
    pub id: u32,
    /// Entries read by the last successful scrape.
    pub entries: usize,
    /// How long the last scrape of this map took.
    pub duration: Duration,
    /// Scrapes that failed to read it.
    pub errors: u64,
    /// Times a new map was found at its pin and opened.
    pub reopens: u64,
    /// Why the last scrape failed, if it did.
    pub last_error: Option<String>,
}

/// Something that happened to a map during a scrape, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScrapeEvent {
    /// The map could not be read (its samples are left out of this scrape).
    Failed {
        /// Map name.
        map: String,
        /// Why.
        error: String,
    },
    /// Another map is pinned at the map's pin now (the program was
    /// reloaded); it was opened and checked against the schema.
    Reopened {
        /// Map name.
        map: String,
        /// The kernel id of the map read before (0: none yet).
        old_id: u32,
        /// The kernel id of the map read now.
        new_id: u32,
    },
}

/// One exported map.
#[derive(Debug)]
struct Exported {
    schema: MapSchema,
    pin: PathBuf,
    metrics: MapMetrics,
    handle: Option<MapHandle>,
    status: MapStatus,
}

/// Serves metrics of maps: see the [module docs](super).
#[derive(Debug)]
pub struct Exporter {
    maps: Vec<Exported>,
}

impl Exporter {
    /// Compiles the metrics of each `(schema, pin)`. Maps are not opened
    /// here: a map that is not pinned yet is reported by each scrape until
    /// it is. Refused: a map that cannot be exported
    /// ([`MapMetrics::new`]), two maps whose metric names collide, and an
    /// override that names no exported field.
    pub fn new(
        maps: Vec<(MapSchema, PathBuf)>,
        opts: &MetricsOptions,
    ) -> Result<Exporter, OpsError> {
        if !super::names::valid_prefix(&opts.prefix) {
            return Err(OpsError::BadPrefix {
                prefix: opts.prefix.clone(),
            });
        }
        let mut exported: Vec<Exported> = Vec::with_capacity(maps.len());
        let mut names: BTreeSet<String> = BTreeSet::new();
        for (schema, pin) in maps {
            let metrics = MapMetrics::new(&schema, opts)?;
            for n in metrics.metric_names() {
                if !names.insert(n.to_string()) {
                    let other = exported
                        .iter()
                        .find(|e| e.metrics.metric_names().contains(&n))
                        .map_or_else(|| schema.name.clone(), |e| e.schema.name.clone());
                    return Err(OpsError::NameClash {
                        metric: n.to_string(),
                        maps: [other, schema.name.clone()],
                    });
                }
            }
            exported.push(Exported {
                schema,
                pin,
                metrics,
                handle: None,
                status: MapStatus::default(),
            });
        }
        let layouts: Vec<MapMetrics> = exported.iter().map(|e| e.metrics.clone()).collect();
        check_overrides(&layouts, opts)?;
        Ok(Exporter { maps: exported })
    }

    /// The compiled metrics of every map.
    pub fn maps(&self) -> impl Iterator<Item = &MapMetrics> {
        self.maps.iter().map(|e| &e.metrics)
    }

    /// What the last scrape found for the map called `name`.
    pub fn status(&self, name: &str) -> Option<&MapStatus> {
        self.maps
            .iter()
            .find(|e| e.schema.name == name)
            .map(|e| &e.status)
    }

    /// Reads every map and writes the exposition to `out`: each map's
    /// families, then the exporter's own. A map that cannot be read is left
    /// out of this scrape (its `ebpf_sdk_map_up` is 0 and its error count
    /// goes up); returns what happened, for logs.
    pub fn scrape(&mut self, format: Exposition, out: &mut Vec<u8>) -> Vec<ScrapeEvent> {
        let mut events = Vec::new();
        for e in &mut self.maps {
            let t = Instant::now();
            let mut text = Vec::new();
            let result = read_map(e, format, &mut text, &mut events);
            e.status.duration = t.elapsed();
            match result {
                Ok(n) => {
                    e.status.up = true;
                    e.status.entries = n;
                    e.status.last_error = None;
                    out.extend_from_slice(&text);
                }
                Err(err) => {
                    let error = err.to_string();
                    e.status.up = false;
                    e.status.errors += 1;
                    e.status.last_error = Some(error.clone());
                    // A map that failed is read from a fresh open next time.
                    e.handle = None;
                    events.push(ScrapeEvent::Failed {
                        map: e.schema.name.clone(),
                        error,
                    });
                }
            }
        }
        self.write_own(format, out);
        if format == Exposition::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        events
    }

    /// `ebpf_sdk_*`: how each map's scrape went.
    fn write_own(&self, format: Exposition, out: &mut Vec<u8>) {
        type Get = fn(&MapStatus) -> String;
        let own: [(&str, MetricKind, &str, Get); 5] = [
            (
                "ebpf_sdk_scrape_duration_seconds",
                MetricKind::Gauge,
                "How long reading the map took in this scrape.",
                |s| format!("{:?}", s.duration.as_secs_f64()),
            ),
            (
                "ebpf_sdk_scrape_errors_total",
                MetricKind::Counter,
                "Scrapes that could not read the map (missing pin, schema mismatch, kernel error).",
                |s| s.errors.to_string(),
            ),
            (
                "ebpf_sdk_map_up",
                MetricKind::Gauge,
                "Whether this scrape read the map (1) or not (0).",
                |s| u8::from(s.up).to_string(),
            ),
            (
                "ebpf_sdk_map_entries",
                MetricKind::Gauge,
                "Entries read from the map by the last successful scrape.",
                |s| s.entries.to_string(),
            ),
            (
                "ebpf_sdk_map_reopens_total",
                MetricKind::Counter,
                "Times another map was found at the pin (a program reload) and opened.",
                |s| s.reopens.to_string(),
            ),
        ];
        for (name, kind, help, get) in own {
            let f = own_family(name, kind, help);
            let mut samples = Vec::new();
            for e in &self.maps {
                let mut map = String::new();
                super::names::escape_label_value(&e.schema.name, &mut map);
                samples.extend_from_slice(
                    format!("{}{{map=\"{map}\"}} {}\n", f.sample, get(&e.status)).as_bytes(),
                );
            }
            write_family(out, &f, &samples, format);
        }
    }
}

/// The kernel id of the map pinned at `pin`.
fn pinned_id(pin: &Path) -> Result<u32, SdkError> {
    Ok(Map::open_pinned_read_only(pin)?.info().id)
}

/// Reads one map and writes its families (reopening it first when its pin
/// holds another map); returns the number of entries.
fn read_map(
    e: &mut Exported,
    format: Exposition,
    out: &mut Vec<u8>,
    events: &mut Vec<ScrapeEvent>,
) -> Result<usize, OpsError> {
    let id = pinned_id(&e.pin)?;
    let current = e.handle.as_ref().map(|h| h.backend().info().id);
    if current != Some(id) {
        let handle = MapHandle::open(&e.schema, &e.pin)?;
        let new_id = handle.backend().info().id;
        if e.status.id != 0 && e.status.id != new_id {
            e.status.reopens += 1;
            events.push(ScrapeEvent::Reopened {
                map: e.schema.name.clone(),
                old_id: e.status.id,
                new_id,
            });
        }
        e.status.id = new_id;
        e.handle = Some(handle);
    }
    match e.handle.as_ref() {
        Some(handle) => e.metrics.write(handle, format, out),
        None => Ok(0),
    }
}
