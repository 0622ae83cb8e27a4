//! `create`, `update`, `lookup`, `delete`, `pop` and `peek`: one entry at a time.

use std::io;
use std::path::Path;
use std::process::ExitCode;

use anyhow::bail;
use ebpf_sdk::{parse_entries, parse_inline, InputErrorKind, MapHandle, SdkError, UpdateFlags};

use super::{gather, write_out};
use crate::args::MapArgs;
use crate::editor;
use crate::exit;
use crate::render::{EntryWriter, Format};
use crate::Ui;

/// The update flags of `--exist` / `--noexist`.
pub(crate) fn flags(exist: bool, noexist: bool) -> UpdateFlags {
    if exist {
        UpdateFlags::Exist
    } else if noexist {
        UpdateFlags::NoExist
    } else {
        UpdateFlags::Any
    }
}

/// Writes entries (all checked first) and says how many.
fn write(
    map: &MapHandle,
    entries: &[ebpf_sdk::Entry],
    flags: UpdateFlags,
    ui: &Ui,
) -> anyhow::Result<()> {
    let n = map.write_entries(entries, flags)?;
    ui.note(&format!("{}: {n} written", map.name()));
    Ok(())
}

/// `update`: entries from a file or the arguments.
pub(crate) fn update(
    target: &MapArgs,
    file: Option<&Path>,
    key: Option<&str>,
    value: Option<&str>,
    flags: UpdateFlags,
    ui: &Ui,
) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
    map.codec().writable()?;
    let entries = gather(file, key, value)?;
    write(&map, &entries, flags, ui)?;
    Ok(ExitCode::SUCCESS)
}

/// `create`: new entries from a file, or written in `$EDITOR` on the
/// map's template (reopened until they are valid).
pub(crate) fn create(target: &MapArgs, file: Option<&Path>, ui: &Ui) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
    map.codec().writable()?;
    if let Some(f) = file {
        let entries = gather(Some(f), None, None)?;
        write(&map, &entries, UpdateFlags::NoExist, ui)?;
        return Ok(ExitCode::SUCCESS);
    }
    let template = ebpf_sdk::codec::template(map.schema());
    let name = format!("{}.yaml", map.name());
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
                    bail!("{}: the entry needs a value", e.location);
                }
                map.validate(e)?;
            }
            Ok(entries)
        },
        |msg| ui.note(&format!("invalid entry, reopening the editor: {msg}")),
    )?;
    match outcome {
        editor::Outcome::Done(entries) => {
            write(&map, &entries, UpdateFlags::NoExist, ui)?;
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

/// An inline `--key`, with errors that name the argument.
fn inline_key(key: &str) -> anyhow::Result<ebpf_sdk::Value> {
    Ok(parse_inline(key, "--key")?)
}

/// Errors about a key given inline name `--key`.
fn at_key(e: SdkError) -> anyhow::Error {
    match e {
        SdkError::Input(i)
            if matches!(i.kind, InputErrorKind::Value(_)) && i.location.is_empty() =>
        {
            anyhow::anyhow!("--key: {}", i.kind)
        }
        e => e.into(),
    }
}

/// `lookup`: the entry of a key (exit 1 when absent).
pub(crate) fn lookup(target: &MapArgs, key: &str, output: Format) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
    let k = inline_key(key)?;
    match map.lookup(&k).map_err(at_key)? {
        Some(d) => {
            let mut w = EntryWriter::new(io::stdout().lock(), output);
            w.write(d)?;
            w.finish()?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{}: key not found: {}", map.name(), k.to_json());
            Ok(ExitCode::from(exit::NOT_FOUND))
        }
    }
}

/// `delete`: one key (exit 1 when absent).
pub(crate) fn delete(target: &MapArgs, key: &str, ui: &Ui) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
    let k = inline_key(key)?;
    if !map.delete(&k).map_err(at_key)? {
        eprintln!("{}: key not found: {}", map.name(), k.to_json());
        return Ok(ExitCode::from(exit::NOT_FOUND));
    }
    ui.note(&format!("{}: deleted {}", map.name(), k.to_json()));
    Ok(ExitCode::SUCCESS)
}

/// `pop` and `peek`: the next value of a queue or stack.
pub(crate) fn pop_or_peek(target: &MapArgs, pop: bool) -> anyhow::Result<ExitCode> {
    let map = target.open()?;
    let v = if pop { map.pop()? } else { map.peek()? };
    match v {
        Some(v) => {
            write_out(None, &v.to_yaml())?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("{}: empty", map.name());
            Ok(ExitCode::from(exit::NOT_FOUND))
        }
    }
}
