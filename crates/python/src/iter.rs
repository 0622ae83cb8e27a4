//! `ebpf_sdk.EntryIterator`: a map's entries pulled a kernel batch at a
//! time, the GIL released while each batch is read and decoded.

use std::collections::VecDeque;
use std::sync::Mutex;

use ebpf_sdk::{Decoded, EntryCursor};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::to_python;
use crate::errors::IntoPy;
use crate::map::PyMap;

/// What each step yields.
#[derive(Clone, Copy)]
pub(crate) enum Yield {
    Keys,
    Values,
    Items,
}

struct State {
    cursor: EntryCursor,
    pending: VecDeque<Decoded>,
}

/// The entries of a live map as you iterate (`Map.items()`, `keys()`,
/// `values()`, `iter(map)`): each kernel batch is read when the previous
/// one is used up, so memory does not grow with the map.
#[pyclass(name = "EntryIterator", module = "ebpf_sdk", frozen)]
pub(crate) struct EntryIterator {
    map: Py<PyMap>,
    what: Yield,
    state: Mutex<State>,
}

impl EntryIterator {
    pub(crate) fn new(map: Bound<'_, PyMap>, what: Yield) -> PyResult<EntryIterator> {
        let cursor = map.get().handle()?.cursor().py_err()?;
        Ok(EntryIterator {
            map: map.unbind(),
            what,
            state: Mutex::new(State {
                cursor,
                pending: VecDeque::new(),
            }),
        })
    }
}

#[pymethods]
impl EntryIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Waits for another thread using this iterator without holding the GIL.
        let mut state = crate::lock(py, &self.state);
        if state.pending.is_empty() && !state.cursor.is_done() {
            let handle = self.map.get().handle()?;
            let State { cursor, pending } = &mut *state;
            let batch = py.detach(|| handle.next_batch(cursor)).py_err()?;
            pending.extend(batch);
        }
        let Some(d) = state.pending.pop_front() else {
            return Ok(None);
        };
        drop(state);
        Ok(Some(match self.what {
            Yield::Keys => to_python(py, &d.key)?,
            Yield::Values => to_python(py, &d.value)?,
            Yield::Items => {
                PyTuple::new(py, [to_python(py, &d.key)?, to_python(py, &d.value)?])?.into_any()
            }
        }))
    }
}
