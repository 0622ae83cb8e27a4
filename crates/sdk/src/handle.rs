//! A map opened against its schema: named values in, named values out.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{BufRead, Read};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ebpf_sdk_backend::{BackendError, Map, MapBackend, MapInfo, ObjectRef, UpdateFlags};
use ebpf_sdk_codec::Value;
use ebpf_sdk_schema::{ByteOrder, MapSchema, TypeKind};

use crate::entry_codec::EntryCodec;
use crate::spool::{io_err, Spool};

use crate::entries::{Entry, EntryReader};
use crate::source::describe_map;
use crate::SdkError;

/// A pinned (or fake) map together with the schema it is written against.
///
/// Opening checks that the live map is the map the schema describes — map
/// type, key size, value size and, where the kernel has BTF for it, the key
/// and value layouts — so nothing is ever written through a wrong layout.
pub struct MapHandle {
    schema: MapSchema,
    codec: EntryCodec,
    map: Box<dyn MapBackend>,
    /// The same map when it is a kernel map (for fd-valued updates).
    kernel: Option<Map>,
    pin: Option<PathBuf>,
}

impl std::fmt::Debug for MapHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapHandle")
            .field("map", &self.schema.name)
            .field("pin", &self.pin)
            .finish()
    }
}

/// One decoded entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The key (`Null` for keyless maps).
    pub key: Value,
    /// The value; a list with one value per CPU for per-CPU maps.
    pub value: Value,
    /// For per-CPU maps: numeric fields summed over CPUs.
    pub total: Option<Value>,
}

impl Decoded {
    /// The entry as `apply` reads it and `dump` prints it: `{key, value}`,
    /// plus `total` for per-CPU maps; no `key` for keyless maps.
    pub fn into_value(self) -> Value {
        let mut m = ebpf_sdk_codec::Map::with_capacity(3);
        if !matches!(self.key, Value::Null) {
            m.insert("key", self.key);
        }
        m.insert("value", self.value);
        if let Some(t) = self.total {
            m.insert("total", t);
        }
        Value::Map(m)
    }
}

fn output_err(e: std::io::Error) -> SdkError {
    SdkError::Io {
        path: PathBuf::from("<output>"),
        source: e,
    }
}

/// What `apply` should do.
#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Delete entries that are in the map but not in the input.
    pub prune: bool,
    /// Compute and report the difference, write nothing.
    pub dry_run: bool,
    /// Flags for every update (default: create or replace).
    pub flags: Option<UpdateFlags>,
    /// Set (e.g. from a SIGINT handler) to stop: before any write nothing is
    /// written; during writes the current batch completes and the error says
    /// how many entries were written.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Threads parsing JSON Lines in [`MapHandle::apply_reader`]; `None`:
    /// `EBPF_SDK_PARSE_THREADS`, else the CPUs (at most 4).
    pub parse_threads: Option<usize>,
    /// Save the map's entries here (JSON Lines, `apply` format, mode 0600)
    /// after the input validated and before the first write, so
    /// `apply --prune -f FILE` restores them.
    pub backup: Option<PathBuf>,
}

/// The difference between the input and the map, and what was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Entries written to the kernel.
    pub written: usize,
    /// Entries deleted from the kernel.
    pub deleted: usize,
    /// Time spent reading, validating and encoding the input.
    pub validate_time: Duration,
    /// Time spent reading the live map for the difference.
    pub diff_time: Duration,
    /// Time spent in kernel writes (batch updates and deletes).
    pub write_time: Duration,
}

/// One kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffKind {
    /// In the input, not in the map.
    Added,
    /// In both, with different values (the input's value is reported).
    Changed,
    /// In the map, not in the input.
    Removed,
}

/// What `apply` reports while it works.
#[derive(Debug)]
pub enum ApplyEvent<'a> {
    /// Entries validated and encoded so far.
    Validated(usize),
    /// Entries written so far.
    Written(usize),
    /// One difference (only when the map is read: prune or dry run).
    Diff(DiffKind, &'a Decoded),
    /// The map's entries (this many) were saved to the backup file.
    BackedUp(&'a Path, usize),
}

/// Parses and encodes one block of JSON Lines (whole lines; the first is
/// line `first_line` of the input).
fn encode_block(
    codec: &EntryCodec,
    map: &str,
    block: &[u8],
    first_line: usize,
    name: &str,
    hasher: &RandomState,
) -> Result<EncodedBlock, SdkError> {
    let (ks, vs) = (codec.key_len(), codec.value_len());
    let mut out = EncodedBlock {
        records: Vec::with_capacity(block.len() / 128 * (ks + vs)),
        ..EncodedBlock::default()
    };
    let records = &mut out.records;
    let mut kbuf = vec![0u8; ks];
    let mut vbuf = vec![0u8; vs];
    let mut entries = Vec::with_capacity(1);
    let mut start = 0;
    let mut line = first_line;
    while start <= block.len() {
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |p| start + p);
        let t = block[start..end].trim_ascii();
        let this_line = line;
        start = end + 1;
        line += 1;
        if t.is_empty() {
            continue;
        }
        let line = this_line;
        let line32 = u32::try_from(line).unwrap_or(u32::MAX);
        // The plain form straight into the records; else the general path.
        let at = records.len();
        records.resize(at + ks + vs, 0);
        let (k, v) = records[at..].split_at_mut(ks);
        if codec.encode_json_entry(t, k, v) {
            out.hashes.push(hasher.hash_one(&*k));
            out.lines.push(line32);
            continue;
        }
        records.truncate(at);
        let origin = format!("{name}:{line}");
        let text = std::str::from_utf8(t).map_err(|_| SdkError::Input {
            origin: origin.clone(),
            detail: "not valid UTF-8".into(),
        })?;
        let v = ebpf_sdk_codec::parse_json(text).map_err(|e| SdkError::Input {
            origin: origin.clone(),
            detail: e.to_string(),
        })?;
        entries.clear();
        crate::entries::entries_from_value(v, &origin, None, &mut entries)?;
        for e in entries.drain(..) {
            if e.map.as_deref().is_some_and(|m| m != map) {
                continue;
            }
            codec.encode_key_into(&e.key, e.byte_order, &e.origin, &mut kbuf)?;
            let value = e.value.as_ref().unwrap_or(&Value::Null);
            codec.encode_value_into(value, e.byte_order, &e.origin, &mut vbuf)?;
            records.extend_from_slice(&kbuf);
            records.extend_from_slice(&vbuf);
            out.hashes.push(hasher.hash_one(&kbuf));
            out.lines.push(line32);
        }
    }
    Ok(out)
}

/// Cuts a reader into blocks of whole lines of about [`LineBlocks::BLOCK`]
/// bytes, read in large pieces.
struct LineBlocks<'r, R> {
    reader: &'r mut R,
    /// The start of a line the last block cut off.
    carry: Vec<u8>,
    /// Lines before the next block.
    line_no: usize,
    eof: bool,
}

impl<'r, R: std::io::Read> LineBlocks<'r, R> {
    const BLOCK: usize = 256 << 10;

    fn new(reader: &'r mut R, lines_before: usize) -> Self {
        LineBlocks {
            reader,
            carry: Vec::new(),
            line_no: lines_before,
            eof: false,
        }
    }

    /// Reads into `block` up to its capacity; false at the end of input.
    fn fill(&mut self, block: &mut Vec<u8>) -> std::io::Result<bool> {
        let at = block.len();
        block.resize(block.capacity(), 0);
        let n = loop {
            match self.reader.read(&mut block[at..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    block.truncate(at);
                    return Err(e);
                }
            }
        };
        block.truncate(at + n);
        Ok(n > 0)
    }

    /// The next block and the line number of its first line; `None` at the end.
    fn next_block(&mut self) -> std::io::Result<Option<(usize, Vec<u8>)>> {
        let mut block = Vec::with_capacity(Self::BLOCK + self.carry.len());
        block.append(&mut self.carry);
        while !self.eof && block.len() < Self::BLOCK {
            self.eof = !self.fill(&mut block)?;
        }
        // A block ends at a line end: the rest waits for the next one (a
        // line longer than a block grows this block until it ends).
        while !self.eof {
            if let Some(p) = memchr::memrchr(b'\n', &block) {
                self.carry = block.split_off(p + 1);
                break;
            }
            block.reserve(Self::BLOCK);
            self.eof = !self.fill(&mut block)?;
        }
        if block.is_empty() {
            return Ok(None);
        }
        let first = self.line_no + 1;
        self.line_no += memchr::memchr_iter(b'\n', &block).count();
        Ok(Some((first, block)))
    }
}

/// Encoded records of a block of JSON Lines.
#[derive(Default)]
struct EncodedBlock {
    /// Key then value, back to back.
    records: Vec<u8>,
    /// Each record's key hashed with the spool's hasher.
    hashes: Vec<u64>,
    /// Each record's line number.
    lines: Vec<u32>,
}

/// Parser threads for JSON Lines: `EBPF_SDK_PARSE_THREADS`, else the CPUs (at most 4).
fn parse_threads() -> usize {
    std::env::var("EBPF_SDK_PARSE_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(4)
        })
}

fn cancelled(opts: &ApplyOptions) -> bool {
    opts.cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
}

/// Map type, key size and value size of the live map against the schema.
fn check_shape(schema: &MapSchema, info: &MapInfo, pin: &Path) -> Result<(), SdkError> {
    let mismatch = |detail: String| SdkError::Mismatch {
        map: schema.name.clone(),
        pin: pin.to_path_buf(),
        detail,
        ours: schema.summary(),
        live: format!(
            "{} {} (key {} B, value {} B, max {})",
            info.type_name(),
            info.name,
            info.key_size,
            info.value_size,
            info.max_entries
        ),
    };
    if info.map_type != schema.map_type_id {
        return Err(mismatch(format!(
            "map type {} vs {}",
            schema.map_type,
            info.type_name()
        )));
    }
    if info.key_size != schema.key_size {
        return Err(mismatch(format!(
            "key size {} vs {}",
            schema.key_size, info.key_size
        )));
    }
    if info.value_size != schema.value_size {
        return Err(mismatch(format!(
            "value size {} vs {}",
            schema.value_size, info.value_size
        )));
    }
    Ok(())
}

impl MapHandle {
    /// Opens the map pinned at `pin` for reading and writing and checks it
    /// against `schema`.
    pub fn open(schema: &MapSchema, pin: &Path) -> Result<Self, SdkError> {
        let map = Map::open_pinned(pin).or_else(|e| match e {
            // Frozen/read-only maps can still be read; writes get the clear refusal.
            BackendError::PermissionDenied { .. } => Map::open_pinned_read_only(pin),
            e => Err(e),
        })?;
        check_shape(schema, map.info(), pin)?;
        Self::check_live(schema, &map, pin)?;
        // A second handle on the same map for fd-valued updates, which the
        // backend trait does not carry.
        let kernel = if schema.is_map_of_maps() || schema.map_type == "prog_array" {
            Some(Map::open_pinned(pin)?)
        } else {
            None
        };
        let mut h = Self::with_backend(schema, Box::new(map))?;
        h.kernel = kernel;
        h.pin = Some(pin.to_path_buf());
        Ok(h)
    }

    /// Uses any backend (e.g. [`ebpf_sdk_backend::FakeMap`] in tests). Map
    /// type and sizes are checked; layouts are checked by [`MapHandle::open`].
    pub fn with_backend(schema: &MapSchema, map: Box<dyn MapBackend>) -> Result<Self, SdkError> {
        let pin = map.context().path.clone().unwrap_or_default();
        check_shape(schema, map.info(), &pin)?;
        let codec = EntryCodec::new(schema, map.ncpus())?;
        Ok(MapHandle {
            schema: schema.clone(),
            codec,
            map,
            kernel: None,
            pin: None,
        })
    }

    fn check_live(schema: &MapSchema, map: &Map, pin: &Path) -> Result<(), SdkError> {
        let info = map.info();
        if info.btf_id == 0 {
            return Ok(());
        }
        let live = match describe_map(map, &pin.display().to_string()) {
            Ok(d) => d,
            // The live BTF is unreadable: sizes were checked, layouts can't be.
            Err(_) => return Ok(()),
        };
        let Some(live) = live.maps.into_iter().next() else {
            return Ok(());
        };
        for (what, ours, theirs) in [
            ("key", &schema.key, &live.key),
            ("value", &schema.value, &live.value),
        ] {
            let (Some(o), Some(t)) = (ours, theirs) else {
                continue;
            };
            if matches!(o.kind, TypeKind::Opaque)
                || matches!(t.kind, TypeKind::Opaque)
                || schema.is_map_of_maps()
            {
                continue;
            }
            if let Some(d) = o.layout_difference(t, what) {
                return Err(SdkError::Mismatch {
                    map: schema.name.clone(),
                    pin: pin.to_path_buf(),
                    detail: d,
                    ours: format!("{what} {o}"),
                    live: format!("{what} {t}"),
                });
            }
        }
        Ok(())
    }

    /// The schema this handle writes against.
    pub fn schema(&self) -> &MapSchema {
        &self.schema
    }

    /// The backend, for operations this layer does not wrap.
    pub fn backend(&self) -> &dyn MapBackend {
        self.map.as_ref()
    }

    /// Possible CPUs (the number of per-CPU value slots).
    pub fn ncpus(&self) -> usize {
        self.map.ncpus()
    }

    /// The handle's codec, for encoding without writing.
    pub fn codec(&self) -> &EntryCodec {
        &self.codec
    }

    /// Encodes a key (`origin` names it in errors).
    pub fn encode_key(
        &self,
        key: &Value,
        order: Option<ByteOrder>,
        origin: &str,
    ) -> Result<Vec<u8>, SdkError> {
        self.codec.encode_key(key, order, origin)
    }

    /// Encodes a value, per CPU for per-CPU maps (a single value fills every CPU).
    pub fn encode_value(
        &self,
        value: &Value,
        order: Option<ByteOrder>,
        origin: &str,
    ) -> Result<Vec<u8>, SdkError> {
        self.codec.encode_value(value, order, origin)
    }

    /// Decodes raw key and value bytes as read from the map.
    /// For map-in-map and program arrays the value read back is the inner
    /// map's or program's kernel id.
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<Decoded, SdkError> {
        let (value, total) = if self.fd_valued() {
            let id = value
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_ne_bytes);
            (Value::Int(i128::from(id)), None)
        } else {
            self.codec.decode_value(value)?
        };
        Ok(Decoded {
            key: self.codec.decode_key(key)?,
            value,
            total,
        })
    }

    /// Checks that an entry can be written, without writing it: the key
    /// encodes, and the value encodes (or, for map-in-map and program
    /// arrays, is a pinned path or an id).
    pub fn validate(&self, e: &Entry) -> Result<(), SdkError> {
        self.codec.encode_key(&e.key, e.byte_order, &e.origin)?;
        let value = e.value.as_ref().unwrap_or(&Value::Null);
        if self.fd_valued() {
            return match value {
                Value::String(_) | Value::Int(_) => Ok(()),
                _ => Err(SdkError::Input {
                    origin: e.origin.clone(),
                    detail:
                        "the value of a map-in-map or program array is a pinned path or a kernel id"
                            .into(),
                }),
            };
        }
        self.codec.encode_value(value, e.byte_order, &e.origin)?;
        Ok(())
    }

    /// Writes one entry as read from a file: like [`MapHandle::update`], and
    /// honouring a byte order the entry forces (legacy templates).
    pub fn write_entry(&self, e: &Entry, flags: UpdateFlags) -> Result<(), SdkError> {
        let value = e.value.as_ref().ok_or_else(|| SdkError::Input {
            origin: e.origin.clone(),
            detail: "an update needs a value".into(),
        })?;
        if e.byte_order.is_none() || self.fd_valued() {
            return self.update(&e.key, value, flags);
        }
        let k = self.codec.encode_key(&e.key, e.byte_order, &e.origin)?;
        let v = self.codec.encode_value(value, e.byte_order, &e.origin)?;
        if self.schema.is_keyless() {
            self.map.push(&v, flags)?;
        } else {
            self.map.update(&k, &v, flags)?;
        }
        Ok(())
    }

    /// Saves every entry in `apply` format (JSON Lines) to a new private
    /// file (mode 0600); returns how many.
    pub fn write_backup(&self, path: &Path) -> Result<usize, SdkError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let io = |source| SdkError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut out = std::io::BufWriter::new(file);
        let n = self.dump(|d| {
            let mut m = ebpf_sdk_codec::Map::new();
            if !matches!(d.key, Value::Null) {
                m.insert("key", d.key);
            }
            m.insert("value", d.value);
            writeln!(out, "{}", Value::Map(m).to_json())
        })?;
        out.flush().map_err(io)?;
        Ok(n)
    }

    fn fd_valued(&self) -> bool {
        self.schema.is_map_of_maps() || self.schema.map_type == "prog_array"
    }

    /// Looks a key up; `None` when it is not in the map.
    pub fn lookup(&self, key: &Value) -> Result<Option<Decoded>, SdkError> {
        let k = self.encode_key(key, None, "key")?;
        match self.map.lookup(&k)? {
            Some(v) => Ok(Some(self.decode(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// Writes one entry. For map-in-map and program arrays the value is a
    /// pinned path (string) or a kernel id (number) of the inner map or program.
    pub fn update(&self, key: &Value, value: &Value, flags: UpdateFlags) -> Result<(), SdkError> {
        let k = self.encode_key(key, None, "key")?;
        if self.fd_valued() {
            let target = match value {
                Value::String(p) => ObjectRef::Pinned(Path::new(p)),
                Value::Int(id) => {
                    ObjectRef::Id(u32::try_from(*id).map_err(|_| SdkError::Input {
                        origin: "value".into(),
                        detail: format!("{id} is not a valid id"),
                    })?)
                }
                _ => {
                    return Err(SdkError::Input {
                        origin: "value".into(),
                        detail: "give the inner map or program as a pinned path or a kernel id"
                            .into(),
                    })
                }
            };
            self.map_concrete()?.update_fd(&k, target, flags)?;
            return Ok(());
        }
        let v = self.encode_value(value, None, "value")?;
        if self.schema.is_keyless() {
            self.map.push(&v, flags)?;
        } else {
            self.map.update(&k, &v, flags)?;
        }
        Ok(())
    }

    fn map_concrete(&self) -> Result<&Map, SdkError> {
        self.kernel.as_ref().ok_or_else(|| SdkError::Unsupported {
            map: self.schema.name.clone(),
            detail: "inner maps and programs need a kernel map".into(),
        })
    }

    /// Deletes a key; `false` when it was not in the map.
    pub fn delete(&self, key: &Value) -> Result<bool, SdkError> {
        let k = self.encode_key(key, None, "key")?;
        match self.map.delete(&k) {
            Ok(()) => Ok(true),
            Err(BackendError::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pops (queue/stack) one value.
    pub fn pop(&self) -> Result<Option<Value>, SdkError> {
        match self.map.pop()? {
            Some(v) => Ok(Some(self.decode(&[], &v)?.value)),
            None => Ok(None),
        }
    }

    /// Peeks (queue/stack) one value without removing it.
    pub fn peek(&self) -> Result<Option<Value>, SdkError> {
        match self.map.peek()? {
            Some(v) => Ok(Some(self.decode(&[], &v)?.value)),
            None => Ok(None),
        }
    }

    /// Calls `each` with every entry of the map, decoded, in kernel order.
    /// Returns the number of entries.
    pub fn dump(
        &self,
        mut each: impl FnMut(Decoded) -> std::io::Result<()>,
    ) -> Result<usize, SdkError> {
        self.for_each_raw(|k, v| {
            let d = self.decode(k, v)?;
            each(d).map_err(output_err)
        })
    }

    /// Calls `each` with every entry of the map as the JSON text of
    /// [`Decoded::into_value`] (`{"key":...,"value":...}` on one line: what
    /// `dump -o json|jsonl` prints and `apply` reads back), in kernel order.
    /// The text is written straight from the bytes, without building
    /// [`Value`]s, where the map allows (not per-CPU, map-in-map or keyless).
    /// Returns the number of entries.
    pub fn dump_json(
        &self,
        mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<usize, SdkError> {
        let mut text = Vec::with_capacity(256);
        let direct = !self.fd_valued();
        self.for_each_raw(|k, v| {
            text.clear();
            if !(direct && self.codec.write_json_entry(k, v, &mut text)?) {
                let d = self.decode(k, v)?;
                text.clear();
                serde_json::to_writer(&mut text, &d.into_value())
                    .map_err(|e| output_err(e.into()))?;
            }
            each(&text).map_err(output_err)
        })
    }

    /// Calls `each` with the raw key and value of every entry, read in
    /// batches, in kernel order; stops at the first error.
    fn for_each_raw(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), SdkError>,
    ) -> Result<usize, SdkError> {
        if self.schema.is_keyless() {
            return Err(SdkError::Unsupported {
                map: self.schema.name.clone(),
                detail: format!(
                    "a {} cannot be listed without consuming it; use `peek` or `pop`",
                    self.schema.map_type
                ),
            });
        }
        let (ks, vs) = (self.codec.key_len(), self.map.value_buf_size());
        let mut n = 0;
        let mut failure: Option<SdkError> = None;
        self.map.lookup_batch_chunks(&mut |keys, values, count| {
            for i in 0..count {
                let k = &keys[i * ks..(i + 1) * ks];
                let v = &values[i * vs..(i + 1) * vs];
                if let Err(e) = each(k, v) {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
                n += 1;
            }
            ControlFlow::Continue(())
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Makes the map hold the input's entries.
    ///
    /// Every entry is validated and encoded first; if any is bad (or two
    /// have the same key) nothing is written. Encoded entries are spooled
    /// (memory, then a temporary file) so memory does not grow with the
    /// input. With `prune` or `dry_run` the live map is read in batches and
    /// compared: unchanged entries are not rewritten, and every difference is
    /// reported through `on`. Then entries are written in batches and, with
    /// `prune`, the keys not in the input are deleted. If the kernel stops a
    /// batch, the error says exactly how many entries were written.
    pub fn apply<I>(
        &self,
        entries: I,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError>
    where
        I: IntoIterator<Item = Result<Entry, SdkError>>,
    {
        self.check_apply()?;
        let started = Instant::now();
        let mut spool = Spool::new(self.codec.key_len(), self.codec.value_len());
        // Where each entry came from, for duplicate-key messages (bounded).
        let mut origins: Vec<String> = Vec::new();
        let mut kbuf = vec![0u8; self.codec.key_len()];
        let mut vbuf = vec![0u8; self.codec.value_len()];
        for e in entries {
            let e = e?;
            if e.map.as_deref().is_some_and(|m| m != self.schema.name) {
                continue;
            }
            self.codec
                .encode_key_into(&e.key, e.byte_order, &e.origin, &mut kbuf)?;
            let value = e.value.as_ref().unwrap_or(&Value::Null);
            self.codec
                .encode_value_into(value, e.byte_order, &e.origin, &mut vbuf)?;
            spool.push(&kbuf, &vbuf).map_err(io_err)?;
            if origins.len() < 100_000 {
                origins.push(e.origin);
            }
            if spool.len().is_multiple_of(65536) {
                self.validated(&spool, opts, on)?;
            }
        }
        let name = |i: usize| {
            origins
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("entry #{}", i + 1))
        };
        self.finish_apply(spool, &name, started, opts, on)
    }

    /// [`MapHandle::apply`] from a reader, in any of the formats of
    /// [`EntryReader`]. JSON Lines are read in 256 KiB blocks and parsed and
    /// encoded on several threads (`EBPF_SDK_PARSE_THREADS`, default: the
    /// CPUs, at most 4), in input order, straight from the text into bytes
    /// ([`ebpf_sdk_codec::Codec::encode_json_entry`]; lines in other forms,
    /// and every bad line, take the general path, which names the line);
    /// other formats go through [`EntryReader`].
    pub fn apply_reader<R: BufRead>(
        &self,
        mut reader: R,
        name: &str,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError> {
        // Look at the first line with content to pick the path.
        let mut head = Vec::new();
        let mut skipped_lines = 0usize;
        loop {
            head.clear();
            let n = reader
                .read_until(b'\n', &mut head)
                .map_err(|e| SdkError::Input {
                    origin: name.to_string(),
                    detail: format!("cannot read: {e}"),
                })?;
            let t = head.trim_ascii();
            if n == 0 {
                // Nothing but blank lines and comments: most likely a
                // mistake, and with `prune` it would empty the map.
                return Err(SdkError::Input {
                    origin: name.to_string(),
                    detail: "no entries; to make the map empty on purpose, apply a file holding `[]` with --prune".into(),
                });
            }
            if !t.is_empty() && !t.starts_with(b"#") {
                break;
            }
            skipped_lines += 1;
        }
        let threads = opts.parse_threads.unwrap_or_else(parse_threads);
        let json_line = head.trim_ascii().starts_with(b"{") && {
            std::str::from_utf8(head.trim_ascii())
                .is_ok_and(|t| ebpf_sdk_codec::parse_json(t).is_ok())
        };
        let rest = std::io::Cursor::new(head).chain(reader);
        if !json_line {
            let mut blank = String::new();
            blank.extend(std::iter::repeat_n("\n", skipped_lines));
            let all = std::io::Cursor::new(blank.into_bytes()).chain(rest);
            return self.apply(EntryReader::new(all, name), opts, on);
        }
        self.check_apply()?;
        let started = Instant::now();
        let spool = self.spool_json_lines(rest, name, skipped_lines, threads.max(1), opts, on)?;
        let (spool, lines) = spool;
        let label = |i: usize| match lines.get(i) {
            Some(l) => format!("{name}:{l}"),
            None => format!("entry #{}", i + 1),
        };
        self.finish_apply(spool, &label, started, opts, on)
    }

    fn check_apply(&self) -> Result<(), SdkError> {
        if self.fd_valued() {
            return Err(SdkError::Unsupported {
                map: self.schema.name.clone(),
                detail: "apply does not write map-in-map or program array entries; use `update` per entry".into(),
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
        if cancelled(opts) {
            return Err(SdkError::Interrupted {
                map: self.schema.name.clone(),
                written: 0,
                requested: spool.len(),
            });
        }
        Ok(())
    }

    /// Parses and encodes JSON Lines on `threads` workers, a block of lines
    /// per job; blocks are spooled in input order. Returns the spool and
    /// each entry's line number.
    fn spool_json_lines<R: BufRead>(
        &self,
        mut reader: R,
        name: &str,
        lines_before: usize,
        threads: usize,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(Spool, Vec<u32>), SdkError> {
        use std::collections::BTreeMap;
        use std::sync::mpsc;
        use std::sync::Mutex;

        let (ks, vs) = (self.codec.key_len(), self.codec.value_len());
        let mut spool = Spool::new(ks, vs);
        let mut lines: Vec<u32> = Vec::new();
        let read_err = |e: std::io::Error| SdkError::Input {
            origin: name.to_string(),
            detail: format!("cannot read: {e}"),
        };
        let stopped = || SdkError::Input {
            origin: name.to_string(),
            detail: "a parser thread stopped".into(),
        };
        let hasher = spool.hasher().clone();
        std::thread::scope(|scope| -> Result<(Spool, Vec<u32>), SdkError> {
            let (job_tx, job_rx) = mpsc::sync_channel::<(u64, usize, Vec<u8>)>(threads * 2);
            let job_rx = Arc::new(Mutex::new(job_rx));
            let (res_tx, res_rx) = mpsc::channel::<(u64, Result<EncodedBlock, SdkError>)>();
            let codec = &self.codec;
            let map_name = self.schema.name.as_str();
            let hasher = &hasher;
            for _ in 0..threads {
                let job_rx = job_rx.clone();
                let res_tx = res_tx.clone();
                scope.spawn(move || loop {
                    let job = job_rx.lock().map(|r| r.recv());
                    let Ok(Ok((seq, first_line, block))) = job else {
                        return;
                    };
                    let r = encode_block(codec, map_name, &block, first_line, name, hasher);
                    if res_tx.send((seq, r)).is_err() {
                        return;
                    }
                });
            }
            drop(res_tx);
            let mut blocks = LineBlocks::new(&mut reader, lines_before);
            let mut job_tx = Some(job_tx);
            let (mut sent, mut received) = (0u64, 0u64);
            let mut done: BTreeMap<u64, Result<EncodedBlock, SdkError>> = BTreeMap::new();
            let mut next_progress = 65536;
            loop {
                while job_tx.is_some() && sent - received < (threads * 2) as u64 {
                    let Some((first, block)) = blocks.next_block().map_err(read_err)? else {
                        job_tx = None;
                        break;
                    };
                    if let Some(tx) = &job_tx {
                        tx.send((sent, first, block)).map_err(|_| stopped())?;
                    }
                    sent += 1;
                }
                if received == sent {
                    break;
                }
                while !done.contains_key(&received) {
                    let (seq, r) = res_rx.recv().map_err(|_| stopped())?;
                    done.insert(seq, r);
                }
                let block = done.remove(&received).expect("present")?;
                received += 1;
                spool
                    .push_records(&block.records, &block.hashes)
                    .map_err(io_err)?;
                lines.extend_from_slice(&block.lines);
                if spool.len() >= next_progress {
                    next_progress += 65536;
                    self.validated(&spool, opts, on)?;
                }
            }
            Ok((spool, lines))
        })
    }

    /// Duplicate check, diff, write and prune of a filled spool.
    fn finish_apply(
        &self,
        mut spool: Spool,
        name: &dyn Fn(usize) -> String,
        started: Instant,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError> {
        let mut report = ApplyReport::default();
        let key_size = self.codec.key_len();
        let value_size = self.codec.value_len();
        if let Some((first, second)) = spool.seal().map_err(io_err)? {
            return Err(SdkError::DuplicateKey {
                first: name(first),
                second: name(second),
            });
        }
        let n = spool.len();
        report.entries = n;
        on(ApplyEvent::Validated(n));
        report.validate_time = started.elapsed();

        // Which input entries need writing: all, or after a diff only the
        // added and changed ones.
        let mut skip = vec![false; n];
        let mut removed_keys: Vec<u8> = Vec::new();
        if (opts.prune || opts.dry_run) && !self.schema.is_keyless() {
            let t = Instant::now();
            report.diffed = true;
            let mut present = vec![false; n];
            let mut scratch_k = vec![0u8; key_size];
            let mut scratch_v = vec![0u8; value_size];
            let mut failure: Option<SdkError> = None;
            let is_array = self.schema.is_array();
            self.map.lookup_batch_chunks(&mut |keys, values, count| {
                let mut step = || -> Result<(), SdkError> {
                    for i in 0..count {
                        let k = &keys[i * key_size..(i + 1) * key_size];
                        let v = &values[i * value_size..(i + 1) * value_size];
                        match spool.find(k, &mut scratch_k).map_err(io_err)? {
                            Some(idx) => {
                                present[idx] = true;
                                spool.read_value(idx, &mut scratch_v).map_err(io_err)?;
                                if scratch_v == v {
                                    report.unchanged += 1;
                                    skip[idx] = true;
                                } else {
                                    report.changed += 1;
                                    on(ApplyEvent::Diff(
                                        DiffKind::Changed,
                                        &self.decode(k, &scratch_v)?,
                                    ));
                                }
                            }
                            // Arrays always hold every index: nothing to remove.
                            None if !is_array => {
                                report.removed += 1;
                                on(ApplyEvent::Diff(DiffKind::Removed, &self.decode(k, v)?));
                                removed_keys.extend_from_slice(k);
                            }
                            None => {}
                        }
                    }
                    Ok(())
                };
                match step() {
                    Ok(()) => ControlFlow::Continue(()),
                    Err(e) => {
                        failure = Some(e);
                        ControlFlow::Break(())
                    }
                }
            })?;
            if let Some(e) = failure {
                return Err(e);
            }
            for (idx, seen) in present.iter().enumerate() {
                if !seen {
                    report.added += 1;
                    spool.read_key(idx, &mut scratch_k).map_err(io_err)?;
                    spool.read_value(idx, &mut scratch_v).map_err(io_err)?;
                    on(ApplyEvent::Diff(
                        DiffKind::Added,
                        &self.decode(&scratch_k, &scratch_v)?,
                    ));
                }
            }
            report.diff_time = t.elapsed();
        }
        if opts.dry_run {
            return Ok(report);
        }
        if let Some(path) = &opts.backup {
            let n = self.write_backup(path)?;
            on(ApplyEvent::BackedUp(path, n));
        }

        let t = Instant::now();
        // Prune first: the keys going away make room for the new ones in a
        // map near max_entries, and they are not in the final state anyway.
        if opts.prune && !removed_keys.is_empty() {
            let count = removed_keys.len() / key_size;
            match self.map.delete_batch(&removed_keys, count) {
                Ok(d) => report.deleted = d,
                Err(e) => {
                    return Err(SdkError::Batch {
                        map: self.schema.name.clone(),
                        applied: e.applied,
                        requested: count,
                        source: Box::new(e),
                    })
                }
            }
        }
        let flags = opts.flags.unwrap_or(UpdateFlags::Any);
        let map_name = self.schema.name.clone();
        let keyless = self.schema.is_keyless();
        let mut written = 0usize;
        let batch = 4096;
        // Entries to write, gathered contiguously (skipping unchanged ones).
        let mut keys = Vec::with_capacity(batch * key_size);
        let mut values = Vec::with_capacity(batch * value_size);
        spool.for_each_batch(batch, |first, ks, vs, count| {
            if cancelled(opts) {
                return Err(SdkError::Interrupted {
                    map: map_name.clone(),
                    written,
                    requested: n,
                });
            }
            let (ks, vs, count) = if skip[first..first + count].iter().any(|s| *s) {
                keys.clear();
                values.clear();
                for i in (0..count).filter(|i| !skip[first + i]) {
                    keys.extend_from_slice(&ks[i * key_size..(i + 1) * key_size]);
                    values.extend_from_slice(&vs[i * value_size..(i + 1) * value_size]);
                }
                (&keys[..], &values[..], values.len() / value_size.max(1))
            } else {
                (ks, vs, count)
            };
            if count == 0 {
                return Ok(());
            }
            if keyless {
                for v in vs.chunks_exact(value_size) {
                    self.map.push(v, flags)?;
                    written += 1;
                }
            } else {
                match self.map.update_batch(ks, vs, count, flags) {
                    Ok(done) => written += done,
                    Err(e) => {
                        return Err(SdkError::Batch {
                            map: map_name.clone(),
                            applied: written + e.applied,
                            requested: n,
                            source: Box::new(e),
                        })
                    }
                }
            }
            on(ApplyEvent::Written(written));
            Ok(())
        })?;
        report.written = written;
        report.write_time = t.elapsed();
        Ok(report)
    }
}
