//! A map opened against its schema: named values in, named values out.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use ebpf_sdk_backend::{BackendError, Map, MapBackend, MapInfo, ObjectRef, UpdateFlags};
use ebpf_sdk_codec::Value;
use ebpf_sdk_schema::{MapSchema, TypeKind};

use crate::entries::Entry;
use crate::entry_codec::EntryCodec;
use crate::error::{InputError, InputErrorKind, IoOp, Location};
use crate::object::describe_map;
use crate::SdkError;

/// A pinned (or fake) map together with the schema it is written against.
///
/// Opening checks that the live map is the map the schema describes — map
/// type, key size, value size and, where the kernel has BTF for it, the key
/// and value layouts — so nothing is ever written through a wrong layout.
/// Get one from [`crate::Object::open`], or with [`MapHandle::open`] /
/// [`MapHandle::open_pinned`].
///
/// Keys and values are [`Value`]s here (as parsed from YAML or JSON, or
/// built with [`crate::to_value`]); the `_as` methods of the typed API
/// take and return any serde type.
pub struct MapHandle {
    pub(crate) schema: MapSchema,
    pub(crate) codec: EntryCodec,
    pub(crate) map: Box<dyn MapBackend + Send + Sync>,
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

pub(crate) fn output_err(e: std::io::Error) -> SdkError {
    SdkError::Io {
        op: IoOp::Write,
        path: PathBuf::from("<output>"),
        source: e,
    }
}

/// Map type, key size and value size of the live map against the schema.
pub(crate) fn check_shape(schema: &MapSchema, info: &MapInfo, pin: &Path) -> Result<(), SdkError> {
    let mismatch = |detail: String| SdkError::Mismatch {
        map: schema.name.clone(),
        pin: pin.to_path_buf(),
        detail,
        ours: schema.summary(),
        live: format!(
            "{} {} (key {} B, value {} B, max {})",
            info.map_type, info.name, info.key_size, info.value_size, info.max_entries
        ),
    };
    if info.map_type != schema.map_type {
        return Err(mismatch(format!(
            "map type {} vs {}",
            schema.map_type, info.map_type
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

/// The key and value layouts of the live map (from its kernel BTF) against
/// the schema's.
pub(crate) fn check_layout(schema: &MapSchema, map: &Map, pin: &Path) -> Result<(), SdkError> {
    if map.info().btf_id == 0 || schema.map_type.holds_object_refs() {
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
        if matches!(o.kind, TypeKind::Opaque) || matches!(t.kind, TypeKind::Opaque) {
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

impl MapHandle {
    /// Opens the map pinned at `pin` for reading and writing and checks it
    /// against `schema`. A map the kernel keeps read-only (frozen `.rodata`)
    /// opens for reading; writes are refused with the reason.
    ///
    /// ```no_run
    /// use ebpf_sdk::{MapHandle, Object};
    ///
    /// let obj = Object::from_schema_file("fw.schema.json")?;
    /// let schema = obj.map("ingress_node_firewall_table_map")?;
    /// let map = MapHandle::open(schema, "/sys/fs/bpf/tc/globals/ingress_node_firewall_table_map")?;
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn open(schema: &MapSchema, pin: impl AsRef<Path>) -> Result<Self, SdkError> {
        let pin = pin.as_ref();
        let map = Map::open_pinned(pin).or_else(|e| match e {
            BackendError::PermissionDenied { .. } => Map::open_pinned_read_only(pin),
            e => Err(e),
        })?;
        check_shape(schema, map.info(), pin)?;
        check_layout(schema, &map, pin)?;
        // A second handle on the same map for fd-valued updates, which the
        // backend trait does not carry.
        let kernel = if schema.map_type.holds_object_refs() {
            Some(Map::open_pinned(pin)?)
        } else {
            None
        };
        let mut h = Self::with_backend(schema, Box::new(map))?;
        h.kernel = kernel;
        h.pin = Some(pin.to_path_buf());
        Ok(h)
    }

    /// Opens the map pinned at `pin` with the schema the kernel's BTF gives
    /// for it (no ELF needed): see [`crate::Object::from_pinned`].
    ///
    /// ```no_run
    /// let stats = ebpf_sdk::MapHandle::open_pinned("/sys/fs/bpf/ingress_node_firewall_statistics_map")?;
    /// for entry in stats.iter()? {
    ///     let e = entry?;
    ///     println!("{} {}", e.key, e.total.unwrap_or(e.value));
    /// }
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn open_pinned(pin: impl AsRef<Path>) -> Result<Self, SdkError> {
        let pin = pin.as_ref();
        let obj = crate::Object::from_pinned(pin)?;
        obj.open_at(&obj.only_map()?.name, pin)
    }

    /// Uses any backend (e.g. [`ebpf_sdk_backend::FakeMap`] in tests). Map
    /// type and sizes are checked; layouts are checked by [`MapHandle::open`].
    pub fn with_backend(
        schema: &MapSchema,
        map: Box<dyn MapBackend + Send + Sync>,
    ) -> Result<Self, SdkError> {
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

    /// The schema this handle writes against.
    pub fn schema(&self) -> &MapSchema {
        &self.schema
    }

    /// The map's name in the schema.
    pub fn name(&self) -> &str {
        &self.schema.name
    }

    /// The pin path it was opened at (`None` for other backends).
    pub fn pin(&self) -> Option<&Path> {
        self.pin.as_deref()
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

    /// Whether values name other kernel objects (map-in-map, program array).
    fn holds_refs(&self) -> bool {
        self.schema.map_type.holds_object_refs()
    }

    /// Decodes raw key and value bytes as read from the map (see
    /// [`EntryCodec::decode_entry`]).
    /// For map-in-map and program arrays the value read back is the inner
    /// map's or program's kernel id.
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<Decoded, SdkError> {
        self.codec.decode_entry(key, value)
    }

    /// The key bytes of an entry (honouring a byte order it forces).
    pub fn encode_entry_key(&self, e: &Entry) -> Result<Vec<u8>, SdkError> {
        self.codec.encode_key(&e.key, e.byte_order, &e.location)
    }

    /// Checks that an entry can be written, without writing it: the key
    /// encodes, and the value encodes (or, for map-in-map and program
    /// arrays, is a pinned path or an id).
    pub fn validate(&self, e: &Entry) -> Result<(), SdkError> {
        self.encode_entry(e).map(|_| ())
    }

    /// An entry's key bytes and value bytes (`None` for map-in-map and
    /// program arrays, whose value, checked to be a path or an id, is
    /// resolved when written); a missing value encodes as zero.
    fn encode_entry(&self, e: &Entry) -> Result<(Vec<u8>, Option<Vec<u8>>), SdkError> {
        let k = self.codec.encode_key(&e.key, e.byte_order, &e.location)?;
        let value = e.value.as_ref().unwrap_or(&Value::Null);
        if self.holds_refs() {
            return match value {
                Value::String(_) | Value::Int(_) => Ok((k, None)),
                _ => Err(e.error(InputErrorKind::ObjectRef)),
            };
        }
        let v = self.codec.encode_value(value, e.byte_order, &e.location)?;
        Ok((k, Some(v)))
    }

    /// Writes an entry encoded by [`MapHandle::encode_entry`].
    fn write_encoded(
        &self,
        e: &Entry,
        (k, v): &(Vec<u8>, Option<Vec<u8>>),
        flags: UpdateFlags,
    ) -> Result<(), SdkError> {
        match v {
            Some(v) => self.write_raw(k, v, flags),
            None => {
                let value = e.value.as_ref().unwrap_or(&Value::Null);
                self.update_ref(k, value, &e.location, flags)
            }
        }
    }

    /// Writes one entry as read from a file: like [`MapHandle::update`],
    /// honouring a byte order the entry forces (legacy templates), with
    /// errors at the entry's location.
    pub fn write_entry(&self, e: &Entry, flags: UpdateFlags) -> Result<(), SdkError> {
        if e.value.is_none() {
            return Err(e.error(InputErrorKind::MissingValue));
        }
        self.write_encoded(e, &self.encode_entry(e)?, flags)
    }

    /// Writes entries one by one, after checking all of them: every entry
    /// needs a value and must encode, and no key may appear twice; if any
    /// is wrong nothing is written. Returns how many were written.
    pub fn write_entries(&self, entries: &[Entry], flags: UpdateFlags) -> Result<usize, SdkError> {
        // Each entry is encoded once; the bytes are kept for the writes.
        let mut encoded = Vec::with_capacity(entries.len());
        let mut seen: HashMap<Vec<u8>, &Location> = HashMap::new();
        for e in entries {
            if e.value.is_none() {
                return Err(e.error(InputErrorKind::MissingValue));
            }
            let bytes = self.encode_entry(e)?;
            if !self.schema.map_type.keyless() {
                if let Some(first) = seen.insert(bytes.0.clone(), &e.location) {
                    return Err(e.error(InputErrorKind::DuplicateKey {
                        first: first.clone(),
                    }));
                }
            }
            encoded.push(bytes);
        }
        for (e, bytes) in entries.iter().zip(&encoded) {
            self.write_encoded(e, bytes, flags)?;
        }
        Ok(entries.len())
    }

    /// Looks a key up; `None` when it is not in the map.
    pub fn lookup(&self, key: &Value) -> Result<Option<Decoded>, SdkError> {
        let k = self.codec.encode_key(key, None, &Location::default())?;
        match self.map.lookup(&k)? {
            Some(v) => Ok(Some(self.decode(&k, &v)?)),
            None => Ok(None),
        }
    }

    /// Writes one entry (for queues and stacks: pushes the value; the key
    /// is `Null`). For map-in-map and program arrays the value is a pinned
    /// path (string) or a kernel id (number) of the inner map or program.
    pub fn update(&self, key: &Value, value: &Value, flags: UpdateFlags) -> Result<(), SdkError> {
        let at = Location::default();
        let k = self.codec.encode_key(key, None, &at)?;
        if self.holds_refs() {
            return self.update_ref(&k, value, &at, flags);
        }
        let v = self.codec.encode_value(value, None, &at)?;
        self.write_raw(&k, &v, flags)
    }

    fn write_raw(&self, k: &[u8], v: &[u8], flags: UpdateFlags) -> Result<(), SdkError> {
        if self.schema.map_type.keyless() {
            self.map.push(v, flags)?;
        } else {
            self.map.update(k, v, flags)?;
        }
        Ok(())
    }

    /// Stores a map or program, given by pinned path or id, under `k`.
    fn update_ref(
        &self,
        k: &[u8],
        value: &Value,
        at: &Location,
        flags: UpdateFlags,
    ) -> Result<(), SdkError> {
        let bad = |kind| SdkError::from(InputError::new(at.clone(), kind));
        let target = match value {
            Value::String(p) => ObjectRef::Pinned(Path::new(p)),
            Value::Int(id) => ObjectRef::Id(
                u32::try_from(*id).map_err(|_| bad(InputErrorKind::BadId { id: *id }))?,
            ),
            _ => return Err(bad(InputErrorKind::ObjectRef)),
        };
        let kernel = self.kernel.as_ref().ok_or_else(|| SdkError::Unsupported {
            map: self.schema.name.clone(),
            map_type: self.schema.map_type,
            operation: "update",
            reason: "inner maps and programs can only be stored in a kernel map",
        })?;
        kernel.update_fd(k, target, flags)?;
        Ok(())
    }

    /// Deletes a key; `false` when it was not in the map.
    pub fn delete(&self, key: &Value) -> Result<bool, SdkError> {
        let k = self.codec.encode_key(key, None, &Location::default())?;
        match self.map.delete(&k) {
            Ok(()) => Ok(true),
            Err(BackendError::KeyNotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pops one value (queue, stack); `None` when empty.
    pub fn pop(&self) -> Result<Option<Value>, SdkError> {
        match self.map.pop()? {
            Some(v) => Ok(Some(self.decode(&[], &v)?.value)),
            None => Ok(None),
        }
    }

    /// Peeks at one value (queue, stack) without removing it.
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
        let direct = !self.holds_refs();
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

    /// Every entry, decoded, read a batch at a time (see
    /// [`MapHandle::iter_as`] for typed entries).
    pub fn iter(&self) -> Result<Iter<'_>, SdkError> {
        Ok(Iter {
            handle: self,
            cursor: self.cursor()?,
            batch: Vec::new().into_iter(),
        })
    }

    /// A cursor for reading every entry a batch at a time with
    /// [`MapHandle::next_batch`]: what [`MapHandle::iter`] does, for
    /// callers that cannot keep a borrow of the handle between batches (a
    /// Python iterator, a server answering page by page).
    ///
    /// ```no_run
    /// let table = ebpf_sdk::Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_table_map")?;
    /// let mut cursor = table.cursor()?;
    /// loop {
    ///     let batch = table.next_batch(&mut cursor)?;
    ///     if batch.is_empty() {
    ///         break;
    ///     }
    ///     println!("{} entries", batch.len());
    /// }
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn cursor(&self) -> Result<EntryCursor, SdkError> {
        self.refuse_listing()?;
        Ok(EntryCursor::default())
    }

    /// The next batch of entries after `cursor` (one batch lookup in the
    /// kernel), decoded; empty when every entry was read. After an error
    /// the cursor is finished.
    pub fn next_batch(&self, cursor: &mut EntryCursor) -> Result<Vec<Decoded>, SdkError> {
        if cursor.done {
            return Ok(Vec::new());
        }
        let batch = match self.map.lookup_batch_next(&mut cursor.inner) {
            Ok(Some(b)) => b,
            Ok(None) => {
                cursor.done = true;
                return Ok(Vec::new());
            }
            Err(e) => {
                cursor.done = true;
                return Err(e.into());
            }
        };
        let decoded: Result<Vec<Decoded>, SdkError> =
            batch.iter().map(|(k, v)| self.decode(k, v)).collect();
        if decoded.is_err() {
            cursor.done = true;
        }
        decoded
    }

    /// Counts the entries, reading the keys and values in batches without
    /// decoding them (arrays always hold `max_entries`).
    pub fn count(&self) -> Result<usize, SdkError> {
        self.for_each_raw(|_, _| Ok(()))
    }

    /// Whether `key` is in the map, without decoding its value.
    pub fn contains_key(&self, key: &Value) -> Result<bool, SdkError> {
        let k = self.codec.encode_key(key, None, &Location::default())?;
        Ok(self.map.lookup(&k)?.is_some())
    }

    pub(crate) fn refuse_listing(&self) -> Result<(), SdkError> {
        if self.schema.map_type.keyless() {
            return Err(SdkError::Unsupported {
                map: self.schema.name.clone(),
                map_type: self.schema.map_type,
                operation: "listing the entries",
                reason: "its values cannot be listed without consuming them; use peek or pop",
            });
        }
        Ok(())
    }

    /// Calls `each` with the raw key and value bytes of every entry, read
    /// with the batch lookup path (`BPF_MAP_LOOKUP_BATCH`, or key by key
    /// where the kernel has no batch for the map), in kernel order; stops at
    /// the first error `each` returns. Values of per-CPU maps are the whole
    /// buffer, one slot of `round_up(value_size, 8)` bytes per possible CPU.
    /// Returns the number of entries. For readers that take numbers straight
    /// from the bytes (a metrics exporter); [`MapHandle::dump`] decodes.
    ///
    /// ```no_run
    /// use ebpf_sdk::{Object, SdkError};
    ///
    /// let stats = Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_statistics_map")?;
    /// let mut bytes = 0;
    /// let n = stats.for_each_raw(|key, value| {
    ///     bytes += key.len() + value.len();
    ///     Ok::<(), SdkError>(())
    /// })?;
    /// println!("{n} entries, {bytes} bytes");
    /// # Ok::<(), SdkError>(())
    /// ```
    pub fn for_each_raw<E: From<SdkError>>(
        &self,
        mut each: impl FnMut(&[u8], &[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        self.refuse_listing()?;
        let (ks, vs) = (self.codec.key_len(), self.map.value_buf_len());
        let mut n = 0;
        let mut failure: Option<E> = None;
        self.map
            .lookup_batch_chunks(&mut |keys, values, count| {
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
            })
            .map_err(SdkError::from)?;
        match failure {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }
}

/// Where a batched read of a map's entries stands ([`MapHandle::cursor`],
/// [`MapHandle::next_batch`]).
#[derive(Debug, Default)]
pub struct EntryCursor {
    inner: ebpf_sdk_backend::BatchCursor,
    done: bool,
}

impl EntryCursor {
    /// Whether every entry was read (or reading failed).
    pub fn is_done(&self) -> bool {
        self.done
    }
}

/// The entries of a map, decoded, read a batch at a time
/// ([`MapHandle::iter`]). Entries written or deleted while iterating may or
/// may not be seen, as with any map iteration.
pub struct Iter<'a> {
    handle: &'a MapHandle,
    cursor: EntryCursor,
    batch: std::vec::IntoIter<Decoded>,
}

impl std::fmt::Debug for Iter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("map", &self.handle.schema.name)
            .finish()
    }
}

impl Iterator for Iter<'_> {
    type Item = Result<Decoded, SdkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(d) = self.batch.next() {
                return Some(Ok(d));
            }
            if self.cursor.done {
                return None;
            }
            match self.handle.next_batch(&mut self.cursor) {
                Ok(b) => self.batch = b.into_iter(),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
