//! The Python package `ebpf_sdk`: a thin PyO3 binding over the `ebpf-sdk`
//! library. Built by maturin as the module `ebpf_sdk._native`
//! (`pip install ./crates/python`); `python/ebpf_sdk/` holds the package's
//! Python side (exceptions, type stubs).
//!
//! Every capability is the library's: this crate converts Python values to
//! [`ebpf_sdk::Value`] and back (`convert`), library errors to Python
//! exceptions (`errors`), and releases the GIL around every kernel call
//! and batch.
#![deny(missing_docs)]

mod convert;
mod errors;
mod events;
mod iter;
mod map;
mod object;

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

/// Locks an iterator's state. Another thread may hold it while it waits in
/// the kernel with the GIL released, so this waits without the GIL; a
/// panic in another holder does not make the state unusable.
fn lock<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    m.lock_py_attached(py)
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The native part of the `ebpf_sdk` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<object::PyObject>()?;
    m.add_class::<map::PyMap>()?;
    m.add_class::<iter::EntryIterator>()?;
    m.add_class::<events::EventIterator>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
