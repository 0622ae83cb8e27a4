//! The command line: clap definitions, and turning arguments into library
//! objects (an [`Object`] and a map name, an open [`MapHandle`]).

use std::path::PathBuf;

use anyhow::bail;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ebpf_sdk::{MapHandle, Object};

use crate::render::Format;

const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  key not found (lookup, delete)
  2  usage or input error (nothing was written)
  3  the kernel refused, or the pinned map does not match the schema
130  interrupted (apply stops after the batch in flight and says how far it got)

Quick start:
  ebpf-sdk extract --elf fw.o -o fw.schema.json
  ebpf-sdk template --schema fw.schema.json --map ingress_node_firewall_table_map > rule.yaml
  ebpf-sdk create --schema fw.schema.json --map ingress_node_firewall_table_map -f rule.yaml
  ebpf-sdk dump --schema fw.schema.json --map ingress_node_firewall_table_map";

/// Program eBPF maps from the BTF in the eBPF object file.
#[derive(Parser, Debug)]
#[command(name = "ebpf-sdk", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Print only errors (no summaries or progress).
    #[arg(long, short = 'q', global = true)]
    pub(crate) quiet: bool,
    /// No colors (also when NO_COLOR is set).
    #[arg(long, global = true)]
    pub(crate) no_color: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where the schema comes from.
#[derive(Args, Debug, Clone)]
pub(crate) struct SchemaArgs {
    /// eBPF object to read the schema from.
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    pub(crate) elf: Option<PathBuf>,
    /// A saved `extract` output.
    #[arg(long, value_name = "FILE")]
    pub(crate) schema: Option<PathBuf>,
    /// Map name in the schema (may be left out when the schema has one map).
    #[arg(long, value_name = "NAME")]
    pub(crate) map: Option<String>,
}

/// Where the map and its schema come from.
#[derive(Args, Debug, Clone)]
pub(crate) struct MapArgs {
    #[command(flatten)]
    pub(crate) schema: SchemaArgs,
    /// Pin path of the map. Without --elf/--schema, the schema is read from
    /// the kernel's BTF for this map.
    #[arg(long, value_name = "PATH")]
    pub(crate) pinned: Option<PathBuf>,
    /// bpffs directory holding maps pinned by name [default: /sys/fs/bpf].
    #[arg(long, value_name = "DIR")]
    pub(crate) pin_dir: Option<PathBuf>,
}

/// Arguments of `apply`.
#[derive(Args, Debug)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub(crate) target: MapArgs,
    /// State file (`-` for stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// Delete entries that are not in the file. An array's indices cannot
    /// be deleted: those not in the file are reset to zero (`0` lines in
    /// the diff, counted as `reset`). The map is backed up first.
    #[arg(long)]
    pub(crate) prune: bool,
    /// Print what would change; write nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Save the map's current contents here first, in `apply` format, so
    /// `apply --prune -f FILE` restores them. With --prune a backup is made
    /// by default, in $TMPDIR, and its path printed.
    #[arg(long, value_name = "FILE")]
    pub(crate) backup: Option<PathBuf>,
    /// With --prune, do not make the default backup.
    #[arg(long, conflicts_with = "backup")]
    pub(crate) no_backup: bool,
    /// Write a JSON record of what was written here, also when apply stops
    /// part way (map full, kernel refusal, Ctrl-C).
    #[arg(long, value_name = "FILE", conflicts_with = "watch")]
    pub(crate) report: Option<PathBuf>,
    /// Keep running: apply at start, then whenever FILE changes (also a
    /// Kubernetes ConfigMap update or an editor's rename), whenever a map's
    /// pin holds another map (a program reload), and every --resync. A bad
    /// file is reported and the maps keep the last good state. One log line
    /// per reconcile on stderr; SIGTERM/SIGINT stop after the batch in
    /// flight. No backup is made unless --backup FILE (overwritten each time).
    #[arg(long)]
    pub(crate) watch: bool,
    /// With --watch: apply again after this many seconds without a change.
    #[arg(long, value_name = "SECS", default_value = "300", requires = "watch", value_parser = seconds)]
    pub(crate) resync: f64,
    /// With --watch: look for a replaced map at the pins this often (also
    /// woken by changes in the pins' directories).
    #[arg(long, value_name = "SECS", default_value = "1", requires = "watch", value_parser = seconds)]
    pub(crate) pin_check: f64,
    /// With --watch: the log line format, one line per reconcile (readable
    /// text, or one JSON object).
    #[arg(long, value_enum, default_value = "text", requires = "watch")]
    pub(crate) log_format: LogFormat,
    /// With --watch: serve /healthz, /readyz and /metrics (reconcile
    /// counters) here. No authentication: keep it on localhost or the pod
    /// network.
    #[arg(long, value_name = "ADDR:PORT", requires = "watch")]
    pub(crate) listen: Option<String>,
}

/// Formats of `apply --watch` log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    // One readable line per reconcile. (Plain comments: documented
    // variants would switch `apply --help` to the long layout.)
    Text,
    // One JSON object per line.
    Json,
}

/// A positive number of seconds (fractions allowed).
fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 31_536_000.0 => Ok(s),
        _ => Err(format!(
            "`{text}` is not a number of seconds between 0 and one year"
        )),
    }
}

/// Arguments of `export`.
#[derive(Args, Debug)]
pub(crate) struct ExportArgs {
    /// eBPF object to read the schema from.
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    pub(crate) elf: Option<PathBuf>,
    /// A saved `extract` output.
    #[arg(long, value_name = "FILE")]
    pub(crate) schema: Option<PathBuf>,
    /// A map of the schema to export (repeatable).
    #[arg(long = "map", value_name = "NAME")]
    pub(crate) maps: Vec<String>,
    /// bpffs directory holding maps pinned by name [default: /sys/fs/bpf].
    #[arg(long, value_name = "DIR")]
    pub(crate) pin_dir: Option<PathBuf>,
    /// Without --elf/--schema: a pinned map to export, described from the
    /// kernel's BTF (repeatable).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["elf", "schema", "maps", "pin_dir"])]
    pub(crate) pinned: Vec<PathBuf>,
    /// Where to serve /metrics. The endpoint has no authentication: keep it
    /// on localhost unless a network policy decides who may read it.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9437")]
    pub(crate) listen: String,
    /// First word of every metric name.
    #[arg(long, value_name = "PREFIX", default_value = "ebpf")]
    pub(crate) prefix: String,
    /// Keep per-CPU values apart with a `cpu` label instead of summing them.
    #[arg(long)]
    pub(crate) per_cpu: bool,
    /// Export this field as a counter whatever its name: [MAP:]FIELD, e.g.
    /// `deny_stats.packets` (repeatable).
    #[arg(long, value_name = "[MAP:]FIELD")]
    pub(crate) counter: Vec<String>,
    /// Export this field as a gauge whatever its name (repeatable).
    #[arg(long, value_name = "[MAP:]FIELD")]
    pub(crate) gauge: Vec<String>,
    /// Print one scrape to standard output and exit, instead of serving.
    #[arg(long)]
    pub(crate) once: bool,
    /// With --once: the exposition format (Prometheus text 0.0.4, or
    /// OpenMetrics 1.0).
    #[arg(long, value_enum, default_value = "text", requires = "once")]
    pub(crate) format: ExpositionFormat,
}

/// Exposition formats of `export --once`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExpositionFormat {
    // Prometheus text format 0.0.4.
    Text,
    // OpenMetrics 1.0.
    Openmetrics,
}

/// Formats for `encode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum EncodeFormat {
    /// Hex, 4 bytes a group.
    Hex,
    /// `{"key": "<hex>", "value": "<hex>"}` per entry.
    Json,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Describe every map of an eBPF object as a JSON schema document.
    #[command(
        after_help = "Example:\n  ebpf-sdk extract --elf firewall-ebpf/firewall.bpf.o -o fw.schema.json"
    )]
    Extract {
        /// The eBPF object (clang -g -target bpf).
        #[arg(long, value_name = "FILE")]
        elf: PathBuf,
        /// Write the document here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
        /// Print one line per map instead of the JSON document.
        #[arg(long, conflicts_with = "output")]
        summary: bool,
    },
    /// Describe a pinned map from the BTF the kernel holds for it (no ELF needed).
    #[command(
        after_help = "Example:\n  ebpf-sdk describe --pinned /sys/fs/bpf/ingress_node_firewall_table_map"
    )]
    Describe {
        /// Pin path of the map.
        #[arg(long, value_name = "PATH")]
        pinned: PathBuf,
        /// Write the document here instead of standard output.
        #[arg(short = 'o', long = "output", value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Print a YAML skeleton of an entry, with the C type of every field.
    #[command(
        after_help = "Example:\n  ebpf-sdk template --elf fw.o --map ingress_node_firewall_table_map > rule.yaml"
    )]
    Template {
        #[command(flatten)]
        schema: SchemaArgs,
    },
    /// Encode entries to the exact key and value bytes (no kernel needed).
    #[command(
        after_help = "Example:\n  ebpf-sdk encode --elf fw.o --map ingress_node_firewall_table_map -f rule.yaml"
    )]
    Encode {
        #[command(flatten)]
        schema: SchemaArgs,
        /// Entry file (YAML, JSON, JSON Lines; `-` for stdin).
        #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with_all = ["key", "value"])]
        file: Option<PathBuf>,
        /// The key, inline (YAML or JSON).
        #[arg(long)]
        key: Option<String>,
        /// The value, inline (YAML or JSON).
        #[arg(long)]
        value: Option<String>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "hex")]
        output: EncodeFormat,
    },
    /// Decode key and value bytes into named fields (no kernel needed).
    #[command(
        after_help = "Example:\n  ebpf-sdk decode --elf fw.o --map ingress_node_firewall_table_map --key 40000000060000000a0a0a02000000000000000000000000"
    )]
    Decode {
        #[command(flatten)]
        schema: SchemaArgs,
        /// Key bytes in hex (spaces and 0x allowed).
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// Value bytes in hex (for per-CPU maps, every CPU's slot).
        #[arg(long, value_name = "HEX")]
        value: Option<String>,
        /// Decode --value as this BTF type of the --elf object instead of a
        /// map's value, e.g. an event record: `--type event_hdr_st`. Bytes past
        /// the type's size are shown as `rest`.
        #[arg(long = "type", value_name = "NAME", requires = "elf", conflicts_with_all = ["map", "key"])]
        type_name: Option<String>,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: Format,
    },
    /// Add an entry that must not exist yet, written in $EDITOR or given with -f.
    #[command(
        after_help = "Example:\n  ebpf-sdk create --elf fw.o --map ingress_node_firewall_table_map\n  EDITOR=nano ebpf-sdk create --elf fw.o --map ingress_node_firewall_table_map"
    )]
    Create {
        #[command(flatten)]
        target: MapArgs,
        /// Entry file instead of the editor (`-` for stdin).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Write entries (create or replace by default).
    #[command(
        after_help = "Example:\n  ebpf-sdk update --elf fw.o --map ingress_node_firewall_table_map \\\n    --key '{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}' \\\n    --value '{rules: [{ruleId: 1, protocol: 1, icmpType: 8, action: 2}]}'"
    )]
    Update {
        #[command(flatten)]
        target: MapArgs,
        /// Entry file (`-` for stdin).
        #[arg(short = 'f', long = "file", value_name = "FILE", conflicts_with_all = ["key", "value"])]
        file: Option<PathBuf>,
        /// The key, inline (YAML or JSON).
        #[arg(long)]
        key: Option<String>,
        /// The value, inline (YAML or JSON).
        #[arg(long)]
        value: Option<String>,
        /// Only replace existing entries.
        #[arg(long, conflicts_with = "noexist")]
        exist: bool,
        /// Only add new entries.
        #[arg(long)]
        noexist: bool,
    },
    /// Print the entry of a key (exit 1 when it is not there).
    #[command(
        after_help = "Example:\n  ebpf-sdk lookup --elf fw.o --map ingress_node_firewall_statistics_map --key 1"
    )]
    Lookup {
        #[command(flatten)]
        target: MapArgs,
        /// The key, inline (YAML or JSON).
        #[arg(long)]
        key: String,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: Format,
    },
    /// Delete a key (exit 1 when it is not there).
    #[command(
        after_help = "Example:\n  ebpf-sdk delete --elf fw.o --map ingress_node_firewall_table_map --key '{prefixLen: 64, ingress_ifindex: 6, ip_data: 10.10.10.2}'"
    )]
    Delete {
        #[command(flatten)]
        target: MapArgs,
        /// The key, inline (YAML or JSON).
        #[arg(long)]
        key: String,
    },
    /// Print every entry, decoded; the output is valid input to `apply`.
    #[command(
        after_help = "Example:\n  ebpf-sdk dump --elf fw.o --map ingress_node_firewall_statistics_map -o table"
    )]
    Dump {
        #[command(flatten)]
        target: MapArgs,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
        output: Format,
    },
    /// Make maps hold the entries of a file: validate everything, then write in batches.
    #[command(
        after_help = "The file holds one map's entries with --map (one key:/value: document, several\n\
separated by ---, a YAML list, JSON Lines, or what `dump` printed), or several maps as\n`maps: {NAME: [entries]}`.\n\nExample:\n  ebpf-sdk apply --elf fw.o --map ingress_node_firewall_table_map -f rules.yaml --prune --dry-run\n  ebpf-sdk apply --elf fw.o -f /etc/ebpf-sdk/state.yaml --prune --watch --log-format json"
    )]
    Apply(ApplyArgs),
    /// Serve Prometheus metrics of maps: every numeric field of the value, the key as labels.
    #[command(
        after_help = "Metric names are <prefix>_<map>_<field path> in snake_case; counters (fields\n\
named like packets, bytes, count, total, ...) end in _total. The endpoint has no\n\
authentication.\n\nExample:\n  ebpf-sdk export --elf fw.o --map ingress_node_firewall_statistics_map --listen 127.0.0.1:9437\n  ebpf-sdk export --elf fw.o --map ingress_node_firewall_statistics_map --once | promtool check metrics"
    )]
    Export(ExportArgs),
    /// Print the records a program sends through a perf event array, decoded
    /// with a BTF type of the object (bytes past it as `payload`).
    #[command(
        after_help = "Example:\n  ebpf-sdk events --elf fw.o --map ingress_node_firewall_events_map --type event_hdr_st --count 3"
    )]
    Events {
        #[command(flatten)]
        target: MapArgs,
        /// The record header's type in the object's BTF, e.g. event_hdr_st
        /// [default: the type the map declares with __type(value, ...)].
        #[arg(long = "type", value_name = "NAME")]
        type_name: Option<String>,
        /// Stop after this many events.
        #[arg(long, value_name = "N")]
        count: Option<usize>,
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
    },
    /// Remove and print the next value of a queue or stack.
    #[command(
        after_help = "Example:\n  ebpf-sdk pop --elf app.o --map events_queue --pinned /sys/fs/bpf/events_queue"
    )]
    Pop {
        #[command(flatten)]
        target: MapArgs,
    },
    /// Print the next value of a queue or stack without removing it.
    #[command(
        after_help = "Example:\n  ebpf-sdk peek --elf app.o --map events_queue --pinned /sys/fs/bpf/events_queue"
    )]
    Peek {
        #[command(flatten)]
        target: MapArgs,
    },
    /// Record pin paths in a saved schema, so later commands find the maps.
    #[command(
        after_help = "Example:\n  ebpf-sdk enrich --schema fw.schema.json --set ingress_node_firewall_table_map=/sys/fs/bpf/tc/globals/ingress_node_firewall_table_map"
    )]
    Enrich {
        /// The schema file to update in place.
        #[arg(long, value_name = "FILE")]
        schema: PathBuf,
        /// NAME=PATH, repeatable; without it, pick interactively.
        #[arg(long, value_name = "NAME=PATH")]
        set: Vec<String>,
        /// Directory to search for pinned maps when picking [default: /sys/fs/bpf].
        #[arg(long, value_name = "DIR")]
        pin_dir: Option<PathBuf>,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  ebpf-sdk completions bash > /etc/bash_completion.d/ebpf-sdk"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl SchemaArgs {
    /// The object the schema comes from: `--elf` or `--schema`.
    pub(crate) fn object(&self) -> anyhow::Result<Object> {
        match (&self.elf, &self.schema) {
            (Some(elf), _) => Ok(Object::from_elf(elf)?),
            (None, Some(schema)) => Ok(Object::from_schema_file(schema)?),
            (None, None) => bail!("give the schema with --elf FILE or --schema FILE"),
        }
    }

    /// The map `--map` names, or the object's only map.
    pub(crate) fn map_name(&self, obj: &Object) -> anyhow::Result<String> {
        map_name(obj, self.map.as_deref())
    }
}

/// The map called `name`, or the only map of `obj` when no name is given.
pub(crate) fn map_name(obj: &Object, name: Option<&str>) -> anyhow::Result<String> {
    match name {
        Some(n) => Ok(obj.map(n)?.name.clone()),
        None => match obj.only_map() {
            Ok(m) => Ok(m.name.clone()),
            Err(ebpf_sdk::SdkError::MapNotNamed { maps }) => {
                bail!("give --map NAME; maps: {}", maps.join(", "))
            }
            Err(e) => Err(e.into()),
        },
    }
}

impl MapArgs {
    /// Whether a schema was given (`--elf` or `--schema`).
    pub(crate) fn has_schema(&self) -> bool {
        self.schema.elf.is_some() || self.schema.schema.is_some()
    }

    /// The object (from `--elf`/`--schema` with `--pin-dir`, else the
    /// kernel's BTF of `--pinned`), the map's name and its pin path.
    pub(crate) fn resolve(&self) -> anyhow::Result<(Object, String, PathBuf)> {
        if !self.has_schema() {
            let Some(pin) = &self.pinned else {
                bail!(
                    "give the schema with --elf FILE or --schema FILE, or the map with --pinned PATH"
                );
            };
            let obj = Object::from_pinned(pin)?;
            let name = map_name(&obj, None)?;
            return Ok((obj, name, pin.clone()));
        }
        let mut obj = self.schema.object()?;
        if let Some(dir) = &self.pin_dir {
            obj = obj.with_pin_dir(dir);
        }
        let name = self.schema.map_name(&obj)?;
        let pin = match &self.pinned {
            Some(p) => p.clone(),
            None => obj.pin_path(&name)?,
        };
        Ok((obj, name, pin))
    }

    /// The map, open and checked against its schema.
    pub(crate) fn open(&self) -> anyhow::Result<MapHandle> {
        let (obj, name, pin) = self.resolve()?;
        Ok(obj.open_at(&name, pin)?)
    }
}
