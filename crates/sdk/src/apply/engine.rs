//! The steps of an apply after the input is encoded: refuse duplicate keys,
//! compare with the live map, back up, prune, write in batches.

use std::ops::ControlFlow;
use std::time::Instant;

use ebpf_sdk_backend::UpdateFlags;

use super::{ApplyEvent, ApplyOptions, ApplyReport, DiffKind};
use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::MapHandle;
use crate::spool::{read_err, Spool};
use crate::SdkError;

/// Entries per batch write.
const WRITE_BATCH: usize = 4096;

/// What the comparison with the live map found.
struct Plan {
    /// Input entries that need no write (already in the map as given).
    skip: Vec<bool>,
    /// Concatenated keys to delete with `prune`.
    removed_keys: Vec<u8>,
    /// Concatenated array indices to reset to zero with `prune`.
    reset_keys: Vec<u8>,
}

impl MapHandle {
    /// Duplicate check, diff, backup, prune and write of a filled spool.
    /// `at` says where the `i`th entry of the input was.
    pub(super) fn finish_apply(
        &self,
        mut spool: Spool,
        at: &dyn Fn(usize) -> Location,
        started: Instant,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<ApplyReport, SdkError> {
        let mut report = ApplyReport::default();
        if let Some((first, second)) = spool.seal().map_err(read_err)? {
            return Err(InputError::new(
                at(second),
                InputErrorKind::DuplicateKey { first: at(first) },
            )
            .into());
        }
        let n = spool.len();
        report.entries = n;
        on(ApplyEvent::Validated(n));
        report.validate_time = started.elapsed();

        // Which input entries need writing: all, or after a diff only the
        // added and changed ones.
        let mut plan = Plan {
            skip: vec![false; n],
            removed_keys: Vec::new(),
            reset_keys: Vec::new(),
        };
        if (opts.prune || opts.dry_run) && !self.schema.map_type.keyless() {
            let t = Instant::now();
            report.diffed = true;
            plan = self.compare(&spool, &mut report, on)?;
            report.diff_time = t.elapsed();
        }
        if opts.dry_run {
            on(ApplyEvent::Done(&report));
            return Ok(report);
        }
        if let Some(path) = opts.backup_file() {
            let n = self.backup_to(path)?;
            on(ApplyEvent::BackedUp(path, n));
        }

        let t = Instant::now();
        // Prune first: the keys going away make room for the new ones in a
        // map near max_entries, and they are not in the final state anyway.
        if opts.prune && !plan.removed_keys.is_empty() {
            report.deleted = self.prune(&plan.removed_keys)?;
        }
        if opts.prune && !plan.reset_keys.is_empty() {
            report.zeroed = self.reset(&plan.reset_keys)?;
        }
        report.written = self.write_spool(&mut spool, &plan.skip, opts, on)?;
        report.write_time = t.elapsed();
        on(ApplyEvent::Done(&report));
        Ok(report)
    }

    /// Reads the live map in batches and compares it with the spool:
    /// counts and reports every difference.
    fn compare(
        &self,
        spool: &Spool,
        report: &mut ApplyReport,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<Plan, SdkError> {
        let n = spool.len();
        let (key_size, value_size) = (self.codec.key_len(), self.codec.value_len());
        let mut plan = Plan {
            skip: vec![false; n],
            removed_keys: Vec::new(),
            reset_keys: Vec::new(),
        };
        let mut present = vec![false; n];
        let mut scratch_k = vec![0u8; key_size];
        let mut scratch_v = vec![0u8; value_size];
        let mut failure: Option<SdkError> = None;
        let fixed = self.schema.map_type.fixed_entries();
        self.map.lookup_batch_chunks(&mut |keys, values, count| {
            let mut step = || -> Result<(), SdkError> {
                for i in 0..count {
                    let k = &keys[i * key_size..(i + 1) * key_size];
                    let v = &values[i * value_size..(i + 1) * value_size];
                    match spool.find(k, &mut scratch_k).map_err(read_err)? {
                        Some(idx) => {
                            present[idx] = true;
                            spool.read_value(idx, &mut scratch_v).map_err(read_err)?;
                            if scratch_v == v {
                                report.unchanged += 1;
                                plan.skip[idx] = true;
                            } else {
                                report.changed += 1;
                                on(ApplyEvent::Diff(
                                    DiffKind::Changed,
                                    &self.decode(k, &scratch_v)?,
                                ));
                            }
                        }
                        None if !fixed => {
                            report.removed += 1;
                            on(ApplyEvent::Diff(DiffKind::Removed, &self.decode(k, v)?));
                            plan.removed_keys.extend_from_slice(k);
                        }
                        // Arrays always hold every index: one the input
                        // leaves out is reset to zero, unless it is zero.
                        None if v.iter().any(|b| *b != 0) => {
                            report.reset += 1;
                            on(ApplyEvent::Diff(DiffKind::Reset, &self.decode(k, v)?));
                            plan.reset_keys.extend_from_slice(k);
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
                spool.read_key(idx, &mut scratch_k).map_err(read_err)?;
                spool.read_value(idx, &mut scratch_v).map_err(read_err)?;
                on(ApplyEvent::Diff(
                    DiffKind::Added,
                    &self.decode(&scratch_k, &scratch_v)?,
                ));
            }
        }
        Ok(plan)
    }

    /// Deletes the concatenated `keys`; returns how many.
    fn prune(&self, keys: &[u8]) -> Result<usize, SdkError> {
        let count = keys.len() / self.codec.key_len().max(1);
        self.map
            .delete_batch(keys, count)
            .map_err(|e| SdkError::Batch {
                map: self.schema.name.clone(),
                applied: e.applied,
                requested: count,
                source: Box::new(e),
            })
    }

    /// Writes zeros at the concatenated array indices `keys`; returns how
    /// many.
    fn reset(&self, keys: &[u8]) -> Result<usize, SdkError> {
        let count = keys.len() / self.codec.key_len().max(1);
        let value_size = self.codec.value_len();
        let mut done = 0;
        for chunk in keys.chunks(WRITE_BATCH * self.codec.key_len().max(1)) {
            let n = chunk.len() / self.codec.key_len().max(1);
            let zeros = vec![0u8; n * value_size];
            match self.map.update_batch(chunk, &zeros, n, UpdateFlags::Any) {
                Ok(k) => done += k,
                Err(e) => {
                    return Err(SdkError::Batch {
                        map: self.schema.name.clone(),
                        applied: done + e.applied,
                        requested: count,
                        source: Box::new(e),
                    })
                }
            }
        }
        Ok(done)
    }

    /// Writes the spooled entries not marked `skip`, in batches, in input
    /// order; returns how many were written.
    fn write_spool(
        &self,
        spool: &mut Spool,
        skip: &[bool],
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<usize, SdkError> {
        let n = spool.len();
        let (key_size, value_size) = (self.codec.key_len(), self.codec.value_len());
        let map_name = &self.schema.name;
        let keyless = self.schema.map_type.keyless();
        let mut written = 0usize;
        // Entries to write, gathered contiguously (skipping unchanged ones).
        let mut keys = Vec::with_capacity(WRITE_BATCH * key_size);
        let mut values = Vec::with_capacity(WRITE_BATCH * value_size);
        spool.for_each_batch(WRITE_BATCH, |first, ks, vs, count| {
            if opts.cancelled() {
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
                    self.map.push(v, opts.flags)?;
                    written += 1;
                }
            } else {
                match self.map.update_batch(ks, vs, count, opts.flags) {
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
        Ok(written)
    }
}
