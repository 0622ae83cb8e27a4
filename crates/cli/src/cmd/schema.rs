//! `extract`, `describe`, `template` and `json-schema`: describing maps;
//! `completions` and `man-pages`: describing the command itself.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::CommandFactory;
use ebpf_sdk::{JsonSchemaOptions, Object};

use super::write_out;
use crate::args::{Cli, Cpus, SchemaArgs};
use crate::render;
use crate::Ui;

/// `extract`: every map of an object as the schema document.
pub(crate) fn extract(
    elf: &Path,
    output: Option<&Path>,
    summary: bool,
) -> anyhow::Result<ExitCode> {
    let obj = Object::from_elf(elf)?;
    if summary {
        render::write_summary(&mut io::stdout().lock(), obj.document())?;
    } else {
        write_out(output, &obj.document().to_json_pretty())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `describe`: a pinned map's schema from the kernel's BTF.
pub(crate) fn describe(pinned: &Path, output: Option<&Path>) -> anyhow::Result<ExitCode> {
    let obj = Object::from_pinned(pinned)?;
    write_out(output, &obj.document().to_json_pretty())?;
    Ok(ExitCode::SUCCESS)
}

/// `template`: a commented YAML skeleton of an entry, after the modeline
/// that points editors at its JSON Schema when one is asked for.
pub(crate) fn template(args: &SchemaArgs, modeline: Option<&str>) -> anyhow::Result<ExitCode> {
    let obj = args.object()?;
    let map = obj.map(&args.map_name(&obj)?)?;
    let mut text = match modeline {
        Some(location) => ebpf_sdk::codec::yaml_modeline(location)?,
        None => String::new(),
    };
    text.push_str(&ebpf_sdk::codec::template(map));
    write_out(None, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// Where `json-schema` reads the maps from: one of the three.
pub(crate) struct SchemaSource<'a> {
    pub(crate) elf: Option<&'a Path>,
    pub(crate) schema: Option<&'a Path>,
    pub(crate) pinned: Option<&'a Path>,
}

/// `json-schema`: the JSON Schema of a map's entry files, or of a state
/// file for several maps.
pub(crate) fn json_schema(
    source: &SchemaSource<'_>,
    maps: &[String],
    cpus: Option<Cpus>,
    output: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let obj = match (source.elf, source.schema, source.pinned) {
        (Some(elf), _, _) => Object::from_elf(elf)?,
        (None, Some(schema), _) => Object::from_schema_file(schema)?,
        (None, None, Some(pin)) => Object::from_pinned(pin)?,
        (None, None, None) => {
            bail!("give the maps with --elf FILE, --schema FILE or --pinned PATH")
        }
    };
    let ncpus = match cpus {
        Some(Cpus::Count(n)) => Some(n),
        Some(Cpus::Any) => None,
        None => Some(ebpf_sdk::backend::num_possible_cpus()?),
    };
    let mut names: Vec<&str> = maps.iter().map(String::as_str).collect();
    if names.is_empty() {
        if let Ok(only) = obj.only_map() {
            names.push(&only.name);
        }
    }
    let schema = obj.json_schema(&names, &JsonSchemaOptions::default().ncpus(ncpus))?;
    let mut text = serde_json::to_string_pretty(&schema)?;
    text.push('\n');
    write_out(output, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// `completions`: a shell completion script.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ebpf-sdk", &mut script);
    if shell == clap_complete::Shell::Bash {
        // clap_complete (4.6.12 and before) spells the bash state of a
        // subcommand of a hyphenated program two ways: `ebpf__sdk__subcmd__X`
        // where it tracks the words, `ebpf__subcmd__sdk__subcmd__X` in the
        // `case` that completes X's options, so those never complete
        // (clap-rs/clap#6421). One spelling for both:
        let text = String::from_utf8(script)?.replace("ebpf__subcmd__sdk", "ebpf__sdk");
        script = text.into_bytes();
    }
    let mut out = io::stdout().lock();
    io::Write::write_all(&mut out, &script)?;
    io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `man-pages`: `ebpf-sdk.1` and `ebpf-sdk-COMMAND.1` for every command,
/// from the same clap definitions as `--help`.
pub(crate) fn man_pages(dir: &Path, ui: &Ui) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
    ui.note(&format!("manual pages written to {}", dir.display()));
    Ok(ExitCode::SUCCESS)
}
