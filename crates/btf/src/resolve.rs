//! BTF type ids -> self-contained [`TypeNode`] trees, with bounded work.
//!
//! Layout comes only from BTF: member bit offsets, type sizes and array
//! lengths. Nothing here re-implements C layout rules, so packed structs,
//! odd offsets and bitfields come out exactly as clang laid them out.

use btf_rs::{Btf, BtfType, Type};
use ebpf_sdk_schema::{ByteOrder, EnumVariant, Format, Member, TypeKind, TypeNode};

/// Typedef/const/volatile hops followed before giving up (a cycle in corrupt BTF).
pub(crate) const MAX_CHAIN: usize = 64;
/// Struct/union/array nesting depth.
pub(crate) const MAX_DEPTH: usize = 48;
/// Nodes in one key or value tree: bounds exponential blow-up of shared subtrees.
pub(crate) const MAX_NODES: usize = 200_000;
/// Largest key/value we describe (the kernel caps values at KMALLOC_MAX_SIZE; 64 MiB is ample).
pub(crate) const MAX_SIZE: u64 = 64 << 20;

/// Why a type could not be described. Turned into `ExtractError::Type` with
/// the file, map and type id by the caller.
#[derive(Debug)]
pub(crate) struct ResolveError {
    pub type_id: u32,
    pub detail: String,
}

fn err<T>(type_id: u32, detail: impl Into<String>) -> Result<T, ResolveError> {
    Err(ResolveError {
        type_id,
        detail: detail.into(),
    })
}

pub(crate) struct Resolver<'a> {
    btf: &'a Btf,
    endian: ByteOrder,
    nodes: usize,
}

/// A type id with qualifiers and typedefs peeled off.
pub(crate) struct Peeled {
    pub id: u32,
    pub ty: Type,
    pub typedefs: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(btf: &'a Btf, endian: ByteOrder) -> Self {
        Resolver {
            btf,
            endian,
            nodes: 0,
        }
    }

    pub(crate) fn type_by_id(&self, id: u32) -> Result<Type, ResolveError> {
        self.btf.resolve_type_by_id(id).map_err(|e| ResolveError {
            type_id: id,
            detail: format!("cannot read type: {e}"),
        })
    }

    pub(crate) fn name_of(&self, ty: &dyn BtfType, id: u32) -> Result<String, ResolveError> {
        match ty.get_name_offset() {
            None | Some(0) => Ok(String::new()),
            Some(_) => self.btf.resolve_name(ty).map_err(|e| ResolveError {
                type_id: id,
                detail: format!("bad name: {e}"),
            }),
        }
    }

    /// Follows typedef, const, volatile, restrict and type tags.
    pub(crate) fn peel(&self, mut id: u32) -> Result<Peeled, ResolveError> {
        let mut typedefs = Vec::new();
        for _ in 0..MAX_CHAIN {
            let ty = self.type_by_id(id)?;
            let next = match &ty {
                Type::Typedef(t) => {
                    typedefs.push(self.name_of(t, id)?);
                    t.get_type_id()
                }
                Type::Const(t) | Type::Volatile(t) | Type::Restrict(t) => t.get_type_id(),
                Type::TypeTag(t) => t.get_type_id(),
                _ => return Ok(Peeled { id, ty, typedefs }),
            };
            id = match next {
                Some(n) => n,
                None => return err(id, "qualifier without a target type"),
            };
        }
        err(
            id,
            format!("typedef/qualifier chain longer than {MAX_CHAIN} (a cycle?)"),
        )
    }

    /// Describes the type `id` as a self-contained tree.
    pub(crate) fn node(&mut self, id: u32) -> Result<TypeNode, ResolveError> {
        self.nodes = 0;
        self.resolve(id, 0)
    }

    fn resolve(&mut self, id: u32, depth: usize) -> Result<TypeNode, ResolveError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return err(id, format!("type tree has more than {MAX_NODES} nodes"));
        }
        if depth > MAX_DEPTH {
            return err(
                id,
                format!("types nested deeper than {MAX_DEPTH} (a cycle?)"),
            );
        }
        let Peeled { id, ty, typedefs } = self.peel(id)?;
        let big = typedefs.iter().any(|t| is_big_endian_name(t));
        let little = typedefs.iter().any(|t| is_little_endian_name(t));
        let declared_order = if big {
            Some(ByteOrder::Big)
        } else if little {
            Some(ByteOrder::Little)
        } else {
            None
        };
        let byte_order = declared_order.filter(|o| *o != self.endian);
        let (name, size, kind) = match &ty {
            Type::Int(i) => {
                let name = self.name_of(i, id)?;
                let size = checked_size(id, i.size())?;
                if i.is_bool() || name == "_Bool" {
                    (name, size, TypeKind::Bool)
                } else {
                    if !matches!(size, 1 | 2 | 4 | 8 | 16) {
                        return err(id, format!("integer `{name}` of unsupported size {size}"));
                    }
                    let char = i.is_char() || name == "char";
                    (
                        name,
                        size,
                        TypeKind::Int {
                            signed: i.is_signed(),
                            char,
                            byte_order,
                            format: None,
                        },
                    )
                }
            }
            Type::Float(f) => {
                let size = checked_size(id, f.size())?;
                if !matches!(size, 4 | 8) {
                    return err(id, format!("float of unsupported size {size}"));
                }
                (self.name_of(f, id)?, size, TypeKind::Float)
            }
            Type::Ptr(_) => ("void *".to_string(), 8, TypeKind::Pointer),
            // ENUM values are 32-bit, ENUM64 values 64-bit; either may be signed.
            Type::Enum(e) => self.enum_node(
                id,
                e,
                e.size(),
                e.is_signed(),
                e.members.iter().map(|m| {
                    (
                        m as &dyn BtfType,
                        i128::from(m.val()),
                        i128::from(m.val() as i32),
                    )
                }),
            )?,
            Type::Enum64(e) => self.enum_node(
                id,
                e,
                e.size(),
                e.is_signed(),
                e.members.iter().map(|m| {
                    (
                        m as &dyn BtfType,
                        i128::from(m.val()),
                        i128::from(m.val() as i64),
                    )
                }),
            )?,
            Type::Struct(s) | Type::Union(s) => {
                let is_union = matches!(ty, Type::Union(_));
                let name = tagged(
                    if is_union { "union" } else { "struct" },
                    self.name_of(s, id)?,
                );
                let size = checked_size(id, s.size())?;
                let mut members = Vec::with_capacity(s.members.len());
                for m in &s.members {
                    let mname = self.name_of(m, id)?;
                    let mid = match m.get_type_id() {
                        Some(t) => t,
                        None => return err(id, format!("member `{mname}` has no type")),
                    };
                    let mut child = self.resolve(mid, depth + 1)?;
                    let bit_offset = m.bit_offset();
                    let bit_size = m.bitfield_size().filter(|b| *b != 0);
                    let end_bits = match bit_size {
                        Some(b) => {
                            if u64::from(b) > u64::from(child.size) * 8 {
                                return err(
                                    id,
                                    format!(
                                        "{name}.{mname}: bitfield of {b} bits in a {}-byte type",
                                        child.size
                                    ),
                                );
                            }
                            u64::from(bit_offset) + u64::from(b)
                        }
                        None => {
                            if bit_offset % 8 != 0 {
                                return err(
                                    id,
                                    format!("{name}.{mname}: bit offset {bit_offset} is not byte aligned"),
                                );
                            }
                            u64::from(bit_offset) + u64::from(child.size) * 8
                        }
                    };
                    if end_bits > u64::from(size) * 8 {
                        return err(
                            id,
                            format!(
                                "{name}.{mname}: ends at bit {end_bits}, past the {size}-byte {}",
                                if is_union { "union" } else { "struct" }
                            ),
                        );
                    }
                    hint(&mname, &mut child);
                    members.push(Member {
                        name: mname,
                        offset: bit_offset / 8,
                        bit_offset,
                        bit_size,
                        ty: child,
                    });
                }
                let kind = if is_union {
                    TypeKind::Union { members }
                } else {
                    TypeKind::Struct { members }
                };
                (name, size, kind)
            }
            Type::Array(a) => {
                let eid = match a.get_type_id() {
                    Some(t) => t,
                    None => return err(id, "array without element type"),
                };
                let element = self.resolve(eid, depth + 1)?;
                let len = match u32::try_from(a.len()) {
                    Ok(l) => l,
                    Err(_) => return err(id, "array length does not fit in u32"),
                };
                let total = u64::from(element.size) * u64::from(len);
                if total > MAX_SIZE {
                    return err(
                        id,
                        format!("array of {len} x {} bytes is too large", element.size),
                    );
                }
                let format = match &element.kind {
                    TypeKind::Int { char: true, .. } if element.size == 1 => Some(Format::String),
                    _ => None,
                };
                // C spelling: `__u16 m[2][3]` is an array of 2 `__u16[3]`,
                // written `__u16[2][3]`: the outer length goes first.
                let inner = element.display_name();
                let name = match (&element.kind, inner.find('[')) {
                    (TypeKind::Array { .. }, Some(i)) if element.typedefs.is_empty() => {
                        format!("{}[{len}]{}", &inner[..i], &inner[i..])
                    }
                    _ => format!("{inner}[{len}]"),
                };
                (
                    name,
                    total as u32,
                    TypeKind::Array {
                        len,
                        element: Box::new(element),
                        format,
                    },
                )
            }
            Type::Fwd(f) => {
                let n = self.name_of(f, id)?;
                return err(
                    id,
                    format!("`{n}` is only forward-declared: its layout is not in the BTF"),
                );
            }
            Type::Void => return err(id, "void has no layout"),
            other => return err(id, format!("a {} cannot be a key or value", other.name())),
        };
        Ok(TypeNode {
            name,
            typedefs,
            size,
            kind,
        })
    }
}

impl Resolver<'_> {
    /// The value of a global data map: DATASEC `id` as a struct of its
    /// variables, by name, at the offsets `offset_of(name, declared)` gives
    /// (`declared` is the DATASEC's own offset, right in kernel BTF, 0 in
    /// an object file before libbpf fixes it up), `size` bytes long. Named
    /// `datasec <section>`, whichever BTF it comes from.
    pub(crate) fn datasec(
        &mut self,
        id: u32,
        size: u32,
        offset_of: &dyn Fn(&str, u32) -> u64,
    ) -> Result<TypeNode, ResolveError> {
        let ty = self.type_by_id(id)?;
        let Type::Datasec(ds) = &ty else {
            return err(id, format!("a {} is not a data section", ty.name()));
        };
        let sec_name = self.name_of(ds, id)?;
        let mut members = Vec::with_capacity(ds.variables.len());
        for v in &ds.variables {
            let Some(var_id) = v.get_type_id() else {
                continue;
            };
            // Functions (extern ksyms) have no bytes in the section.
            let Ok(Type::Var(var)) = self.btf.resolve_type_by_id(var_id) else {
                continue;
            };
            let vname = self.name_of(&var, var_id)?;
            let Some(tid) = var.get_type_id() else {
                continue;
            };
            let mut node = self.node(tid)?;
            let off = offset_of(&vname, v.offset());
            let end = off.checked_add(u64::from(node.size));
            if end.is_none_or(|e| e > u64::from(size)) {
                return err(
                    id,
                    format!(
                        "{sec_name}: variable `{vname}` at {off} runs past the {size}-byte section"
                    ),
                );
            }
            let off = off as u32; // < size, a u32
            hint(&vname, &mut node);
            members.push(Member {
                name: vname,
                offset: off,
                bit_offset: off.checked_mul(8).ok_or(ResolveError {
                    type_id: id,
                    detail: format!("{sec_name}: offset {off} is too large"),
                })?,
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

    /// An enum's name, size and variants; `members` yields each variant with
    /// its value read as unsigned and as signed.
    fn enum_node<'m>(
        &self,
        id: u32,
        e: &dyn BtfType,
        size: usize,
        signed: bool,
        members: impl Iterator<Item = (&'m dyn BtfType, i128, i128)>,
    ) -> Result<(String, u32, TypeKind), ResolveError> {
        let name = tagged("enum", self.name_of(e, id)?);
        let size = checked_size(id, size)?;
        if !matches!(size, 1 | 2 | 4 | 8) {
            return err(id, format!("{name} of unsupported size {size}"));
        }
        let mut variants = Vec::new();
        for (m, unsigned_value, signed_value) in members {
            variants.push(EnumVariant {
                name: self.name_of(m, id)?,
                value: if signed { signed_value } else { unsigned_value },
            });
        }
        Ok((name, size, TypeKind::Enum { signed, variants }))
    }
}

fn checked_size(id: u32, size: usize) -> Result<u32, ResolveError> {
    if size as u64 > MAX_SIZE {
        return err(id, format!("type size {size} is too large"));
    }
    Ok(size as u32)
}

fn tagged(tag: &str, name: String) -> String {
    if name.is_empty() {
        format!("{tag} <anon>")
    } else {
        format!("{tag} {name}")
    }
}

fn is_big_endian_name(n: &str) -> bool {
    matches!(
        n,
        "__be16" | "__be32" | "__be64" | "__be128" | "be16" | "be32" | "be64"
    )
}

fn is_little_endian_name(n: &str) -> bool {
    matches!(n, "__le16" | "__le32" | "__le64" | "le16" | "le32" | "le64")
}

/// Splits `ip_data`, `srcIP`, `mgmtAddr` into lower-case words.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Display hints from a member's name: `format` says how `dump` shows the
/// value; input accepts every form whatever the hint. A user can change a
/// hint by editing the extracted schema.
pub(crate) fn hint(member: &str, node: &mut TypeNode) {
    // `u6_addr8` and `addr32` are addresses too: compare words without
    // their trailing digits as well.
    let mut w = words(member);
    let stripped: Vec<String> = w
        .iter()
        .map(|x| x.trim_end_matches(|c: char| c.is_ascii_digit()).to_string())
        .filter(|x| !x.is_empty())
        .collect();
    w.extend(stripped);
    let has = |set: &[&str]| w.iter().any(|x| set.contains(&x.as_str()));
    let ip_words = [
        "ip", "ipv4", "ipv6", "ip4", "ip6", "addr", "saddr", "daddr", "src", "dst", "address",
        "nexthop", "gw", "gateway", "vip", "v4", "v6", "mask", "netmask", "subnet", "prefix",
    ];
    let mac_words = [
        "mac", "hwaddr", "eth", "lladdr", "source", "dest", "smac", "dmac",
    ];
    let size = node.size;
    match &mut node.kind {
        TypeKind::Array {
            len,
            element,
            format,
        } if format.is_none() => {
            let byte_elems = element.size == 1 && matches!(element.kind, TypeKind::Int { .. });
            if !byte_elems {
                return;
            }
            *format = if *len == 6 && (has(&mac_words) || has(&["addr", "hwaddr"])) {
                Some(Format::Mac)
            } else if (*len == 4 || *len == 16) && has(&ip_words) {
                Some(Format::Ip)
            } else if *len > 16 {
                Some(Format::Hex)
            } else {
                None
            };
        }
        // A 4-byte int is an address when it is declared big-endian
        // (`__be32 dst`) or its name says so outright (`__u32 saddr`).
        TypeKind::Int {
            format, byte_order, ..
        } if format.is_none()
            && size == 4
            && has(&ip_words)
            && (*byte_order == Some(ByteOrder::Big)
                || has(&[
                    "ip", "ipv4", "ip4", "addr", "saddr", "daddr", "address", "netmask",
                ])) =>
        {
            *format = Some(Format::Ip);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_snake_and_camel() {
        assert_eq!(words("ip_data"), ["ip", "data"]);
        assert_eq!(words("srcIP"), ["src", "ip"]);
        assert_eq!(words("mgmtAddr"), ["mgmt", "addr"]);
        assert_eq!(words("ingress_ifindex"), ["ingress", "ifindex"]);
    }
}
