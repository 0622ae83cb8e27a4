//! `ebpf_sdk.Object`: the maps of one eBPF object.

use std::path::PathBuf;
use std::sync::Arc;

use ebpf_sdk::Object;
use pyo3::prelude::*;

use crate::convert::to_python;
use crate::errors::IntoPy;
use crate::map::PyMap;

/// The maps of one eBPF object, from its ELF file (`Object.from_elf`), a
/// schema saved by `ebpf-sdk extract` (`Object.from_schema`), or one pinned
/// map's kernel BTF (`Object.from_pinned`).
///
/// `obj.maps` lists the maps; `obj.schema(name)` describes one as
/// `ebpf-sdk extract` prints it; `obj.open(name)` opens the live map
/// (checked against the schema) and `obj.map(name)` gives an offline handle
/// for `encode`/`decode` with no kernel and no root.
#[pyclass(name = "Object", module = "ebpf_sdk", frozen)]
pub(crate) struct PyObject {
    pub(crate) inner: Arc<Object>,
}

fn to_py_value<'py, T: serde::Serialize>(py: Python<'py>, v: &T) -> PyResult<Bound<'py, PyAny>> {
    let v = ebpf_sdk::to_value(v).map_err(|e| crate::errors::error(e.to_string()))?;
    to_python(py, &v)
}

#[pymethods]
impl PyObject {
    /// Every map of an eBPF object file (compiled with `clang -g -target bpf`).
    #[staticmethod]
    fn from_elf(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let obj = py.detach(|| Object::from_elf(&path)).py_err()?;
        Ok(PyObject {
            inner: Arc::new(obj),
        })
    }

    /// The maps of a schema document saved by `ebpf-sdk extract -o FILE`
    /// (no ELF: `decode_type` and `events` are not available).
    #[staticmethod]
    fn from_schema(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let obj = py.detach(|| Object::from_schema_file(&path)).py_err()?;
        Ok(PyObject {
            inner: Arc::new(obj),
        })
    }

    /// The one map pinned at `path`, described from the BTF the kernel
    /// holds for it (no ELF needed). Needs root.
    #[staticmethod]
    fn from_pinned(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let obj = py.detach(|| Object::from_pinned(&path)).py_err()?;
        Ok(PyObject {
            inner: Arc::new(obj),
        })
    }

    /// The names of the maps, in the object's order.
    #[getter]
    fn maps(&self) -> Vec<String> {
        self.inner.maps().iter().map(|m| m.name.clone()).collect()
    }

    /// Where the object came from (its path, as given).
    #[getter]
    fn source(&self) -> String {
        self.inner.document().source.path.clone()
    }

    /// The schema of the map called `name` as a dict, exactly as
    /// `ebpf-sdk extract` prints it (one element of its `maps`).
    fn schema<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let m = self.inner.map(name).py_err()?;
        to_py_value(py, m)
    }

    /// The whole schema document as a dict, as `ebpf-sdk extract` prints it.
    fn document<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_value(py, self.inner.document())
    }

    /// Where the map called `name` is pinned: the path recorded in the
    /// schema (`ebpf-sdk enrich`, or the pinned map it was read from), else
    /// `/sys/fs/bpf/<name>`.
    fn pin_path(&self, name: &str) -> PyResult<String> {
        Ok(self.inner.pin_path(name).py_err()?.display().to_string())
    }

    /// Opens the live map called `name` and checks that it is the map the
    /// schema describes (type, key and value size, and the BTF layouts);
    /// raises MismatchError when it is not.
    ///
    /// The map is found at `pinned` when given, else at `pin_dir/<name>`,
    /// else where `pin_path(name)` says. Needs root (CAP_BPF).
    #[pyo3(signature = (name, pin_dir=None, pinned=None))]
    fn open(
        &self,
        py: Python<'_>,
        name: &str,
        pin_dir: Option<PathBuf>,
        pinned: Option<PathBuf>,
    ) -> PyResult<PyMap> {
        let schema = self.inner.map(name).py_err()?;
        let pin = match (pinned, pin_dir) {
            (Some(p), _) => p,
            (None, Some(dir)) => dir.join(&schema.name),
            (None, None) => self.inner.pin_path(name).py_err()?,
        };
        let obj = self.inner.clone();
        let handle = py.detach(|| obj.open_at(name, &pin)).py_err()?;
        Ok(PyMap::kernel(self.inner.clone(), handle))
    }

    /// An offline handle on the map called `name`: `encode` and `decode`
    /// work (no kernel, no root); the map operations raise Error. Per-CPU
    /// values have one slot per possible CPU of this machine.
    fn map(&self, name: &str) -> PyResult<PyMap> {
        let codec = self.inner.codec(name).py_err()?;
        Ok(PyMap::offline(self.inner.clone(), codec))
    }

    /// Decodes `data` as the named BTF type of the object (e.g.
    /// `"event_hdr_st"`, `"struct event_hdr_st"`); bytes past the type's
    /// size are returned as `rest` (a `0x...` string). Needs the ELF.
    #[pyo3(signature = (r#type, data))]
    fn decode_type<'py>(
        &self,
        py: Python<'py>,
        r#type: &str,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let bytes = crate::map::bytes_of(data)?;
        let v = self.inner.decode_type(r#type, &bytes).py_err()?;
        to_python(py, &v)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ebpf_sdk.Object {} ({} maps)>",
            self.inner.document().source.path,
            self.inner.maps().len()
        )
    }
}
