//! `dump`: every entry, decoded, in a form `apply` reads back.

use std::io;
use std::process::ExitCode;

use crate::args::MapArgs;
use crate::render::{EntryWriter, Format};

/// `dump`: JSON straight from the bytes; other formats through values.
pub(crate) fn dump(target: &MapArgs, output: Format) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
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
    Ok(ExitCode::SUCCESS)
}
