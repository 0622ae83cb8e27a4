//! [`Object`]: the maps of one eBPF object (or one pinned map), where to
//! find them, and everything that needs the object's BTF.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpf_sdk_backend::Map;
use ebpf_sdk_btf::KernelMapInfo;
use ebpf_sdk_codec::{CodecOptions, Plan, Value};
use ebpf_sdk_schema::{ByteOrder, Document, MapSchema, TypeNode};

use crate::entry_codec::EntryCodec;
use crate::error::{InputError, InputErrorKind, Location};
use crate::events::EventReader;
use crate::handle::MapHandle;
use crate::SdkError;

/// The default bpffs directory where maps pinned by name live.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf";

/// The maps of one eBPF object, from its ELF file, a saved schema document,
/// or a pinned map's kernel BTF.
///
/// ```no_run
/// use ebpf_sdk::Object;
///
/// let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
/// for m in obj.maps() {
///     println!("{}", m.summary());
/// }
/// let table = obj.open("ingress_node_firewall_table_map")?; // /sys/fs/bpf/<name>
/// println!("{} entries", table.iter()?.count());
/// # Ok::<(), ebpf_sdk::SdkError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Object {
    doc: Document,
    /// The ELF, for types that are not a map's key or value.
    elf: Option<Arc<[u8]>>,
    /// Overrides recorded pin paths: maps are `<dir>/<name>`.
    pin_dir: Option<PathBuf>,
}

impl Object {
    /// Every map of an eBPF object file (`clang -g -target bpf`).
    pub fn from_elf(path: impl AsRef<Path>) -> Result<Object, SdkError> {
        let path = path.as_ref();
        let data = std::fs::read(path).map_err(|e| SdkError::read(path, e))?;
        Object::from_elf_bytes(data, &path.display().to_string())
    }

    /// Every map of an eBPF object held in memory; `name` names it in
    /// messages and in the document's `source`.
    pub fn from_elf_bytes(data: impl Into<Arc<[u8]>>, name: &str) -> Result<Object, SdkError> {
        let data = data.into();
        let doc = ebpf_sdk_btf::extract_elf(&data, name)?;
        Ok(Object {
            doc,
            elf: Some(data),
            pin_dir: None,
        })
    }

    /// A schema document saved by `ebpf-sdk extract` (or [`Object::save`]).
    pub fn from_schema_file(path: impl AsRef<Path>) -> Result<Object, SdkError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| SdkError::read(path, e))?;
        let doc = Document::from_json(&text).map_err(|source| SdkError::Schema {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Object::from_document(doc))
    }

    /// A schema document already in memory.
    pub fn from_document(doc: Document) -> Object {
        Object {
            doc,
            elf: None,
            pin_dir: None,
        }
    }

    /// The one map pinned at `path`, described from the BTF the kernel holds
    /// for it (no ELF needed); its pin path is recorded.
    ///
    /// ```no_run
    /// let obj = ebpf_sdk::Object::from_pinned("/sys/fs/bpf/ingress_node_firewall_table_map")?;
    /// println!("{}", obj.document().to_json_pretty()); // what `ebpf-sdk describe` prints
    /// let table = obj.open(&obj.only_map()?.name)?;
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn from_pinned(path: impl AsRef<Path>) -> Result<Object, SdkError> {
        let path = path.as_ref();
        let map = Map::open_pinned_read_only(path)?;
        Ok(Object::from_document(describe_map(
            &map,
            &path.display().to_string(),
        )?))
    }

    /// Looks for maps in `dir` (`<dir>/<map name>`), ahead of pin paths
    /// recorded in the schema.
    pub fn with_pin_dir(mut self, dir: impl Into<PathBuf>) -> Object {
        self.pin_dir = Some(dir.into());
        self
    }

    /// The schema document.
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// The schema document, taken.
    pub fn into_document(self) -> Document {
        self.doc
    }

    /// Every map, in the object's order.
    pub fn maps(&self) -> &[MapSchema] {
        &self.doc.maps
    }

    /// The schema of the map called `name`.
    pub fn map(&self, name: &str) -> Result<&MapSchema, SdkError> {
        self.doc.map(name).map_err(SdkError::NoSuchMap)
    }

    /// The only map, for objects (or pinned maps) that have exactly one.
    pub fn only_map(&self) -> Result<&MapSchema, SdkError> {
        match self.doc.maps.as_slice() {
            [one] => Ok(one),
            maps => Err(SdkError::MapNotNamed {
                maps: maps.iter().map(|m| m.name.clone()).collect(),
            }),
        }
    }

    /// Where the map called `name` is pinned: `<pin dir>/<name>` when a pin
    /// directory was given ([`Object::with_pin_dir`]), else the path
    /// recorded in the schema (`ebpf-sdk enrich`, or the pinned map the
    /// schema was read from), else `/sys/fs/bpf/<name>`, where libbpf and
    /// bpftool pin maps by name.
    pub fn pin_path(&self, name: &str) -> Result<PathBuf, SdkError> {
        let map = self.map(name)?;
        Ok(match (&self.pin_dir, &map.pin_path) {
            (Some(dir), _) => dir.join(&map.name),
            (None, Some(p)) => PathBuf::from(p),
            (None, None) => Path::new(DEFAULT_PIN_DIR).join(&map.name),
        })
    }

    /// Opens the map called `name` where [`Object::pin_path`] finds it, and
    /// checks that the live map matches the schema.
    pub fn open(&self, name: &str) -> Result<MapHandle, SdkError> {
        let pin = self.pin_path(name)?;
        MapHandle::open(self.map(name)?, &pin)
    }

    /// Opens the map called `name` pinned at `pin`.
    pub fn open_at(&self, name: &str, pin: impl AsRef<Path>) -> Result<MapHandle, SdkError> {
        MapHandle::open(self.map(name)?, pin)
    }

    /// The codec of the map called `name`, for encoding and decoding without
    /// a kernel (per-CPU maps: one slot per possible CPU of this machine).
    pub fn codec(&self, name: &str) -> Result<EntryCodec, SdkError> {
        let map = self.map(name)?;
        let ncpus = if map.map_type.per_cpu() {
            ebpf_sdk_backend::num_possible_cpus()?
        } else {
            1
        };
        EntryCodec::new(map, ncpus)
    }

    /// Records where the map called `name` is pinned (what `enrich` does);
    /// [`Object::save`] keeps it for later runs.
    pub fn record_pin(&mut self, name: &str, path: impl AsRef<Path>) -> Result<(), SdkError> {
        let map = self.doc.map_mut(name).map_err(SdkError::NoSuchMap)?;
        map.pin_path = Some(path.as_ref().display().to_string());
        Ok(())
    }

    /// Writes the schema document (as `extract` prints it) to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SdkError> {
        let path = path.as_ref();
        std::fs::write(path, self.doc.to_json_pretty()).map_err(|e| SdkError::write(path, e))
    }

    /// A named type of the object's BTF (`event_hdr_st`, `struct event`),
    /// for data that is not in a map. Needs the ELF ([`Object::from_elf`]).
    pub fn type_node(&self, name: &str) -> Result<TypeNode, SdkError> {
        let elf = self.elf.as_deref().ok_or_else(|| SdkError::Unsupported {
            map: self.doc.source.path.clone(),
            map_type: ebpf_sdk_schema::MapType::Unspec,
            operation: "reading a type by name",
            reason: "types other than map keys and values are only in the object file; load it with from_elf",
        })?;
        Ok(ebpf_sdk_btf::extract_type(
            elf,
            &self.doc.source.path,
            name,
        )?)
    }

    /// The byte order of the object's target.
    pub fn endian(&self) -> ByteOrder {
        match self.elf.as_deref().and_then(|e| e.get(5)) {
            // e_ident[EI_DATA]: 2 = big endian.
            Some(2) => ByteOrder::Big,
            Some(_) => ByteOrder::Little,
            None => self
                .doc
                .maps
                .first()
                .map_or(ByteOrder::native(), |m| m.endian),
        }
    }

    /// Decodes `bytes` as the named BTF type (e.g. an event record). Bytes
    /// past the type's size are returned as `rest` (a `0x...` string) in a
    /// struct's fields.
    pub fn decode_type(&self, name: &str, bytes: &[u8]) -> Result<Value, SdkError> {
        let node = self.type_node(name)?;
        let size = node.size as usize;
        if bytes.len() < size {
            return Err(InputError::new(
                Location::default(),
                InputErrorKind::Length {
                    what: "value",
                    given: bytes.len(),
                    expected: size,
                    at_least: true,
                },
            )
            .into());
        }
        let plan = Plan::new("value", &node, self.endian(), &CodecOptions::default()).map_err(
            |source| SdkError::Layout {
                what: format!("type `{name}`"),
                source: Box::new(source),
            },
        )?;
        let mut v = plan
            .decode(&bytes[..size])
            .map_err(|source| SdkError::Decode {
                what: format!("type `{name}`"),
                source: Box::new(source),
            })?;
        if bytes.len() > size {
            if let Value::Map(m) = &mut v {
                let hex: String = bytes[size..].iter().map(|b| format!("{b:02x}")).collect();
                m.insert("rest", Value::String(format!("0x{hex}")));
            }
        }
        Ok(v)
    }

    /// Reads the perf event array called `map`, each record decoded with the
    /// BTF type `record` of the object (bytes after it as `payload`).
    pub fn events(&self, map: &str, record: &str) -> Result<EventReader, SdkError> {
        let schema = self.map(map)?;
        if schema.map_type != ebpf_sdk_schema::MapType::PerfEventArray {
            return Err(SdkError::Unsupported {
                map: schema.name.clone(),
                map_type: schema.map_type,
                operation: "reading events",
                reason: "events are read from a perf_event_array",
            });
        }
        let header = self.type_node(record)?;
        EventReader::open(self.pin_path(map)?, header, self.endian())
    }
}

/// Describes an open map from the BTF the kernel holds for it.
pub(crate) fn describe_map(map: &Map, shown: &str) -> Result<Document, SdkError> {
    let info = map.info();
    let raw = map.btf()?;
    let kinfo = KernelMapInfo {
        name: info.name.clone(),
        map_type: info.map_type,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
        btf_key_type_id: raw.as_ref().map_or(0, |r| r.key_type_id),
        btf_value_type_id: raw.as_ref().map_or(0, |r| r.value_type_id),
    };
    Ok(ebpf_sdk_btf::describe_kernel_map(
        &kinfo,
        raw.as_ref().map(|r| r.bytes.as_slice()),
        shown,
    )?)
}
