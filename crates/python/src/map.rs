//! `ebpf_sdk.Map`: one map, live (`Object.open`) or offline (`Object.map`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ebpf_sdk::{
    entries_from_value, ApplyEvent, ApplyOptions, ApplyRecord, Backup, Decoded, DiffKind,
    EntryCodec, Location, MapHandle, Object, UpdateFlags, Value,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::convert::{to_python, to_value, Path};
use crate::errors::{error, input_error, key_error, to_py, IntoPy};
use crate::iter::{EntryIterator, Yield};

/// What a handle reaches: the live map, or only its codec.
enum Inner {
    Kernel(Box<MapHandle>),
    Offline(Box<EntryCodec>),
}

/// One map of an object: `Object.open(name)` gives the live map,
/// `Object.map(name)` an offline handle for `encode`/`decode` only.
///
/// Keys and values are Python values with the rules of ebpf-sdk's YAML
/// input: a dict names the C struct's fields (unknown fields are errors,
/// missing fields are zero), lists fill arrays, strings give sugar
/// (`"10.0.0.1"` into `__u8[16]`, `"aa:bb:cc:dd:ee:ff"`, a C enum's name,
/// `"0x1f"`), bytes fill byte arrays. Values read back are dicts, lists,
/// ints and strs that go back in unchanged; for per-CPU maps a value is a
/// list with one value per possible CPU (a single value given is written
/// to every CPU).
///
/// The map works like a dict:
///
/// ```text
/// table[key] = value          # update(key, value), flags "any"
/// table[key]                  # the value; KeyError when absent
/// del table[key]              # KeyError when absent
/// key in table; len(table)
/// for key in table: ...       # also keys(), values(), items()
/// ```
///
/// and has `update(key, value, flags=...)`, `lookup`, `delete`, `dump`,
/// `apply` (make the map hold a list of entries, checked first, written in
/// batches), `encode`/`decode` (bytes, offline), `pop`/`peek` (queues and
/// stacks) and `events` (perf event arrays). The GIL is released during
/// every kernel call and batch.
#[pyclass(name = "Map", module = "ebpf_sdk", frozen)]
pub(crate) struct PyMap {
    obj: Arc<Object>,
    inner: Inner,
}

impl PyMap {
    pub(crate) fn kernel(obj: Arc<Object>, handle: MapHandle) -> PyMap {
        PyMap {
            obj,
            inner: Inner::Kernel(Box::new(handle)),
        }
    }

    pub(crate) fn offline(obj: Arc<Object>, codec: EntryCodec) -> PyMap {
        PyMap {
            obj,
            inner: Inner::Offline(Box::new(codec)),
        }
    }

    fn codec(&self) -> &EntryCodec {
        match &self.inner {
            Inner::Kernel(h) => h.codec(),
            Inner::Offline(c) => c,
        }
    }

    /// The live map, or the error saying this handle is offline.
    pub(crate) fn handle(&self) -> PyResult<&MapHandle> {
        match &self.inner {
            Inner::Kernel(h) => Ok(h),
            Inner::Offline(c) => Err(error(format!(
                "{}: this handle is offline (Object.map): it encodes and decodes; \
                 open the live map with Object.open",
                c.schema().name
            ))),
        }
    }

    fn name_str(&self) -> &str {
        &self.codec().schema().name
    }
}

/// The bytes of a `bytes`, `bytearray` or other buffer object.
pub(crate) fn bytes_of(data: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = data.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let b = data
        .py()
        .get_type::<PyBytes>()
        .call1((data,))
        .map_err(|_| {
            input_error(
                None,
                None,
                format!(
                    "expected bytes, found {}",
                    data.get_type()
                        .name()
                        .map_or_else(|_| "?".into(), |n| n.to_string())
                ),
            )
        })?;
    Ok(b.cast::<PyBytes>()?.as_bytes().to_vec())
}

/// The key or value `obj` as a [`Value`], errors under `root`.
fn value_of(obj: &Bound<'_, PyAny>, root: &str) -> PyResult<Value> {
    to_value(obj, &mut Path::root(root), None)
}

fn parse_flags(flags: &str) -> PyResult<UpdateFlags> {
    match flags {
        "any" => Ok(UpdateFlags::Any),
        "noexist" => Ok(UpdateFlags::NoExist),
        "exist" => Ok(UpdateFlags::Exist),
        other => Err(input_error(
            None,
            None,
            format!("flags must be \"any\", \"noexist\" or \"exist\", not {other:?}"),
        )),
    }
}

/// One decoded entry as `{"key": ..., "value": ...}` (plus `"total"` for
/// per-CPU maps): what `dump` prints and `apply` reads.
pub(crate) fn entry_dict<'py>(py: Python<'py>, d: Decoded) -> PyResult<Bound<'py, PyAny>> {
    to_python(py, &d.into_value())
}

fn diff_kind(k: DiffKind) -> &'static str {
    match k {
        DiffKind::Added => "added",
        DiffKind::Changed => "changed",
        DiffKind::Removed => "removed",
        DiffKind::Reset => "reset",
    }
}

/// What `apply(..., backup=...)` asks for.
fn backup_option(backup: Option<&Bound<'_, PyAny>>, prune: bool) -> PyResult<Backup> {
    let Some(b) = backup else {
        // As the CLI: a backup with prune, in $TMPDIR.
        return Ok(if prune { Backup::Auto } else { Backup::Off });
    };
    if b.is_none() {
        return Ok(if prune { Backup::Auto } else { Backup::Off });
    }
    if let Ok(flag) = b.extract::<bool>() {
        return Ok(if flag { Backup::Auto } else { Backup::Off });
    }
    let path: PathBuf = b.extract().map_err(|_| {
        input_error(
            None,
            None,
            "backup is None, True, False or a file path".to_string(),
        )
    })?;
    Ok(Backup::To(path))
}

#[pymethods]
impl PyMap {
    /// The map's name.
    #[getter]
    fn name(&self) -> &str {
        self.name_str()
    }

    /// The map type, as `ebpf-sdk extract` names it (`hash`, `lpm_trie`, ...).
    #[getter]
    fn r#type(&self) -> String {
        self.codec().schema().map_type.to_string()
    }

    /// Bytes of a key.
    #[getter]
    fn key_size(&self) -> u32 {
        self.codec().schema().key_size
    }

    /// Bytes of a value (of one CPU's value for per-CPU maps).
    #[getter]
    fn value_size(&self) -> u32 {
        self.codec().schema().value_size
    }

    /// The map's capacity.
    #[getter]
    fn max_entries(&self) -> u32 {
        self.codec().schema().max_entries
    }

    /// For per-CPU maps, the number of value slots (possible CPUs); else None.
    #[getter]
    fn ncpus(&self) -> Option<usize> {
        self.codec().per_cpu()
    }

    /// The pin path of the live map; None for an offline handle.
    #[getter]
    fn pin(&self) -> Option<String> {
        match &self.inner {
            Inner::Kernel(h) => h.pin().map(|p| p.display().to_string()),
            Inner::Offline(_) => None,
        }
    }

    /// Whether this handle reaches the live map (False for `Object.map`).
    #[getter]
    fn is_open(&self) -> bool {
        matches!(self.inner, Inner::Kernel(_))
    }

    /// The map's schema as a dict, as `ebpf-sdk extract` prints it.
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = ebpf_sdk::to_value(self.codec().schema()).map_err(|e| error(e.to_string()))?;
        to_python(py, &v)
    }

    /// The exact key and value bytes of an entry, offline: `(key, value)`.
    /// `key` is None for queues and stacks; a `value` of None is all zero.
    fn encode<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let k = value_of(key, "key")?;
        let v = value_of(value, "value")?;
        let codec = self.codec();
        let at = Location::default();
        let (kb, vb) = py
            .detach(|| -> Result<_, ebpf_sdk::SdkError> {
                Ok((
                    codec.encode_key(&k, None, &at)?,
                    codec.encode_value(&v, None, &at)?,
                ))
            })
            .py_err()?;
        Ok((PyBytes::new(py, &kb), PyBytes::new(py, &vb)))
    }

    /// Key and value bytes as named values: `(key, value)`. The bytes must
    /// be exactly `key_size` and the value's length (`value_size`, or the
    /// per-CPU buffer: `ncpus` slots of `value_size` rounded up to 8).
    fn decode<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
        let (kb, vb) = (bytes_of(key)?, bytes_of(value)?);
        let d = self.codec().decode_entry(&kb, &vb).py_err()?;
        Ok((to_python(py, &d.key)?, to_python(py, &d.value)?))
    }

    /// Writes one entry. `flags`: `"any"` (create or replace), `"noexist"`
    /// (create only: KernelError with errno EEXIST if present), `"exist"`
    /// (replace only: KernelError with errno ENOENT if absent). For queues
    /// and stacks `key` is None and the value is pushed. For map-in-map and
    /// program arrays the value is a pinned path or a kernel id.
    #[pyo3(signature = (key, value, flags="any"))]
    fn update(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
        flags: &str,
    ) -> PyResult<()> {
        let flags = parse_flags(flags)?;
        let h = self.handle()?;
        let (k, v) = (value_of(key, "key")?, value_of(value, "value")?);
        py.detach(|| h.update(&k, &v, flags)).py_err()
    }

    /// The value of `key`, or None when it is not in the map. For per-CPU
    /// maps the value is a list (one per CPU); with `total=True` it is one
    /// value with the numeric fields summed over the CPUs.
    #[pyo3(signature = (key, total=false))]
    fn lookup<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
        total: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle()?;
        let k = value_of(key, "key")?;
        match py.detach(|| h.lookup(&k)).py_err()? {
            Some(d) => {
                let v = match (total, &d.total) {
                    (true, Some(t)) => t,
                    _ => &d.value,
                };
                to_python(py, v)
            }
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Deletes `key`: True when it was there, False when it was not.
    fn delete(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let h = self.handle()?;
        let k = value_of(key, "key")?;
        py.detach(|| h.delete(&k)).py_err()
    }

    /// Removes and returns one value of a queue or stack; None when empty.
    fn pop<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle()?;
        match py.detach(|| h.pop()).py_err()? {
            Some(v) => to_python(py, &v),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The value a `pop` would return, without removing it; None when empty.
    fn peek<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle()?;
        match py.detach(|| h.peek()).py_err()? {
            Some(v) => to_python(py, &v),
            None => Ok(py.None().into_bound(py)),
        }
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let h = self.handle()?;
        let k = value_of(key, "key")?;
        match py.detach(|| h.lookup(&k)).py_err()? {
            Some(d) => to_python(py, &d.value),
            None => Err(key_error(key.clone())),
        }
    }

    fn __setitem__(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.update(py, key, value, "any")
    }

    fn __delitem__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<()> {
        if self.delete(py, key)? {
            Ok(())
        } else {
            Err(key_error(key.clone()))
        }
    }

    fn __contains__(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<bool> {
        let h = self.handle()?;
        let k = value_of(key, "key")?;
        py.detach(|| h.contains_key(&k)).py_err()
    }

    /// The number of entries (counted by reading the map in batches;
    /// arrays always hold `max_entries`).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let h = self.handle()?;
        py.detach(|| h.count()).py_err()
    }

    fn __iter__(slf: Bound<'_, Self>) -> PyResult<EntryIterator> {
        EntryIterator::new(slf, Yield::Keys)
    }

    /// The `(key, value)` pairs, read from the kernel a batch at a time as
    /// you iterate (entries written or deleted meanwhile may or may not be
    /// seen).
    fn items(slf: Bound<'_, Self>) -> PyResult<EntryIterator> {
        EntryIterator::new(slf, Yield::Items)
    }

    /// The keys, read a batch at a time as you iterate.
    fn keys(slf: Bound<'_, Self>) -> PyResult<EntryIterator> {
        EntryIterator::new(slf, Yield::Keys)
    }

    /// The values, read a batch at a time as you iterate.
    fn values(slf: Bound<'_, Self>) -> PyResult<EntryIterator> {
        EntryIterator::new(slf, Yield::Values)
    }

    /// Every entry as `{"key": ..., "value": ...}` (plus `"total"`, the sum
    /// over CPUs, for per-CPU maps): the list `ebpf-sdk dump -o json`
    /// prints. It goes back through `apply` unchanged.
    fn dump<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let h = self.handle()?;
        let mut all = Vec::new();
        py.detach(|| {
            h.dump(|d| {
                all.push(d);
                Ok(())
            })
        })
        .py_err()?;
        let out = PyList::empty(py);
        for d in all {
            out.append(entry_dict(py, d)?)?;
        }
        Ok(out)
    }

    /// Makes the map hold `entries`, with the engine of `ebpf-sdk apply`.
    ///
    /// `entries` is a list (or any iterable) of `{"key": ..., "value": ...}`
    /// dicts — what `dump` returns — or one such dict. Every entry is
    /// checked and encoded first: if any is wrong (or two have the same
    /// key) InputError names it (`.location` `entries[7]`, `.path` the
    /// field) and nothing is written. Then the entries are written in
    /// batches. With `prune=True` entries of the map that are not in
    /// `entries` are deleted (after saving the map's entries to a backup
    /// file: `backup=None` makes one in $TMPDIR as the CLI does, a path
    /// names it, False skips it); with `dry_run=True` nothing is written.
    /// Entries already in the map with the same value are not rewritten
    /// when the map was read (prune or dry run).
    ///
    /// Returns the report as `ebpf-sdk apply --report` writes it (`map`,
    /// `pin`, `entries`, `written`, `deleted`, `ok`, `backup`, and with
    /// prune or dry run `added`, `changed`, `removed`, `reset` (array
    /// indices set back to zero), `unchanged`), plus `diff`: the differences
    /// found, `{"change": "added" | "changed" | "removed" | "reset", "key":
    /// ..., "value": ...}`, and `seconds`: the time spent
    /// validating and encoding, reading the map for the difference, and
    /// writing (`validate`, `diff`, `write`). If the kernel stops a batch,
    /// KernelError says how many entries were written (`.written`) and
    /// carries the report (`.report`).
    #[pyo3(signature = (entries, prune=false, dry_run=false, flags="any", backup=None))]
    fn apply<'py>(
        &self,
        py: Python<'py>,
        entries: &Bound<'py, PyAny>,
        prune: bool,
        dry_run: bool,
        flags: &str,
        backup: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let h = self.handle()?;
        let opts = ApplyOptions {
            prune,
            dry_run,
            flags: parse_flags(flags)?,
            backup: backup_option(backup, prune)?,
            ..Default::default()
        }
        .for_map(h.name());
        let input = entries_value(entries)?;
        let mut diffs: Vec<(DiffKind, Decoded)> = Vec::new();
        let (record, result) = py.detach(|| {
            let result = entries_from_value(input, "entries").and_then(|list| {
                h.apply(list.into_iter().map(Ok), &opts, &mut |ev| {
                    if let ApplyEvent::Diff(kind, d) = ev {
                        diffs.push((kind, d.clone()));
                    }
                })
            });
            (ApplyRecord::new(h, "entries", &opts, &result), result)
        });
        let report = ebpf_sdk::to_value(&record).map_err(|e| error(e.to_string()))?;
        let report = to_python(py, &report)?.cast_into::<PyDict>()?;
        if let Ok(r) = &result {
            if r.diffed {
                let list = PyList::empty(py);
                for (kind, d) in diffs {
                    let item = entry_dict(py, d)?.cast_into::<PyDict>()?;
                    let ordered = PyDict::new(py);
                    ordered.set_item("change", diff_kind(kind))?;
                    for (k, v) in item.iter() {
                        ordered.set_item(k, v)?;
                    }
                    list.append(ordered)?;
                }
                report.set_item("diff", list)?;
            }
            let seconds = PyDict::new(py);
            seconds.set_item("validate", r.validate_time.as_secs_f64())?;
            seconds.set_item("diff", r.diff_time.as_secs_f64())?;
            seconds.set_item("write", r.write_time.as_secs_f64())?;
            report.set_item("seconds", seconds)?;
        }
        match result {
            Ok(_) => Ok(report),
            Err(e) => {
                let err = to_py(e);
                err.value(py).setattr("report", &report)?;
                Err(err)
            }
        }
    }

    /// Reads the events a program sends through this perf event array,
    /// each decoded with the object's BTF type `type` (e.g.
    /// `"event_hdr_st"`): a dict of its fields, then `payload` (the bytes
    /// after it as `0x...`), `payload_len` and `cpu`.
    ///
    /// Iteration waits for events; it stops after `timeout` seconds with
    /// none (None: never), or after `count` events. Opening sets up a ring
    /// on every online CPU; `close()` (or the end of a `with` block, or
    /// the iterator being collected) removes them. Needs the ELF
    /// (`Object.from_elf`).
    #[pyo3(signature = (r#type, timeout=None, count=None))]
    fn events(
        &self,
        py: Python<'_>,
        r#type: &str,
        timeout: Option<f64>,
        count: Option<usize>,
    ) -> PyResult<crate::events::EventIterator> {
        let h = self.handle()?;
        let schema = h.schema();
        if schema.map_type != ebpf_sdk::MapType::PerfEventArray {
            return Err(error(format!(
                "{}: events are read from a perf_event_array, this map is a {}",
                schema.name, schema.map_type
            )));
        }
        let pin = h
            .pin()
            .ok_or_else(|| error(format!("{}: not a pinned map", schema.name)))?
            .to_path_buf();
        let header = self.obj.type_node(r#type).py_err()?;
        let endian = self.obj.endian();
        let reader = py
            .detach(|| ebpf_sdk::EventReader::open(&pin, header, endian))
            .py_err()?;
        let timeout = match timeout {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return Err(input_error(
                    None,
                    None,
                    format!("timeout must be a number of seconds >= 0, not {t}"),
                ))
            }
            t => t.map(Duration::from_secs_f64),
        };
        Ok(crate::events::EventIterator::new(reader, timeout, count))
    }

    fn __repr__(&self) -> String {
        let s = self.codec().schema();
        match &self.inner {
            Inner::Kernel(h) => format!(
                "<ebpf_sdk.Map {} {} at {}>",
                s.name,
                s.map_type,
                h.pin()
                    .map_or_else(String::new, |p| p.display().to_string())
            ),
            Inner::Offline(_) => format!("<ebpf_sdk.Map {} {} (offline)>", s.name, s.map_type),
        }
    }
}

/// The entries argument of `apply` as one [`Value`]: a list (each element
/// converted with its index as the location), or one dict.
fn entries_value(entries: &Bound<'_, PyAny>) -> PyResult<Value> {
    if entries.cast::<PyDict>().is_ok() {
        return to_value(entries, &mut Path::default(), Some("entries"));
    }
    if entries.cast::<PyString>().is_ok() || entries.cast::<PyBytes>().is_ok() {
        return Err(input_error(
            Some("entries"),
            None,
            "expected a list of {\"key\": ..., \"value\": ...} dicts, found a string".to_string(),
        ));
    }
    let iter = entries.try_iter().map_err(|_| {
        input_error(
            Some("entries"),
            None,
            "expected a list of {\"key\": ..., \"value\": ...} dicts".to_string(),
        )
    })?;
    let mut out = Vec::new();
    let mut location = String::new();
    for (i, item) in iter.enumerate() {
        let item = item?;
        location.clear();
        location.push_str("entries[");
        location.push_str(&i.to_string());
        location.push(']');
        out.push(to_value(&item, &mut Path::default(), Some(&location))?);
    }
    Ok(Value::List(out))
}
