//! An in-memory map with kernel semantics, for tests without root.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::sync::{Mutex, MutexGuard};

use crate::backend::{check, Entries, Keys, MapBackend, UpdateFlags};
use crate::batch::BatchEntries;
use crate::error::{
    from_errno, BackendError, BatchError, ErrnoCtx, MapContext, Op, ReadOnlyReason,
};
use crate::info::MapInfo;
use ebpf_sdk_schema::MapType;

/// An in-memory [`MapBackend`] that behaves like the kernel map of its type
/// and fails with the same [`BackendError`]s, so code above the backend can
/// be tested without root.
///
/// - Hash-like types (`hash`, `percpu_hash`, `lru_hash`, `lru_percpu_hash`,
///   `lpm_trie`, `hash_of_maps`): `max_entries` is enforced (full is
///   [`BackendError::MapFull`]); LRU types evict the least recently updated
///   entry instead. LPM tries match the longest prefix on lookup and refuse
///   prefixes longer than `(key_size - 4) * 8`. Iteration is in key byte order.
/// - `array` and `percpu_array`: keys `0..max_entries` always exist (zeroed),
///   delete is refused as the kernel refuses it, NoExist is `KeyExists`.
///   `prog_array` and `array_of_maps` slots start empty and can be deleted.
/// - `queue`, `stack`: push/pop/peek, full unless pushed with
///   [`UpdateFlags::Exist`]. `bloom_filter`: exact set (no false positives).
/// - Per-CPU values are `round_up(value_size, 8) * ncpus` bytes
///   ([`FakeMap::with_ncpus`]; 1 CPU by default).
/// - Batches apply entries in order and stop at the first failure with the
///   exact applied count, as the kernel does.
///
/// ```
/// use ebpf_sdk_backend::{BackendError, FakeMap, MapBackend, UpdateFlags};
///
/// let map = FakeMap::hash("flows", 4, 8, 2);
/// let keys: Vec<u8> = (0u32..3).flat_map(u32::to_ne_bytes).collect();
/// let values = vec![0u8; 3 * 8];
/// let err = map.update_batch(&keys, &values, 3, UpdateFlags::Any).unwrap_err();
/// assert_eq!(err.applied, 2);
/// assert!(matches!(*err.source, BackendError::MapFull { max_entries: 2, .. }));
///
/// let arr = FakeMap::array("cfg", 8, 4);
/// assert!(matches!(arr.delete(&0u32.to_ne_bytes()), Err(BackendError::Unsupported { .. })));
/// ```
#[derive(Debug)]
pub struct FakeMap {
    info: MapInfo,
    ctx: MapContext,
    ncpus: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    store: Store,
    frozen: bool,
    fail_next: Option<i32>,
    clock: u64,
}

#[derive(Debug)]
struct Slot {
    key: Vec<u8>,
    value: Vec<u8>,
    stamp: u64,
}

#[derive(Debug)]
enum Store {
    /// Indexed by the normalised key (LPM: host bits past the prefix cleared).
    Keyed(BTreeMap<Vec<u8>, Slot>),
    Array(Vec<Option<Vec<u8>>>),
    Queue(VecDeque<Vec<u8>>),
    Bloom(BTreeSet<Vec<u8>>),
}

fn errno(e: i32) -> io::Error {
    io::Error::from_raw_os_error(e)
}

impl FakeMap {
    /// A fake of the map described by `info` (its `name` names it in errors),
    /// with one CPU for per-CPU values.
    pub fn new(info: MapInfo) -> FakeMap {
        FakeMap::with_ncpus(info, 1)
    }

    /// A fake with `ncpus` possible CPUs for per-CPU values.
    pub fn with_ncpus(info: MapInfo, ncpus: usize) -> FakeMap {
        let ncpus = ncpus.max(1);
        let vs = info.value_buf_len(ncpus).unwrap_or(0);
        let store = match info.map_type {
            MapType::Queue | MapType::Stack => Store::Queue(VecDeque::new()),
            MapType::BloomFilter => Store::Bloom(BTreeSet::new()),
            t if t.indexed() => {
                let filled = t.holds_fds().is_none();
                Store::Array(
                    (0..info.max_entries)
                        .map(|_| filled.then(|| vec![0; vs]))
                        .collect(),
                )
            }
            _ => Store::Keyed(BTreeMap::new()),
        };
        let ctx = MapContext {
            name: info.name.clone(),
            id: info.id,
            path: None,
        };
        FakeMap {
            info,
            ctx,
            ncpus,
            state: Mutex::new(State {
                store,
                frozen: false,
                fail_next: None,
                clock: 0,
            }),
        }
    }

    /// A fake `hash` map.
    pub fn hash(name: &str, key_size: u32, value_size: u32, max_entries: u32) -> FakeMap {
        FakeMap::of_type(MapType::Hash, name, key_size, value_size, max_entries)
    }

    /// A fake `array` map (4-byte keys).
    pub fn array(name: &str, value_size: u32, max_entries: u32) -> FakeMap {
        FakeMap::of_type(MapType::Array, name, 4, value_size, max_entries)
    }

    /// A fake of any map type.
    pub fn of_type(
        map_type: MapType,
        name: &str,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> FakeMap {
        let mut info = MapInfo::new(map_type, key_size, value_size, max_entries);
        info.name = name.to_string();
        FakeMap::new(info)
    }

    /// Freezes the map: writes fail with [`BackendError::ReadOnly`], as for a
    /// frozen kernel map.
    pub fn freeze(&self) {
        self.state().frozen = true;
    }

    /// Makes the next operation fail with kernel errno `errno`, translated
    /// exactly as for a kernel map (e.g. `libc::EPERM`).
    pub fn fail_next(&self, errno: i32) {
        self.state().fail_next = Some(errno);
    }

    /// Number of stored elements (for arrays: `max_entries`, or filled slots).
    pub fn len(&self) -> usize {
        match &self.state().store {
            Store::Keyed(m) => m.len(),
            Store::Array(a) => a.iter().filter(|s| s.is_some()).count(),
            Store::Queue(q) => q.len(),
            Store::Bloom(b) => b.len(),
        }
    }

    /// Whether [`FakeMap::len`] is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates over the keys.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(self)
    }

    /// Iterates over `(key, value)` pairs.
    pub fn entries(&self) -> Entries<'_> {
        Entries::new(self)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated
        // in a way that matters to a test double; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kernel errno as the kernel map would report it. Called with the
    /// state locked; frozen maps never get this far for writes (see `begin`).
    fn err(&self, op: Op, key: Option<&[u8]>, e: i32) -> BackendError {
        from_errno(
            ErrnoCtx {
                op,
                info: &self.info,
                map: &self.ctx,
                key,
                read_only: None,
            },
            errno(e),
        )
    }

    /// Fails if an injected error is pending, or a write hits a frozen map.
    fn begin(&self, st: &mut State, op: Op, key: Option<&[u8]>) -> Result<(), BackendError> {
        if let Some(e) = st.fail_next.take() {
            let read_only = st.frozen.then_some(ReadOnlyReason::Frozen);
            return Err(from_errno(
                ErrnoCtx {
                    op,
                    info: &self.info,
                    map: &self.ctx,
                    key,
                    read_only,
                },
                errno(e),
            ));
        }
        if st.frozen && op.is_write() {
            return Err(BackendError::ReadOnly {
                op,
                map: self.ctx.clone(),
                reason: ReadOnlyReason::Frozen,
            });
        }
        Ok(())
    }

    /// The key under which an element is stored (LPM: prefix bits only).
    fn norm(&self, key: &[u8]) -> Vec<u8> {
        if self.info.map_type != MapType::LpmTrie || key.len() < 4 {
            return key.to_vec();
        }
        let plen = u32::from_ne_bytes([key[0], key[1], key[2], key[3]]) as usize;
        let mut k = key.to_vec();
        for (i, b) in k[4..].iter_mut().enumerate() {
            let bit = i * 8;
            if bit >= plen {
                *b = 0;
            } else if plen - bit < 8 {
                *b &= 0xffu8 << (8 - (plen - bit));
            }
        }
        k
    }

    fn lpm_lookup<'m>(&self, m: &'m BTreeMap<Vec<u8>, Slot>, key: &[u8]) -> Option<&'m Slot> {
        let plen = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
        m.values()
            .filter_map(|s| {
                let p = u32::from_ne_bytes(s.key.get(..4)?.try_into().ok()?);
                let mut probe = s.key[..4].to_vec();
                probe.extend_from_slice(key.get(4..)?);
                (p <= plen && self.norm(&probe) == self.norm(&s.key)).then_some((p, s))
            })
            .max_by_key(|(p, _)| *p)
            .map(|(_, s)| s)
    }

    fn update_locked(
        &self,
        st: &mut State,
        key: &[u8],
        value: &[u8],
        flags: UpdateFlags,
    ) -> Result<(), BackendError> {
        let op = Op::Update;
        let fail = |e| Err(self.err(op, Some(key), e));
        st.clock += 1;
        let stamp = st.clock;
        let lru = matches!(
            self.info.map_type,
            MapType::LruHash | MapType::LruPercpuHash
        );
        if matches!(st.store, Store::Queue(_) | Store::Bloom(_)) {
            return self.push_locked(st, value, flags);
        }
        match &mut st.store {
            Store::Keyed(m) => {
                let k = self.norm(key);
                let exists = m.contains_key(&k);
                match flags {
                    UpdateFlags::NoExist if exists => return fail(libc::EEXIST),
                    UpdateFlags::Exist if !exists => return fail(libc::ENOENT),
                    _ => {}
                }
                if !exists && m.len() >= self.info.max_entries as usize {
                    if lru && !m.is_empty() {
                        let oldest = m
                            .iter()
                            .min_by_key(|(_, s)| s.stamp)
                            .map(|(k, _)| k.clone());
                        if let Some(o) = oldest {
                            m.remove(&o);
                        }
                    } else {
                        return fail(if self.info.map_type == MapType::LpmTrie {
                            libc::ENOSPC
                        } else {
                            libc::E2BIG
                        });
                    }
                }
                m.insert(
                    k,
                    Slot {
                        key: key.to_vec(),
                        value: value.to_vec(),
                        stamp,
                    },
                );
                Ok(())
            }
            Store::Array(a) => {
                let i = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4])) as usize;
                let Some(slot) = a.get_mut(i) else {
                    return fail(libc::E2BIG);
                };
                let plain = self.info.map_type.holds_fds().is_none();
                match flags {
                    UpdateFlags::NoExist if plain || slot.is_some() => return fail(libc::EEXIST),
                    UpdateFlags::Exist if slot.is_none() => return fail(libc::ENOENT),
                    _ => {}
                }
                *slot = Some(value.to_vec());
                Ok(())
            }
            Store::Queue(_) | Store::Bloom(_) => Ok(()),
        }
    }

    fn push_locked(
        &self,
        st: &mut State,
        value: &[u8],
        flags: UpdateFlags,
    ) -> Result<(), BackendError> {
        let op = Op::Push;
        let max = self.info.max_entries as usize;
        match &mut st.store {
            Store::Queue(q) => {
                if q.len() >= max {
                    if flags != UpdateFlags::Exist {
                        return Err(self.err(op, None, libc::E2BIG));
                    }
                    q.pop_front();
                }
                q.push_back(value.to_vec());
                Ok(())
            }
            Store::Bloom(b) => {
                if flags != UpdateFlags::Any {
                    return Err(self.err(op, None, libc::EINVAL));
                }
                b.insert(value.to_vec());
                Ok(())
            }
            _ => Err(BackendError::WrongMapType {
                op,
                map: self.ctx.clone(),
                map_type: self.info.map_type,
                expected: "a queue, stack or bloom filter",
            }),
        }
    }

    fn delete_locked(&self, st: &mut State, op: Op, key: &[u8]) -> Result<(), BackendError> {
        let fail = |e| Err(self.err(op, Some(key), e));
        match &mut st.store {
            Store::Keyed(m) => match m.remove(&self.norm(key)) {
                Some(_) => Ok(()),
                None => fail(libc::ENOENT),
            },
            Store::Array(_) if self.info.map_type.holds_fds().is_none() => fail(libc::EINVAL),
            Store::Array(a) => {
                let i = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4])) as usize;
                match a.get_mut(i) {
                    Some(slot @ Some(_)) => {
                        *slot = None;
                        Ok(())
                    }
                    Some(None) => fail(libc::ENOENT),
                    None => fail(libc::E2BIG),
                }
            }
            Store::Queue(_) => fail(libc::EINVAL),
            Store::Bloom(_) => fail(libc::EOPNOTSUPP),
        }
    }

    fn next_key_locked(
        &self,
        st: &State,
        key: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::NextKey;
        match &st.store {
            Store::Keyed(m) => {
                let next = match key {
                    None => m.values().next(),
                    Some(k) => {
                        let k = self.norm(k);
                        if m.contains_key(&k) {
                            m.range(k..).nth(1).map(|(_, s)| s)
                        } else {
                            m.values().next()
                        }
                    }
                };
                Ok(next.map(|s| s.key.clone()))
            }
            Store::Array(a) => {
                let next = match key
                    .map(|k| u32::from_ne_bytes(k.try_into().unwrap_or([0xff; 4])) as usize)
                {
                    None => 0,
                    Some(i) if i >= a.len() => 0,
                    Some(i) => i + 1,
                };
                Ok((next < a.len()).then(|| (next as u32).to_ne_bytes().to_vec()))
            }
            Store::Queue(_) => Err(self.err(op, key, libc::EINVAL)),
            Store::Bloom(_) => Err(self.err(op, key, libc::EOPNOTSUPP)),
        }
    }
}

impl FakeMap {
    /// A batch write as the kernel does it: `write(state, i, key)` for each
    /// of `count` concatenated `keys` in order, under one lock, stopping at
    /// the first failing entry; the error counts the entries applied before
    /// it and carries the element error under the batch operation.
    fn batch_write(
        &self,
        op: Op,
        keys: &[u8],
        values: Option<&[u8]>,
        count: usize,
        mut write: impl FnMut(&mut State, usize, &[u8]) -> Result<(), BackendError>,
    ) -> Result<usize, BatchError> {
        check::batch(self, op, keys, values, count)
            .map_err(|e| BatchError::before_start(op, count, e))?;
        let ks = self.info.key_size as usize;
        let mut st = self.state();
        for i in 0..count {
            let key = &keys[i * ks..(i + 1) * ks];
            let res = self
                .begin(&mut st, op, Some(key))
                .and_then(|()| check::write_key(self, op, key))
                .and_then(|()| write(&mut st, i, key));
            if let Err(e) = res {
                return Err(BatchError {
                    op,
                    applied: i,
                    requested: count,
                    source: Box::new(retag(e, op)),
                });
            }
        }
        Ok(count)
    }
}

impl MapBackend for FakeMap {
    fn info(&self) -> &MapInfo {
        &self.info
    }

    fn context(&self) -> &MapContext {
        &self.ctx
    }

    fn ncpus(&self) -> usize {
        self.ncpus
    }

    fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::Lookup;
        check::key(self, op, key)?;
        let mut st = self.state();
        self.begin(&mut st, op, Some(key))?;
        match &st.store {
            Store::Keyed(m) if self.info.map_type == MapType::LpmTrie => {
                Ok(self.lpm_lookup(m, key).map(|s| s.value.clone()))
            }
            Store::Keyed(m) => Ok(m.get(key).map(|s| s.value.clone())),
            Store::Array(a) => {
                let i = u32::from_ne_bytes(key.try_into().unwrap_or([0xff; 4])) as usize;
                Ok(a.get(i).cloned().flatten())
            }
            Store::Queue(q) if self.info.map_type == MapType::Stack => Ok(q.back().cloned()),
            Store::Queue(q) => Ok(q.front().cloned()),
            Store::Bloom(_) => Err(BackendError::WrongMapType {
                op,
                map: self.ctx.clone(),
                map_type: self.info.map_type,
                expected: "a map with keys (use contains for bloom filters)",
            }),
        }
    }

    fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        let op = Op::Update;
        check::key(self, op, key)?;
        check::value(self, op, value)?;
        check::write_key(self, op, key)?;
        let mut st = self.state();
        self.begin(&mut st, op, Some(key))?;
        self.update_locked(&mut st, key, value, flags)
    }

    fn delete(&self, key: &[u8]) -> Result<(), BackendError> {
        let op = Op::Delete;
        check::key(self, op, key)?;
        check::write_key(self, op, key)?;
        let mut st = self.state();
        self.begin(&mut st, op, Some(key))?;
        self.delete_locked(&mut st, op, key)
    }

    fn next_key(&self, key: Option<&[u8]>) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::NextKey;
        if let Some(k) = key {
            check::key(self, op, k)?;
        }
        let mut st = self.state();
        self.begin(&mut st, op, key)?;
        self.next_key_locked(&st, key)
    }

    fn lookup_batch(&self) -> Result<BatchEntries, BackendError> {
        let op = Op::LookupBatch;
        let mut st = self.state();
        self.begin(&mut st, op, None)?;
        let mut out = BatchEntries::new(self.info.key_size as usize, self.value_buf_len());
        match &st.store {
            Store::Keyed(m) => m.values().for_each(|s| out.push(&s.key, &s.value)),
            Store::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    if let Some(v) = v {
                        out.push(&(i as u32).to_ne_bytes(), v);
                    }
                }
            }
            Store::Queue(_) | Store::Bloom(_) => {
                return Err(BackendError::Unsupported {
                    op,
                    map: self.ctx.clone(),
                    map_type: self.info.map_type,
                    hint: Some("this map type has no keys to iterate"),
                    errno: crate::error::ENOTSUPP,
                })
            }
        }
        Ok(out)
    }

    fn update_batch(
        &self,
        keys: &[u8],
        values: &[u8],
        count: usize,
        flags: UpdateFlags,
    ) -> Result<usize, BatchError> {
        let vs = self.value_buf_len();
        self.batch_write(Op::UpdateBatch, keys, Some(values), count, |st, i, key| {
            self.update_locked(st, key, &values[i * vs..(i + 1) * vs], flags)
        })
    }

    fn delete_batch(&self, keys: &[u8], count: usize) -> Result<usize, BatchError> {
        let op = Op::DeleteBatch;
        self.batch_write(op, keys, None, count, |st, _, key| {
            self.delete_locked(st, op, key)
        })
    }

    fn push(&self, value: &[u8], flags: UpdateFlags) -> Result<(), BackendError> {
        let op = Op::Push;
        check::keyless(self, op)?;
        check::value(self, op, value)?;
        let mut st = self.state();
        self.begin(&mut st, op, None)?;
        self.push_locked(&mut st, value, flags)
    }

    fn pop(&self) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::Pop;
        let mut st = self.state();
        let stack = self.info.map_type == MapType::Stack;
        if !matches!(st.store, Store::Queue(_)) {
            return Err(BackendError::WrongMapType {
                op,
                map: self.ctx.clone(),
                map_type: self.info.map_type,
                expected: "a queue or stack",
            });
        }
        self.begin(&mut st, op, None)?;
        let Store::Queue(q) = &mut st.store else {
            return Ok(None);
        };
        Ok(if stack { q.pop_back() } else { q.pop_front() })
    }

    fn peek(&self) -> Result<Option<Vec<u8>>, BackendError> {
        let op = Op::Peek;
        let mut st = self.state();
        self.begin(&mut st, op, None)?;
        match &st.store {
            Store::Queue(q) if self.info.map_type == MapType::Stack => Ok(q.back().cloned()),
            Store::Queue(q) => Ok(q.front().cloned()),
            _ => Err(BackendError::WrongMapType {
                op,
                map: self.ctx.clone(),
                map_type: self.info.map_type,
                expected: "a queue or stack (use contains for bloom filters)",
            }),
        }
    }

    fn contains(&self, value: &[u8]) -> Result<bool, BackendError> {
        let op = Op::Peek;
        check::value(self, op, value)?;
        let mut st = self.state();
        self.begin(&mut st, op, None)?;
        match &st.store {
            Store::Bloom(b) => Ok(b.contains(value)),
            _ => Err(BackendError::WrongMapType {
                op,
                map: self.ctx.clone(),
                map_type: self.info.map_type,
                expected: "a bloom filter",
            }),
        }
    }
}

/// Reports an element error of a batch under the batch operation.
fn retag(e: BackendError, op: Op) -> BackendError {
    match e {
        BackendError::KeyExists { map, .. } => BackendError::KeyExists { op, map },
        BackendError::KeyNotFound { map, .. } => BackendError::KeyNotFound { op, map },
        BackendError::MapFull {
            map,
            max_entries,
            errno,
            ..
        } => BackendError::MapFull {
            op,
            map,
            max_entries,
            errno,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: u32) -> [u8; 4] {
        i.to_ne_bytes()
    }

    fn lpm_key(plen: u32, addr: [u8; 4]) -> Vec<u8> {
        let mut v = plen.to_ne_bytes().to_vec();
        v.extend(addr);
        v
    }

    #[test]
    fn hash_noexist_exist_full() {
        let m = FakeMap::hash("h", 4, 8, 2);
        m.update(&k(1), &[1; 8], UpdateFlags::NoExist).unwrap();
        let e = m.update(&k(1), &[2; 8], UpdateFlags::NoExist).unwrap_err();
        assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
        let e = m.update(&k(2), &[2; 8], UpdateFlags::Exist).unwrap_err();
        assert!(matches!(e, BackendError::KeyNotFound { .. }), "{e}");
        m.update(&k(2), &[2; 8], UpdateFlags::Any).unwrap();
        let e = m.update(&k(3), &[3; 8], UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(e, BackendError::MapFull { max_entries: 2, .. }),
            "{e}"
        );
        // Overwriting in a full map is fine.
        m.update(&k(2), &[9; 8], UpdateFlags::Exist).unwrap();
        assert_eq!(m.lookup(&k(2)).unwrap(), Some(vec![9; 8]));
        assert_eq!(m.lookup(&k(7)).unwrap(), None);
        m.delete(&k(1)).unwrap();
        assert!(matches!(
            m.delete(&k(1)),
            Err(BackendError::KeyNotFound { .. })
        ));
        let keys: Vec<_> = m.keys().collect::<Result<_, _>>().unwrap();
        assert_eq!(keys, vec![k(2).to_vec()]);
    }

    #[test]
    fn sizes_are_checked() {
        let m = FakeMap::hash("h", 4, 8, 2);
        let e = m.update(&[0; 3], &[0; 8], UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::SizeMismatch {
                    what: "key",
                    expected: 4,
                    actual: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = m.update(&k(0), &[0; 9], UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::SizeMismatch {
                    what: "value",
                    expected: 8,
                    actual: 9,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn array_semantics() {
        let m = FakeMap::array("a", 8, 3);
        assert_eq!(m.lookup(&k(2)).unwrap(), Some(vec![0; 8]));
        assert_eq!(m.lookup(&k(3)).unwrap(), None);
        let e = m.update(&k(0), &[1; 8], UpdateFlags::NoExist).unwrap_err();
        assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
        m.update(&k(0), &[1; 8], UpdateFlags::Exist).unwrap();
        let e = m.update(&k(3), &[1; 8], UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::IndexOutOfRange {
                    index: 3,
                    max_entries: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = m.delete(&k(0)).unwrap_err();
        assert!(matches!(e, BackendError::Unsupported { .. }), "{e}");
        let keys: Vec<_> = m.keys().map(|k| k.unwrap()).collect();
        assert_eq!(keys, vec![k(0).to_vec(), k(1).to_vec(), k(2).to_vec()]);
        assert_eq!(m.lookup_batch().unwrap().len(), 3);
    }

    #[test]
    fn per_cpu_sizes() {
        let mut info = MapInfo::new(MapType::PercpuArray, 4, 12, 2);
        info.name = "pc".into();
        let m = FakeMap::with_ncpus(info, 4);
        assert_eq!(m.value_buf_len(), 64);
        let e = m.update(&k(0), &[0; 12], UpdateFlags::Any).unwrap_err();
        assert!(
            e.to_string().contains("round_up(12, 8) * 4 possible CPUs"),
            "{e}"
        );
        m.update(
            &k(0),
            &crate::percpu::broadcast(&[5; 12], 4),
            UpdateFlags::Any,
        )
        .unwrap();
        let v = m.lookup(&k(0)).unwrap().unwrap();
        assert!(crate::percpu::split(&v, 12).all(|c| c == [5; 12]));
    }

    #[test]
    fn batch_partial_apply_counts() {
        let m = FakeMap::hash("h", 4, 4, 5);
        let keys: Vec<u8> = (0..8u32).flat_map(k).collect();
        let values = vec![0; 8 * 4];
        let e = m
            .update_batch(&keys, &values, 8, UpdateFlags::Any)
            .unwrap_err();
        assert_eq!((e.applied, e.requested), (5, 8));
        assert!(
            matches!(
                *e.source,
                BackendError::MapFull {
                    op: Op::UpdateBatch,
                    ..
                }
            ),
            "{}",
            e.source
        );
        assert_eq!(m.len(), 5);
        let e = m
            .update_batch(&keys[..4], &values, 1, UpdateFlags::Any)
            .unwrap_err();
        assert_eq!(e.applied, 0);
        assert!(matches!(
            *e.source,
            BackendError::SizeMismatch {
                what: "values buffer",
                ..
            }
        ));
        let e = m.delete_batch(&keys, 8).unwrap_err();
        assert_eq!(e.applied, 5);
        assert!(matches!(*e.source, BackendError::KeyNotFound { .. }));
        assert!(m.is_empty());
        assert_eq!(
            m.update_batch(&keys[..12], &values[..12], 3, UpdateFlags::NoExist)
                .unwrap(),
            3
        );
        let e = m
            .update_batch(&keys[8..16], &values[..8], 2, UpdateFlags::NoExist)
            .unwrap_err();
        assert_eq!(e.applied, 0);
        assert!(matches!(*e.source, BackendError::KeyExists { .. }));
    }

    #[test]
    fn lru_evicts_instead_of_filling() {
        let m = FakeMap::of_type(MapType::LruHash, "l", 4, 4, 2);
        for i in 0..3 {
            m.update(&k(i), &[0; 4], UpdateFlags::Any).unwrap();
        }
        assert_eq!(m.len(), 2);
        assert_eq!(m.lookup(&k(0)).unwrap(), None);
    }

    #[test]
    fn lpm_longest_prefix_and_invalid_prefix() {
        let m = FakeMap::of_type(MapType::LpmTrie, "t", 8, 4, 8);
        m.update(&lpm_key(8, [10, 0, 0, 0]), &[8; 4], UpdateFlags::Any)
            .unwrap();
        m.update(&lpm_key(24, [10, 1, 2, 0]), &[24; 4], UpdateFlags::Any)
            .unwrap();
        assert_eq!(
            m.lookup(&lpm_key(32, [10, 1, 2, 3])).unwrap(),
            Some(vec![24; 4])
        );
        assert_eq!(
            m.lookup(&lpm_key(32, [10, 9, 9, 9])).unwrap(),
            Some(vec![8; 4])
        );
        assert_eq!(m.lookup(&lpm_key(32, [11, 0, 0, 1])).unwrap(), None);
        // Host bits past the prefix name the same entry.
        let e = m
            .update(&lpm_key(24, [10, 1, 2, 77]), &[0; 4], UpdateFlags::NoExist)
            .unwrap_err();
        assert!(matches!(e, BackendError::KeyExists { .. }), "{e}");
        let e = m
            .update(&lpm_key(33, [10, 1, 2, 3]), &[0; 4], UpdateFlags::Any)
            .unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::InvalidPrefixLen {
                    prefix_len: 33,
                    max_prefix_len: 32,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn queue_stack_bloom() {
        let q = FakeMap::of_type(MapType::Queue, "q", 0, 4, 2);
        q.push(&k(1), UpdateFlags::Any).unwrap();
        q.push(&k(2), UpdateFlags::Any).unwrap();
        assert!(matches!(
            q.push(&k(3), UpdateFlags::Any),
            Err(BackendError::MapFull { .. })
        ));
        q.push(&k(3), UpdateFlags::Exist).unwrap();
        assert_eq!(q.peek().unwrap(), Some(k(2).to_vec()));
        assert_eq!(q.pop().unwrap(), Some(k(2).to_vec()));
        assert_eq!(q.pop().unwrap(), Some(k(3).to_vec()));
        assert_eq!(q.pop().unwrap(), None);
        assert!(matches!(
            q.next_key(None),
            Err(BackendError::Unsupported { .. })
        ));

        let s = FakeMap::of_type(MapType::Stack, "s", 0, 4, 2);
        s.push(&k(1), UpdateFlags::Any).unwrap();
        s.push(&k(2), UpdateFlags::Any).unwrap();
        assert_eq!(s.pop().unwrap(), Some(k(2).to_vec()));

        let b = FakeMap::of_type(MapType::BloomFilter, "b", 0, 4, 16);
        b.push(&k(1), UpdateFlags::Any).unwrap();
        assert!(b.contains(&k(1)).unwrap());
        assert!(!b.contains(&k(2)).unwrap());
        assert!(matches!(b.pop(), Err(BackendError::WrongMapType { .. })));
    }

    #[test]
    fn frozen_and_injected_errors() {
        let m = FakeMap::array("ro", 4, 1);
        m.freeze();
        let e = m.update(&k(0), &[1; 4], UpdateFlags::Any).unwrap_err();
        assert!(
            matches!(
                e,
                BackendError::ReadOnly {
                    reason: ReadOnlyReason::Frozen,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(m.lookup(&k(0)).unwrap(), Some(vec![0; 4]));
        let h = FakeMap::hash("h", 4, 4, 1);
        h.fail_next(libc::EPERM);
        let e = h.lookup(&k(0)).unwrap_err();
        assert!(matches!(e, BackendError::PermissionDenied { .. }), "{e}");
        assert_eq!(h.lookup(&k(0)).unwrap(), None);
    }

    #[test]
    fn works_as_trait_object() {
        let m: Box<dyn MapBackend> = Box::new(FakeMap::hash("h", 4, 4, 4));
        m.update(&k(1), &[1; 4], UpdateFlags::Any).unwrap();
        let entries: Vec<_> = m.entries().collect::<Result<_, _>>().unwrap();
        assert_eq!(entries, vec![(k(1).to_vec(), vec![1; 4])]);
    }
}
