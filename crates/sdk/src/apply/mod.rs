//! Making a map hold a set of entries: validate everything, compare with the
//! live map, back it up, prune and write in batches.
//!
//! - [`MapHandle::apply`] takes entries from any iterator,
//!   [`MapHandle::apply_reader`] a file in any of [`crate::EntryReader`]'s
//!   shapes (JSON Lines are parsed on several threads straight into bytes);
//! - [`MapHandle::diff`] says what an apply would change;
//! - [`crate::Object::apply_state`] applies a state file naming several maps;
//! - [`ApplyRecord`] is the serializable record of one map's apply.
//!
//! The work is split by step: [`engine`] holds the duplicate check, the
//! difference, backup, prune and batch writes of a filled spool; [`jsonl`]
//! the parallel JSON Lines reader; [`state`] the multi-map state file.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpf_sdk_backend::UpdateFlags;
use ebpf_sdk_codec::Value;
use serde::Serialize;

use crate::entries::{Entry, EntryReader};
use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::{Decoded, MapHandle};
use crate::spool::{write_err, Spool};
use crate::SdkError;

mod engine;
mod parallel;
mod state;

/// Whether and where `apply` saves the map's entries before it writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Backup {
    /// No backup.
    #[default]
    Off,
    /// A new private file in the temporary directory, named after the map
    /// and the time ([`Backup::default_path`]).
    Auto,
    /// This file (for a state file of several maps: `<file>.<map>.jsonl`).
    To(PathBuf),
}

impl Backup {
    /// `$TMPDIR/ebpf-sdk-backup-<map>-<unix seconds>-<pid>.jsonl`.
    pub fn default_path(map: &str) -> PathBuf {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        std::env::temp_dir().join(format!(
            "ebpf-sdk-backup-{map}-{secs}-{}.jsonl",
            std::process::id()
        ))
    }
}

/// What `apply` should do.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// Delete entries that are in the map but not in the input; in an
    /// array (`array`, `percpu_array`), whose indices cannot be deleted,
    /// reset those indices to zero.
    pub prune: bool,
    /// Compute and report the difference, write nothing.
    pub dry_run: bool,
    /// Flags for every update (default: create or replace).
    pub flags: UpdateFlags,
    /// Set (e.g. from a SIGINT handler) to stop: before any write nothing is
    /// written; during writes the current batch completes and the error says
    /// how many entries were written.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Threads parsing JSON Lines in [`MapHandle::apply_reader`] (default:
    /// the CPUs, at most 4).
    pub parse_threads: usize,
    /// Save the map's entries (JSON Lines, `apply` format, mode 0600) after
    /// the input validated and before the first write, so applying that
    /// file with `prune` restores them. Not with `dry_run`.
    pub backup: Backup,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            prune: false,
            dry_run: false,
            flags: UpdateFlags::Any,
            cancel: None,
            parse_threads: std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4),
            backup: Backup::Off,
        }
    }
}

impl ApplyOptions {
    /// The backup file for `map`, if one is made: [`Backup::Auto`] gets a
    /// new name each time, so resolve once ([`ApplyOptions::for_map`]).
    fn backup_path(&self, map: &str, several: bool) -> Option<PathBuf> {
        if self.dry_run {
            return None;
        }
        match &self.backup {
            Backup::Off => None,
            Backup::Auto => Some(Backup::default_path(map)),
            Backup::To(p) if several => Some(PathBuf::from(format!("{}.{map}.jsonl", p.display()))),
            Backup::To(p) => Some(p.clone()),
        }
    }

    /// These options for one map's apply, the backup resolved to a file.
    pub fn for_map(&self, map: &str) -> ApplyOptions {
        self.resolved(map, false)
    }

    pub(crate) fn resolved(&self, map: &str, several: bool) -> ApplyOptions {
        ApplyOptions {
            backup: self
                .backup_path(map, several)
                .map_or(Backup::Off, Backup::To),
            ..self.clone()
        }
    }

    /// The resolved backup file.
    pub fn backup_file(&self) -> Option<&Path> {
        match &self.backup {
            Backup::To(p) if !self.dry_run => Some(p),
            _ => None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// The difference between the input and the map, and what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Entries in the input.
    pub entries: usize,
    /// Whether the map was read to compute the difference (prune or dry run).
    pub diffed: bool,
    /// Input keys not in the map.
    pub added: usize,
    /// Input keys in the map with another value.
    pub changed: usize,
    /// Input entries already in the map with the same value (not rewritten).
    pub unchanged: usize,
    /// Keys in the map but not in the input (deleted with `prune`).
    pub removed: usize,
    /// Indices of an array (`array`, `percpu_array`) not in the input that
    /// hold something other than zeros: an array cannot delete, so with
    /// `prune` they are reset to zero.
    pub reset: usize,
    /// Entries written to the kernel.
    pub written: usize,
    /// Entries deleted from the kernel.
    pub deleted: usize,
    /// Array indices reset to zero in the kernel (with `prune`).
    pub zeroed: usize,
    /// Time spent reading, validating and encoding the input (seconds in JSON).
    #[serde(serialize_with = "secs")]
    pub validate_time: Duration,
    /// Time spent reading the live map for the difference.
    #[serde(serialize_with = "secs")]
    pub diff_time: Duration,
    /// Time spent in kernel writes (batch updates and deletes).
    #[serde(serialize_with = "secs")]
    pub write_time: Duration,
}

/// One kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// In the input, not in the map.
    Added,
    /// In both, with different values (the input's value is reported).
    Changed,
    /// In the map, not in the input.
    Removed,
    /// An array index not in the input that holds something other than
    /// zeros (its current value is reported): `prune` resets it to zero.
    Reset,
}

/// What `apply` reports while it works.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApplyEvent<'a> {
    /// Entries validated and encoded so far.
    Validated(usize),
    /// Entries written so far.
    Written(usize),
    /// One difference (only when the map is read: prune or dry run).
    Diff(DiffKind, &'a Decoded),
    /// The map's entries (this many) were saved to the backup file.
    BackedUp(&'a Path, usize),
    /// The apply of this map is complete (what it returns).
    Done(&'a ApplyReport),
}

/// What an apply would change ([`MapHandle::diff`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    /// Input entries whose key is not in the map.
    pub added: Vec<Decoded>,
    /// Input entries whose key is in the map with another value.
    pub changed: Vec<Decoded>,
    /// Map entries whose key is not in the input.
    pub removed: Vec<Decoded>,
    /// Array entries not in the input holding something other than zeros
    /// (what `prune` resets to zero), with their current values.
    pub reset: Vec<Decoded>,
    /// The counts.
    pub report: ApplyReport,
}

/// The record of one map's apply, as `ebpf-sdk apply --report` writes it:
/// where, what was asked, and what happened (also when it failed part way).
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyRecord {
    /// Map name.
    pub map: String,
    /// Pin path.
    pub pin: PathBuf,
    /// The input's name.
    pub input: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// Whether entries not in the input were deleted.
    pub prune: bool,
    /// The backup file, if one was made.
    pub backup: Option<PathBuf>,
    /// What happened.
    pub result: Result<ApplyReport, ApplyFailure>,
}

/// How a map's apply failed, for [`ApplyRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyFailure {
    /// The error's message.
    pub message: String,
    /// Entries written before it stopped: entries are written in input
    /// order, so these are the first N entries of the input that needed
    /// writing.
    pub written: usize,
}

impl ApplyRecord {
    /// The record of an apply of `input` to `map` with `opts` (resolved by
    /// [`ApplyOptions::for_map`]).
    pub fn new(
        map: &MapHandle,
        input: &str,
        opts: &ApplyOptions,
        result: &Result<ApplyReport, SdkError>,
    ) -> ApplyRecord {
        ApplyRecord {
            map: map.name().to_string(),
            pin: map.pin().map(Path::to_path_buf).unwrap_or_default(),
            input: input.to_string(),
            dry_run: opts.dry_run,
            prune: opts.prune,
            backup: opts.backup_file().map(Path::to_path_buf),
            result: match result {
                Ok(r) => Ok(r.clone()),
                Err(e) => Err(ApplyFailure {
                    message: e.to_string(),
                    written: match e {
                        SdkError::Batch { applied, .. } => *applied,
                        SdkError::Interrupted { written, .. } => *written,
                        _ => 0,
                    },
                }),
            },
        }
    }
}

impl Serialize for ApplyRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("map", &self.map)?;
        m.serialize_entry("pin", &self.pin.display().to_string())?;
        m.serialize_entry("input", &self.input)?;
        m.serialize_entry("dry_run", &self.dry_run)?;
        m.serialize_entry("prune", &self.prune)?;
        m.serialize_entry(
            "backup",
            &self.backup.as_ref().map(|b| b.display().to_string()),
        )?;
        match &self.result {
            Ok(r) => {
                m.serialize_entry("ok", &true)?;
                m.serialize_entry("entries", &r.entries)?;
                m.serialize_entry("written", &r.written)?;
                m.serialize_entry("deleted", &r.deleted)?;
                m.serialize_entry("reset_to_zero", &r.zeroed)?;
                if r.diffed {
                    m.serialize_entry("added", &r.added)?;
                    m.serialize_entry("changed", &r.changed)?;
                    m.serialize_entry("removed", &r.removed)?;
                    m.serialize_entry("reset", &r.reset)?;
                    m.serialize_entry("unchanged", &r.unchanged)?;
                }
            }
            Err(f) => {
                m.serialize_entry("ok", &false)?;
                m.serialize_entry("error", &f.message)?;
                m.serialize_entry("written", &f.written)?;
            }
        }
        m.end()
    }
}

impl MapHandle {
    /// Makes the map hold the input's entries.
    ///
    /// Every entry is validated and encoded first; if any is bad (or two
    /// have the same key) nothing is written. Encoded entries are spooled
    /// (memory, then a temporary file) so memory does not grow with the
    /// input. With `prune` or `dry_run` the live map is read in batches and
    /// compared: unchanged entries are not rewritten, and every difference is
    /// reported through `on`. Then the backup is made, with `prune` the keys
    /// not in the input are deleted (an array's indices, which cannot be
    /// deleted, are reset to zero instead), and entries are written in batches. If
    /// the kernel stops a batch, the error says exactly how many entries
    /// were written.
    ///
    /// ```no_run
    /// use ebpf_sdk::{ApplyOptions, Object};
    ///
    /// let table = Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_table_map")?;
    /// let entries = ebpf_sdk::parse_entries(&std::fs::read_to_string("rules.yaml").unwrap(), "rules.yaml")?;
    /// let opts = ApplyOptions { prune: true, ..Default::default() };
    /// let report = table.apply(entries.into_iter().map(Ok), &opts, &mut |_| {})?;
    /// println!("{} written, {} removed", report.written, report.removed);
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn apply<I>(
        &self,
        entries: I,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError>
    where
        I: IntoIterator<Item = Result<Entry, SdkError>>,
    {
        let opts = opts.resolved(self.name(), false);
        self.check_apply()?;
        let started = Instant::now();
        let mut spool = Spool::new(self.codec.key_len(), self.codec.value_len());
        // Where each entry came from, for duplicate-key messages (bounded).
        let mut locations: Vec<Location> = Vec::new();
        let mut kbuf = vec![0u8; self.codec.key_len()];
        let mut vbuf = vec![0u8; self.codec.value_len()];
        for e in entries {
            let e = e?;
            if e.map.as_deref().is_some_and(|m| m != self.schema.name) {
                continue;
            }
            self.codec
                .encode_key_into(&e.key, e.byte_order, &e.location, &mut kbuf)?;
            let value = e.value.as_ref().unwrap_or(&Value::Null);
            self.codec
                .encode_value_into(value, e.byte_order, &e.location, &mut vbuf)?;
            spool.push(&kbuf, &vbuf).map_err(write_err)?;
            if locations.len() < 100_000 {
                locations.push(e.location);
            }
            if spool.len().is_multiple_of(65536) {
                self.validated(&spool, &opts, on)?;
            }
        }
        let at = |i: usize| {
            locations
                .get(i)
                .cloned()
                .unwrap_or_else(|| Location::nth_entry(i + 1))
        };
        self.finish_apply(spool, &at, started, &opts, on)
    }

    /// [`MapHandle::apply`] from a reader, in any of the shapes of
    /// [`EntryReader`]; `name` names it in messages. JSON Lines are read in
    /// large blocks and parsed and encoded on
    /// [`ApplyOptions::parse_threads`] threads, in input order, straight
    /// from the text into bytes; lines in other forms, and every bad line,
    /// take the general path, which names the line. An input with no
    /// entries is an error (apply `[]` to empty a map on purpose).
    pub fn apply_reader<R: BufRead>(
        &self,
        mut reader: R,
        name: &str,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError> {
        let opts = &opts.resolved(self.name(), false);
        self.check_apply()?;
        // Look at the first line with content to pick the path.
        let mut head = Vec::new();
        let mut skipped_lines = 0usize;
        loop {
            head.clear();
            let n = reader
                .read_until(b'\n', &mut head)
                .map_err(|e| SdkError::read(name, e))?;
            let t = head.trim_ascii();
            if n == 0 {
                // Nothing but blank lines and comments: most likely a
                // mistake, and with `prune` it would empty the map.
                return Err(
                    InputError::new(Location::named(name), InputErrorKind::NoEntries).into(),
                );
            }
            if !t.is_empty() && !t.starts_with(b"#") {
                break;
            }
            skipped_lines += 1;
        }
        let json_line = head.trim_ascii().starts_with(b"{") && {
            std::str::from_utf8(head.trim_ascii())
                .is_ok_and(|t| ebpf_sdk_codec::parse_json(t).is_ok())
        };
        let rest = std::io::Cursor::new(head).chain(reader);
        let started = Instant::now();
        let (spool, places) = if json_line {
            self.spool_json_lines(rest, name, skipped_lines, opts, on)?
        } else {
            let mut blank = String::new();
            blank.extend(std::iter::repeat_n("\n", skipped_lines));
            let all = std::io::Cursor::new(blank.into_bytes()).chain(rest);
            self.spool_yaml(EntryReader::new(all, name), name, opts, on)?
        };
        let source: Arc<str> = name.into();
        let at = |i: usize| places.get(&source, i);
        self.finish_apply(spool, &at, started, opts, on)
    }

    /// What applying `entries` with `prune` would change, without writing:
    /// the input entries that are new or different, the map's entries that
    /// are not in the input and, for an array, its indices not in the
    /// input that `prune` would reset to zero.
    ///
    /// ```no_run
    /// let table = ebpf_sdk::Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_table_map")?;
    /// let text = std::fs::read_to_string("rules.yaml").unwrap();
    /// let d = table.diff(ebpf_sdk::parse_entries(&text, "rules.yaml")?.into_iter().map(Ok))?;
    /// for gone in &d.removed {
    ///     println!("would remove {}", gone.key);
    /// }
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn diff<I>(&self, entries: I) -> Result<Diff, SdkError>
    where
        I: IntoIterator<Item = Result<Entry, SdkError>>,
    {
        let mut diff = Diff::default();
        let opts = ApplyOptions {
            dry_run: true,
            prune: true,
            ..Default::default()
        };
        let report = self.apply(entries, &opts, &mut |ev| {
            if let ApplyEvent::Diff(kind, d) = ev {
                match kind {
                    DiffKind::Added => diff.added.push(d.clone()),
                    DiffKind::Changed => diff.changed.push(d.clone()),
                    DiffKind::Removed => diff.removed.push(d.clone()),
                    DiffKind::Reset => diff.reset.push(d.clone()),
                }
            }
        })?;
        diff.report = report;
        Ok(diff)
    }

    /// Saves every entry in `apply` format (JSON Lines) to a new private
    /// file (mode 0600); returns how many.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<usize, SdkError> {
        crate::backup::write(self, path.as_ref())
    }

    /// Makes the map hold exactly the entries of a backup (or any apply
    /// input) file: [`MapHandle::apply_reader`] with `prune`, no new backup.
    pub fn restore_from(&self, path: impl AsRef<Path>) -> Result<ApplyReport, SdkError> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| SdkError::read(path, e))?;
        let opts = ApplyOptions {
            prune: true,
            ..Default::default()
        };
        self.apply_reader(
            std::io::BufReader::new(file),
            &path.display().to_string(),
            &opts,
            &mut |_| {},
        )
    }

    fn check_apply(&self) -> Result<(), SdkError> {
        self.codec.writable()?;
        if self.schema.map_type.holds_object_refs() {
            return Err(SdkError::Unsupported {
                map: self.schema.name.clone(),
                map_type: self.schema.map_type,
                operation: "apply",
                reason: "entries that name maps or programs are written one at a time; use update",
            });
        }
        Ok(())
    }

    fn validated(
        &self,
        spool: &Spool,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(), SdkError> {
        on(ApplyEvent::Validated(spool.len()));
        if opts.cancelled() {
            return Err(SdkError::Interrupted {
                map: self.schema.name.clone(),
                written: 0,
                requested: spool.len(),
            });
        }
        Ok(())
    }
}
