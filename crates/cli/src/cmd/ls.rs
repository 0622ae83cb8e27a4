//! `ls`: what is pinned under a bpffs directory, and which map of a schema
//! each pinned map is.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use ebpf_sdk::{Object, DEFAULT_PIN_DIR};

use crate::render::{self, PinRow, PinsFormat};

/// `ls [--pin-dir DIR] [-o table|json] [--elf F | --schema F]`.
pub(crate) fn ls(
    pin_dir: Option<&Path>,
    output: PinsFormat,
    elf: Option<&Path>,
    schema: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let obj = match (elf, schema) {
        (Some(elf), _) => Some(Object::from_elf(elf)?),
        (None, Some(schema)) => Some(Object::from_schema_file(schema)?),
        (None, None) => None,
    };
    let dir = pin_dir.unwrap_or(Path::new(DEFAULT_PIN_DIR));
    let rows: Vec<PinRow> = ebpf_sdk::list_pinned(dir)?
        .into_iter()
        .map(|p| {
            let m = obj.as_ref().and_then(|o| o.match_pinned(&p));
            (p, m)
        })
        .collect();
    let out = &mut io::stdout().lock();
    match output {
        PinsFormat::Table => render::write_pins_table(out, &rows, obj.is_some())?,
        PinsFormat::Json => render::write_pins_json(out, &rows, obj.is_some())?,
    }
    Ok(ExitCode::SUCCESS)
}
