//! `extract`, `describe`, `template` and `completions`: describing maps.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use clap::CommandFactory;
use ebpf_sdk::Object;

use super::write_out;
use crate::args::{Cli, SchemaArgs};
use crate::render;

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

/// `template`: a commented YAML skeleton of an entry.
pub(crate) fn template(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    let obj = args.object()?;
    let map = obj.map(&args.map_name(&obj)?)?;
    write_out(None, &ebpf_sdk::codec::template(map))?;
    Ok(ExitCode::SUCCESS)
}

/// `completions`: a shell completion script.
pub(crate) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    clap_complete::generate(shell, &mut Cli::command(), "ebpf-sdk", &mut io::stdout());
    Ok(ExitCode::SUCCESS)
}
