//! The object-safe trait higher layers program against.

use std::ops::ControlFlow;

use crate::batch::BatchEntries;
use crate::error::{BackendError, BatchError, MapContext, Op};
use crate::info::MapInfo;

/// Receives one batch of a streamed lookup: concatenated keys, concatenated
/// values and the entry count; returns [`ControlFlow::Break`] to stop.
pub type BatchSink<'a> = dyn FnMut(&[u8], &[u8], usize) -> ControlFlow<()> + 'a;

/// How an update treats an existing key (`BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UpdateFlags {
    /// Create or overwrite.
    #[default]
    Any,
    /// Create only; an existing key is [`BackendError::KeyExists`].
    NoExist,
    /// Overwrite only; a missing key is [`BackendError::KeyNotFound`].
    /// For queues and stacks: push even when full, dropping the oldest element.
    Exist,
}

impl UpdateFlags {
    /// The kernel's flag value.
    pub fn bits(self) -> u64 {
        match self {
            UpdateFlags::Any => 0,
            UpdateFlags::NoExist => 1,
            UpdateFlags::Exist => 2,
        }
    }
}

/// Element access to one map, kernel ([`Map`](crate::Map)) or in memory
/// ([`FakeMap`](crate::FakeMap)).
///
/// Keys and values are the map's raw bytes: keys are exactly
/// `info().key_size` bytes, values exactly [`MapBackend::value_buf_len`]
/// bytes (per-CPU maps: one 8-byte-aligned slot per possible CPU, see
/// [`percpu`](crate::percpu)). A wrong length is a
/// [`BackendError::SizeMismatch`] and never reaches the kernel.
///
/// ```
/// use ebpf_sdk_backend::{FakeMap, MapBackend, UpdateFlags};
///
/// fn bump(map: &dyn MapBackend, key: u32) -> Result<u64, ebpf_sdk_backend::BackendError> {
///     let old = map.lookup(&key.to_ne_bytes())?.map_or(0, |v| u64::from_ne_bytes(v.try_into().unwrap()));
///     map.update(&key.to_ne_bytes(), &(old + 1).to_ne_bytes(), UpdateFlags::Any)?;
///     Ok(old + 1)
/// }
///
/// let map = FakeMap::hash("counters", 4, 8, 16);
/// assert_eq!(bump(&map, 3).unwrap(), 1);
/// assert_eq!(bump(&map, 3).unwrap(), 2);
/// ```
pub trait MapBackend {
    /// The map's attributes.
    fn info(&self) -> &MapInfo;

    /// Name, id and path for messages.
    fn context(&self) -> &MapContext;

    /// The number of possible CPUs used for per-CPU value buffers.
    fn ncpus(&self) -> usize;

    /// The value buffer size of one element (see [`MapInfo::value_buf_len`]).
    fn value_buf_len(&self) -> usize {
        self.info()
            .value_buf_len(self.ncpus())
            .unwrap_or(usize::MAX)
    }

    /// The value stored under `key`, `None` if the key is absent.
    ///
    /// For program arrays and map-in-maps the value is the object's id (u32).
    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError>;

    /// Stores `value` under `key`.
    fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), BackendError>;

    /// Deletes `key`; a missing key is [`BackendError::KeyNotFound`].
    fn delete(&self, key: &[u8]) -> Result<(), BackendError>;

    /// The key after `key` in the map's iteration order (`None`: the first
    /// key); `Ok(None)` at the end.
    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, BackendError>;

    /// Every entry, read in batches where the kernel supports it.
    fn lookup_batch(&self) -> Result<BatchEntries, BackendError>;

    /// Every entry, handed to `sink` one batch at a time (concatenated keys,
    /// concatenated values, entry count) so large maps stream in bounded
    /// memory; `sink` returns [`ControlFlow::Break`] to stop. The default
    /// reads everything with [`MapBackend::lookup_batch`] and hands it over
    /// as one batch.
    fn lookup_batch_chunks(&self, sink: &mut BatchSink<'_>) -> Result<(), BackendError> {
        let all = self.lookup_batch()?;
        if !all.is_empty() {
            let _ = sink(&all.keys, &all.values, all.len());
        }
        Ok(())
    }

    /// The next batch of entries after `cursor` (start with
    /// [`BatchCursor::default`]), or `Ok(None)` when every entry was read:
    /// for iterators that pull entries a batch at a time. The default reads
    /// everything with [`MapBackend::lookup_batch`] as one batch.
    fn lookup_batch_next(
        &self,
        cursor: &mut BatchCursor,
    ) -> Result<Option<BatchEntries>, BackendError> {
        if matches!(cursor.state, CursorState::Done) {
            return Ok(None);
        }
        cursor.state = CursorState::Done;
        let all = self.lookup_batch()?;
        Ok((!all.is_empty()).then_some(all))
    }

    /// Writes `count` entries from concatenated `keys` and `values`.
    ///
    /// On failure the error's [`applied`](BatchError::applied) is exactly the
    /// number of leading entries that are in the map.
    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: usize,
        flags: UpdateFlags,
    ) -> Result<usize, BatchError>;

    /// Deletes `count` concatenated `keys`, with the same applied-count
    /// semantics as [`MapBackend::update_batch`].
    fn delete_batch(&self, keys: &[u8], count: usize) -> Result<usize, BatchError>;

    /// Pushes onto a queue or stack, or adds to a bloom filter.
    fn push(&self, value: &[u8], flags: UpdateFlags) -> Result<(), BackendError>;

    /// Pops from a queue or stack; `None` when empty.
    fn pop(&self) -> Result<Option<Vec<u8>>, BackendError>;

    /// The element a pop would return, without removing it; `None` when empty.
    fn peek(&self) -> Result<Option<Vec<u8>>, BackendError>;

    /// Bloom filter membership (`BPF_MAP_LOOKUP_ELEM` with the value):
    /// `false` means definitely absent, `true` probably present.
    fn contains(&self, value: &[u8]) -> Result<bool, BackendError>;
}

/// Where a batched read of a map stands (see [`MapBackend::lookup_batch_next`]).
#[derive(Debug, Clone, Default)]
pub struct BatchCursor {
    pub(crate) state: CursorState,
}

#[derive(Debug, Clone, Default)]
pub(crate) enum CursorState {
    /// Nothing read yet.
    #[default]
    Start,
    /// The kernel's batch token after the last batch.
    Token(Vec<u8>),
    /// Reading key by key (no batch lookup for this map): after this key.
    ByKeys(Option<Vec<u8>>),
    /// Every entry was read.
    Done,
}

impl<'a> dyn MapBackend + 'a {
    /// Iterates over the keys of a trait object.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(self)
    }

    /// Iterates over the entries of a trait object.
    pub fn entries(&self) -> Entries<'_> {
        Entries::new(self)
    }
}

/// Iterator over a map's keys (`BPF_MAP_GET_NEXT_KEY`).
///
/// If the current key is deleted while iterating, hash maps restart from
/// the first key (kernel behaviour), so keys may repeat.
pub struct Keys<'a> {
    map: &'a dyn MapBackend,
    last: Option<Vec<u8>>,
    done: bool,
}

impl<'a> Keys<'a> {
    /// Starts iterating over `map`.
    pub fn new(map: &'a dyn MapBackend) -> Keys<'a> {
        Keys {
            map,
            last: None,
            done: false,
        }
    }
}

impl Iterator for Keys<'_> {
    type Item = Result<Vec<u8>, BackendError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.map.next_key(self.last.as_deref()) {
            Ok(Some(k)) => {
                self.last = Some(k.clone());
                Some(Ok(k))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterator over `(key, value)` pairs; keys deleted between listing and
/// lookup are skipped.
pub struct Entries<'a> {
    keys: Keys<'a>,
}

impl<'a> Entries<'a> {
    /// Starts iterating over `map`.
    pub fn new(map: &'a dyn MapBackend) -> Entries<'a> {
        Entries {
            keys: Keys::new(map),
        }
    }
}

impl Iterator for Entries<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>), BackendError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let key = match self.keys.next()? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            match self.keys.map.lookup(&key) {
                Ok(Some(v)) => return Some(Ok((key, v))),
                Ok(None) => continue,
                Err(e) => {
                    self.keys.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Shared argument checks, so the kernel map and the fake refuse alike.
pub(crate) mod check {
    use super::*;

    pub(crate) fn key(map: &dyn MapBackend, op: Op, key: &[u8]) -> Result<(), BackendError> {
        let expected = map.info().key_size as usize;
        if key.len() != expected {
            return Err(BackendError::SizeMismatch {
                op,
                map: map.context().clone(),
                what: "key",
                expected,
                actual: key.len(),
                per_cpu: None,
            });
        }
        Ok(())
    }

    fn per_cpu(map: &dyn MapBackend) -> Option<(u32, usize)> {
        map.info()
            .map_type
            .per_cpu()
            .then(|| (map.info().value_size, map.ncpus()))
    }

    pub(crate) fn value(map: &dyn MapBackend, op: Op, value: &[u8]) -> Result<(), BackendError> {
        let expected = map.value_buf_len();
        if value.len() != expected {
            return Err(BackendError::SizeMismatch {
                op,
                map: map.context().clone(),
                what: "value",
                expected,
                actual: value.len(),
                per_cpu: per_cpu(map),
            });
        }
        Ok(())
    }

    /// Checks the shape of a batch: `count` keys and (if given) `count` values.
    pub(crate) fn batch(
        map: &dyn MapBackend,
        op: Op,
        keys: &[u8],
        values: Option<&[u8]>,
        count: usize,
    ) -> Result<(), BackendError> {
        let ks = map.info().key_size as usize;
        let need = count.saturating_mul(ks);
        if keys.len() != need {
            return Err(BackendError::SizeMismatch {
                op,
                map: map.context().clone(),
                what: "keys buffer",
                expected: need,
                actual: keys.len(),
                per_cpu: None,
            });
        }
        if let Some(values) = values {
            let need = count.saturating_mul(map.value_buf_len());
            if values.len() != need {
                return Err(BackendError::SizeMismatch {
                    op,
                    map: map.context().clone(),
                    what: "values buffer",
                    expected: need,
                    actual: values.len(),
                    per_cpu: per_cpu(map),
                });
            }
        }
        Ok(())
    }

    /// Refuses what the kernel would refuse with a less helpful errno: an
    /// LPM prefix longer than the key, an array index past the end.
    pub(crate) fn write_key(map: &dyn MapBackend, op: Op, key: &[u8]) -> Result<(), BackendError> {
        let info = map.info();
        if let Some((prefix_len, max_prefix_len)) = crate::error::lpm_prefix(info, key) {
            if prefix_len > max_prefix_len {
                return Err(BackendError::InvalidPrefixLen {
                    op,
                    map: map.context().clone(),
                    prefix_len,
                    max_prefix_len,
                });
            }
        }
        if let Some(index) = crate::error::array_index(info, key) {
            if index >= info.max_entries && op != Op::Delete && op != Op::DeleteBatch {
                return Err(BackendError::IndexOutOfRange {
                    op,
                    map: map.context().clone(),
                    index,
                    max_entries: info.max_entries,
                });
            }
        }
        Ok(())
    }

    /// Refuses push on maps that have keys.
    pub(crate) fn keyless(map: &dyn MapBackend, op: Op) -> Result<(), BackendError> {
        let info = map.info();
        if info.map_type.keyless() {
            return Ok(());
        }
        Err(BackendError::WrongMapType {
            op,
            map: map.context().clone(),
            map_type: info.map_type,
            expected: "a queue, stack or bloom filter",
        })
    }
}
