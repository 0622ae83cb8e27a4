//! Rendering entries and reports. Every function takes `&mut impl Write`, so
//! tests call them without a process.

use std::io::{self, Write};

use clap::ValueEnum;
use ebpf_sdk::{ApplyReport, Decoded, DiffKind, Value};
use ebpf_sdk_ops::watch::{rfc3339, Reconcile, Trigger};

/// Output formats of commands that print entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A YAML list of `{key, value}` (valid `apply` input).
    Yaml,
    /// One JSON array.
    Json,
    /// One JSON object per line (valid `apply` input).
    Jsonl,
    /// Aligned columns, for maps whose key and value are flat.
    Table,
}

/// An entry as `{key, value, total}`; `total` only for per-CPU maps.
pub fn entry_value(d: Decoded) -> Value {
    d.into_value()
}

/// Streams entries in one format. Call [`EntryWriter::finish`] at the end.
pub struct EntryWriter<W: Write> {
    out: W,
    format: Format,
    count: usize,
    rows: Vec<Vec<(String, String)>>,
}

impl<W: Write> EntryWriter<W> {
    /// Starts writing.
    pub fn new(out: W, format: Format) -> Self {
        EntryWriter {
            out,
            format,
            count: 0,
            rows: Vec::new(),
        }
    }

    /// Writes one entry.
    pub fn write(&mut self, d: Decoded) -> io::Result<()> {
        let v = entry_value(d);
        match self.format {
            Format::Yaml => {
                // A one-item list renders as `- key: ...`: items concatenate
                // into one YAML list without holding the dump in memory.
                let text = Value::List(vec![v]).to_yaml();
                self.out.write_all(text.as_bytes())?;
            }
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
                self.out.write_all(v.to_json().as_bytes())?;
            }
            Format::Jsonl => {
                self.out.write_all(v.to_json().as_bytes())?;
                self.out.write_all(b"\n")?;
            }
            Format::Table => {
                let mut row = Vec::new();
                flatten("", &v, &mut row);
                self.rows.push(row);
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Writes one entry given as its JSON text (`{"key":...,"value":...}`,
    /// from [`ebpf_sdk::MapHandle::dump_json`]); only for the JSON formats.
    pub fn write_json(&mut self, text: &[u8]) -> io::Result<()> {
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"[\n" } else { b",\n" })?;
                self.out.write_all(text)?;
            }
            Format::Jsonl => {
                self.out.write_all(text)?;
                self.out.write_all(b"\n")?;
            }
            Format::Yaml | Format::Table => {
                return Err(io::Error::other("write_json needs a JSON format"))
            }
        }
        self.count += 1;
        Ok(())
    }

    /// Whether the format is JSON text ([`EntryWriter::write_json`] applies).
    pub fn is_json(&self) -> bool {
        matches!(self.format, Format::Json | Format::Jsonl)
    }

    /// Ends the output (closes the JSON array, prints the table).
    pub fn finish(mut self) -> io::Result<usize> {
        match self.format {
            Format::Json => {
                self.out
                    .write_all(if self.count == 0 { b"[]\n" } else { b"\n]\n" })?;
            }
            Format::Yaml if self.count == 0 => self.out.write_all(b"[]\n")?,
            Format::Table => write_table(&mut self.out, &self.rows)?,
            _ => {}
        }
        self.out.flush()?;
        Ok(self.count)
    }
}

/// Dotted paths to scalar leaves: `key.prefixLen`, `value.rules[0].action`.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Map(m) => {
            for (k, x) in m.iter() {
                let p = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::List(items) => {
            for (i, x) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), x, out);
            }
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "~".into(),
        Value::String(s) => s.clone(),
        other => other.to_json(),
    }
}

fn write_table(out: &mut impl Write, rows: &[Vec<(String, String)>]) -> io::Result<()> {
    // Columns in first-seen order across rows.
    let mut cols: Vec<String> = Vec::new();
    for r in rows {
        for (c, _) in r {
            if !cols.contains(c) {
                cols.push(c.clone());
            }
        }
    }
    let cell = |r: &Vec<(String, String)>, c: &str| -> String {
        r.iter()
            .find(|(k, _)| k == c)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let widths: Vec<usize> = cols
        .iter()
        .map(|c| {
            rows.iter()
                .map(|r| cell(r, c).chars().count())
                .chain([c.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |out: &mut dyn Write, cells: Vec<String>| -> io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, cols.clone())?;
    for r in rows {
        line(out, cols.iter().map(|c| cell(r, c)).collect())?;
    }
    Ok(())
}

/// One difference line of `--dry-run`: `+ {...}` added, `~ {...}` changed
/// (the new value), `- {...}` removed, `0 {...}` an array index reset to
/// zero (its current value).
pub fn write_diff(
    out: &mut impl Write,
    kind: DiffKind,
    d: &Decoded,
    color: bool,
) -> io::Result<()> {
    let (sign, code) = match kind {
        DiffKind::Added => ("+", "32"),
        DiffKind::Changed => ("~", "33"),
        DiffKind::Removed => ("-", "31"),
        DiffKind::Reset => ("0", "35"),
    };
    let line = format!("{sign} {}", entry_value(d.clone()).to_json());
    if color {
        writeln!(out, "\x1b[{code}m{line}\x1b[0m")
    } else {
        writeln!(out, "{line}")
    }
}

/// The apply summary.
pub fn write_report(
    out: &mut impl Write,
    map: &str,
    r: &ApplyReport,
    dry_run: bool,
) -> io::Result<()> {
    if r.diffed {
        // Array indices to reset only where there are any: other maps
        // have none.
        let reset = match r.reset {
            0 => String::new(),
            n => format!(", {n} reset"),
        };
        writeln!(
            out,
            "{map}: {} added, {} changed, {} removed{reset}, {} unchanged{}",
            r.added,
            r.changed,
            r.removed,
            r.unchanged,
            if dry_run {
                " (dry run: nothing written)"
            } else {
                ""
            }
        )?;
    }
    if !dry_run {
        let zeroed = match r.zeroed {
            0 => String::new(),
            n => format!(", {n} reset to zero"),
        };
        writeln!(
            out,
            "{map}: {} written, {} deleted{zeroed}",
            r.written, r.deleted
        )?;
    }
    Ok(())
}

/// One log line for a reconcile of `apply --watch`: JSON (the library's
/// record) or text, `TIME reconcile trigger=T outcome=O 3.1ms FILE: what
/// each map's apply did[: error]`.
pub fn write_reconcile(out: &mut impl Write, r: &Reconcile, json: bool) -> io::Result<()> {
    if json {
        serde_json::to_writer(&mut *out, r)?;
        return writeln!(out);
    }
    write!(
        out,
        "{} reconcile trigger={} outcome={} {:.1}ms {}",
        rfc3339(r.at),
        r.trigger.name(),
        r.outcome.name(),
        r.duration.as_secs_f64() * 1e3,
        r.file.display()
    )?;
    if let Trigger::MapReplaced {
        map,
        old_id,
        new_id,
        ..
    } = &r.trigger
    {
        let old = old_id.map_or_else(|| "none".to_string(), |i| i.to_string());
        write!(out, " ({map}: map id {old} -> {new_id})")?;
    }
    for rec in &r.records {
        match &rec.result {
            Ok(rep) if rep.diffed => write!(
                out,
                "; {}: {} added, {} changed, {} removed, {} unchanged",
                rec.map, rep.added, rep.changed, rep.removed, rep.unchanged
            )?,
            Ok(rep) => write!(out, "; {}: {} written", rec.map, rep.written)?,
            Err(f) => write!(out, "; {}: {} written, then failed", rec.map, f.written)?,
        }
    }
    if let ebpf_sdk_ops::watch::Outcome::BadFile { restored: true, .. } = r.outcome {
        write!(out, "; the last good state was written again")?;
    }
    if let Some(e) = r.outcome.error() {
        write!(out, ": {}", e.replace('\n', " "))?;
    }
    writeln!(out)
}

/// `s` as one word for a POSIX shell: as is when it holds only characters
/// no shell treats specially, else in single quotes (a `'` as `'\''`).
pub fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// One line per map: name, type, sizes, flags, pinning.
pub fn write_summary(out: &mut impl Write, doc: &ebpf_sdk::schema::Document) -> io::Result<()> {
    let w = doc
        .maps
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:w$}  {:17} {:>5} {:>6} {:>8}  {:22} pinning",
        "map", "type", "key", "value", "max", "flags"
    )?;
    for m in &doc.maps {
        let flags = m.flags.to_string();
        let pin = m.pinning.name();
        writeln!(
            out,
            "{:w$}  {:17} {:>5} {:>6} {:>8}  {:22} {pin}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries, flags
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebpf_sdk::codec::Map;

    fn d(k: i128, v: i128) -> Decoded {
        let mut m = Map::new();
        m.insert("packets", Value::Int(v));
        Decoded {
            key: Value::Int(k),
            value: Value::Map(m),
            total: None,
        }
    }

    fn render(format: Format) -> String {
        let mut buf = Vec::new();
        let mut w = EntryWriter::new(&mut buf, format);
        w.write(d(1, 10)).unwrap();
        w.write(d(22, 5)).unwrap();
        w.finish().unwrap();
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn shell_words_survive_the_shell() {
        assert_eq!(shell_word("/sys/fs/bpf/m"), "/sys/fs/bpf/m");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME;rm"), "'$HOME;rm'");
        // What sh makes of them is the original text.
        for w in ["a b", "it's", "", "$x `y` \"z\"", "tab\there", "*?[]"] {
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("printf %s {}", shell_word(w))])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), w);
        }
    }

    #[test]
    fn reports_count_resets_where_there_are_any() {
        let mut r = ApplyReport {
            diffed: true,
            added: 1,
            unchanged: 2,
            written: 1,
            ..Default::default()
        };
        let text = |r: &ApplyReport| {
            let mut buf = Vec::new();
            write_report(&mut buf, "m", r, false).unwrap();
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            text(&r),
            "m: 1 added, 0 changed, 0 removed, 2 unchanged\nm: 1 written, 0 deleted\n"
        );
        r.reset = 3;
        r.zeroed = 3;
        assert_eq!(
            text(&r),
            "m: 1 added, 0 changed, 0 removed, 3 reset, 2 unchanged\n\
             m: 1 written, 0 deleted, 3 reset to zero\n"
        );
    }

    #[test]
    fn formats_render_entries() {
        assert_eq!(
            render(Format::Yaml),
            "- key: 1\n  value:\n    packets: 10\n- key: 22\n  value:\n    packets: 5\n"
        );
        assert_eq!(
            render(Format::Jsonl),
            "{\"key\":1,\"value\":{\"packets\":10}}\n{\"key\":22,\"value\":{\"packets\":5}}\n"
        );
        assert_eq!(
            render(Format::Table),
            "key  value.packets\n1    10\n22   5\n"
        );
        assert!(render(Format::Json).starts_with("[\n{\"key\":1"));
    }
}
