//! Batch results and the chunking/fallback logic shared by batch operations.

use std::io;

use crate::error::ENOTSUPP;

/// Default entries per batch syscall.
pub const DEFAULT_BATCH_ENTRIES: usize = 4096;

/// Default bound on the key + value bytes of one batch syscall.
pub const DEFAULT_BATCH_BYTES: usize = 4 << 20;

/// The default batch size for a map: [`DEFAULT_BATCH_ENTRIES`], fewer if
/// that would exceed [`DEFAULT_BATCH_BYTES`]; at least 1.
pub(crate) fn default_batch_size(key_size: usize, value_buf_len: usize) -> usize {
    let per_entry = key_size.saturating_add(value_buf_len).max(1);
    (DEFAULT_BATCH_BYTES / per_entry).clamp(1, DEFAULT_BATCH_ENTRIES)
}

/// Entries read by a batch lookup: keys and values concatenated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchEntries {
    /// Size of each key in `keys`.
    pub key_size: usize,
    /// Size of each value in `values` (the per-CPU buffer size for per-CPU maps).
    pub value_size: usize,
    /// `len() * key_size` bytes.
    pub keys: Vec<u8>,
    /// `len() * value_size` bytes.
    pub values: Vec<u8>,
}

impl BatchEntries {
    /// Empty entries of the given sizes.
    pub fn new(key_size: usize, value_size: usize) -> BatchEntries {
        BatchEntries {
            key_size,
            value_size,
            keys: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.keys
            .len()
            .checked_div(self.key_size)
            .or_else(|| self.values.len().checked_div(self.value_size))
            .unwrap_or(0)
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th `(key, value)`.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let k = self
            .keys
            .get(i.checked_mul(self.key_size)?..(i + 1).checked_mul(self.key_size)?)?;
        let v = self
            .values
            .get(i.checked_mul(self.value_size)?..(i + 1).checked_mul(self.value_size)?)?;
        Some((k, v))
    }

    /// Iterates over `(key, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        (0..self.len()).filter_map(move |i| self.get(i))
    }

    /// Appends one entry.
    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(value);
    }
}

/// Whether a failing first batch call means "no batch support here".
pub(crate) fn batch_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
    )
}

/// How a chunked write ended.
#[derive(Debug)]
pub(crate) struct WriteFailure {
    /// Entries applied before the failing one (also its index).
    pub(crate) applied: usize,
    pub(crate) error: io::Error,
}

/// Runs a write over `count` entries in chunks of `chunk`.
///
/// `batch(start, n)` applies entries `start..start + n` in one call and on
/// failure returns how many of them were applied; `single(i)` applies one
/// entry. If the very first batch call fails with nothing applied and an
/// errno meaning "no batch support" (`EINVAL`, `ENOTSUPP`, `EOPNOTSUPP`),
/// everything is redone with `single`, with the same applied-count result.
pub(crate) fn chunked_write(
    count: usize,
    chunk: usize,
    mut batch: impl FnMut(usize, usize) -> Result<(), (usize, io::Error)>,
    mut single: impl FnMut(usize) -> Result<(), io::Error>,
) -> Result<usize, WriteFailure> {
    let chunk = chunk.max(1);
    let mut done = 0;
    while done < count {
        let n = chunk.min(count - done);
        match batch(done, n) {
            Ok(()) => done += n,
            Err((0, error)) if done == 0 && batch_unsupported(&error) => {
                for i in 0..count {
                    single(i).map_err(|error| WriteFailure { applied: i, error })?;
                }
                return Ok(count);
            }
            Err((applied, error)) => {
                return Err(WriteFailure {
                    applied: done + applied.min(n),
                    error,
                })
            }
        }
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn default_sizes() {
        assert_eq!(default_batch_size(4, 8), DEFAULT_BATCH_ENTRIES);
        assert_eq!(default_batch_size(24, 1200), (4 << 20) / 1224);
        assert_eq!(default_batch_size(8, 64 << 20), 1);
    }

    #[test]
    fn chunks_until_done() {
        let mut calls = vec![];
        let r = chunked_write(
            10,
            4,
            |s, n| {
                calls.push((s, n));
                Ok(())
            },
            |_| unreachable!(),
        );
        assert_eq!(r.unwrap(), 10);
        assert_eq!(calls, vec![(0, 4), (4, 4), (8, 2)]);
    }

    #[test]
    fn failure_in_later_chunk_counts_earlier_chunks() {
        // Capacity 6: second chunk applies 2 of 4.
        let r = chunked_write(
            10,
            4,
            |s, n| {
                if s + n > 6 {
                    Err((6 - s, err(libc::E2BIG)))
                } else {
                    Ok(())
                }
            },
            |_| unreachable!(),
        );
        let f = r.unwrap_err();
        assert_eq!(f.applied, 6);
        assert_eq!(f.error.raw_os_error(), Some(libc::E2BIG));
    }

    #[test]
    fn falls_back_on_first_call_only() {
        for errno in [libc::EINVAL, libc::EOPNOTSUPP, ENOTSUPP] {
            let mut singles = vec![];
            let r = chunked_write(
                5,
                2,
                |_, _| Err((0, err(errno))),
                |i| {
                    singles.push(i);
                    if i == 3 {
                        Err(err(libc::E2BIG))
                    } else {
                        Ok(())
                    }
                },
            );
            let f = r.unwrap_err();
            assert_eq!(f.applied, 3);
            assert_eq!(singles, vec![0, 1, 2, 3]);
        }
        // EINVAL after a successful chunk is a real error.
        let r = chunked_write(
            5,
            2,
            |s, _| {
                if s == 0 {
                    Ok(())
                } else {
                    Err((0, err(libc::EINVAL)))
                }
            },
            |_| unreachable!(),
        );
        assert_eq!(r.unwrap_err().applied, 2);
        // A partially applied first chunk is not "unsupported".
        let r = chunked_write(5, 4, |_, _| Err((1, err(libc::EINVAL))), |_| unreachable!());
        assert_eq!(r.unwrap_err().applied, 1);
    }

    #[test]
    fn zero_count_does_nothing() {
        assert_eq!(
            chunked_write(0, 4, |_, _| unreachable!(), |_| unreachable!()).unwrap(),
            0
        );
    }

    #[test]
    fn entries_accessors() {
        let mut e = BatchEntries::new(2, 3);
        e.push(&[1, 2], &[3, 4, 5]);
        e.push(&[6, 7], &[8, 9, 10]);
        assert_eq!(e.len(), 2);
        assert_eq!(e.get(1), Some((&[6u8, 7][..], &[8u8, 9, 10][..])));
        assert_eq!(e.get(2), None);
        assert_eq!(e.iter().count(), 2);
    }
}
