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

use std::cell::OnceCell;

use btf_rs::{Btf, BtfType, Type};
use ebpf_sdk_schema::{
    ByteOrder, Document, MapFlags, MapOrigin, MapSchema, MapType, Pinning, Source, SourceKind,
    TypeKind, TypeNode, SCHEMA_VERSION,
};
use object::{Object, ObjectSection};

mod globals;
mod legacy;
mod maps;
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
        data,
        object_id: OnceCell::new(),
    };
    let mut maps = Vec::new();
    if let Some(btf) = &btf {
        maps.extend(maps::btf_maps(&ctx, btf)?);
    }
    if let Some(sec) = legacy {
        maps.extend(legacy::legacy_maps(&ctx, &file, &sec, btf.as_ref())?);
    }
    maps.extend(globals::global_data_maps(&ctx, &file, btf.as_ref())?);
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
///
/// A global data map (`.data`, `.bss`, `.rodata`, `.data.*`), whose value
/// type is the section's DATASEC, gets the value [`extract_elf`] gives the
/// object's map: the section's variables by name at their offsets (the
/// kernel's copy of the BTF has them fixed up) under the name libbpf gave
/// it. An indexed map without key BTF (arrays, global data) gets a `__u32`
/// key.
pub fn describe_kernel_map(
    info: &KernelMapInfo,
    raw_btf: Option<&[u8]>,
    path: &str,
) -> Result<Document, ExtractError> {
    let ctx = Ctx {
        path,
        endian: ByteOrder::native(),
        obj_name: String::new(),
        data: &[],
        object_id: OnceCell::new(),
    };
    let btf = raw_btf
        .map(|b| parse_btf(b, path, "kernel BTF"))
        .transpose()?;
    let datasec = btf
        .as_ref()
        .and_then(|b| datasec_name(b, info.btf_value_type_id));
    let mut resolver = btf.as_ref().map(|b| Resolver::new(b, ctx.endian));
    let mut side = |id: u32, size: u32, what: &str| -> Result<Option<TypeNode>, ExtractError> {
        if size == 0 {
            return Ok(None);
        }
        let node = match (&mut resolver, id) {
            (Some(r), id) if id != 0 && what == "value" && datasec.is_some() => r
                .datasec(id, size, &|_, declared| u64::from(declared))
                .map_err(|e| ctx.type_err(&info.name, e))?,
            (Some(r), id) if id != 0 => r.node(id).map_err(|e| ctx.type_err(&info.name, e))?,
            _ if what == "key" && size == 4 && info.map_type.indexed() => u32_node(),
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
    let name = match &datasec {
        Some(sec) => globals::kernel_global_data_name(&info.name, sec),
        None => btf
            .as_ref()
            .and_then(|b| {
                full_map_name(b, &info.name, info.btf_key_type_id, info.btf_value_type_id)
            })
            .unwrap_or_else(|| info.name.clone()),
    };
    let map = MapSchema {
        name,
        map_type: info.map_type,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        flags: info.map_flags,
        pinning: Pinning::None,
        pin_path: Some(path.to_string()),
        section: datasec.unwrap_or_else(|| "kernel".into()),
        origin: MapOrigin::Kernel,
        endian: ctx.endian,
        btf_key_type_id: (info.btf_key_type_id != 0).then_some(info.btf_key_type_id),
        btf_value_type_id: (info.btf_value_type_id != 0).then_some(info.btf_value_type_id),
        key,
        value,
        inner_map: None,
        record: None,
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

/// The section name when type `id` is a DATASEC (the value of a global
/// data map).
fn datasec_name(btf: &Btf, id: u32) -> Option<String> {
    if id == 0 {
        return None;
    }
    match btf.resolve_type_by_id(id).ok()? {
        Type::Datasec(ds) => btf.resolve_name(&ds).ok(),
        _ => None,
    }
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
    /// The whole object file (empty for kernel BTF).
    data: &'a [u8],
    /// [`Ctx::object_id`], computed once.
    object_id: OnceCell<String>,
}

impl Ctx<'_> {
    /// iproute2's id of the object (`obj_uid`): the SHA-1 of the object
    /// file in lower-case hex, the directory its `PIN_OBJECT_NS` maps are
    /// pinned in.
    fn object_id(&self) -> String {
        self.object_id
            .get_or_init(|| sha1_smol::Sha1::from(self.data).digest().to_string())
            .clone()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_follow_libbpf() {
        use globals::internal_map_name;
        assert_eq!(
            internal_map_name("firewall.bpf", ".rodata"),
            "firewall.rodata"
        );
        assert_eq!(internal_map_name("fw", ".bss"), "fw.bss");
        assert_eq!(internal_map_name("a-b", ".data"), "a_b.data");
        assert_eq!(
            internal_map_name("tcpconnect", ".kconfig"),
            "tcpconn.kconfig"
        );
        // Custom sections keep their own name, not the object's.
        assert_eq!(internal_map_name("lb", ".data.custom"), ".data.custom");
        assert_eq!(
            internal_map_name("loader_c", ".rodata.test"),
            ".rodata.test"
        );
    }

    #[test]
    fn object_ids_are_iproute2_sha1s() {
        let ctx = Ctx {
            path: "x.o",
            endian: ByteOrder::Little,
            obj_name: "x".into(),
            data: b"abc",
            object_id: OnceCell::new(),
        };
        // FIPS 180-1's example.
        assert_eq!(ctx.object_id(), "a9993e364706816aba3e25717850c26c9cd0d89d");
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
