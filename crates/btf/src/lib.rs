//! eBPF object -> map schema.
//!
//! [`extract_elf`] reads an eBPF ELF object (`.BTF`, `.maps`, the legacy
//! `maps` section and global data sections) and returns an
//! [`ebpf_sdk_schema::Document`] describing every map: kernel attributes and a
//! self-contained key/value type tree. [`describe_kernel_map`] does the same
//! for one live map from the raw BTF the kernel holds for it.
//!
//! BTF is parsed with [`btf_rs`]; layout comes only from BTF member offsets
//! and type sizes, never from C layout rules re-implemented here. Malformed
//! input gives an [`ExtractError`] naming the file and what is wrong; work
//! per map is bounded (type-chain length, nesting depth, node count).
//!
//! ```no_run
//! let doc = ebpf_sdk_btf::extract_file("firewall-ebpf/firewall.bpf.o").unwrap();
//! let table = doc.map("ingress_node_firewall_table_map").unwrap();
//! assert_eq!((table.key_size, table.value_size), (24, 1200));
//! println!("{}", doc.to_json_pretty());
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::path::Path;

use btf_rs::{Btf, BtfType, Type};
use ebpf_sdk_schema::{
    ByteOrder, Document, MapFlags, MapOrigin, MapSchema, MapType, Member, Pinning, Source,
    SourceKind, TypeKind, TypeNode, SCHEMA_VERSION,
};
use object::{Object, ObjectSection, ObjectSymbol};

mod resolve;
use resolve::{ResolveError, Resolver};

/// What went wrong reading an object or BTF. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// File path.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Not an ELF file, or an ELF the parser rejects.
    #[error("{path}: not a valid ELF object: {detail}")]
    NotElf {
        /// File path.
        path: String,
        /// Parser's reason.
        detail: String,
    },
    /// An ELF for another machine.
    #[error("{path}: ELF machine is {machine}, not eBPF (EM_BPF = 247); pass the compiled eBPF object (clang -target bpf)")]
    NotBpf {
        /// File path.
        path: String,
        /// `e_machine`.
        machine: u16,
    },
    /// No `.BTF` section, while maps need it.
    #[error("{path}: no .BTF section{}; rebuild with `clang -g -target bpf`", if *.has_maps_section { " but it declares BTF maps in .maps" } else { " and no legacy maps section: nothing to describe" })]
    NoBtf {
        /// File path.
        path: String,
        /// Whether a `.maps` section exists.
        has_maps_section: bool,
    },
    /// The BTF blob is malformed.
    #[error("{path}: malformed BTF in {section}: {detail}")]
    BadBtf {
        /// File path.
        path: String,
        /// Where the BTF came from (`.BTF`, `kernel`).
        section: String,
        /// Parser's reason.
        detail: String,
    },
    /// A type used by a map cannot be described.
    #[error("{path}: map `{map}`: BTF type id {type_id}: {detail}")]
    Type {
        /// File path.
        path: String,
        /// Map name.
        map: String,
        /// BTF type id.
        type_id: u32,
        /// What is wrong.
        detail: String,
    },
    /// No type of that name in the BTF.
    #[error("{path}: no type named `{name}` in the BTF")]
    NoSuchType {
        /// File path.
        path: String,
        /// Name asked for.
        name: String,
    },
    /// A map definition is malformed.
    #[error("{path}: map `{map}`: {detail}")]
    MapDef {
        /// File path.
        path: String,
        /// Map name.
        map: String,
        /// What is wrong.
        detail: String,
    },
}

const EM_BPF: u16 = 247;

/// Reads and extracts an object file.
pub fn extract_file(path: impl AsRef<Path>) -> Result<Document, ExtractError> {
    let p = path.as_ref();
    let shown = p.display().to_string();
    let bytes = std::fs::read(p).map_err(|source| ExtractError::Read {
        path: shown.clone(),
        source,
    })?;
    extract_elf(&bytes, &shown)
}

/// Extracts every map of an eBPF ELF object held in memory. `path` is only
/// used in messages and in the document's `source`.
pub fn extract_elf(data: &[u8], path: &str) -> Result<Document, ExtractError> {
    let file = object::File::parse(data).map_err(|e| ExtractError::NotElf {
        path: path.to_string(),
        detail: e.to_string(),
    })?;
    let machine = elf_machine(data);
    if let Some(m) = machine {
        if m != EM_BPF {
            return Err(ExtractError::NotBpf {
                path: path.to_string(),
                machine: m,
            });
        }
    }
    let endian = if file.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let btf_section = file.section_by_name(".BTF");
    let has_maps_section = file.section_by_name(".maps").is_some();
    let legacy = file.section_by_name("maps");
    let btf = match btf_section {
        Some(s) => {
            let bytes = s.data().map_err(|e| ExtractError::BadBtf {
                path: path.to_string(),
                section: ".BTF".into(),
                detail: e.to_string(),
            })?;
            Some(parse_btf(bytes, path, ".BTF")?)
        }
        None if legacy.is_some() && !has_maps_section => None,
        None => {
            return Err(ExtractError::NoBtf {
                path: path.to_string(),
                has_maps_section,
            })
        }
    };

    let ctx = Ctx {
        path,
        endian,
        obj_name: object_name(path),
    };
    let mut maps = Vec::new();
    if let Some(btf) = &btf {
        maps.extend(btf_maps(&ctx, btf)?);
    }
    if let Some(sec) = legacy {
        maps.extend(legacy_maps(&ctx, &file, &sec)?);
    }
    maps.extend(global_data_maps(&ctx, &file, btf.as_ref())?);
    Ok(Document {
        schema_version: SCHEMA_VERSION,
        source: Source {
            kind: SourceKind::Elf,
            path: path.to_string(),
        },
        maps,
    })
}

/// Describes one named type of an object's BTF, e.g. `struct event_hdr_st`
/// or `event_hdr_st`: for data that is not in a map, such as perf or ring
/// buffer event records.
pub fn extract_type(data: &[u8], path: &str, name: &str) -> Result<TypeNode, ExtractError> {
    let file = object::File::parse(data).map_err(|e| ExtractError::NotElf {
        path: path.to_string(),
        detail: e.to_string(),
    })?;
    let endian = if file.is_little_endian() {
        ByteOrder::Little
    } else {
        ByteOrder::Big
    };
    let sec = file
        .section_by_name(".BTF")
        .ok_or_else(|| ExtractError::NoBtf {
            path: path.to_string(),
            has_maps_section: false,
        })?;
    let bytes = sec.data().map_err(|e| ExtractError::BadBtf {
        path: path.to_string(),
        section: ".BTF".into(),
        detail: e.to_string(),
    })?;
    let btf = parse_btf(bytes, path, ".BTF")?;
    let bare = name
        .strip_prefix("struct ")
        .or_else(|| name.strip_prefix("union "))
        .or_else(|| name.strip_prefix("enum "))
        .unwrap_or(name)
        .trim();
    let mut resolver = Resolver::new(&btf, endian);
    let ids = btf.resolve_ids_by_name(bare).unwrap_or_default();
    for id in ids {
        let Ok(ty) = btf.resolve_type_by_id(id) else {
            continue;
        };
        if matches!(
            ty,
            Type::Var(_) | Type::Func(_) | Type::FuncProto(_) | Type::Datasec(_) | Type::Fwd(_)
        ) {
            continue;
        }
        let node = resolver.node(id).map_err(|e| ExtractError::Type {
            path: path.to_string(),
            map: format!("type {name}"),
            type_id: e.type_id,
            detail: e.detail,
        })?;
        if bare == name || node.name == name {
            return Ok(node);
        }
    }
    Err(ExtractError::NoSuchType {
        path: path.to_string(),
        name: name.to_string(),
    })
}

/// What the kernel reports about a live map (`BPF_OBJ_GET_INFO_BY_FD`), as
/// needed to describe it.
#[derive(Debug, Clone, Default)]
pub struct KernelMapInfo {
    /// Map name (at most 15 bytes).
    pub name: String,
    /// The map type.
    pub map_type: MapType,
    /// Key size.
    pub key_size: u32,
    /// Value size.
    pub value_size: u32,
    /// Max entries.
    pub max_entries: u32,
    /// `map_flags`.
    pub map_flags: MapFlags,
    /// BTF type id of the key, 0 if none.
    pub btf_key_type_id: u32,
    /// BTF type id of the value, 0 if none.
    pub btf_value_type_id: u32,
}

/// Describes a live map from the raw BTF the kernel holds for it (`None`
/// when the map has no BTF). `path` names the pin in messages.
pub fn describe_kernel_map(
    info: &KernelMapInfo,
    raw_btf: Option<&[u8]>,
    path: &str,
) -> Result<Document, ExtractError> {
    let ctx = Ctx {
        path,
        endian: ByteOrder::native(),
        obj_name: String::new(),
    };
    let btf = raw_btf
        .map(|b| parse_btf(b, path, "kernel BTF"))
        .transpose()?;
    let mut resolver = btf.as_ref().map(|b| Resolver::new(b, ctx.endian));
    let mut side = |id: u32, size: u32, what: &str| -> Result<Option<TypeNode>, ExtractError> {
        if size == 0 {
            return Ok(None);
        }
        let node = match (&mut resolver, id) {
            (Some(r), id) if id != 0 => r.node(id).map_err(|e| ctx.type_err(&info.name, e))?,
            _ => opaque(size),
        };
        if node.size != size {
            return Err(ctx.map_err(
                &info.name,
                format!(
                    "{what} type {} is {} bytes but the map's {what} size is {size}",
                    node.name, node.size
                ),
            ));
        }
        Ok(Some(node))
    };
    let key = side(info.btf_key_type_id, info.key_size, "key")?;
    let value = side(info.btf_value_type_id, info.value_size, "value")?;
    let name = btf
        .as_ref()
        .and_then(|b| full_map_name(b, &info.name, info.btf_key_type_id, info.btf_value_type_id))
        .unwrap_or_else(|| info.name.clone());
    let map = MapSchema {
        name,
        map_type: info.map_type,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
        pinning: Pinning::None,
        pin_path: Some(path.to_string()),
        section: "kernel".into(),
        origin: MapOrigin::Kernel,
        endian: ctx.endian,
        btf_key_type_id: (info.btf_key_type_id != 0).then_some(info.btf_key_type_id),
        btf_value_type_id: (info.btf_value_type_id != 0).then_some(info.btf_value_type_id),
        key,
        value,
        inner_map: None,
    };
    Ok(Document {
        schema_version: SCHEMA_VERSION,
        source: Source {
            kind: SourceKind::Kernel,
            path: path.to_string(),
        },
        maps: vec![map],
    })
}

/// The kernel keeps 15 bytes of a map's name; the program's BTF still has
/// the whole name as a variable in `.maps`. The variable whose name starts
/// with the kernel's and whose `key`/`value` point at the map's key and value
/// type ids gives the name the object declared.
fn full_map_name(btf: &Btf, short: &str, key_id: u32, value_id: u32) -> Option<String> {
    if short.len() < 15 {
        return None;
    }
    let pointee = |members: &[btf_rs::Member], field: &str| -> Option<u32> {
        let m = members
            .iter()
            .find(|m| btf.resolve_name(*m).ok().as_deref() == Some(field))?;
        match btf.resolve_type_by_id(m.get_type_id()?).ok()? {
            Type::Ptr(p) => p.get_type_id(),
            _ => None,
        }
    };
    let mut found = None;
    for sec_id in btf.resolve_ids_by_name(".maps").ok()? {
        let Ok(Type::Datasec(ds)) = btf.resolve_type_by_id(sec_id) else {
            continue;
        };
        for v in &ds.variables {
            let Some(id) = v.get_type_id() else { continue };
            let Ok(Type::Var(var)) = btf.resolve_type_by_id(id) else {
                continue;
            };
            let Ok(name) = btf.resolve_name(&var) else {
                continue;
            };
            if !name.starts_with(short) {
                continue;
            }
            let Some(Ok(Type::Struct(def))) = var.get_type_id().map(|t| btf.resolve_type_by_id(t))
            else {
                continue;
            };
            let k = pointee(&def.members, "key").unwrap_or(0);
            let val = pointee(&def.members, "value").unwrap_or(0);
            if k == key_id && val == value_id {
                if found.is_some() {
                    return None;
                }
                found = Some(name);
            }
        }
    }
    found
}

struct Ctx<'a> {
    path: &'a str,
    endian: ByteOrder,
    obj_name: String,
}

impl Ctx<'_> {
    fn type_err(&self, map: &str, e: ResolveError) -> ExtractError {
        ExtractError::Type {
            path: self.path.to_string(),
            map: map.to_string(),
            type_id: e.type_id,
            detail: e.detail,
        }
    }
    fn map_err(&self, map: &str, detail: impl Into<String>) -> ExtractError {
        ExtractError::MapDef {
            path: self.path.to_string(),
            map: map.to_string(),
            detail: detail.into(),
        }
    }
}

fn parse_btf(bytes: &[u8], path: &str, section: &str) -> Result<Btf, ExtractError> {
    Btf::from_bytes(bytes).map_err(|e| ExtractError::BadBtf {
        path: path.to_string(),
        section: section.to_string(),
        detail: e.to_string(),
    })
}

/// `e_machine` at offset 18 of the ELF header, in the file's byte order.
fn elf_machine(data: &[u8]) -> Option<u16> {
    let b = data.get(18..20)?;
    Some(match data.get(5)? {
        2 => u16::from_be_bytes([b[0], b[1]]),
        _ => u16::from_le_bytes([b[0], b[1]]),
    })
}

/// libbpf's object name: the file name up to its first `.`
/// (`firewall.bpf.o` -> `firewall`).
fn object_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base).to_string()
}

fn opaque(size: u32) -> TypeNode {
    TypeNode {
        name: format!("opaque[{size}]"),
        typedefs: vec![],
        size,
        kind: TypeKind::Opaque,
    }
}

fn u32_node() -> TypeNode {
    TypeNode {
        name: "unsigned int".into(),
        typedefs: vec!["__u32".into()],
        size: 4,
        kind: TypeKind::Int {
            signed: false,
            char: false,
            byte_order: None,
            format: None,
        },
    }
}

/// Parsed `__uint(...)`/`__type(...)` fields of one BTF map definition.
#[derive(Default)]
struct MapDef {
    map_type: Option<u32>,
    max_entries: Option<u32>,
    map_flags: Option<u32>,
    key_size: Option<u32>,
    value_size: Option<u32>,
    pinning: Option<u32>,
    key: Option<u32>,
    value: Option<u32>,
    inner: Option<u32>,
}

fn btf_maps(ctx: &Ctx<'_>, btf: &Btf) -> Result<Vec<MapSchema>, ExtractError> {
    let r = Resolver::new(btf, ctx.endian);
    let ids = btf.resolve_ids_by_name(".maps").unwrap_or_default();
    let mut out = Vec::new();
    for sec_id in ids {
        let Ok(Type::Datasec(ds)) = btf.resolve_type_by_id(sec_id) else {
            continue;
        };
        for v in &ds.variables {
            let Some(var_id) = v.get_type_id() else {
                continue;
            };
            let var = r.type_by_id(var_id).map_err(|e| ctx.type_err(".maps", e))?;
            let Type::Var(var) = var else {
                return Err(ctx.map_err(
                    ".maps",
                    format!("entry {var_id} of the .maps section is not a variable"),
                ));
            };
            let name = r
                .name_of(&var, var_id)
                .map_err(|e| ctx.type_err(".maps", e))?;
            let def_id = var
                .get_type_id()
                .ok_or_else(|| ctx.map_err(&name, "map variable has no type"))?;
            out.push(btf_map(ctx, btf, &name, def_id, 0)?);
        }
    }
    Ok(out)
}

fn btf_map(
    ctx: &Ctx<'_>,
    btf: &Btf,
    name: &str,
    def_id: u32,
    depth: usize,
) -> Result<MapSchema, ExtractError> {
    let r = Resolver::new(btf, ctx.endian);
    let def = read_map_def(ctx, &r, name, def_id)?;
    let map_type = def
        .map_type
        .map(MapType::from_id)
        .ok_or_else(|| ctx.map_err(name, "map definition has no `type`"))?;
    let mut res = Resolver::new(btf, ctx.endian);
    let mut side = |id: Option<u32>,
                    size: Option<u32>,
                    what: &str|
     -> Result<(Option<TypeNode>, Option<u32>), ExtractError> {
        match (id, size) {
            (Some(id), declared) => {
                let node = res.node(id).map_err(|e| ctx.type_err(name, e))?;
                if let Some(s) = declared {
                    if s != node.size {
                        return Err(ctx.map_err(
                            name,
                            format!(
                                "{what}_size is {s} but the {what} type {} is {} bytes",
                                node.name, node.size
                            ),
                        ));
                    }
                }
                Ok((Some(node), Some(id)))
            }
            (None, Some(0)) | (None, None) => Ok((None, None)),
            (None, Some(s)) => Ok((Some(opaque(s)), None)),
        }
    };
    let (mut key, key_id) = side(def.key, def.key_size, "key")?;
    let (mut value, value_id) = side(def.value, def.value_size, "value")?;
    // libbpf's defaults for map types whose sizes are implied.
    if matches!(map_type, MapType::PerfEventArray | MapType::CgroupArray) {
        // u32 index -> u32 fd.
        key.get_or_insert_with(u32_node);
        value.get_or_insert_with(u32_node);
    }
    let mut inner_map = None;
    if map_type.holds_object_refs() {
        if let Some(inner_id) = def.inner {
            if depth > 2 {
                return Err(ctx.map_err(name, "map-in-map nested too deeply"));
            }
            let inner = btf_map(ctx, btf, &format!("{name}.inner"), inner_id, depth + 1)?;
            inner_map = Some(Box::new(inner));
        }
        // The value a program stores is an fd/id: 4 bytes.
        value = Some(u32_node());
    }
    let key_size = key.as_ref().map_or(0, |k| k.size);
    let value_size = value.as_ref().map_or(0, |v| v.size);
    let pinning = match def.pinning.unwrap_or(0) {
        0 => Pinning::None,
        1 => Pinning::ByName,
        other => {
            return Err(ctx.map_err(name, format!("unknown pinning {other} (0 none, 1 by name)")))
        }
    };
    Ok(MapSchema {
        name: name.to_string(),
        map_type,
        key_size,
        value_size,
        max_entries: def.max_entries.unwrap_or(0),
        flags: MapFlags::from_bits(def.map_flags.unwrap_or(0)),
        pinning,
        pin_path: None,
        section: ".maps".into(),
        origin: MapOrigin::Btf,
        endian: ctx.endian,
        btf_key_type_id: key_id,
        btf_value_type_id: if map_type.holds_object_refs() {
            None
        } else {
            value_id
        },
        key,
        value,
        inner_map,
    })
}

fn read_map_def(
    ctx: &Ctx<'_>,
    r: &Resolver<'_>,
    name: &str,
    def_id: u32,
) -> Result<MapDef, ExtractError> {
    let peeled = r.peel(def_id).map_err(|e| ctx.type_err(name, e))?;
    let Type::Struct(st) = &peeled.ty else {
        return Err(ctx.map_err(
            name,
            format!("map definition is a {}, not a struct", peeled.ty.name()),
        ));
    };
    let mut def = MapDef::default();
    for m in &st.members {
        let field = r.name_of(m, peeled.id).map_err(|e| ctx.type_err(name, e))?;
        let Some(tid) = m.get_type_id() else { continue };
        let t = r.peel(tid).map_err(|e| ctx.type_err(name, e))?;
        // `__uint(f, N)` is `int (*f)[N]`; `__type(f, T)` is `typeof(T) *f`;
        // `__array(values, T)` is `T *values[]`.
        let uint = || -> Result<u32, ExtractError> {
            let Type::Ptr(p) = &t.ty else {
                return Err(ctx.map_err(name, format!("`{field}` is not declared with __uint()")));
            };
            let target = p
                .get_type_id()
                .ok_or_else(|| ctx.map_err(name, format!("`{field}` has no target")))?;
            match r.peel(target).map_err(|e| ctx.type_err(name, e))?.ty {
                Type::Array(a) => u32::try_from(a.len())
                    .map_err(|_| ctx.map_err(name, format!("`{field}` value does not fit in u32"))),
                _ => Err(ctx.map_err(name, format!("`{field}` is not declared with __uint()"))),
            }
        };
        let pointee = || -> Result<u32, ExtractError> {
            match &t.ty {
                Type::Ptr(p) => p
                    .get_type_id()
                    .ok_or_else(|| ctx.map_err(name, format!("`{field}` has no target"))),
                _ => Err(ctx.map_err(name, format!("`{field}` is not declared with __type()"))),
            }
        };
        match field.as_str() {
            "type" => def.map_type = Some(uint()?),
            "max_entries" => def.max_entries = Some(uint()?),
            "map_flags" => def.map_flags = Some(uint()?),
            "key_size" => def.key_size = Some(uint()?),
            "value_size" => def.value_size = Some(uint()?),
            "pinning" => def.pinning = Some(uint()?),
            "key" => def.key = Some(pointee()?),
            "value" => def.value = Some(pointee()?),
            "values" => {
                // T *values[]: array of pointers to the inner map definition
                // (or to a function prototype for program arrays).
                if let Type::Array(a) = &t.ty {
                    if let Some(elem) = a.get_type_id() {
                        if let Type::Ptr(p) = r.peel(elem).map_err(|e| ctx.type_err(name, e))?.ty {
                            if let Some(target) = p.get_type_id() {
                                if matches!(
                                    r.peel(target).map_err(|e| ctx.type_err(name, e))?.ty,
                                    Type::Struct(_)
                                ) {
                                    def.inner = Some(target);
                                }
                            }
                        }
                    }
                }
            }
            // numa_node, map_extra and future fields do not change the layout.
            _ => {}
        }
    }
    Ok(def)
}

/// `struct bpf_map_def { type, key_size, value_size, max_entries, map_flags }`
/// records in the legacy `maps` section, one per symbol.
fn legacy_maps(
    ctx: &Ctx<'_>,
    file: &object::File<'_>,
    sec: &object::Section<'_, '_>,
) -> Result<Vec<MapSchema>, ExtractError> {
    let data = sec
        .data()
        .map_err(|e| ctx.map_err("maps", format!("cannot read the maps section: {e}")))?;
    let mut syms: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(sec.index()) && !s.name().unwrap_or("").is_empty())
        .filter(|s| s.kind() != object::SymbolKind::Section)
        .map(|s| (s.address(), s.name().unwrap_or("").to_string()))
        .collect();
    syms.sort();
    let word = |off: u64| -> Option<u32> {
        let o = usize::try_from(off).ok()?;
        let b = data.get(o..o.checked_add(4)?)?;
        let arr = [b[0], b[1], b[2], b[3]];
        Some(if ctx.endian == ByteOrder::Little {
            u32::from_le_bytes(arr)
        } else {
            u32::from_be_bytes(arr)
        })
    };
    let mut out = Vec::new();
    for (off, name) in syms {
        let f = |i: u64| {
            word(off + 4 * i).ok_or_else(|| {
                ctx.map_err(&name, "legacy map definition runs past the maps section")
            })
        };
        let (map_type, key_size, value_size, max_entries) = (f(0)?, f(1)?, f(2)?, f(3)?);
        let map_flags = word(off + 16).unwrap_or(0);
        out.push(MapSchema {
            name: name.clone(),
            map_type: MapType::from_id(map_type),
            key_size,
            value_size,
            max_entries,
            flags: MapFlags::from_bits(map_flags),
            pinning: Pinning::None,
            pin_path: None,
            section: "maps".into(),
            origin: MapOrigin::Legacy,
            endian: ctx.endian,
            btf_key_type_id: None,
            btf_value_type_id: None,
            key: (key_size > 0).then(|| opaque(key_size)),
            value: (value_size > 0).then(|| opaque(value_size)),
            inner_map: None,
        });
    }
    Ok(out)
}

/// `.data`, `.bss`, `.rodata` (and `.data.*`, `.rodata.*`) become
/// single-entry arrays named as libbpf names them (`<obj prefix>.<sec>`).
/// The value is the section's DATASEC with variable offsets taken from the
/// symbol table, because the ELF's DATASEC offsets are 0 until libbpf
/// fixes them up at load time.
fn global_data_maps(
    ctx: &Ctx<'_>,
    file: &object::File<'_>,
    btf: Option<&Btf>,
) -> Result<Vec<MapSchema>, ExtractError> {
    let mut out = Vec::new();
    for sec in file.sections() {
        let Ok(sec_name) = sec.name() else { continue };
        let is_data = sec_name == ".data"
            || sec_name == ".bss"
            || sec_name == ".rodata"
            || sec_name.starts_with(".data.")
            || sec_name.starts_with(".rodata.");
        if !is_data || sec.size() == 0 {
            continue;
        }
        // libbpf skips .rodata.str1.1-style string-literal sections.
        if sec_name.starts_with(".rodata.str") || sec_name.starts_with(".rodata.cst") {
            continue;
        }
        let size = u32::try_from(sec.size())
            .map_err(|_| ctx.map_err(sec_name, "section larger than 4 GiB"))?;
        let map_name = internal_map_name(&ctx.obj_name, sec_name);
        let readonly = sec_name.starts_with(".rodata");
        let map_flags = if readonly {
            MapFlags::MMAPABLE | MapFlags::RDONLY_PROG
        } else {
            MapFlags::MMAPABLE
        };
        let mut value = None;
        let mut value_id = None;
        if let Some(btf) = btf {
            if let Some(id) = btf
                .resolve_ids_by_name(sec_name)
                .unwrap_or_default()
                .into_iter()
                .find(|id| matches!(btf.resolve_type_by_id(*id), Ok(Type::Datasec(_))))
            {
                let node = datasec_node(ctx, file, &sec, btf, id, &map_name, sec_name, size)?;
                value = Some(node);
                value_id = Some(id);
            }
        }
        out.push(MapSchema {
            name: map_name,
            map_type: MapType::Array,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            flags: map_flags,
            pinning: Pinning::None,
            pin_path: None,
            section: sec_name.to_string(),
            origin: MapOrigin::GlobalData,
            endian: ctx.endian,
            btf_key_type_id: None,
            btf_value_type_id: value_id,
            key: Some(u32_node()),
            value: Some(value.unwrap_or_else(|| opaque(size))),
            inner_map: None,
        });
    }
    Ok(out)
}

/// libbpf's `internal_map_name`: up to 8 characters of the object name and the section name.
fn internal_map_name(obj: &str, sec: &str) -> String {
    let sfx_len = sec.len().clamp(7, 15);
    let pfx_len = (16 - sfx_len - 1).min(obj.len());
    let name: String = obj
        .chars()
        .take(pfx_len)
        .chain(sec.chars().take(sfx_len))
        .collect();
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn datasec_node(
    ctx: &Ctx<'_>,
    file: &object::File<'_>,
    sec: &object::Section<'_, '_>,
    btf: &Btf,
    id: u32,
    map: &str,
    sec_name: &str,
    size: u32,
) -> Result<TypeNode, ExtractError> {
    let Ok(Type::Datasec(ds)) = btf.resolve_type_by_id(id) else {
        return Ok(opaque(size));
    };
    let mut r = Resolver::new(btf, ctx.endian);
    let syms: Vec<(String, u64)> = file
        .symbols()
        .filter(|s| s.section_index() == Some(sec.index()))
        .filter_map(|s| Some((s.name().ok()?.to_string(), s.address())))
        .collect();
    let mut members = Vec::new();
    for v in &ds.variables {
        let Some(var_id) = v.get_type_id() else {
            continue;
        };
        let Ok(Type::Var(var)) = btf.resolve_type_by_id(var_id) else {
            continue;
        };
        let vname = r.name_of(&var, var_id).map_err(|e| ctx.type_err(map, e))?;
        let Some(tid) = var.get_type_id() else {
            continue;
        };
        let mut node = r.node(tid).map_err(|e| ctx.type_err(map, e))?;
        // Offsets: the symbol's value; a DATASEC already fixed up (kernel BTF) has them.
        let off = syms
            .iter()
            .find(|(n, _)| *n == vname)
            .map(|(_, a)| *a)
            .unwrap_or(u64::from(v.offset()));
        let end = off.checked_add(u64::from(node.size));
        if end.is_none_or(|e| e > u64::from(size)) {
            return Err(ctx.map_err(
                map,
                format!("{sec_name}: variable `{vname}` at {off} runs past the section"),
            ));
        }
        resolve::hint(&vname, &mut node);
        members.push(Member {
            name: vname,
            offset: off as u32,
            bit_offset: (off as u32) * 8,
            bit_size: None,
            ty: node,
        });
    }
    members.sort_by_key(|m| m.offset);
    Ok(TypeNode {
        name: format!("datasec {sec_name}"),
        typedefs: vec![],
        size,
        kind: TypeKind::Struct { members },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_follow_libbpf() {
        assert_eq!(
            internal_map_name("firewall.bpf", ".rodata"),
            "firewall.rodata"
        );
        assert_eq!(internal_map_name("fw", ".bss"), "fw.bss");
        assert_eq!(internal_map_name("a-b", ".data"), "a_b.data");
    }

    #[test]
    fn not_elf_is_named() {
        let e = extract_elf(b"hello world, not an elf at all", "x.o").unwrap_err();
        assert!(
            e.to_string().starts_with("x.o: not a valid ELF object"),
            "{e}"
        );
    }

    #[test]
    fn host_elf_is_refused() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = extract_elf(&exe, "test-binary").unwrap_err();
        assert!(matches!(e, ExtractError::NotBpf { .. }), "{e}");
    }
}
