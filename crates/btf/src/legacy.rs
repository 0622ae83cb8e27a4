//! Legacy map definitions: records in the `maps` section, one per symbol.
//!
//! Two layouts are in use, told apart by their size (the section's size
//! divided by the number of map symbols, as libbpf, iproute2 and
//! cilium/ebpf compute it):
//!
//! - libbpf's `struct bpf_map_def { type, key_size, value_size,
//!   max_entries, map_flags }`, 20 bytes (shorter ones are zero-filled);
//! - iproute2's `struct bpf_elf_map`, which `tc` and `ip link ... xdp obj`
//!   read: the same five fields, then `id` and `pinning` (28 bytes), then
//!   `inner_id` and `inner_idx` (36 bytes).
//!
//! Bytes past the fields of the layout its size selects must be zero: a
//! definition with anything else there is not understood and is reported,
//! never silently cut short (cilium/ebpf's `invalid_map` test object is
//! such a definition). Key and value types come from iproute2's
//! `BPF_ANNOTATE_KV_PAIR` (`struct ____btf_map_<name> { key; value; }`)
//! when the object has BTF, else the bytes are opaque.

use btf_rs::{Btf, BtfType, Type};
use ebpf_sdk_schema::{ByteOrder, MapFlags, MapOrigin, MapSchema, MapType, Pinning, TypeNode};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::resolve::Resolver;
use crate::{opaque, u32_node, Ctx, ExtractError};

/// Size of libbpf's `struct bpf_map_def`.
const MAP_DEF: usize = 20;
/// iproute2's `struct bpf_elf_map` up to `pinning`, and whole.
const ELF_MAP_PINNING: usize = 28;
const ELF_MAP: usize = 36;

/// iproute2's pinning values (`PIN_*` of its `bpf_elf.h`).
const PIN_OBJECT_NS: u32 = 1;
const PIN_GLOBAL_NS: u32 = 2;

/// One definition as read, before map-in-map links are resolved.
struct Def {
    schema: MapSchema,
    id: u32,
    inner_id: u32,
}

/// Every definition of the legacy `maps` section `sec`. `btf` is the
/// object's BTF, for `BPF_ANNOTATE_KV_PAIR` key and value types.
pub(crate) fn legacy_maps(
    ctx: &Ctx<'_>,
    file: &object::File<'_>,
    sec: &object::Section<'_, '_>,
    btf: Option<&Btf>,
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
    if syms.is_empty() {
        return Ok(Vec::new());
    }
    let size = definition_size(ctx, data.len(), syms.len())?;
    let mut defs = Vec::with_capacity(syms.len());
    for (off, name) in &syms {
        let bytes = usize::try_from(*off)
            .ok()
            .and_then(|o| data.get(o..o.checked_add(size)?))
            .ok_or_else(|| {
                ctx.map_err(
                    name,
                    format!(
                        "legacy map definition at offset {off} ({size} bytes) runs past the \
                         {}-byte maps section",
                        data.len()
                    ),
                )
            })?;
        defs.push(definition(ctx, btf, name, bytes)?);
    }
    link_inner_maps(ctx, &mut defs)?;
    Ok(defs.into_iter().map(|d| d.schema).collect())
}

/// The size of one definition: the section divided evenly among the symbols.
fn definition_size(ctx: &Ctx<'_>, section: usize, maps: usize) -> Result<usize, ExtractError> {
    if section == 0 || !section.is_multiple_of(maps) {
        return Err(ctx.map_err(
            "maps",
            format!(
                "the {section}-byte maps section does not divide into {maps} map definitions \
                 of one size"
            ),
        ));
    }
    Ok(section / maps)
}

/// One definition of `bytes.len()` bytes.
fn definition(
    ctx: &Ctx<'_>,
    btf: Option<&Btf>,
    name: &str,
    bytes: &[u8],
) -> Result<Def, ExtractError> {
    let size = bytes.len();
    // The fields of the layout this size selects.
    let known = match size {
        0..ELF_MAP_PINNING => size.min(MAP_DEF),
        ELF_MAP_PINNING..ELF_MAP => ELF_MAP_PINNING,
        _ => ELF_MAP,
    };
    if let Some(at) = bytes[known..].iter().position(|b| *b != 0) {
        let hex: String = bytes[known..].iter().map(|b| format!("{b:02x}")).collect();
        return Err(ctx.map_err(
            name,
            format!(
                "legacy map definition of {size} bytes is not understood: byte {} is not zero \
                 (bytes {known}..{size} are {hex}), and neither libbpf's struct bpf_map_def \
                 (20 bytes) nor iproute2's struct bpf_elf_map (28 or 36 bytes) has a field there",
                known + at
            ),
        ));
    }
    let word = |i: usize| -> u32 {
        match bytes.get(4 * i..4 * i + 4) {
            Some(b) if 4 * i + 4 <= known => {
                let arr = [b[0], b[1], b[2], b[3]];
                match ctx.endian {
                    ByteOrder::Little => u32::from_le_bytes(arr),
                    ByteOrder::Big => u32::from_be_bytes(arr),
                }
            }
            _ => 0,
        }
    };
    let map_type = MapType::from_id(word(0));
    let (mut key_size, mut value_size) = (word(1), word(2));
    let (id, pinning, inner_id) = (word(5), word(6), word(7));
    // What the loaders fill in for sizes a definition may leave at 0: a
    // u32 index and a u32 fd for perf event and cgroup arrays, a u32 fd or
    // id for map-in-map and program arrays.
    let implied = matches!(map_type, MapType::PerfEventArray | MapType::CgroupArray);
    if implied && key_size == 0 {
        key_size = 4;
    }
    if (implied || map_type.holds_object_refs()) && value_size == 0 {
        value_size = 4;
    }
    let typed = btf
        .map(|b| annotated_types(ctx, b, name, key_size, value_size))
        .transpose()?
        .flatten();
    let fd_sized = |size: u32| (size == 4).then(u32_node);
    let (key, value, key_id, value_id) = match typed {
        Some(t) => (Some(t.key), Some(t.value), Some(t.key_id), Some(t.value_id)),
        None => {
            // Indexed maps are indexed by a u32.
            let key = match map_type.indexed() {
                true => fd_sized(key_size),
                false => None,
            };
            let value = match implied || map_type.holds_object_refs() {
                true => fd_sized(value_size),
                false => None,
            };
            (
                key.or_else(|| (key_size > 0).then(|| opaque(key_size))),
                value.or_else(|| (value_size > 0).then(|| opaque(value_size))),
                None,
                None,
            )
        }
    };
    let pinning = match pinning {
        0 => Pinning::None,
        PIN_OBJECT_NS => Pinning::ObjectNs(ctx.object_id()),
        PIN_GLOBAL_NS => Pinning::GlobalNs,
        n => Pinning::Custom(n),
    };
    Ok(Def {
        schema: MapSchema {
            name: name.to_string(),
            map_type,
            key_size,
            value_size,
            max_entries: word(3),
            flags: MapFlags::from_bits(word(4)),
            pinning,
            pin_path: None,
            section: "maps".into(),
            origin: MapOrigin::Legacy,
            endian: ctx.endian,
            btf_key_type_id: key_id,
            btf_value_type_id: value_id,
            key,
            value,
            inner_map: None,
            record: None,
        },
        id,
        inner_id,
    })
}

/// Key and value types of a `BPF_ANNOTATE_KV_PAIR(name, K, V)`.
struct Annotated {
    key: TypeNode,
    value: TypeNode,
    key_id: u32,
    value_id: u32,
}

/// The key and value types `BPF_ANNOTATE_KV_PAIR` gives map `name`: the
/// first two members of `struct ____btf_map_<name>`, as libbpf read them.
/// `None` when the object has no such struct.
fn annotated_types(
    ctx: &Ctx<'_>,
    btf: &Btf,
    name: &str,
    key_size: u32,
    value_size: u32,
) -> Result<Option<Annotated>, ExtractError> {
    let container = format!("____btf_map_{name}");
    let Some(st) = btf
        .resolve_ids_by_name(&container)
        .unwrap_or_default()
        .into_iter()
        .find_map(|id| match btf.resolve_type_by_id(id) {
            Ok(Type::Struct(s)) => Some(s),
            _ => None,
        })
    else {
        return Ok(None);
    };
    let [k, v, ..] = st.members.as_slice() else {
        return Err(ctx.map_err(
            name,
            format!("struct {container} (BPF_ANNOTATE_KV_PAIR) needs a key and a value member"),
        ));
    };
    let mut r = Resolver::new(btf, ctx.endian);
    let mut side = |m: &btf_rs::Member, what: &str, size: u32| {
        let id = m.get_type_id().ok_or_else(|| {
            ctx.map_err(name, format!("struct {container}: the {what} has no type"))
        })?;
        let node = r.node(id).map_err(|e| ctx.type_err(name, e))?;
        if node.size != size {
            return Err(ctx.map_err(
                name,
                format!(
                    "the map definition says {what} size {size}, but BPF_ANNOTATE_KV_PAIR's \
                     {what} type {} is {} bytes",
                    node.display_name(),
                    node.size
                ),
            ));
        }
        Ok((node, id))
    };
    let (key, key_id) = side(k, "key", key_size)?;
    let (value, value_id) = side(v, "value", value_size)?;
    Ok(Some(Annotated {
        key,
        value,
        key_id,
        value_id,
    }))
}

/// iproute2's map-in-map: an outer map's `inner_id` names the definition
/// with that `id`, which is the template of its inner maps (iproute2 also
/// stores that map at index `inner_idx` of the outer map when it loads).
fn link_inner_maps(ctx: &Ctx<'_>, defs: &mut [Def]) -> Result<(), ExtractError> {
    for i in 0..defs.len() {
        let inner_id = defs[i].inner_id;
        if inner_id == 0 {
            continue;
        }
        let outer = &defs[i].schema;
        if !matches!(outer.map_type, MapType::ArrayOfMaps | MapType::HashOfMaps) {
            return Err(ctx.map_err(
                &outer.name,
                format!(
                    "inner_id {inner_id} is set, but a {} holds no inner maps",
                    outer.map_type
                ),
            ));
        }
        let inner = defs
            .iter()
            .enumerate()
            .find(|(j, d)| *j != i && d.id == inner_id)
            .map(|(_, d)| d.schema.clone())
            .ok_or_else(|| {
                ctx.map_err(
                    &defs[i].schema.name,
                    format!("inner_id {inner_id} names no map: no definition has id {inner_id}"),
                )
            })?;
        defs[i].schema.inner_map = Some(Box::new(inner));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::OnceCell;

    fn ctx() -> Ctx<'static> {
        Ctx {
            path: "t.o",
            endian: ByteOrder::Little,
            obj_name: "t".into(),
            data: b"abc",
            object_id: OnceCell::new(),
        }
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn def(bytes: &[u8]) -> Result<Def, String> {
        definition(&ctx(), None, "m", bytes).map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_select_the_layout() {
        // libbpf's 20 bytes; a shorter definition is zero-filled.
        let d = def(&words(&[1, 4, 8, 16, 1])).unwrap();
        let s = &d.schema;
        assert_eq!(
            (s.map_type, s.key_size, s.value_size),
            (MapType::Hash, 4, 8)
        );
        assert_eq!(
            (s.max_entries, s.flags.bits(), &s.pinning),
            (16, 1, &Pinning::None)
        );
        let d = def(&words(&[2, 4, 4, 2])).unwrap();
        assert_eq!(d.schema.flags.bits(), 0);
        // iproute2's 28 and 36 bytes.
        let d = def(&words(&[1, 4, 8, 16, 0, 7, 2])).unwrap();
        assert_eq!((d.id, &d.schema.pinning), (7, &Pinning::GlobalNs));
        let d = def(&words(&[12, 4, 4, 4, 0, 0, 1, 42, 0])).unwrap();
        assert_eq!(d.inner_id, 42);
        assert_eq!(
            d.schema.pinning,
            Pinning::ObjectNs("a9993e364706816aba3e25717850c26c9cd0d89d".into())
        );
        let d = def(&words(&[1, 4, 4, 4, 0, 0, 9, 0, 0])).unwrap();
        assert_eq!(d.schema.pinning, Pinning::Custom(9));
        // Zero bytes past the known fields are fine.
        assert!(def(&words(&[1, 4, 8, 16, 0, 0])).is_ok());
        assert!(def(&words(&[1, 4, 8, 16, 0, 0, 2, 0, 0, 0])).is_ok());
    }

    #[test]
    fn bytes_no_layout_defines_are_reported() {
        let e = def(&words(&[1, 4, 2, 1, 0, 1])).err().unwrap();
        assert_eq!(
            e,
            "t.o: map `m`: legacy map definition of 24 bytes is not understood: byte 20 is not \
             zero (bytes 20..24 are 01000000), and neither libbpf's struct bpf_map_def (20 \
             bytes) nor iproute2's struct bpf_elf_map (28 or 36 bytes) has a field there"
        );
        let e = def(&words(&[1, 4, 2, 1, 0, 0, 0, 0, 0, 5])).err().unwrap();
        assert!(
            e.contains("definition of 40 bytes") && e.contains("byte 36"),
            "{e}"
        );
        let e = def(&words(&[1, 4, 2, 1, 0, 0, 0, 3])).err().unwrap();
        assert!(
            e.contains("definition of 32 bytes") && e.contains("byte 28"),
            "{e}"
        );
    }

    #[test]
    fn implied_sizes_are_filled_in() {
        // A perf event array without sizes: u32 index -> u32 fd.
        let d = def(&words(&[4, 0, 0, 4096, 0])).unwrap();
        let s = &d.schema;
        assert_eq!((s.key_size, s.value_size), (4, 4));
        assert_eq!(s.value.as_ref().unwrap().name, "unsigned int");
        // Map-in-map without a value size: a 4-byte fd or id.
        let d = def(&words(&[12, 4, 0, 2, 0])).unwrap();
        assert_eq!(d.schema.value_size, 4);
        assert_eq!(d.schema.key.as_ref().unwrap().name, "unsigned int");
        // A hash's key stays bytes.
        let d = def(&words(&[1, 4, 0, 2, 0])).unwrap();
        assert_eq!(d.schema.key.as_ref().unwrap().name, "opaque[4]");
    }

    #[test]
    fn inner_maps_are_linked_by_id() {
        let mut defs = vec![
            def(&words(&[1, 4, 4, 16, 0, 42, 2, 0, 0])).unwrap(),
            def(&words(&[12, 4, 4, 4, 0, 0, 2, 42, 0])).unwrap(),
        ];
        defs[0].schema.name = "inner".into();
        defs[1].schema.name = "outer".into();
        link_inner_maps(&ctx(), &mut defs).unwrap();
        let inner = defs[1].schema.inner_map.as_ref().unwrap();
        assert_eq!((inner.name.as_str(), inner.max_entries), ("inner", 16));
        assert!(defs[0].schema.inner_map.is_none());

        let mut defs = vec![def(&words(&[12, 4, 4, 4, 0, 0, 0, 7, 0])).unwrap()];
        let e = link_inner_maps(&ctx(), &mut defs).unwrap_err().to_string();
        assert!(
            e.ends_with("inner_id 7 names no map: no definition has id 7"),
            "{e}"
        );
        let mut defs = vec![def(&words(&[1, 4, 4, 4, 0, 0, 0, 7, 0])).unwrap()];
        let e = link_inner_maps(&ctx(), &mut defs).unwrap_err().to_string();
        assert!(
            e.ends_with("inner_id 7 is set, but a hash holds no inner maps"),
            "{e}"
        );
    }

    #[test]
    fn sections_must_divide_evenly() {
        assert_eq!(definition_size(&ctx(), 72, 2).unwrap(), 36);
        let e = definition_size(&ctx(), 50, 3).unwrap_err().to_string();
        assert!(
            e.contains("50-byte maps section does not divide into 3"),
            "{e}"
        );
    }
}
