//! [`SdkError`] -> the Python exceptions of `ebpf_sdk._errors`.
//!
//! The classes are plain Python (so they can inherit from both `Error` and
//! `ValueError`/`OSError`, and carry docstrings); they are looked up once.

use ebpf_sdk::{InputError, SdkError};
use pyo3::exceptions::PyKeyError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyString, PyType};

const MODULE: &str = "ebpf_sdk._errors";

fn class<'py>(
    py: Python<'py>,
    cell: &'static PyOnceLock<Py<PyType>>,
    name: &str,
) -> PyResult<Bound<'py, PyType>> {
    Ok(cell.import(py, MODULE, name)?.clone())
}

static ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static KERNEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static MISMATCH: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// The message with every cause not already in it, as the CLI prints an
/// error (`{:#}`).
fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    text
}

/// A Python `str`.
fn pystr<'py>(py: Python<'py>, s: &str) -> Bound<'py, PyAny> {
    PyString::new(py, s).into_any()
}

/// Builds an exception of `cls` with `args` and sets `attrs` on it.
fn raise<'py, A: pyo3::call::PyCallArgs<'py>>(
    cls: PyResult<Bound<'py, PyType>>,
    args: A,
    attrs: &[(&str, Option<Bound<'py, PyAny>>)],
) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let exc = cls?.call1(args)?;
        for (name, value) in attrs {
            if let Some(v) = value {
                exc.setattr(*name, v)?;
            }
        }
        Ok(PyErr::from_value(exc))
    })();
    built.unwrap_or_else(|e| e)
}

/// An `InputError` at `location` (an entry) about the field `path`.
pub(crate) fn input_error(location: Option<&str>, path: Option<&str>, what: String) -> PyErr {
    Python::attach(|py| {
        let mut text = String::new();
        for part in [location, path].into_iter().flatten() {
            text.push_str(part);
            text.push_str(": ");
        }
        text.push_str(&what);
        raise(
            class(py, &INPUT, "InputError"),
            (text,),
            &[
                ("path", path.map(|p| pystr(py, p))),
                ("location", location.map(|l| pystr(py, l))),
            ],
        )
    })
}

/// A plain `ebpf_sdk.Error` with this message.
pub(crate) fn error(what: String) -> PyErr {
    Python::attach(|py| raise(class(py, &ERROR, "Error"), (what,), &[]))
}

/// `KeyError(key)`.
pub(crate) fn key_error(key: Bound<'_, PyAny>) -> PyErr {
    PyKeyError::new_err(key.unbind())
}

fn input_from(py: Python<'_>, e: &InputError, text: String) -> PyErr {
    let location = (!e.location.is_empty()).then(|| e.location.to_string());
    raise(
        class(py, &INPUT, "InputError"),
        (text,),
        &[
            ("path", e.field_path().map(|p| pystr(py, p))),
            ("location", location.as_deref().map(|l| pystr(py, l))),
        ],
    )
}

/// The Python exception for a library error.
pub(crate) fn to_py(e: SdkError) -> PyErr {
    Python::attach(|py| {
        let text = message(&e);
        match &e {
            SdkError::Input(i) => input_from(py, i, text),
            SdkError::Decode { source, .. } => raise(
                class(py, &INPUT, "InputError"),
                (text,),
                &[(
                    "path",
                    source
                        .path()
                        .filter(|p| !p.is_empty())
                        .map(|p| pystr(py, p)),
                )],
            ),
            SdkError::Mismatch { map, pin, .. } => raise(
                class(py, &MISMATCH, "MismatchError"),
                (text,),
                &[
                    ("map", Some(pystr(py, map))),
                    ("pin", Some(pystr(py, &pin.display().to_string()))),
                ],
            ),
            SdkError::Backend(b) => kernel(py, b.errno(), text, None),
            SdkError::Batch {
                applied, source, ..
            } => kernel(py, source.source.errno(), text, Some(*applied)),
            e if e.class() == ebpf_sdk::ErrorClass::Input => {
                raise(class(py, &INPUT, "InputError"), (text,), &[])
            }
            _ => raise(class(py, &ERROR, "Error"), (text,), &[]),
        }
    })
}

/// A `KernelError`: `OSError(errno, message)` when there is an errno, so
/// `.errno` and `.strerror` are set the way `OSError` sets them.
fn kernel(py: Python<'_>, errno: Option<i32>, text: String, written: Option<usize>) -> PyErr {
    let written = written.map(|w| {
        w.into_pyobject(py)
            .map_or_else(|e| match e {}, Bound::into_any)
    });
    match errno {
        Some(n) => raise(
            class(py, &KERNEL, "KernelError"),
            (n, text),
            &[("written", written)],
        ),
        None => raise(
            class(py, &KERNEL, "KernelError"),
            (text,),
            &[("written", written)],
        ),
    }
}

/// `Result<T, SdkError>` -> `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    /// The error as its Python exception.
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for Result<T, SdkError> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}
