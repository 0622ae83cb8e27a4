//! Encoded entries held between validation and writing.
//!
//! `apply` validates and encodes every entry before it writes any, so the
//! encoded records must be kept somewhere. They go to memory up to
//! [`SPILL_BYTES`], then to an unlinked temporary file, so a million entries
//! do not grow the process (the page cache holds them, not the heap). A
//! sorted `(hash, index)` table finds a key again for duplicate detection and
//! for the diff against the live map.

use std::collections::hash_map::RandomState;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Records beyond this many bytes go to a temporary file.
pub(crate) const SPILL_BYTES: usize = 16 << 20;

/// Where the records' bytes are: memory, then a temporary file.
pub(crate) enum Store {
    Mem(Vec<u8>),
    File {
        file: File,
        pending: Vec<u8>,
        len: u64,
    },
}

impl Store {
    /// Appends bytes, spilling to a file past [`SPILL_BYTES`].
    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Store::Mem(v) => {
                v.extend_from_slice(bytes);
                if v.len() > SPILL_BYTES {
                    let mut file = tempfile::tempfile()?;
                    file.write_all(v)?;
                    let len = v.len() as u64;
                    *self = Store::File {
                        file,
                        pending: Vec::with_capacity(1 << 20),
                        len,
                    };
                }
            }
            Store::File { file, pending, len } => {
                if bytes.len() >= 1 << 16 {
                    // Large blocks go straight to the file.
                    file.write_all(pending)?;
                    file.write_all(bytes)?;
                    *len += (pending.len() + bytes.len()) as u64;
                    pending.clear();
                } else {
                    pending.extend_from_slice(bytes);
                    if pending.len() >= 1 << 20 {
                        file.write_all(pending)?;
                        *len += pending.len() as u64;
                        pending.clear();
                    }
                }
            }
        }
        Ok(())
    }
}

pub(crate) struct Spool {
    key_size: usize,
    value_size: usize,
    store: Store,
    count: usize,
    /// (hash of key, index), sorted by [`Spool::seal`].
    index: Vec<(u64, u32)>,
    hasher: RandomState,
}

impl Spool {
    pub(crate) fn new(key_size: usize, value_size: usize) -> Self {
        Spool {
            key_size,
            value_size,
            store: Store::Mem(Vec::new()),
            count: 0,
            index: Vec::new(),
            hasher: RandomState::new(),
        }
    }

    fn record(&self) -> usize {
        self.key_size + self.value_size
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The key hasher, for threads that hash keys ahead of
    /// [`Spool::push_hashes`].
    pub(crate) fn hasher(&self) -> &RandomState {
        &self.hasher
    }

    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        debug_assert_eq!(key.len(), self.key_size);
        debug_assert_eq!(value.len(), self.value_size);
        if self.key_size > 0 {
            let h = self.hash(key);
            self.index.push((h, self.count as u32));
        }
        self.store(key)?;
        self.store(value)?;
        self.count += 1;
        Ok(())
    }

    /// Appends bytes to the store, spilling to a file past [`SPILL_BYTES`].
    fn store(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.store.append(bytes)
    }

    /// Takes the bytes out, for another thread to append records to while
    /// this one indexes them ([`Spool::push_hashes`]); put them back with
    /// [`Spool::put_store`] before anything reads the spool.
    pub(crate) fn take_store(&mut self) -> Store {
        std::mem::replace(&mut self.store, Store::Mem(Vec::new()))
    }

    /// Puts back what [`Spool::take_store`] took, with the records appended.
    pub(crate) fn put_store(&mut self, store: Store) {
        self.store = store;
    }

    /// Counts and indexes records (one a hash, from [`Spool::hasher`])
    /// whose bytes another thread appends to the store taken out.
    pub(crate) fn push_hashes(&mut self, hashes: &[u64]) {
        if self.key_size > 0 {
            let first = self.count as u32;
            self.index
                .extend(hashes.iter().zip(first..).map(|(h, i)| (*h, i)));
        }
        self.count += hashes.len();
    }

    /// Flushes and sorts the index. Returns the first duplicate key as the
    /// indices of its two occurrences.
    pub(crate) fn seal(&mut self) -> io::Result<Option<(usize, usize)>> {
        if let Store::File { file, pending, len } = &mut self.store {
            file.write_all(pending)?;
            *len += pending.len() as u64;
            pending.clear();
        }
        self.index.sort_unstable();
        let mut a = vec![0u8; self.key_size];
        let mut b = vec![0u8; self.key_size];
        let mut first_dup: Option<(usize, usize)> = None;
        for w in self.index.windows(2) {
            if w[0].0 != w[1].0 {
                continue;
            }
            self.read_key(w[0].1 as usize, &mut a)?;
            self.read_key(w[1].1 as usize, &mut b)?;
            if a == b {
                let pair = (w[0].1 as usize, w[1].1 as usize);
                if first_dup.is_none_or(|d| pair.1 < d.1) {
                    first_dup = Some(pair);
                }
            }
        }
        Ok(first_dup)
    }

    fn read_at(&self, offset: usize, buf: &mut [u8]) -> io::Result<()> {
        match &self.store {
            Store::Mem(v) => {
                buf.copy_from_slice(&v[offset..offset + buf.len()]);
                Ok(())
            }
            Store::File { file, .. } => file.read_exact_at(buf, offset as u64),
        }
    }

    pub(crate) fn read_key(&self, i: usize, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(i * self.record(), &mut buf[..self.key_size])
    }

    pub(crate) fn read_value(&self, i: usize, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(
            i * self.record() + self.key_size,
            &mut buf[..self.value_size],
        )
    }

    /// The index of `key`, if the input has it (after [`Spool::seal`]).
    pub(crate) fn find(&self, key: &[u8], scratch: &mut [u8]) -> io::Result<Option<usize>> {
        let h = self.hash(key);
        let start = self.index.partition_point(|e| e.0 < h);
        for &(eh, i) in &self.index[start..] {
            if eh != h {
                break;
            }
            self.read_key(i as usize, scratch)?;
            if &scratch[..self.key_size] == key {
                return Ok(Some(i as usize));
            }
        }
        Ok(None)
    }

    /// Reads the records in order, `batch` at a time, keys and values into
    /// separate contiguous buffers; `f(first index, keys, values, count)`.
    pub(crate) fn for_each_batch(
        &mut self,
        batch: usize,
        mut f: impl FnMut(usize, &[u8], &[u8], usize) -> Result<(), crate::SdkError>,
    ) -> Result<(), crate::SdkError> {
        let rec = self.record();
        let batch = batch.max(1);
        let mut raw = vec![0u8; batch * rec];
        let mut keys = Vec::with_capacity(batch * self.key_size);
        let mut values = Vec::with_capacity(batch * self.value_size);
        let mut reader: Box<dyn Read + '_> = match &mut self.store {
            Store::Mem(v) => Box::new(&v[..]),
            Store::File { file, .. } => {
                file.seek(SeekFrom::Start(0)).map_err(read_err)?;
                Box::new(&*file)
            }
        };
        let mut done = 0;
        while done < self.count {
            let n = batch.min(self.count - done);
            reader.read_exact(&mut raw[..n * rec]).map_err(read_err)?;
            keys.clear();
            values.clear();
            for r in raw[..n * rec].chunks_exact(rec) {
                keys.extend_from_slice(&r[..self.key_size]);
                values.extend_from_slice(&r[self.key_size..]);
            }
            f(done, &keys, &values, n)?;
            done += n;
        }
        Ok(())
    }
}

/// Writing the spool failed.
pub(crate) fn write_err(e: io::Error) -> crate::SdkError {
    crate::SdkError::write("<apply spool in $TMPDIR>", e)
}

/// Reading the spool back failed.
pub(crate) fn read_err(e: io::Error) -> crate::SdkError {
    crate::SdkError::read("<apply spool in $TMPDIR>", e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spills_finds_and_reports_duplicates() {
        let mut s = Spool::new(8, 16);
        let n = SPILL_BYTES / 24 + 1000;
        for i in 0..n as u64 {
            s.push(&i.to_le_bytes(), &[i as u8; 16]).unwrap();
        }
        assert!(matches!(s.store, Store::File { .. }));
        assert_eq!(s.seal().unwrap(), None);
        let mut scratch = [0u8; 8];
        assert_eq!(s.find(&5u64.to_le_bytes(), &mut scratch).unwrap(), Some(5));
        assert_eq!(
            s.find(&(n as u64 + 7).to_le_bytes(), &mut scratch).unwrap(),
            None
        );
        let mut v = [0u8; 16];
        s.read_value(n - 1, &mut v).unwrap();
        assert_eq!(v, [(n - 1) as u8; 16]);
        let mut seen = 0;
        s.for_each_batch(4096, |first, k, vals, count| {
            assert_eq!(first, seen);
            assert_eq!(k.len(), count * 8);
            assert_eq!(vals.len(), count * 16);
            assert_eq!(&k[..8], &(first as u64).to_le_bytes());
            seen += count;
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, n);

        // Blocks with hashes computed elsewhere: the same index.
        let mut b = Spool::new(8, 16);
        let mut records = Vec::new();
        let mut hashes = Vec::new();
        for i in 0..n as u64 {
            records.extend_from_slice(&i.to_le_bytes());
            records.extend_from_slice(&[i as u8; 16]);
            hashes.push(b.hasher().hash_one(i.to_le_bytes()));
            if records.len() >= 100_000 || i + 1 == n as u64 {
                // Indexed here, the bytes appended elsewhere (another
                // thread in apply).
                let mut store = b.take_store();
                b.push_hashes(&hashes);
                store.append(&records).unwrap();
                b.put_store(store);
                records.clear();
                hashes.clear();
            }
        }
        assert_eq!(b.len(), n);
        assert_eq!(b.seal().unwrap(), None);
        assert_eq!(
            b.find(&77u64.to_le_bytes(), &mut scratch).unwrap(),
            Some(77)
        );
        b.read_value(n - 2, &mut v).unwrap();
        assert_eq!(v, [(n - 2) as u8; 16]);

        let mut d = Spool::new(4, 1);
        for k in [1u32, 2, 3, 2, 1] {
            d.push(&k.to_le_bytes(), &[0]).unwrap();
        }
        assert_eq!(d.seal().unwrap(), Some((1, 3)));
    }
}
