//! An independent reading of an object's BTF: `bpftool btf dump file F -j`
//! (libbpf's parser), walked side by side with our extracted schema.
//!
//! Each comparison starts from what bpftool shows, not from our type ids:
//! a BTF map's definition is the `.maps` DATASEC variable of the map's
//! name, its `type`/`max_entries`/... are the array lengths behind
//! `__uint()` pointers and its key/value are the targets of `__type()`
//! pointers; a global data map is the DATASEC of its section. In an object
//! file the DATASEC's variable offsets are still 0 (libbpf fills them in
//! from the symbol table at load time), so variable offsets and section
//! sizes are checked against `readelf -sW`/`-SW` (binutils), the way
//! libbpf reads them.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use ebpf_sdk::schema::{MapOrigin, MapSchema, Pinning, TypeKind, TypeNode};
use serde_json::Value as Json;

/// The type graph of one object, by type id.
pub struct BtfGraph {
    types: HashMap<u32, Json>,
}

/// Nesting we follow before calling the graph cyclic.
const MAX_DEPTH: usize = 64;

impl BtfGraph {
    /// Runs `bpftool btf dump file PATH -j`.
    pub fn load(bpftool: &Path, path: &Path) -> Result<BtfGraph, String> {
        let out = Command::new(bpftool)
            .args(["btf", "dump", "file"])
            .arg(path)
            .arg("-j")
            .output()
            .map_err(|e| format!("cannot run bpftool: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "bpftool btf dump file {} failed: {}{}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim(),
                String::from_utf8_lossy(&out.stdout).trim()
            ));
        }
        let doc: Json = serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("bpftool printed invalid JSON: {e}"))?;
        let list = doc["types"]
            .as_array()
            .ok_or("bpftool JSON has no `types` list")?;
        let types = list
            .iter()
            .filter_map(|t| Some((u32::try_from(t["id"].as_u64()?).ok()?, t.clone())))
            .collect();
        Ok(BtfGraph { types })
    }

    fn get(&self, id: u32) -> Result<&Json, String> {
        self.types
            .get(&id)
            .ok_or_else(|| format!("bpftool shows no type {id}"))
    }

    fn kind(&self, id: u32) -> &str {
        self.types
            .get(&id)
            .and_then(|t| t["kind"].as_str())
            .unwrap_or("")
    }

    /// Follows typedefs and qualifiers, collecting the typedef names.
    fn peel(&self, mut id: u32) -> Result<(u32, Vec<String>), String> {
        let mut typedefs = Vec::new();
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match self.kind(id) {
                "TYPEDEF" => typedefs.push(name(t)),
                "CONST" | "VOLATILE" | "RESTRICT" | "TYPE_TAG" => {}
                _ => return Ok((id, typedefs)),
            }
            id = type_id(t)?;
        }
        Err(format!("typedef chain from {id} does not end"))
    }

    /// The DATASEC named `sec`: its id and its variables.
    pub fn datasec(&self, sec: &str) -> Option<(u32, Vec<DatasecVar>)> {
        let (id, ds) = self
            .types
            .iter()
            .find(|(_, t)| t["kind"] == "DATASEC" && t["name"] == sec)?;
        let vars = ds["vars"]
            .as_array()?
            .iter()
            .filter_map(|v| {
                let var_id = u32::try_from(v["type_id"].as_u64()?).ok()?;
                let var = self.types.get(&var_id)?;
                Some(DatasecVar {
                    name: name(var),
                    type_id: type_id(var).ok()?,
                    offset: v["offset"].as_u64()?,
                    size: v["size"].as_u64()?,
                })
            })
            .collect();
        Some((*id, vars))
    }

    /// The members of the struct a map definition variable has, by name:
    /// each member's type id.
    fn def_members(&self, def: u32) -> Result<HashMap<String, u32>, String> {
        let (id, _) = self.peel(def)?;
        let t = self.get(id)?;
        if self.kind(id) != "STRUCT" {
            return Err(format!("map definition {id} is a {}", self.kind(id)));
        }
        members(t)?
            .iter()
            .map(|m| Ok((name(m), type_id(m)?)))
            .collect()
    }

    /// `__uint(f, N)` is `int (*f)[N]`: N.
    fn uint(&self, member: u32) -> Result<u64, String> {
        let (ptr, _) = self.peel(member)?;
        let (arr, _) = self.peel(type_id(self.get(ptr)?)?)?;
        self.get(arr)?["nr_elems"]
            .as_u64()
            .ok_or_else(|| format!("__uint() member {member} is not a pointer to an array"))
    }

    /// `__type(f, T)` is `typeof(T) *f`: T's id.
    fn pointee(&self, member: u32) -> Result<u32, String> {
        let (ptr, _) = self.peel(member)?;
        type_id(self.get(ptr)?)
    }
}

/// One variable of a DATASEC as bpftool shows it.
pub struct DatasecVar {
    name: String,
    type_id: u32,
    offset: u64,
    size: u64,
}

/// Sections and symbols as `readelf -SW` and `readelf -sW` print them.
pub struct ElfSymbols {
    /// Section index -> (name, size).
    sections: HashMap<u64, (String, u64)>,
    /// (name, value, size, section index).
    symbols: Vec<(String, u64, u64, u64)>,
}

impl ElfSymbols {
    /// Runs readelf on `path`.
    pub fn load(path: &Path) -> Result<ElfSymbols, String> {
        let run = |flag: &str| -> Result<String, String> {
            let out = Command::new("readelf")
                .args([flag, "-W"])
                .arg(path)
                .output()
                .map_err(|e| format!("cannot run readelf: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "readelf {flag} {} failed: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let num = |s: &str| match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        };
        let mut sections = HashMap::new();
        for line in run("-S")?.lines() {
            // "  [ 5] .rodata  PROGBITS  0000000000000000 0004f0 000020 00 ..."
            let Some((nr, rest)) = line
                .trim_start()
                .strip_prefix('[')
                .and_then(|l| l.split_once(']'))
            else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Ok(nr), Some(name), Some(size)) = (
                nr.trim().parse::<u64>(),
                f.first(),
                f.get(4).and_then(|s| u64::from_str_radix(s, 16).ok()),
            ) {
                sections.insert(nr, (name.to_string(), size));
            }
        }
        let mut symbols = Vec::new();
        for line in run("-s")?.lines() {
            // "     7: 0000000000000000     4 OBJECT  GLOBAL DEFAULT    5 cfg_max_reals"
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 || !f[0].ends_with(':') {
                continue;
            }
            if let (Ok(value), Some(size), Ok(ndx)) = (
                u64::from_str_radix(f[1], 16),
                num(f[2]),
                f[6].parse::<u64>(),
            ) {
                symbols.push((f[7].to_string(), value, size, ndx));
            }
        }
        Ok(ElfSymbols { sections, symbols })
    }

    fn section_size(&self, name: &str) -> Option<u64> {
        self.sections.values().find(|s| s.0 == name).map(|s| s.1)
    }

    /// The value and size of symbol `name` in section `sec`.
    fn symbol(&self, sec: &str, name: &str) -> Option<(u64, u64)> {
        self.symbols
            .iter()
            .find(|s| s.0 == name && self.sections.get(&s.3).is_some_and(|x| x.0 == sec))
            .map(|s| (s.1, s.2))
    }
}

fn name(t: &Json) -> String {
    match t["name"].as_str() {
        Some("(anon)") | None => String::new(),
        Some(n) => n.to_string(),
    }
}

fn type_id(t: &Json) -> Result<u32, String> {
    t["type_id"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| format!("type {} has no type_id", t["id"]))
}

fn members(t: &Json) -> Result<&Vec<Json>, String> {
    t["members"]
        .as_array()
        .ok_or_else(|| format!("type {} has no members", t["id"]))
}

/// Every difference between our map and what bpftool shows, as
/// `map: path: what`.
pub fn compare_map(g: &BtfGraph, elf: Option<&ElfSymbols>, m: &MapSchema) -> Vec<String> {
    let mut out = Vec::new();
    let r = match m.origin {
        MapOrigin::Btf => match g.datasec(".maps") {
            Some((_, vars)) => match vars.iter().find(|v| v.name == m.name) {
                Some(v) => compare_btf_def(g, m, v.type_id, &mut out),
                None => Err("no variable of this name in bpftool's .maps DATASEC".into()),
            },
            None => Err("bpftool shows no .maps DATASEC".into()),
        },
        MapOrigin::GlobalData => match elf {
            Some(elf) => compare_datasec(g, elf, m, &mut out),
            None => Err("no readelf output for a global data map".into()),
        },
        // A legacy definition's sizes are section bytes, not BTF; its key
        // and value types, when it has any, are BPF_ANNOTATE_KV_PAIR's
        // `struct ____btf_map_<name>`.
        MapOrigin::Legacy => compare_annotation(g, m, &mut out),
        MapOrigin::Kernel => Ok(()),
    };
    if let Err(e) = r {
        out.push(e);
    }
    out.into_iter()
        .map(|d| format!("{}: {d}", m.name))
        .collect()
}

fn compare_btf_def(
    g: &BtfGraph,
    m: &MapSchema,
    def: u32,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let f = g.def_members(def)?;
    let uint = |n: &str| f.get(n).map(|id| g.uint(*id)).transpose();
    let map_type = uint("type")?.ok_or("definition has no `type`")?;
    check(out, "map type", u64::from(m.map_type.id()), map_type);
    check(
        out,
        "max_entries",
        u64::from(m.max_entries),
        uint("max_entries")?.unwrap_or(0),
    );
    check(
        out,
        "map_flags",
        u64::from(m.flags.bits()),
        uint("map_flags")?.unwrap_or(0),
    );
    let pinning = match m.pinning {
        Pinning::None => 0,
        Pinning::ByName => 1,
        // iproute2's modes come from legacy definitions only.
        _ => u64::MAX,
    };
    check(out, "pinning", pinning, uint("pinning")?.unwrap_or(0));
    let fd_valued = matches!(map_type, 3 | 12 | 13);
    let implied_u32 = matches!(map_type, 4 | 8);
    for (side, node, our_id, size) in [
        ("key", &m.key, m.btf_key_type_id, m.key_size),
        ("value", &m.value, m.btf_value_type_id, m.value_size),
    ] {
        let declared = uint(&format!("{side}_size"))?;
        match f.get(side).map(|id| g.pointee(*id)).transpose()? {
            // A perf event array's declared value type is the record the
            // program sends; the map's value is the 4-byte fd.
            Some(tid) if side == "value" && m.record.is_some() => {
                if size != 4 || our_id.is_some() || map_type != 4 {
                    out.push(format!(
                        "value: a perf event array's value is a 4-byte fd, ours {size} (type id {our_id:?})"
                    ));
                }
                compare_type(g, m.record.as_ref().unwrap(), tid, "record", 0, out);
            }
            _ if side == "value" && fd_valued => {
                // The value a program stores is a 4-byte fd/id, whatever is declared.
                if size != 4 || node.as_ref().is_none_or(|n| n.size != 4) {
                    out.push(format!(
                        "{side}: a map/program reference is 4 bytes, ours {size}"
                    ));
                }
            }
            Some(tid) => {
                if our_id != Some(tid) {
                    out.push(format!("{side} type id: ours {our_id:?}, bpftool {tid}"));
                }
                match node {
                    Some(n) => compare_type(g, n, tid, side, 0, out),
                    None => out.push(format!("{side}: bpftool has type {tid}, ours none")),
                }
                if let Some(d) = declared {
                    check(out, &format!("{side}_size"), u64::from(size), d);
                }
            }
            None => {
                let want = match declared {
                    Some(d) => d,
                    None if implied_u32 => 4,
                    None => 0,
                };
                check(out, &format!("{side}_size"), u64::from(size), want);
                if node.as_ref().map_or(0, |n| u64::from(n.size)) != want {
                    out.push(format!("{side}: node size differs from {side}_size {want}"));
                }
            }
        }
    }
    match (f.get("values"), &m.inner_map) {
        (Some(values), Some(inner)) if fd_valued && map_type != 3 => {
            // `T *values[]`: an array of pointers to the inner definition.
            let (arr, _) = g.peel(*values)?;
            let ptr = type_id(g.get(arr)?)?;
            let target = g.pointee(ptr)?;
            for d in compare_map_inner(g, inner, target) {
                out.push(format!("inner map: {d}"));
            }
        }
        (Some(_), None) if map_type != 3 => {
            out.push("inner map: bpftool has one, ours none".into())
        }
        (None, Some(_)) => out.push("inner map: ours has one, bpftool none".into()),
        _ => {}
    }
    Ok(())
}

/// A legacy map's key and value types against the members of bpftool's
/// `struct ____btf_map_<name>`, if the object has one; none means opaque.
fn compare_annotation(g: &BtfGraph, m: &MapSchema, out: &mut Vec<String>) -> Result<(), String> {
    let container = format!("____btf_map_{}", m.name);
    let found = g
        .types
        .iter()
        .find(|(_, t)| t["kind"] == "STRUCT" && t["name"] == container.as_str());
    let Some((_, st)) = found else {
        for (side, node, id) in [
            ("key", &m.key, m.btf_key_type_id),
            ("value", &m.value, m.btf_value_type_id),
        ] {
            if id.is_some()
                || node
                    .as_ref()
                    .is_some_and(|n| !matches!(n.kind, TypeKind::Opaque) && n.size != 4)
            {
                out.push(format!(
                    "{side}: bpftool shows no {container}, but ours is typed"
                ));
            }
        }
        return Ok(());
    };
    let ms = members(st)?;
    let [k, v, ..] = ms.as_slice() else {
        return Err(format!("{container} has fewer than two members"));
    };
    for (side, node, id, member) in [
        ("key", &m.key, m.btf_key_type_id, k),
        ("value", &m.value, m.btf_value_type_id, v),
    ] {
        let tid = type_id(member)?;
        if id != Some(tid) {
            out.push(format!("{side} type id: ours {id:?}, bpftool {tid}"));
        }
        match node {
            Some(n) => compare_type(g, n, tid, side, 0, out),
            None => out.push(format!("{side}: bpftool has type {tid}, ours none")),
        }
    }
    Ok(())
}

fn check(out: &mut Vec<String>, what: &str, ours: u64, theirs: u64) {
    if ours != theirs {
        out.push(format!("{what}: ours {ours}, bpftool {theirs}"));
    }
}

fn compare_map_inner(g: &BtfGraph, inner: &MapSchema, def: u32) -> Vec<String> {
    let mut out = Vec::new();
    if let Err(e) = compare_btf_def(g, inner, def, &mut out) {
        out.push(e);
    }
    out
}

fn compare_datasec(
    g: &BtfGraph,
    elf: &ElfSymbols,
    m: &MapSchema,
    out: &mut Vec<String>,
) -> Result<(), String> {
    match elf.section_size(&m.section) {
        Some(s) => check(out, "section size", u64::from(m.value_size), s),
        None => out.push(format!("readelf shows no section {}", m.section)),
    }
    let Some((id, vars)) = g.datasec(&m.section) else {
        // No BTF for this section: ours must not invent a layout.
        return match m.value.as_ref().map(|v| &v.kind) {
            Some(TypeKind::Opaque) => Ok(()),
            _ => Err(format!(
                "bpftool has no DATASEC {} but ours has a layout",
                m.section
            )),
        };
    };
    if m.btf_value_type_id != Some(id) {
        out.push(format!(
            "value type id: ours {:?}, bpftool DATASEC {id}",
            m.btf_value_type_id
        ));
    }
    let Some(TypeKind::Struct { members }) = m.value.as_ref().map(|v| &v.kind) else {
        return Err("value is not the DATASEC's variables".into());
    };
    if members.len() != vars.len() {
        out.push(format!(
            "{} variables in ours, {} in bpftool",
            members.len(),
            vars.len()
        ));
    }
    for DatasecVar {
        name: vname,
        type_id: vtype,
        offset: off,
        size,
    } in &vars
    {
        let Some(mm) = members.iter().find(|mm| mm.name == *vname) else {
            out.push(format!("variable `{vname}` missing in ours"));
            continue;
        };
        // An object's DATASEC has offset 0 for every variable; the symbol
        // table has the offset.
        let at = match elf.symbol(&m.section, vname) {
            Some((value, sym_size)) if *off == 0 || *off == value => {
                if sym_size != *size {
                    out.push(format!(
                        "variable `{vname}`: symbol size {sym_size}, DATASEC size {size}"
                    ));
                }
                value
            }
            Some((value, _)) => {
                out.push(format!(
                    "variable `{vname}`: symbol at {value}, DATASEC offset {off}"
                ));
                value
            }
            None => *off,
        };
        if u64::from(mm.offset) != at || u64::from(mm.ty.size) != *size {
            out.push(format!(
                "variable `{vname}`: ours at {} size {}, symbol table at {at}, bpftool size {size}",
                mm.offset, mm.ty.size
            ));
        }
        compare_type(g, &mm.ty, *vtype, &format!("value.{vname}"), 0, out);
    }
    Ok(())
}

/// Walks our node and bpftool's type side by side.
fn compare_type(
    g: &BtfGraph,
    node: &TypeNode,
    id: u32,
    path: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    if depth > MAX_DEPTH {
        out.push(format!("{path}: nested deeper than {MAX_DEPTH}"));
        return;
    }
    let (id, typedefs) = match g.peel(id) {
        Ok(p) => p,
        Err(e) => return out.push(format!("{path}: {e}")),
    };
    if typedefs != node.typedefs {
        out.push(format!(
            "{path}: typedefs {:?} vs bpftool {typedefs:?}",
            node.typedefs
        ));
    }
    let Ok(t) = g.get(id) else {
        return out.push(format!("{path}: bpftool has no type {id}"));
    };
    let size = t["size"].as_u64();
    let mut diff = |what: String| out.push(format!("{path}: {what}"));
    match (g.kind(id), &node.kind) {
        ("INT", kind) => {
            let bits = t["nr_bits"].as_u64().unwrap_or(0);
            if bits != size.unwrap_or(0) * 8 || t["bits_offset"].as_u64() != Some(0) {
                diff(format!("an INT of {bits} bits at bit {}", t["bits_offset"]));
            }
            let enc = t["encoding"].as_str().unwrap_or("");
            match kind {
                TypeKind::Bool if enc == "BOOL" || name(t) == "_Bool" => {}
                TypeKind::Int { signed, .. } if enc != "BOOL" => {
                    if *signed != (enc == "SIGNED") {
                        diff(format!("signed {signed} vs bpftool encoding {enc}"));
                    }
                }
                k => diff(format!("{} vs bpftool INT {enc}", k.name())),
            }
            if node.name != name(t) {
                diff(format!("name `{}` vs bpftool `{}`", node.name, name(t)));
            }
        }
        ("PTR", TypeKind::Pointer) => {}
        ("FLOAT", TypeKind::Float) => {}
        ("ARRAY", TypeKind::Array { len, element, .. }) => {
            let n = t["nr_elems"].as_u64().unwrap_or(u64::MAX);
            if u64::from(*len) != n {
                diff(format!("{len} elements vs bpftool {n}"));
            }
            if u64::from(node.size) != u64::from(element.size) * n {
                diff(format!("size {} is not {n} x {}", node.size, element.size));
            }
            match type_id(t) {
                Ok(e) => compare_type(g, element, e, &format!("{path}[]"), depth + 1, out),
                Err(e) => out.push(format!("{path}: {e}")),
            }
            return;
        }
        ("STRUCT", TypeKind::Struct { members }) | ("UNION", TypeKind::Union { members }) => {
            let tag = if g.kind(id) == "STRUCT" {
                "struct"
            } else {
                "union"
            };
            let want = match name(t) {
                n if n.is_empty() => format!("{tag} <anon>"),
                n => format!("{tag} {n}"),
            };
            if node.name != want {
                diff(format!("name `{}` vs bpftool `{want}`", node.name));
            }
            compare_members(g, members, t, path, depth, out);
        }
        ("ENUM" | "ENUM64", TypeKind::Enum { signed, variants }) => {
            let enc = t["encoding"].as_str().unwrap_or("UNSIGNED");
            if *signed != (enc == "SIGNED") {
                diff(format!("signed {signed} vs bpftool encoding {enc}"));
            }
            let theirs: Vec<(String, i128)> = t["values"]
                .as_array()
                .map(|vs| {
                    vs.iter()
                        .map(|v| {
                            let val = v["val"]
                                .as_i64()
                                .map(i128::from)
                                .or_else(|| v["val"].as_u64().map(i128::from))
                                .unwrap_or(i128::MIN);
                            (name(v), val)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let ours: Vec<(String, i128)> =
                variants.iter().map(|v| (v.name.clone(), v.value)).collect();
            if ours != theirs {
                diff(format!("variants {ours:?} vs bpftool {theirs:?}"));
            }
        }
        (k, ours) => diff(format!("{} vs bpftool {k}", ours.name())),
    }
    if let Some(s) = size {
        if u64::from(node.size) != s {
            out.push(format!("{path}: size {} vs bpftool {s}", node.size));
        }
    }
}

fn compare_members(
    g: &BtfGraph,
    ours: &[ebpf_sdk::schema::Member],
    t: &Json,
    path: &str,
    depth: usize,
    out: &mut Vec<String>,
) {
    let theirs = match members(t) {
        Ok(m) => m,
        Err(e) => return out.push(format!("{path}: {e}")),
    };
    if ours.len() != theirs.len() {
        out.push(format!(
            "{path}: {} members vs bpftool {}",
            ours.len(),
            theirs.len()
        ));
        return;
    }
    for (m, b) in ours.iter().zip(theirs) {
        let p = format!(
            "{path}.{}",
            if m.name.is_empty() { "<anon>" } else { &m.name }
        );
        let bits = b["bits_offset"].as_u64().unwrap_or(u64::MAX);
        // bpftool prints `bitfield_size` for structs with kind_flag; 0 means
        // "not a bitfield".
        let bitfield = b["bitfield_size"].as_u64().filter(|b| *b != 0);
        if m.name != name(b) {
            out.push(format!("{p}: name vs bpftool `{}`", name(b)));
        }
        if u64::from(m.bit_offset) != bits || u64::from(m.offset) != bits / 8 {
            out.push(format!(
                "{p}: at bit {} (byte {}) vs bpftool bit {bits}",
                m.bit_offset, m.offset
            ));
        }
        if m.bit_size.map(u64::from) != bitfield {
            out.push(format!(
                "{p}: bitfield size {:?} vs bpftool {bitfield:?}",
                m.bit_size
            ));
        }
        match type_id(b) {
            Ok(tid) => compare_type(g, &m.ty, tid, &p, depth + 1, out),
            Err(e) => out.push(format!("{p}: {e}")),
        }
    }
}
