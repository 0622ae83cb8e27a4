//! The typed API: a program's own serde types in and out of a map, checked
//! against the map's BTF exactly like YAML input.
//!
//! A key or value goes through [`to_value`] into a [`Value`] and then
//! through the same encoder as a file, so a misspelt field is an error
//! naming it, a field left out is zero, ranges are checked, and the sugar
//! works (a `String` or `Ipv4Addr` holding `10.0.0.1` into `__u8[16]`, an
//! enum variant's name into a C enum). Reading back goes through the
//! decoder and [`from_value`]; fields the Rust type does not have are
//! ignored, so a struct may name only the fields it uses.

use serde::de::DeserializeOwned;
use serde::Serialize;

use ebpf_sdk_backend::UpdateFlags;
use ebpf_sdk_codec::{from_value, to_value, CodecError, Value};

use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::{Decoded, Iter, MapHandle};
use crate::SdkError;

/// Converts a caller's value for `root` (`key` or `value`).
fn value_of<T: Serialize + ?Sized>(v: &T, root: &str) -> Result<Value, SdkError> {
    to_value(v).map_err(|e| {
        InputError::new(Location::default(), InputErrorKind::Value(e.under(root))).into()
    })
}

/// Reads a decoded part of an entry of map `map` into the caller's type.
pub(crate) fn read_as<T: DeserializeOwned>(
    v: &Value,
    map: &str,
    root: &str,
) -> Result<T, SdkError> {
    from_value(v).map_err(|e: CodecError| SdkError::Decode {
        what: format!("{map} (bytes read back)"),
        source: Box::new(e.under(root)),
    })
}

impl MapHandle {
    /// Writes one entry given as any serde types (a struct with the C
    /// fields it sets, a number, a `serde_json::Value`, ...).
    ///
    /// ```no_run
    /// # use ebpf_sdk::{Object, UpdateFlags};
    /// #[derive(serde::Serialize)]
    /// struct Key { #[serde(rename = "prefixLen")] prefix_len: u32, ingress_ifindex: u32, ip_data: String }
    ///
    /// let table = Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_table_map")?;
    /// let key = Key { prefix_len: 64, ingress_ifindex: 6, ip_data: "10.10.10.2".into() };
    /// let value = serde_json::json!({"rules": [{"ruleId": 1, "protocol": 1, "action": 1}]});
    /// table.update_as(&key, &value, UpdateFlags::Any)?;
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn update_as<K, V>(&self, key: &K, value: &V, flags: UpdateFlags) -> Result<(), SdkError>
    where
        K: Serialize + ?Sized,
        V: Serialize + ?Sized,
    {
        self.update(&value_of(key, "key")?, &value_of(value, "value")?, flags)
    }

    /// Looks a key up and reads the value into `V`; `None` when the key is
    /// not in the map. For per-CPU maps the value is one per CPU (read it
    /// as a `Vec`); [`MapHandle::lookup_total_as`] gives the sum.
    ///
    /// ```no_run
    /// #[derive(serde::Deserialize)]
    /// struct Counters { packets: u64, bytes: u64 }
    /// #[derive(serde::Deserialize)]
    /// struct Stats { deny_stats: Counters } // the fields this program reads
    ///
    /// let stats = ebpf_sdk::Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_statistics_map")?;
    /// let per_cpu: Option<Vec<Stats>> = stats.lookup_as(&7u32)?;
    /// let total: Option<Stats> = stats.lookup_total_as(&7u32)?;
    /// if let Some(t) = total {
    ///     println!("rule 7 denied {} packets, {} bytes", t.deny_stats.packets, t.deny_stats.bytes);
    /// }
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn lookup_as<K, V>(&self, key: &K) -> Result<Option<V>, SdkError>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        match self.lookup(&value_of(key, "key")?)? {
            Some(d) => Ok(Some(read_as(&d.value, self.name(), "value")?)),
            None => Ok(None),
        }
    }

    /// For per-CPU maps: the value of a key with numeric fields summed over
    /// the CPUs (for other maps, the value). `None` when the key is absent.
    pub fn lookup_total_as<K, V>(&self, key: &K) -> Result<Option<V>, SdkError>
    where
        K: Serialize + ?Sized,
        V: DeserializeOwned,
    {
        match self.lookup(&value_of(key, "key")?)? {
            Some(d) => {
                let v = d.total.as_ref().unwrap_or(&d.value);
                Ok(Some(read_as(v, self.name(), "value")?))
            }
            None => Ok(None),
        }
    }

    /// Deletes a key given as any serde type; `false` when it was not there.
    pub fn delete_as<K: Serialize + ?Sized>(&self, key: &K) -> Result<bool, SdkError> {
        self.delete(&value_of(key, "key")?)
    }

    /// Every entry read into `(K, V)`, a batch of entries at a time.
    ///
    /// ```no_run
    /// use std::collections::HashMap;
    ///
    /// #[derive(serde::Deserialize, Hash, PartialEq, Eq)]
    /// struct Key { ingress_ifindex: u32, ip_data: std::net::IpAddr }
    /// #[derive(serde::Deserialize)]
    /// struct Rules { rules: Vec<serde_json::Value> }
    ///
    /// let table = ebpf_sdk::Object::from_elf("firewall-ebpf/firewall.bpf.o")?
    ///     .open("ingress_node_firewall_table_map")?;
    /// let all: HashMap<Key, Rules> = table.iter_as()?.collect::<Result<_, _>>()?;
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn iter_as<K, V>(&self) -> Result<TypedIter<'_, K, V>, SdkError>
    where
        K: DeserializeOwned,
        V: DeserializeOwned,
    {
        Ok(TypedIter {
            inner: self.iter()?,
            map: self.name().to_string(),
            _types: std::marker::PhantomData,
        })
    }
}

/// Typed entries of a map ([`MapHandle::iter_as`]).
pub struct TypedIter<'a, K, V> {
    inner: Iter<'a>,
    map: String,
    _types: std::marker::PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for TypedIter<'_, K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedIter").field("map", &self.map).finish()
    }
}

impl<K: DeserializeOwned, V: DeserializeOwned> Iterator for TypedIter<'_, K, V> {
    type Item = Result<(K, V), SdkError>;

    fn next(&mut self) -> Option<Self::Item> {
        let d: Decoded = match self.inner.next()? {
            Ok(d) => d,
            Err(e) => return Some(Err(e)),
        };
        Some((|| {
            Ok((
                read_as(&d.key, &self.map, "key")?,
                read_as(&d.value, &self.map, "value")?,
            ))
        })())
    }
}
