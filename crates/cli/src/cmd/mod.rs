//! One file per command (or per family of commands): each turns parsed
//! arguments into calls of the `ebpf-sdk` library and renders the result.

use std::io::{self, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context};
use ebpf_sdk::{parse_entries, parse_inline, Entry, Location, Value};

pub(crate) mod apply;
pub(crate) mod codec;
pub(crate) mod dump;
pub(crate) mod enrich;
pub(crate) mod entry;
pub(crate) mod events;
pub(crate) mod export;
pub(crate) mod schema;

/// Writes `text` to `output`, or to standard output.
pub(crate) fn write_out(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
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

/// The text of a file (`-` for standard input), which must be UTF-8.
pub(crate) fn read_input(file: &Path) -> anyhow::Result<String> {
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

/// Entries from `-f FILE` or `--key`/`--value`.
pub(crate) fn gather(
    file: Option<&Path>,
    key: Option<&str>,
    value: Option<&str>,
) -> anyhow::Result<Vec<Entry>> {
    match (file, key) {
        (Some(f), _) => {
            let text = read_input(f)?;
            let entries = parse_entries(&text, &f.display().to_string())?;
            if entries.is_empty() {
                bail!("{}: no entries", f.display());
            }
            Ok(entries)
        }
        (None, Some(k)) => Ok(vec![Entry::new(
            parse_inline(k, "--key")?,
            value.map(|v| parse_inline(v, "--value")).transpose()?,
            Location::named("arguments"),
        )]),
        (None, None) => match value {
            // Keyless maps (queue, stack, bloom filter): only a value.
            Some(v) => Ok(vec![Entry::new(
                Value::Null,
                Some(parse_inline(v, "--value")?),
                Location::named("arguments"),
            )]),
            None => bail!("give the entry with -f FILE, or --key (and --value)"),
        },
    }
}

/// Bytes as hex, 4 bytes a group.
pub(crate) fn hex_groups(bytes: &[u8]) -> String {
    bytes.chunks(4).map(hex_plain).collect::<Vec<_>>().join(" ")
}

/// Bytes as hex, no separators.
pub(crate) fn hex_plain(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Hex digits (spaces, colons and a leading `0x` allowed) as bytes.
pub(crate) fn parse_hex(text: &str, what: &str) -> anyhow::Result<Vec<u8>> {
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
