//! BTF-defined maps: the variables of the `.maps` DATASEC, each a struct of
//! `__uint(...)`, `__type(...)` and `__array(...)` fields.

use btf_rs::{Btf, BtfType, Type};
use ebpf_sdk_schema::{MapFlags, MapOrigin, MapSchema, MapType, Pinning, TypeKind, TypeNode};

use crate::resolve::Resolver;
use crate::{opaque, u32_node, Ctx, ExtractError};

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

pub(crate) fn btf_maps(ctx: &Ctx<'_>, btf: &Btf) -> Result<Vec<MapSchema>, ExtractError> {
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
    let (mut value, mut value_id) = side(def.value, def.value_size, "value")?;
    let mut record = None;
    // An index declared by size only (`__uint(key_size, 4)`) is a u32.
    if map_type.indexed() && key_id.is_none() && key.as_ref().is_some_and(|k| k.size == 4) {
        key = Some(u32_node());
    }
    // libbpf's defaults for map types whose sizes are implied.
    if matches!(map_type, MapType::PerfEventArray | MapType::CgroupArray) {
        // u32 index -> u32 fd.
        key.get_or_insert_with(u32_node);
        value.get_or_insert_with(u32_node);
    }
    // `__type(value, struct event)` declares the records the program sends;
    // the kernel's map holds a 4-byte perf event fd per CPU (libbpf and
    // cilium/ebpf create it with value size 4). `__type(value, __u32)` is
    // that fd, as most programs write it.
    let fd_typed = value
        .as_ref()
        .is_some_and(|v| v.size == 4 && matches!(v.kind, TypeKind::Int { .. }));
    if map_type == MapType::PerfEventArray && value_id.is_some() && !fd_typed {
        record = value.replace(u32_node());
        value_id = None;
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
        record,
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
