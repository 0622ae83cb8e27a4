//! Python objects <-> [`Value`], with the rules of YAML input.
//!
//! In: `None` -> null (zero), `bool`, `int` (any size: beyond 128 bits it
//! becomes its decimal string, which the encoder checks against the field),
//! other objects with `__index__` (numpy integers) -> their int,
//! `float`, `str` (sugar included), `bytes`/`bytearray`/`memoryview` -> the
//! list of their byte values, `list`/`tuple` -> list, `dict` with `str`
//! keys -> mapping (in the dict's order), `ipaddress` addresses and networks
//! -> their text. Anything else is an [`InputError`](crate::errors) naming
//! the field.
//!
//! Out: null -> `None`, integers -> `int`, mappings -> `dict` (in the
//! schema's field order), lists -> `list`; numbers wider than 128 bits stay
//! the decimal strings the decoder gives.

use ebpf_sdk::codec::Map as ValueMap;
use ebpf_sdk::Value;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyMemoryView, PyString, PyTuple,
};

use crate::errors::input_error;

/// Where in a key or value a conversion is: `value.rules[3].dstPortEnd`.
#[derive(Default)]
pub(crate) struct Path {
    text: String,
}

impl Path {
    /// A path starting at `root` (`key`, `value`; empty for an entry).
    pub(crate) fn root(root: &str) -> Path {
        Path {
            text: root.to_string(),
        }
    }

    fn field<R>(&mut self, name: &str, f: impl FnOnce(&mut Path) -> R) -> R {
        let len = self.text.len();
        if !self.text.is_empty() {
            self.text.push('.');
        }
        self.text.push_str(name);
        let r = f(self);
        self.text.truncate(len);
        r
    }

    fn index<R>(&mut self, i: usize, f: impl FnOnce(&mut Path) -> R) -> R {
        let len = self.text.len();
        self.text.push('[');
        self.text.push_str(&i.to_string());
        self.text.push(']');
        let r = f(self);
        self.text.truncate(len);
        r
    }

    fn error(&self, location: Option<&str>, what: String) -> PyErr {
        let path = (!self.text.is_empty()).then_some(self.text.as_str());
        input_error(location, path, what)
    }
}

/// Converts a Python object into a [`Value`]; errors name `location` (the
/// entry, if any) and the field's path.
pub(crate) fn to_value(
    obj: &Bound<'_, PyAny>,
    path: &mut Path,
    location: Option<&str>,
) -> PyResult<Value> {
    // Most common first; exact checks are the cheapest.
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut m = ValueMap::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(name) = k.cast::<PyString>() else {
                return Err(path.error(
                    location,
                    format!(
                        "a mapping key must be a str (a field name), found {}",
                        shown(&k)
                    ),
                ));
            };
            let name = name.to_cow()?;
            let v = path.field(&name, |p| to_value(&v, p, location))?;
            m.insert(name.into_owned(), v);
        }
        return Ok(Value::Map(m));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_cow()?.into_owned()));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract::<bool>()?));
    }
    if obj.is_instance_of::<PyInt>() {
        // 64 bits first: one C call, where 128 bits take several Python
        // calls under the stable ABI.
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(Value::Int(i128::from(i)));
        }
        return Ok(match obj.extract::<i128>() {
            Ok(i) => Value::Int(i),
            // Beyond 128 bits: the decimal text, which no field takes
            // unless it fits (the encoder says which field and why).
            Err(_) => Value::String(obj.str()?.to_cow()?.into_owned()),
        });
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return sequence(l.iter(), l.len(), path, location);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return sequence(t.iter(), t.len(), path, location);
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract::<f64>()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(bytes_value(b.as_bytes()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(bytes_value(&b.to_vec()));
    }
    if obj.is_instance_of::<PyMemoryView>() {
        let b = obj.call_method0("tobytes")?;
        return Ok(bytes_value(b.cast::<PyBytes>()?.as_bytes()));
    }
    // Other integers (numpy's, IntEnum-likes that are not int subclasses).
    if obj.hasattr("__index__")? {
        let i = obj.call_method0("__index__")?;
        if i.is_instance_of::<PyInt>() {
            return to_value(&i, path, location);
        }
    }
    let module = obj
        .get_type()
        .getattr("__module__")
        .ok()
        .and_then(|m| m.extract::<String>().ok());
    if module.as_deref() == Some("ipaddress") {
        return Ok(Value::String(obj.str()?.to_cow()?.into_owned()));
    }
    Err(path.error(
        location,
        format!(
            "{} is not a value for a map: give a dict, list, tuple, int, float, str, bytes, bool or None",
            shown(obj)
        ),
    ))
}

fn sequence<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    len: usize,
    path: &mut Path,
    location: Option<&str>,
) -> PyResult<Value> {
    let mut out = Vec::with_capacity(len);
    for (i, item) in items.enumerate() {
        out.push(path.index(i, |p| to_value(&item, p, location))?);
    }
    Ok(Value::List(out))
}

/// Bytes are the list of their values: `b"\x0a\x00"` is `[10, 0]`, which
/// fills a `__u8[N]` array byte for byte (the rest zero).
fn bytes_value(b: &[u8]) -> Value {
    Value::List(b.iter().map(|x| Value::Int(i128::from(*x))).collect())
}

/// `int 3`, `set {1, 2}`: the type and (a short) repr, for messages.
fn shown(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj
        .get_type()
        .name()
        .map_or_else(|_| "object".to_string(), |n| n.to_string());
    let repr = obj.repr().map_or_else(|_| String::new(), |r| r.to_string());
    if repr.chars().count() > 40 {
        let short: String = repr.chars().take(37).collect();
        format!("{ty} {short}...")
    } else {
        format!("{ty} {repr}")
    }
}

/// A [`Value`] as a Python object.
pub(crate) fn to_python<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => match i64::try_from(*i) {
            Ok(small) => small.into_pyobject(py)?.into_any(),
            Err(_) => (*i).into_pyobject(py)?.into_any(),
        },
        Value::Float(f) => PyFloat::new(py, *f).into_any(),
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::List(items) => {
            let l = PyList::empty(py);
            for item in items {
                l.append(to_python(py, item)?)?;
            }
            l.into_any()
        }
        Value::Map(m) => {
            let d = PyDict::new(py);
            for (k, item) in m.iter() {
                d.set_item(PyString::intern(py, k), to_python(py, item)?)?;
            }
            d.into_any()
        }
    })
}
