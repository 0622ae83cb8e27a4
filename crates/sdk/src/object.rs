//! [`Object`]: the maps of one eBPF object (or one pinned map), where to
//! find them, and everything that needs the object's BTF.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ebpf_sdk_backend::Map;
use ebpf_sdk_btf::KernelMapInfo;
use ebpf_sdk_codec::{CodecOptions, Plan, Value};
use ebpf_sdk_schema::{ByteOrder, Document, MapSchema, Pinning, TypeNode};

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
    /// schema was read from), else where the loader the object asks for
    /// pins it ([`default_pin_path`]): `/sys/fs/bpf/<name>` as libbpf and
    /// bpftool pin maps by name, `/sys/fs/bpf/tc/globals/<name>` for
    /// iproute2's `PIN_GLOBAL_NS`, and so on.
    pub fn pin_path(&self, name: &str) -> Result<PathBuf, SdkError> {
        let map = self.map(name)?;
        match (&self.pin_dir, &map.pin_path) {
            (Some(dir), _) => Ok(dir.join(&map.name)),
            (None, Some(p)) => Ok(PathBuf::from(p)),
            (None, None) => default_pin_path(map, Path::new(DEFAULT_PIN_DIR), IPROUTE2_PINNING),
        }
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

    /// Reads the perf event array called `map` where [`Object::pin_path`]
    /// finds it, each record decoded with the BTF type `record` of the
    /// object, or, without one, with the record type the map declares
    /// (`__type(value, struct event)`, kept in [`MapSchema::record`]);
    /// bytes after it are shown as `payload`.
    pub fn events(&self, map: &str, record: Option<&str>) -> Result<EventReader, SdkError> {
        self.events_at(map, self.pin_path(map)?, record)
    }

    /// [`Object::events`] for the perf event array pinned at `pin`.
    pub fn events_at(
        &self,
        map: &str,
        pin: impl AsRef<Path>,
        record: Option<&str>,
    ) -> Result<EventReader, SdkError> {
        let schema = self.map(map)?;
        if schema.map_type != ebpf_sdk_schema::MapType::PerfEventArray {
            return Err(SdkError::Unsupported {
                map: schema.name.clone(),
                map_type: schema.map_type,
                operation: "reading events",
                reason: "events are read from a perf_event_array",
            });
        }
        let header = match (record, &schema.record) {
            (Some(name), _) => self.type_node(name)?,
            (None, Some(declared)) => declared.clone(),
            (None, None) => {
                return Err(SdkError::NoRecordType {
                    map: schema.name.clone(),
                })
            }
        };
        EventReader::open(pin, header, self.endian())
    }
}

/// The files iproute2 reads custom pinning values from (`ID SUBDIR` lines),
/// newest location first.
pub const IPROUTE2_PINNING: &[&str] =
    &["/etc/iproute2/bpf_pinning", "/usr/lib/iproute2/bpf_pinning"];

/// Where the loader an object was written for pins `map` under the bpffs
/// mount `root` (normally [`DEFAULT_PIN_DIR`]), from its
/// [`Pinning`] mode:
///
/// - none, or libbpf's by-name pinning: `<root>/<name>` (libbpf's pin root,
///   and where bpftool's `pinmaps` and `ebpf-sdk` users put maps by hand);
/// - iproute2's `PIN_GLOBAL_NS`: `<root>/tc/globals/<name>`;
/// - iproute2's `PIN_OBJECT_NS`: `<root>/tc/<object SHA-1>/<name>`;
/// - another iproute2 value: `<root>/<sub dir>/<name>`, the sub directory
///   read from the first of `pinning_files` that maps the value (iproute2's
///   `/etc/iproute2/bpf_pinning`).
///
/// iproute2 pins under `<root>/tc`, and links `<root>/xdp` and `<root>/ip`
/// to it, whichever of `tc` or `ip link ... xdp obj` loaded the object.
///
/// ```
/// use std::path::Path;
/// use ebpf_sdk::schema::Pinning;
///
/// let obj = concat!(env!("CARGO_MANIFEST_DIR"), "/../btf/tests/fixtures/realworld/iproute2.bpf.o");
/// let doc = ebpf_sdk::btf::extract_file(obj)?;
/// let m = doc.map("tc_counters")?;
/// assert_eq!(m.pinning, Pinning::GlobalNs);
/// let pin = ebpf_sdk::default_pin_path(m, Path::new("/sys/fs/bpf"), &[])?;
/// assert_eq!(pin, Path::new("/sys/fs/bpf/tc/globals/tc_counters"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn default_pin_path(
    map: &MapSchema,
    root: &Path,
    pinning_files: &[&str],
) -> Result<PathBuf, SdkError> {
    Ok(match &map.pinning {
        Pinning::None | Pinning::ByName => root.join(&map.name),
        Pinning::GlobalNs => root.join("tc").join("globals").join(&map.name),
        Pinning::ObjectNs(id) => {
            // From a schema file: nothing but the 40 hex digits iproute2 uses.
            if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(SdkError::Pinning {
                    map: map.name.clone(),
                    detail: format!(
                        "object_ns names the object `{id}`, which is not a SHA-1 in hex"
                    ),
                });
            }
            root.join("tc").join(id).join(&map.name)
        }
        Pinning::Custom(value) => {
            let sub = pinning_files
                .iter()
                .find_map(|f| custom_pinning_dir(Path::new(f), *value))
                .ok_or_else(|| SdkError::Pinning {
                    map: map.name.clone(),
                    detail: format!(
                        "pinning {value} is a custom iproute2 pinning, and no sub directory is \
                         given for it in {}; give the pin path (--pinned)",
                        if pinning_files.is_empty() {
                            "the pinning files".to_string()
                        } else {
                            pinning_files.join(" or ")
                        }
                    ),
                })?;
            root.join(sub).join(&map.name)
        }
    })
}

/// The sub directory `file` (iproute2's `bpf_pinning` format: `ID SUBDIR`
/// per line, `#` comments, IDs in decimal or `0x` hex) gives pinning
/// `value`; `None` when the file is missing or does not name it, or the
/// directory would leave the bpffs mount.
fn custom_pinning_dir(file: &Path, value: u32) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let (id, dir) = (words.next()?, words.next()?);
        let id = match id.strip_prefix("0x").or_else(|| id.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => id.parse().ok()?,
        };
        let dir = Path::new(dir.trim_start_matches('/'));
        let inside = dir
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        (id == value && inside).then(|| dir.to_path_buf())
    })
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
