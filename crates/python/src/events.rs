//! `ebpf_sdk.EventIterator`: decoded events of a perf event array.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ebpf_sdk::{EventReader, Value};
use pyo3::prelude::*;

use crate::convert::to_python;
use crate::errors::{error, IntoPy};

/// How long one wait in the kernel lasts before signals (Ctrl-C) are checked.
const SLICE: Duration = Duration::from_millis(200);

struct State {
    /// None once closed.
    reader: Option<EventReader>,
    pending: VecDeque<(u32, Value)>,
    seen: usize,
}

/// Events read from a perf event array (`Map.events`), each a dict: the
/// header type's fields, `payload` (`0x...`), `payload_len` and `cpu`.
///
/// Iteration waits for the next event; it ends after `timeout` seconds
/// without one (never, when the timeout is None) or after `count` events.
/// Ctrl-C interrupts the wait. Use it in a `with` block (or call
/// `close()`) to remove the rings from the map when done.
#[pyclass(name = "EventIterator", module = "ebpf_sdk", frozen)]
pub(crate) struct EventIterator {
    timeout: Option<Duration>,
    count: Option<usize>,
    state: Mutex<State>,
}

impl EventIterator {
    pub(crate) fn new(
        reader: EventReader,
        timeout: Option<Duration>,
        count: Option<usize>,
    ) -> EventIterator {
        EventIterator {
            timeout,
            count,
            state: Mutex::new(State {
                reader: Some(reader),
                pending: VecDeque::new(),
                seen: 0,
            }),
        }
    }
}

#[pymethods]
impl EventIterator {
    fn __iter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let mut state = crate::lock(py, &self.state);
        if state.reader.is_none() {
            return Err(error("the event iterator is closed".to_string()));
        }
        if self.count.is_some_and(|c| state.seen >= c) {
            return Ok(None);
        }
        let started = Instant::now();
        while state.pending.is_empty() {
            let wait = match self.timeout {
                Some(t) => match t.checked_sub(started.elapsed()) {
                    Some(left) if !left.is_zero() => left.min(SLICE),
                    _ => return Ok(None),
                },
                None => SLICE,
            };
            let State {
                reader, pending, ..
            } = &mut *state;
            let Some(reader) = reader.as_mut() else {
                return Err(error("the event iterator is closed".to_string()));
            };
            let batch = py.detach(|| reader.next_batch(wait, 1024)).py_err()?;
            pending.extend(batch);
            // Ctrl-C between waits raises KeyboardInterrupt here.
            py.check_signals()?;
        }
        let Some((cpu, mut v)) = state.pending.pop_front() else {
            return Ok(None);
        };
        state.seen += 1;
        drop(state);
        if let Value::Map(m) = &mut v {
            m.insert("cpu", Value::Int(i128::from(cpu)));
        }
        Ok(Some(to_python(py, &v)?))
    }

    /// Events lost because a ring was full (read more often).
    #[getter]
    fn lost(&self, py: Python<'_>) -> u64 {
        let state = crate::lock(py, &self.state);
        state.reader.as_ref().map_or(0, EventReader::lost)
    }

    /// Removes the rings from the map; iterating afterwards raises Error.
    fn close(&self, py: Python<'_>) {
        let reader = crate::lock(py, &self.state).reader.take();
        py.detach(|| drop(reader));
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.close(py);
        false
    }
}
