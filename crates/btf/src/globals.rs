//! Global data: `.data`, `.bss`, `.rodata` and custom `.data.*`/`.rodata.*`
//! sections, which libbpf turns into single-entry array maps whose value is
//! the section (its DATASEC in BTF).

use btf_rs::{Btf, Type};
use ebpf_sdk_schema::{MapFlags, MapOrigin, MapSchema, MapType, Pinning};
use object::{Object, ObjectSection, ObjectSymbol};

use crate::resolve::Resolver;
use crate::{opaque, u32_node, Ctx, ExtractError};

/// `.data`, `.bss`, `.rodata` (and `.data.*`, `.rodata.*`) become
/// single-entry arrays named as libbpf names them (`<obj prefix>.<sec>`,
/// custom sections by their own name). The value is the section's DATASEC
/// with variable offsets taken from the symbol table, because the ELF's
/// DATASEC offsets are 0 until libbpf fixes them up at load time.
pub(crate) fn global_data_maps(
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
                let syms: Vec<(String, u64)> = file
                    .symbols()
                    .filter(|s| s.section_index() == Some(sec.index()))
                    .filter_map(|s| Some((s.name().ok()?.to_string(), s.address())))
                    .collect();
                // The symbol's value; the DATASEC's own offset only where
                // there is no symbol (it is 0 until libbpf fixes it up).
                let offset_of = |name: &str, declared: u32| {
                    syms.iter()
                        .find(|(n, _)| n == name)
                        .map_or(u64::from(declared), |(_, a)| *a)
                };
                let node = Resolver::new(btf, ctx.endian)
                    .datasec(id, size, &offset_of)
                    .map_err(|e| ctx.type_err(&map_name, e))?;
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
            record: None,
        });
    }
    Ok(out)
}

/// The name libbpf gives the map of data section `sec` of object `obj`.
///
/// For `.data`, `.bss`, `.rodata` (and `.kconfig`) this is libbpf's
/// `internal_map_name`: up to 8 characters of the object name, then the
/// section name. A custom section (a second dot: `.data.custom`,
/// `.rodata.test`) keeps its own name, as libbpf shows it to users
/// (`bpf_map__name`) and creates the kernel map (which keeps its first 15
/// bytes; [`crate::describe_kernel_map`] takes the whole name from the
/// map's DATASEC).
pub(crate) fn internal_map_name(obj: &str, sec: &str) -> String {
    if sec.get(1..).is_some_and(|rest| rest.contains('.')) {
        return sec.to_string();
    }
    let sfx_len = sec.len().clamp(7, 15);
    let pfx_len = (16 - sfx_len - 1).min(obj.len());
    let name: String = obj
        .chars()
        .take(pfx_len)
        .chain(sec.chars().take(sfx_len))
        .collect();
    sanitize(&name)
}

/// A map name with the characters the kernel refuses replaced by `_`, as
/// libbpf does.
fn sanitize(name: &str) -> String {
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

/// The name of a global data map described from the kernel: the name
/// libbpf gave it, which the kernel keeps 15 bytes of. A custom section's
/// map is named after the section, so its whole name is the DATASEC's;
/// `.data`, `.bss` and `.rodata` maps keep the kernel's name
/// (`<object>.bss`).
pub(crate) fn kernel_global_data_name(kernel: &str, section: &str) -> String {
    let custom = section.get(1..).is_some_and(|rest| rest.contains('.'));
    let as_kernel: String = sanitize(section).chars().take(15).collect();
    if custom && as_kernel == kernel {
        section.to_string()
    } else {
        kernel.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_of_global_data_maps() {
        assert_eq!(kernel_global_data_name("lb.bss", ".bss"), "lb.bss");
        assert_eq!(
            kernel_global_data_name(".data.custom", ".data.custom"),
            ".data.custom"
        );
        // The kernel keeps 15 bytes; the DATASEC has the whole name.
        assert_eq!(
            kernel_global_data_name(".rodata.abracad", ".rodata.abracadabra"),
            ".rodata.abracadabra"
        );
        assert_eq!(
            kernel_global_data_name(".data.my_sec", ".data.my-sec"),
            ".data.my-sec"
        );
        // Another map's name is kept.
        assert_eq!(kernel_global_data_name("other", ".data.custom"), "other");
    }
}
