//! The compiled tree a [`Plan`](super::Plan) walks: one node per C type,
//! with sizes, byte orders, bitfield positions and union groups resolved,
//! and the field-name lookups encoding uses.

use std::collections::HashMap;
use std::sync::Arc;

use ebpf_sdk_schema::{ByteOrder, Format};

/// One compiled C type.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// An integer or pointer of 1, 2, 4, 8 or 16 bytes.
    Int(Box<IntNode>),
    /// `_Bool`.
    Bool(Box<Scalar>),
    /// `float` or `double`.
    Float(Box<Scalar>),
    /// A C enum.
    Enum(Box<EnumNode>),
    /// A struct or union, anonymous members flattened into it.
    Record(Box<Record>),
    /// A fixed-length array.
    Array(Box<ArrayNode>),
    /// Bytes with no known layout (opaque types, odd scalar sizes).
    Raw(Box<Scalar>),
}

/// A scalar with no more than a size and a byte order.
#[derive(Debug, Clone)]
pub(crate) struct Scalar {
    pub(super) size: usize,
    pub(super) order: ByteOrder,
    pub(super) ty: Box<str>,
}

/// An integer: its width, sign, byte order and display hint.
#[derive(Debug, Clone)]
pub(crate) struct IntNode {
    pub(crate) size: usize,
    pub(crate) signed: bool,
    pub(crate) order: ByteOrder,
    pub(crate) format: Option<Format>,
    pub(super) ty: Box<str>,
}

/// An enum and its variants, by name and value.
#[derive(Debug, Clone)]
pub(crate) struct EnumNode {
    pub(super) size: usize,
    pub(super) signed: bool,
    pub(super) order: ByteOrder,
    pub(super) variants: Vec<(Box<str>, i128)>,
    pub(super) ty: Box<str>,
}

/// Address text a type takes besides its usual forms: what a program's
/// `memcpy` of a `struct in_addr` or `struct in6_addr` into it would leave,
/// the address bytes in network order whatever the element type or byte
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddrText {
    /// 4 bytes: an IPv4 address.
    V4,
    /// 16 bytes: an IPv6 address, or an IPv4 address in the first 4 bytes
    /// (as a 4-byte alternative of a union of address views would hold it).
    V6,
    /// `struct in6_addr`: an IPv6 address only (an IPv4 address is written
    /// IPv4-mapped, `::ffff:10.0.0.1`).
    In6,
}

impl AddrText {
    /// The address text a field of this kind takes, for messages and
    /// templates.
    pub(crate) fn forms(self) -> &'static str {
        match self {
            AddrText::V4 => "an IPv4 address",
            AddrText::V6 => "an IPv6 address (or an IPv4 address, into the first 4 bytes)",
            AddrText::In6 => "an IPv6 address (an IPv4 address as ::ffff:a.b.c.d)",
        }
    }
}

/// What strings an array takes and how decode shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrKind {
    /// `char[N]` or a byte array hinted as a string.
    Text,
    /// Any other array of 1-byte integers.
    Bytes,
    /// Anything else: only lists.
    Other,
}

/// A fixed-length array of one element type.
#[derive(Debug, Clone)]
pub(crate) struct ArrayNode {
    pub(crate) len: usize,
    pub(crate) elem: Node,
    pub(crate) elem_size: usize,
    pub(crate) kind: ArrKind,
    pub(crate) format: Option<Format>,
    /// Address text an array of wider integers takes (`__be32[4]`,
    /// `__be16[8]`); byte arrays take it through [`ArrKind::Bytes`].
    pub(crate) addr: Option<AddrText>,
    /// Decode omits trailing all-zero elements (arrays of structs/unions);
    /// "zero" in the bits decode reads (this mask, empty when not trimming).
    pub(super) trim: bool,
    pub(super) elem_mask: Box<[u8]>,
    pub(super) ty: Box<str>,
}

/// A struct or union with its named fields at their offsets.
#[derive(Debug, Clone)]
pub(crate) struct Record {
    pub(super) size: usize,
    /// A named union: exactly one member (group 0) must be given.
    pub(super) union: bool,
    pub(crate) fields: Vec<Field>,
    pub(super) index: Option<HashMap<Box<str>, usize>>,
    pub(super) groups: Vec<Group>,
    /// Fields decode emits, in declaration order: those of the chosen
    /// alternative of every union.
    pub(crate) decode: Vec<usize>,
    /// Bitfield layout: the target's byte order.
    pub(crate) bit_order: ByteOrder,
    /// Address text a struct or union whose only job is holding an
    /// address takes (`struct in6_addr`, `struct in_addr`, a union of
    /// address views).
    pub(crate) addr: Option<AddrText>,
    /// Decode shows the address as text: the type is unambiguously an
    /// address (`struct in6_addr`, `struct in_addr`).
    pub(crate) show_addr: bool,
    pub(super) ty: Box<str>,
}

/// The alternatives of one union (named, or anonymous and flattened).
#[derive(Debug, Clone)]
pub(super) struct Group {
    pub(super) ty: Box<str>,
    pub(super) alts: Vec<String>,
    pub(super) chosen: u16,
}

/// One named member of a [`Record`], at a byte offset or as a bitfield.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    pub(super) name: Arc<str>,
    /// `,"name":` as JSON, for reading and writing JSON text straight
    /// from and to bytes ([`Field::json_key`]).
    pub(super) json_key: Box<str>,
    pub(crate) offset: usize,
    /// Bitfield: bit offset from the record start and width.
    pub(crate) bits: Option<(u32, u32)>,
    pub(crate) node: Node,
    /// (group, alternative) for every union this field is inside.
    pub(super) alts: Vec<(u16, u16)>,
}

/// No alternative of a union: none given yet (encoding), none usable (decode).
pub(super) const NONE: u16 = u16::MAX;

impl Field {
    /// The field's name as serde_json writes it and `:`, after a `,` when
    /// it is not the first of its record: `"name":` or `,"name":`.
    pub(crate) fn json_key(&self, first: bool) -> &[u8] {
        &self.json_key.as_bytes()[usize::from(first)..]
    }
}

impl Record {
    /// The field called `name`, trying `hint` (the field after the previous
    /// match: values usually list fields in declaration order) first.
    pub(crate) fn find(&self, name: &str, hint: usize) -> Option<usize> {
        if self.fields.get(hint).is_some_and(|f| *f.name == *name) {
            return Some(hint);
        }
        match &self.index {
            Some(ix) => ix.get(name).copied(),
            None => self.fields.iter().position(|f| *f.name == *name),
        }
    }

    /// [`Record::find`] for a name given as bytes (not UTF-8: no field).
    pub(crate) fn find_bytes(&self, name: &[u8], hint: usize) -> Option<usize> {
        if self
            .fields
            .get(hint)
            .is_some_and(|f| f.name.as_bytes() == name)
        {
            return Some(hint);
        }
        match &self.index {
            Some(ix) => ix.get(std::str::from_utf8(name).ok()?).copied(),
            None => self.fields.iter().position(|f| f.name.as_bytes() == name),
        }
    }

    /// Whether some fields are alternatives of a union.
    pub(crate) fn has_unions(&self) -> bool {
        !self.groups.is_empty()
    }

    pub(super) fn field_names(&self) -> Vec<String> {
        self.fields.iter().map(|f| f.name.to_string()).collect()
    }
}

impl Node {
    /// Size in bytes.
    pub(crate) fn size(&self) -> usize {
        node_size(self)
    }
}

pub(super) fn node_size(n: &Node) -> usize {
    match n {
        Node::Int(i) => i.size,
        Node::Enum(e) => e.size,
        Node::Bool(s) | Node::Float(s) | Node::Raw(s) => s.size,
        Node::Record(r) => r.size,
        Node::Array(a) => a.len * a.elem_size,
    }
}
