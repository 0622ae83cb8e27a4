//! `ebpf-sdk`: program eBPF maps from nothing but the eBPF object file.
//!
//! A thin layer over the `ebpf-sdk` library: clap definitions, turning
//! arguments into library calls, the `$EDITOR` round trip and rendering.
#![forbid(unsafe_code)]

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use ebpf_sdk::schema::{Document, MapSchema};
use ebpf_sdk::{
    parse_entries, parse_inline, source, ApplyEvent, ApplyOptions, EntryCodec, EntryReader,
    ErrorClass, MapHandle, SdkError, UpdateFlags, Value,
};

mod editor;
mod render;

use render::{EntryWriter, Format};

/// Exit codes, documented in `--help` and the README.
mod exit {
    pub const NOT_FOUND: u8 = 1;
    pub const INPUT: u8 = 2;
    pub const KERNEL: u8 = 3;
    pub const INTERRUPTED: u8 = 130;
}

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
struct Cli {
    /// Print only errors (no summaries or progress).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    /// No colors (also when NO_COLOR is set).
    #[arg(long, global = true)]
    no_color: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where the schema comes from.
#[derive(Args, Debug, Clone)]
struct SchemaArgs {
    /// eBPF object to read the schema from.
    #[arg(long, value_name = "FILE", conflicts_with = "schema")]
    elf: Option<PathBuf>,
    /// A saved `extract` output.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Map name in the schema (may be left out when the schema has one map).
    #[arg(long, value_name = "NAME")]
    map: Option<String>,
}

/// Where the map and its schema come from.
#[derive(Args, Debug, Clone)]
struct MapArgs {
    #[command(flatten)]
    schema: SchemaArgs,
    /// Pin path of the map. Without --elf/--schema, the schema is read from
    /// the kernel's BTF for this map.
    #[arg(long, value_name = "PATH")]
    pinned: Option<PathBuf>,
    /// bpffs directory holding maps pinned by name [default: /sys/fs/bpf].
    #[arg(long, value_name = "DIR")]
    pin_dir: Option<PathBuf>,
}

/// Arguments of `apply`.
#[derive(Args, Debug)]
struct ApplyArgs {
    #[command(flatten)]
    target: MapArgs,
    /// State file (`-` for stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: PathBuf,
    /// Delete entries that are not in the file.
    #[arg(long)]
    prune: bool,
    /// Print what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Save the map's current contents here first, in `apply` format, so
    /// `apply --prune -f FILE` restores them. With --prune a backup is made
    /// by default, in $TMPDIR, and its path printed.
    #[arg(long, value_name = "FILE")]
    backup: Option<PathBuf>,
    /// With --prune, do not make the default backup.
    #[arg(long, conflicts_with = "backup")]
    no_backup: bool,
    /// Write a JSON record of what was written here, also when apply stops
    /// part way (map full, kernel refusal, Ctrl-C).
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

/// Formats for `encode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EncodeFormat {
    /// Hex, 4 bytes a group.
    Hex,
    /// `{"key": "<hex>", "value": "<hex>"}` per entry.
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
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
separated by ---, a YAML list, JSON Lines, or what `dump` printed), or several maps as\n`maps: {NAME: [entries]}`.\n\nExample:\n  ebpf-sdk apply --elf fw.o --map ingress_node_firewall_table_map -f rules.yaml --prune --dry-run"
    )]
    Apply(ApplyArgs),
    /// Print the records a program sends through a perf event array, decoded
    /// with a BTF type of the object (bytes past it as `payload`).
    #[command(
        after_help = "Example:\n  ebpf-sdk events --elf fw.o --map ingress_node_firewall_events_map --type event_hdr_st --count 3"
    )]
    Events {
        #[command(flatten)]
        target: MapArgs,
        /// The record header's type in the object's BTF, e.g. event_hdr_st.
        #[arg(long = "type", value_name = "NAME")]
        type_name: String,
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

/// Output settings shared by the commands.
struct Ui {
    quiet: bool,
    color: bool,
}

impl Ui {
    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("{msg}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let color =
        !cli.no_color && std::env::var_os("NO_COLOR").is_none() && io::stderr().is_terminal();
    let ui = Ui {
        quiet: cli.quiet,
        color,
    };
    match run(cli.command, &ui) {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            let prefix = if ui.color {
                "\x1b[31merror:\x1b[0m"
            } else {
                "error:"
            };
            eprintln!("{prefix} {}", chain(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The error and its causes, skipping causes already in the message.
fn chain(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(s) = cause.downcast_ref::<SdkError>() {
            return match s.class() {
                ErrorClass::Kernel => exit::KERNEL,
                ErrorClass::Input => exit::INPUT,
                ErrorClass::Interrupted => exit::INTERRUPTED,
            };
        }
        if cause
            .downcast_ref::<ebpf_sdk::backend::BackendError>()
            .is_some()
        {
            return exit::KERNEL;
        }
    }
    exit::INPUT
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<SdkError>().is_some_and(|s| {
                matches!(s, SdkError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe)
            })
    })
}

fn write_out(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(out) => {
            std::fs::write(out, text).with_context(|| format!("cannot write {}", out.display()))
        }
        None => {
            let mut o = io::stdout().lock();
            o.write_all(text.as_bytes())?;
            o.flush()?;
            Ok(())
        }
    }
}

fn read_input(file: &Path) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if file == Path::new("-") {
        io::Read::read_to_end(&mut io::stdin(), &mut bytes)
            .context("cannot read standard input")?;
    } else {
        bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
        anyhow!("{}:{line}: not valid UTF-8", file.display())
    })
}

fn load_doc(args: &SchemaArgs) -> anyhow::Result<Document> {
    if args.elf.is_none() && args.schema.is_none() {
        bail!("give the schema with --elf FILE or --schema FILE");
    }
    Ok(ebpf_sdk::load_document(
        args.elf.as_deref(),
        args.schema.as_deref(),
    )?)
}

fn pick_map(doc: &Document, name: Option<&str>) -> anyhow::Result<MapSchema> {
    match name {
        Some(n) => Ok(doc.map(n).map_err(SdkError::NoSuchMap)?.clone()),
        None if doc.maps.len() == 1 => Ok(doc.maps[0].clone()),
        None => bail!(
            "give --map NAME; maps: {}",
            doc.maps
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The map's schema and pin path from the arguments.
fn resolve(target: &MapArgs) -> anyhow::Result<(MapSchema, PathBuf)> {
    if target.schema.elf.is_none() && target.schema.schema.is_none() {
        let Some(pin) = &target.pinned else {
            bail!(
                "give the schema with --elf FILE or --schema FILE, or the map with --pinned PATH"
            );
        };
        let doc = ebpf_sdk::describe_pinned(pin)?;
        let map = pick_map(&doc, None)?;
        return Ok((map, pin.clone()));
    }
    let doc = load_doc(&target.schema)?;
    let map = pick_map(&doc, target.schema.map.as_deref())?;
    let pin = source::pin_path(&map, target.pinned.as_deref(), target.pin_dir.as_deref());
    Ok((map, pin))
}

fn open(target: &MapArgs) -> anyhow::Result<MapHandle> {
    let (schema, pin) = resolve(target)?;
    Ok(MapHandle::open(&schema, &pin)?)
}

fn offline_codec(args: &SchemaArgs) -> anyhow::Result<EntryCodec> {
    let doc = load_doc(args)?;
    let map = pick_map(&doc, args.map.as_deref())?;
    let ncpus = if map.is_percpu() {
        ebpf_sdk::backend::num_possible_cpus().context("cannot read the number of possible CPUs")?
    } else {
        1
    };
    Ok(EntryCodec::new(&map, ncpus)?)
}

fn hex_groups(bytes: &[u8]) -> String {
    bytes
        .chunks(4)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = text
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !clean.len().is_multiple_of(2) {
        bail!("{what}: odd number of hex digits ({})", clean.len());
    }
    (0..clean.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&clean[i..i + 2], 16)
                .map_err(|_| anyhow!("{what}: `{}` is not hex", &clean[i..i + 2]))
        })
        .collect()
}

/// Entries from `-f FILE` or `--key`/`--value`.
fn gather(
    file: Option<&Path>,
    key: Option<&str>,
    value: Option<&str>,
) -> anyhow::Result<Vec<ebpf_sdk::Entry>> {
    match (file, key) {
        (Some(f), _) => {
            let text = read_input(f)?;
            let entries = parse_entries(&text, &f.display().to_string())?;
            if entries.is_empty() {
                bail!("{}: no entries", f.display());
            }
            Ok(entries)
        }
        (None, Some(k)) => Ok(vec![ebpf_sdk::Entry {
            map: None,
            key: parse_inline(k, "--key")?,
            value: value.map(|v| parse_inline(v, "--value")).transpose()?,
            byte_order: None,
            origin: "arguments".into(),
        }]),
        (None, None) => match value {
            // Keyless maps (queue, stack, bloom filter): only a value.
            Some(v) => Ok(vec![ebpf_sdk::Entry {
                map: None,
                key: Value::Null,
                value: Some(parse_inline(v, "--value")?),
                byte_order: None,
                origin: "arguments".into(),
            }]),
            None => bail!("give the entry with -f FILE, or --key (and --value)"),
        },
    }
}

fn run(command: Command, ui: &Ui) -> anyhow::Result<ExitCode> {
    match command {
        Command::Extract {
            elf,
            output,
            summary,
        } => {
            let doc = ebpf_sdk_btf_extract(&elf)?;
            if summary {
                let mut out = io::stdout().lock();
                render::write_summary(&mut out, &doc)?;
            } else {
                write_out(output.as_deref(), &doc.to_json_pretty())?;
            }
        }
        Command::Describe { pinned, output } => {
            let doc = ebpf_sdk::describe_pinned(&pinned)?;
            write_out(output.as_deref(), &doc.to_json_pretty())?;
        }
        Command::Template { schema } => {
            let doc = load_doc(&schema)?;
            let map = pick_map(&doc, schema.map.as_deref())?;
            write_out(None, &ebpf_sdk::codec::template(&map))?;
        }
        Command::Encode {
            schema,
            file,
            key,
            value,
            output,
        } => {
            let codec = offline_codec(&schema)?;
            let entries = gather(file.as_deref(), key.as_deref(), value.as_deref())?;
            // Encode everything first: on any error, nothing is printed.
            let mut encoded = Vec::new();
            for e in &entries {
                let k = codec.encode_key(&e.key, e.byte_order, &e.origin)?;
                let v = match &e.value {
                    Some(v) => Some(codec.encode_value(v, e.byte_order, &e.origin)?),
                    None => None,
                };
                encoded.push((k, v));
            }
            let mut out = String::new();
            for (k, v) in encoded {
                match output {
                    EncodeFormat::Hex => {
                        if !k.is_empty() {
                            out.push_str(&format!("key:   {}\n", hex_groups(&k)));
                        }
                        if let Some(v) = v {
                            out.push_str(&format!("value: {}\n", hex_groups(&v)));
                        }
                    }
                    EncodeFormat::Json => {
                        let mut m = serde_json::Map::new();
                        m.insert("key".into(), hex_plain(&k).into());
                        if let Some(v) = v {
                            m.insert("value".into(), hex_plain(&v).into());
                        }
                        out.push_str(&serde_json::Value::Object(m).to_string());
                        out.push('\n');
                    }
                }
            }
            write_out(None, &out)?;
        }
        Command::Decode {
            schema,
            key: _,
            value,
            type_name: Some(type_name),
            output,
        } => {
            let elf = schema.elf.as_deref().unwrap_or(Path::new(""));
            let data =
                std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
            let node = ebpf_sdk::btf::extract_type(&data, &elf.display().to_string(), &type_name)?;
            let bytes = parse_hex(value.as_deref().unwrap_or(""), "--value")?;
            let size = node.size as usize;
            if bytes.len() < size {
                bail!(
                    "--value: {} bytes given, {} is {size} bytes",
                    bytes.len(),
                    node.name
                );
            }
            let plan = ebpf_sdk::codec::Plan::new(
                "value",
                &node,
                ebpf_sdk::schema::ByteOrder::native(),
                &Default::default(),
            )?;
            let mut v = plan.decode(&bytes[..size])?;
            if bytes.len() > size {
                if let Value::Map(m) = &mut v {
                    m.insert(
                        "rest",
                        Value::String(format!("0x{}", hex_plain(&bytes[size..]))),
                    );
                }
            }
            let mut w = EntryWriter::new(io::stdout().lock(), output);
            w.write(ebpf_sdk::Decoded {
                key: Value::Null,
                value: v,
                total: None,
            })?;
            w.finish()?;
        }
        Command::Decode {
            schema,
            key,
            value,
            type_name: None,
            output,
        } => {
            let codec = offline_codec(&schema)?;
            if key.is_none() && value.is_none() {
                bail!("give --key HEX and/or --value HEX");
            }
            let kb = key.as_deref().map(|k| parse_hex(k, "--key")).transpose()?;
            let vb = value
                .as_deref()
                .map(|v| parse_hex(v, "--value"))
                .transpose()?;
            if let Some(k) = &kb {
                if k.len() != codec.key_len() {
                    bail!(
                        "--key: {} bytes given, the map's key is {} bytes",
                        k.len(),
                        codec.key_len()
                    );
                }
            }
            if let Some(v) = &vb {
                if v.len() != codec.value_len() {
                    bail!(
                        "--value: {} bytes given, the map's value is {} bytes",
                        v.len(),
                        codec.value_len()
                    );
                }
            }
            let key = kb
                .as_deref()
                .map(|k| codec.decode_key(k))
                .transpose()?
                .unwrap_or(Value::Null);
            let (value, total) = match vb.as_deref() {
                Some(v) => codec.decode_value(v)?,
                None => (Value::Null, None),
            };
            let mut w = EntryWriter::new(io::stdout().lock(), output);
            w.write(ebpf_sdk::Decoded { key, value, total })?;
            w.finish()?;
        }
        Command::Create { target, file } => return create(&target, file.as_deref(), ui),
        Command::Update {
            target,
            file,
            key,
            value,
            exist,
            noexist,
        } => {
            let flags = if exist {
                UpdateFlags::Exist
            } else if noexist {
                UpdateFlags::NoExist
            } else {
                UpdateFlags::Any
            };
            let map = open(&target)?;
            let entries = gather(file.as_deref(), key.as_deref(), value.as_deref())?;
            write_entries(&map, &entries, flags, ui)?;
        }
        Command::Lookup {
            target,
            key,
            output,
        } => {
            let map = open(&target)?;
            let k = parse_inline(&key, "--key")?;
            match map.lookup(&k)? {
                Some(d) => {
                    let mut w = EntryWriter::new(io::stdout().lock(), output);
                    w.write(d)?;
                    w.finish()?;
                }
                None => {
                    eprintln!("{}: key not found: {}", map.schema().name, k.to_json());
                    return Ok(ExitCode::from(exit::NOT_FOUND));
                }
            }
        }
        Command::Delete { target, key } => {
            let map = open(&target)?;
            let k = parse_inline(&key, "--key")?;
            if !map.delete(&k)? {
                eprintln!("{}: key not found: {}", map.schema().name, k.to_json());
                return Ok(ExitCode::from(exit::NOT_FOUND));
            }
            ui.note(&format!("{}: deleted {}", map.schema().name, k.to_json()));
        }
        Command::Dump { target, output } => {
            let map = open(&target)?;
            let mut w = EntryWriter::new(
                io::BufWriter::with_capacity(1 << 16, io::stdout().lock()),
                output,
            );
            if w.is_json() {
                map.dump_json(|text| w.write_json(text))?;
            } else {
                map.dump(|d| w.write(d))?;
            }
            w.finish()?;
        }
        Command::Apply(args) => return apply(&args, ui),
        Command::Events {
            target,
            type_name,
            count,
            timeout,
        } => return events(&target, &type_name, count, timeout, ui),
        Command::Pop { target } => return pop_or_peek(&target, true),
        Command::Peek { target } => return pop_or_peek(&target, false),
        Command::Enrich {
            schema,
            set,
            pin_dir,
        } => enrich(&schema, &set, pin_dir.as_deref(), ui)?,
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ebpf-sdk", &mut io::stdout());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ebpf_sdk_btf_extract(elf: &Path) -> anyhow::Result<Document> {
    Ok(ebpf_sdk::btf::extract_file(elf)?)
}

fn hex_plain(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn events(
    target: &MapArgs,
    type_name: &str,
    count: Option<usize>,
    timeout: Option<f64>,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let Some(elf) = target.schema.elf.as_deref() else {
        bail!("events needs --elf FILE: the record type comes from the object's BTF");
    };
    let (schema, pin) = resolve(target)?;
    if schema.map_type != "perf_event_array" {
        bail!(
            "{} is a {}, not a perf_event_array",
            schema.name,
            schema.map_type
        );
    }
    let (header, endian) = ebpf_sdk::events::header_type(elf, type_name)?;
    let mut reader = ebpf_sdk::events::EventReader::open(&pin, header, endian)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .context("cannot handle SIGINT")?;
    let deadline =
        timeout.map(|t| std::time::Instant::now() + std::time::Duration::from_secs_f64(t.max(0.0)));
    let mut out = io::stdout().lock();
    let mut seen = 0usize;
    ui.note(&format!(
        "{}: reading events on CPUs {:?} (Ctrl-C stops)",
        schema.name,
        reader.cpus()
    ));
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if count.is_some_and(|c| seen >= c) {
            break;
        }
        let wait = match deadline {
            Some(d) => match d.checked_duration_since(std::time::Instant::now()) {
                Some(left) => left.min(std::time::Duration::from_millis(200)),
                None => break,
            },
            None => std::time::Duration::from_millis(200),
        };
        let max = count.map_or(1024, |c| c - seen);
        for (cpu, mut v) in reader.next_batch(wait, max)? {
            if let Value::Map(m) = &mut v {
                m.insert("cpu", Value::Int(i128::from(cpu)));
            }
            writeln!(out, "{}", v.to_json())?;
            seen += 1;
        }
        out.flush()?;
    }
    if reader.lost() > 0 {
        eprintln!(
            "{}: {} events were lost (the ring was full)",
            schema.name,
            reader.lost()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn pop_or_peek(target: &MapArgs, pop: bool) -> anyhow::Result<ExitCode> {
    let map = open(target)?;
    let v = if pop { map.pop()? } else { map.peek()? };
    match v {
        Some(v) => {
            write_out(None, &v.to_yaml())?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{}: empty", map.schema().name);
            Ok(ExitCode::from(exit::NOT_FOUND))
        }
    }
}

/// Encodes every entry first, then writes them one by one.
fn write_entries(
    map: &MapHandle,
    entries: &[ebpf_sdk::Entry],
    flags: UpdateFlags,
    ui: &Ui,
) -> anyhow::Result<()> {
    // Everything is checked before anything is written; a key given twice
    // is refused, as apply does.
    let mut seen: std::collections::HashMap<Vec<u8>, &str> = Default::default();
    for e in entries {
        if e.value.is_none() {
            bail!("{}: an update needs a value", e.origin);
        }
        map.validate(e)?;
        if !map.schema().is_keyless() {
            let k = map.encode_key(&e.key, e.byte_order, &e.origin)?;
            if let Some(first) = seen.insert(k, &e.origin) {
                return Err(SdkError::DuplicateKey {
                    first: first.to_string(),
                    second: e.origin.clone(),
                }
                .into());
            }
        }
    }
    for e in entries {
        map.write_entry(e, flags)?;
    }
    ui.note(&format!("{}: {} written", map.schema().name, entries.len()));
    Ok(())
}

fn create(target: &MapArgs, file: Option<&Path>, ui: &Ui) -> anyhow::Result<ExitCode> {
    let map = open(target)?;
    if let Some(f) = file {
        let entries = gather(Some(f), None, None)?;
        write_entries(&map, &entries, UpdateFlags::NoExist, ui)?;
        return Ok(ExitCode::SUCCESS);
    }
    let template = ebpf_sdk::codec::template(map.schema());
    let name = format!("{}.yaml", map.schema().name);
    let outcome = editor::edit_until_valid(
        &template,
        &name,
        |text| {
            let entries = parse_entries(text, &name)?;
            if entries.is_empty() {
                bail!("no entry in the file");
            }
            for e in &entries {
                if e.value.is_none() {
                    bail!("{}: the entry needs a value", e.origin);
                }
                map.validate(e)?;
            }
            Ok(entries)
        },
        |msg| ui.note(&format!("invalid entry, reopening the editor: {msg}")),
    )?;
    match outcome {
        editor::Outcome::Done(entries) => {
            write_entries(&map, &entries, UpdateFlags::NoExist, ui)?;
            Ok(ExitCode::SUCCESS)
        }
        editor::Outcome::Aborted(kept) => {
            match kept {
                Some(p) => eprintln!(
                    "aborted: nothing written; your text is kept in {}",
                    p.display()
                ),
                None => {
                    eprintln!("aborted: the entry was saved unchanged or empty; nothing written")
                }
            }
            Ok(ExitCode::from(exit::INPUT))
        }
    }
}

/// What one map's apply reads: the file itself, or entries already read.
enum Input<'a> {
    Reader(Box<dyn io::BufRead>),
    Entries(&'a mut dyn Iterator<Item = Result<ebpf_sdk::Entry, SdkError>>),
}

/// The JSON record `apply --report` writes for each map.
fn report_json(
    map: &str,
    pin: &Path,
    args: &ApplyArgs,
    backup: Option<&Path>,
    r: Result<&ebpf_sdk::ApplyReport, &SdkError>,
) -> serde_json::Value {
    let mut o = serde_json::json!({
        "map": map,
        "pin": pin.display().to_string(),
        "input": args.file.display().to_string(),
        "dry_run": args.dry_run,
        "prune": args.prune,
        "backup": backup.map(|b| b.display().to_string()),
    });
    match r {
        Ok(r) => {
            o["ok"] = true.into();
            o["entries"] = r.entries.into();
            o["written"] = r.written.into();
            o["deleted"] = r.deleted.into();
            if r.diffed {
                o["added"] = r.added.into();
                o["changed"] = r.changed.into();
                o["removed"] = r.removed.into();
                o["unchanged"] = r.unchanged.into();
            }
        }
        Err(e) => {
            o["ok"] = false.into();
            o["error"] = e.to_string().into();
            // Entries are written in input order, so these are the first N
            // entries of the input that needed writing.
            let written = match e {
                SdkError::Batch { applied, .. } => *applied,
                SdkError::Interrupted { written, .. } => *written,
                _ => 0,
            };
            o["written"] = written.into();
        }
    }
    o
}

/// Saves a map in `apply` format (JSON Lines), private to the user.
fn default_backup_path(map: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    std::env::temp_dir().join(format!(
        "ebpf-sdk-backup-{map}-{secs}-{}.jsonl",
        std::process::id()
    ))
}

fn apply(args: &ApplyArgs, ui: &Ui) -> anyhow::Result<ExitCode> {
    let target = &args.target;
    let file = args.file.as_path();
    let dry_run = args.dry_run;
    // Ctrl-C: finish the batch in flight, then stop and say how far we got.
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, cancel.clone())
        .context("cannot handle SIGINT")?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, cancel.clone())
        .context("cannot handle SIGTERM")?;
    let opts = ApplyOptions {
        prune: args.prune,
        dry_run,
        flags: None,
        cancel: Some(cancel),
        ..Default::default()
    };
    let name = file.display().to_string();
    let reader: Box<dyn io::BufRead> = if file == Path::new("-") {
        Box::new(BufReader::new(io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(
            1 << 20,
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?,
        ))
    };
    let progress_bar = (!ui.quiet && io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message("entries");
        pb
    });
    let color = ui.color && io::stdout().is_terminal();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut records: Vec<serde_json::Value> = Vec::new();
    let mut run_one = |map: &MapHandle,
                       pin: &Path,
                       backup: Option<&Path>,
                       input: Input<'_>,
                       out: &mut io::BufWriter<io::StdoutLock<'_>>|
     -> anyhow::Result<()> {
        // Diff lines go to stdout as they are found; an output error stops.
        let mut out_err: Option<io::Error> = None;
        let mut on = |ev: ApplyEvent<'_>| {
            match ev {
            ApplyEvent::Validated(n) => {
                if let Some(pb) = &progress_bar {
                    pb.set_message("entries validated");
                    pb.set_position(n as u64);
                }
            }
            ApplyEvent::Written(n) => {
                if let Some(pb) = &progress_bar {
                    pb.set_message("entries written");
                    pb.set_position(n as u64);
                }
            }
            ApplyEvent::Diff(kind, d) => {
                if (dry_run || !ui.quiet) && out_err.is_none() {
                    if let Err(e) = render::write_diff(out, kind, d, color) {
                        out_err = Some(e);
                    }
                }
            }
            ApplyEvent::BackedUp(path, n) => ui.note(&format!(
                "{}: backup of the {n} current entries in {} (restore: ebpf-sdk apply --prune -f {})",
                map.schema().name,
                path.display(),
                path.display()
            )),
        }
        };
        let opts = ApplyOptions {
            backup: backup.map(Path::to_path_buf),
            ..opts.clone()
        };
        let result = match input {
            Input::Reader(r) => map.apply_reader(r, &name, &opts, &mut on),
            Input::Entries(e) => map.apply(e, &opts, &mut on),
        };
        if let Some(pb) = &progress_bar {
            pb.finish_and_clear();
        }
        records.push(report_json(
            &map.schema().name,
            pin,
            args,
            backup,
            result.as_ref(),
        ));
        let report = result?;
        if let Some(e) = out_err {
            return Err(e.into());
        }
        if std::env::var_os("EBPF_SDK_TIMINGS").is_some() {
            eprintln!(
                "timings: {} entries; validate+encode {:.3}s, diff {:.3}s, kernel write {:.3}s",
                report.entries,
                report.validate_time.as_secs_f64(),
                report.diff_time.as_secs_f64(),
                report.write_time.as_secs_f64()
            );
        }
        if !ui.quiet || dry_run {
            render::write_report(out, &map.schema().name, &report, dry_run)?;
        }
        Ok(())
    };
    let backup_for = |map: &MapHandle, several: bool| -> anyhow::Result<Option<PathBuf>> {
        if dry_run {
            return Ok(None);
        }
        let path = match (&args.backup, args.prune && !args.no_backup) {
            (Some(p), _) if several => {
                PathBuf::from(format!("{}.{}.jsonl", p.display(), map.schema().name))
            }
            (Some(p), _) => p.clone(),
            (None, true) => default_backup_path(&map.schema().name),
            (None, false) => return Ok(None),
        };
        Ok(Some(path))
    };
    let outcome = (|| -> anyhow::Result<()> {
        if target.schema.map.is_some()
            || (target.schema.elf.is_none() && target.schema.schema.is_none())
        {
            // One map: stream the file.
            let (schema, pin) = resolve(target)?;
            let map = MapHandle::open(&schema, &pin)?;
            let backup = backup_for(&map, false)?;
            run_one(
                &map,
                &pin,
                backup.as_deref(),
                Input::Reader(reader),
                &mut out,
            )?;
            return Ok(());
        }
        // A state file naming maps: read it, check every map and entry, then
        // write map by map.
        let entries: Vec<ebpf_sdk::Entry> =
            EntryReader::new(reader, &name).collect::<Result<_, _>>()?;
        let doc = load_doc(&target.schema)?;
        let mut names: Vec<String> = Vec::new();
        for e in &entries {
            let Some(m) = &e.map else {
                bail!(
                    "{}: this file does not name maps (`maps: {{NAME: [...]}}`); give --map NAME",
                    e.origin
                );
            };
            doc.map(m).map_err(SdkError::NoSuchMap)?;
            if !names.contains(m) {
                names.push(m.clone());
            }
        }
        let mut handles = Vec::new();
        for n in &names {
            let schema = doc.map(n).map_err(SdkError::NoSuchMap)?;
            let pin = source::pin_path(schema, None, target.pin_dir.as_deref());
            let h = MapHandle::open(schema, &pin)?;
            // Validate this map's entries before anything is written anywhere.
            for e in entries
                .iter()
                .filter(|e| e.map.as_deref() == Some(n.as_str()))
            {
                h.validate(e)?;
            }
            handles.push((h, pin));
        }
        for (h, pin) in &handles {
            let backup = backup_for(h, handles.len() > 1)?;
            let mut mine = entries
                .iter()
                .filter(|e| e.map.as_deref() == Some(h.schema().name.as_str()))
                .cloned()
                .map(Ok);
            run_one(
                h,
                pin,
                backup.as_deref(),
                Input::Entries(&mut mine),
                &mut out,
            )?;
        }
        Ok(())
    })();
    out.flush()?;
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&serde_json::Value::Array(records))? + "\n";
        std::fs::write(path, text)
            .with_context(|| format!("cannot write the report {}", path.display()))?;
    }
    outcome?;
    Ok(ExitCode::SUCCESS)
}

fn enrich(schema: &Path, set: &[String], pin_dir: Option<&Path>, ui: &Ui) -> anyhow::Result<()> {
    let mut doc = ebpf_sdk::load_document(None, Some(schema))?;
    if !set.is_empty() {
        for s in set {
            let (name, path) = s
                .split_once('=')
                .ok_or_else(|| anyhow!("--set {s}: expected NAME=PATH"))?;
            let map = doc.map_mut(name).map_err(SdkError::NoSuchMap)?;
            map.pin_path = Some(path.to_string());
        }
    } else {
        if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
            bail!("no terminal to pick pinned maps on; pass --set NAME=PATH for each map");
        }
        let dir = pin_dir.unwrap_or(Path::new(source::DEFAULT_PIN_DIR));
        let pins = find_pinned_maps(dir);
        for i in 0..doc.maps.len() {
            let m = &doc.maps[i];
            let candidates: Vec<&(PathBuf, ebpf_sdk::backend::MapInfo)> = pins
                .iter()
                .filter(|(_, info)| {
                    info.map_type == m.map_type_id
                        && info.key_size == m.key_size
                        && info.value_size == m.value_size
                })
                .collect();
            if candidates.is_empty() {
                ui.note(&format!(
                    "{}: no pinned map of matching type and sizes under {}",
                    m.name,
                    dir.display()
                ));
                continue;
            }
            let mut items: Vec<String> = candidates
                .iter()
                .map(|(p, info)| format!("{} ({} id {})", p.display(), info.name, info.id))
                .collect();
            items.push("(skip)".into());
            let choice = dialoguer::Select::new()
                .with_prompt(format!("pin path for {}", m.summary()))
                .items(&items)
                .default(0)
                .interact()?;
            if let Some((p, _)) = candidates.get(choice) {
                doc.maps[i].pin_path = Some(p.display().to_string());
            }
        }
    }
    std::fs::write(schema, doc.to_json_pretty())
        .with_context(|| format!("cannot write {}", schema.display()))?;
    ui.note(&format!("{}: pin paths recorded", schema.display()));
    Ok(())
}

/// Every pinned map under `dir`, recursively (bounded depth).
fn find_pinned_maps(dir: &Path) -> Vec<(PathBuf, ebpf_sdk::backend::MapInfo)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < 4 => stack.push((p, depth + 1)),
                Ok(t) if t.is_file() => {
                    if let Ok(m) = ebpf_sdk::backend::Map::open_pinned_read_only(&p) {
                        out.push((p, m.info().clone()));
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
