//! A [`TypeNode`] compiled once into a [`Plan`]: offsets, widths, byte
//! orders and field-name lookups resolved, so encoding and decoding walk
//! the value, not the schema.
//!
//! One job per file: `node.rs` is the compiled tree, `compile.rs` builds it
//! from a [`TypeNode`], `encode.rs` writes a [`Value`] into bytes,
//! `decode.rs` reads bytes back into a [`Value`], and `bits.rs` loads and
//! stores integers and bitfields in either byte order, and `json_schema.rs`
//! states what `encode.rs` accepts as JSON Schema. This file is the
//! [`Plan`] that holds a compiled tree and checks buffer lengths.

mod bits;
mod compile;
mod decode;
mod encode;
mod json_schema;
mod leaves;
mod node;
#[cfg(test)]
mod testing;

use ebpf_sdk_schema::{ByteOrder, TypeNode};

use crate::{CodecError, Value};

pub(crate) use bits::{load, load_bits};
pub use compile::MAX_TYPE_DEPTH;
pub(crate) use compile::{addr_text, choose_alternative};
pub(crate) use decode::{decode, scalar_value};
pub(crate) use encode::{encode, encode_field, encode_int, encode_str, is_percpu_list};
pub(crate) use json_schema::{node_schema, per_cpu_schema};
pub use leaves::{LeafKind, Number, NumericLeaf, PathStep};
pub(crate) use node::{AddrText, ArrKind, Field, IntNode, Node, Record};

use compile::Cx;
use decode::mark;
use node::Scalar;

/// Options that change how a schema is encoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodecOptions {
    /// Byte order for every whole-byte scalar (integers, enums, bools,
    /// pointers, floats), overriding both the map's target order and
    /// per-type declarations such as `__be32`. This is what the earlier
    /// tool's `byteOrder` setting meant ([`crate::legacy::to_concise`]
    /// returns it). Bitfields keep the target's layout: their bit offsets
    /// were computed by the compiler for it.
    pub byte_order: Option<ByteOrder>,
}

impl CodecOptions {
    /// Sets [`CodecOptions::byte_order`].
    pub fn byte_order(mut self, order: Option<ByteOrder>) -> Self {
        self.byte_order = order;
        self
    }
}

/// One type (a map's key or value, or any [`TypeNode`]) compiled for
/// encoding and decoding. Build once, use for every entry.
#[derive(Debug, Clone)]
pub struct Plan {
    node: Node,
    size: usize,
    root: Box<str>,
}

impl Plan {
    /// Compiles `ty` for a target of byte order `endian`. `root` names the
    /// value in error paths (`key`, `value`).
    pub fn new(
        root: &str,
        ty: &TypeNode,
        endian: ByteOrder,
        options: &CodecOptions,
    ) -> Result<Plan, CodecError> {
        let cx = Cx {
            target: endian,
            force: options.byte_order,
        };
        let mut path = root.to_string();
        let node = compile::compile(ty, &cx, &mut path, 0)?;
        Ok(Plan {
            node,
            size: ty.size as usize,
            root: root.into(),
        })
    }

    /// An opaque plan of `size` bytes, for a map whose layout is unknown.
    pub fn opaque(root: &str, size: usize) -> Plan {
        Plan {
            node: Node::Raw(Box::new(Scalar {
                size,
                order: ByteOrder::Little,
                ty: format!("opaque[{size}]").into(),
            })),
            size,
            root: root.into(),
        }
    }

    /// Size in bytes of the encoded type.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Encodes `value` into `buf`, which must be exactly [`Plan::size`] bytes.
    /// Every byte is written: padding and whatever the value leaves out are
    /// zero. On error `buf` is left all zero.
    pub fn encode_into(&self, value: &Value, buf: &mut [u8]) -> Result<(), CodecError> {
        if buf.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: buf.len(),
            });
        }
        buf.fill(0);
        encode(&self.node, value, buf).map_err(|f| {
            buf.fill(0);
            f.into_error(&self.root)
        })
    }

    /// Encodes a value written as JSON text straight into `buf` (exactly
    /// [`Plan::size`] bytes), without building a [`Value`]; the same bytes as
    /// [`crate::parse_json`] then [`Plan::encode_into`]. Returns `false`
    /// when the text is not in the plain form this path reads (see
    /// [`crate::Codec::encode_json_entry`]) or is wrong in any way; the
    /// general path then gives the bytes or the error.
    pub fn encode_json_into(&self, text: &[u8], buf: &mut [u8]) -> bool {
        crate::fastjson::encode_value(self, text, buf)
    }

    /// Encodes `value` into a new buffer.
    pub fn encode(&self, value: &Value) -> Result<Vec<u8>, CodecError> {
        let mut buf = vec![0; self.size];
        self.encode_into(value, &mut buf)?;
        Ok(buf)
    }

    /// Decodes `bytes` (exactly [`Plan::size`] long). Any bytes decode; the
    /// result is valid [`Plan::encode`] input that gives the same bytes back
    /// when padding and unused union bytes were zero.
    pub fn decode(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        if bytes.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: bytes.len(),
            });
        }
        Ok(decode(&self.node, bytes))
    }

    /// Appends the JSON text of [`Plan::decode`]'s value to `out`, exactly
    /// as `serde_json` prints that value, without building it: several
    /// times faster for `dump` of large maps.
    pub fn decode_json_into(&self, bytes: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if bytes.len() != self.size {
            return Err(CodecError::BufferSize {
                what: root_what(&self.root),
                expected: self.size,
                actual: bytes.len(),
            });
        }
        crate::fastjson::write_decoded(&self.node, bytes, out);
        Ok(())
    }

    /// The bits [`Plan::decode`] reads, as a mask over the encoded bytes:
    /// padding, unnamed bitfields and union bytes beyond the alternative
    /// decode shows are 0. `encode(decode(b)) == b & mask` for any `b`.
    pub fn significant_bits(&self) -> Vec<u8> {
        let mut m = vec![0; self.size];
        mark(&self.node, &mut m);
        m
    }

    /// Every number in the value, with where it is, for reading numbers
    /// straight from bytes (see [`NumericLeaf`]): integers, enums, `_Bool`
    /// and floats, each array element its own leaf, in declaration order.
    /// More than `limit` leaves is an error (a value with a large array
    /// of numbers).
    ///
    /// ```
    /// use ebpf_sdk_codec::{Number, Plan};
    /// use ebpf_sdk_schema::{ByteOrder, TypeNode};
    ///
    /// let u64_t = r#"{"name": "unsigned long long", "typedefs": ["__u64"], "size": 8, "kind": "int", "signed": false}"#;
    /// let stats: TypeNode = serde_json::from_str(&format!(r#"{{
    ///   "name": "struct stats", "size": 16, "kind": "struct", "members": [
    ///     {{"name": "packets", "offset": 0, "bit_offset": 0, "type": {u64_t}}},
    ///     {{"name": "bytes", "offset": 8, "bit_offset": 64, "type": {u64_t}}}]}}"#)).unwrap();
    /// let plan = Plan::new("value", &stats, ByteOrder::Little, &Default::default()).unwrap();
    /// let leaves = plan.numeric_leaves(100).unwrap();
    /// assert_eq!(leaves[1].path_text(), "bytes");
    /// let mut value = [0u8; 16];
    /// value[8] = 42;
    /// assert_eq!(leaves[1].read(&value), Some(Number::Unsigned(42)));
    /// ```
    pub fn numeric_leaves(&self, limit: usize) -> Result<Vec<NumericLeaf>, CodecError> {
        let mut out = Vec::new();
        let mut sink = leaves::Sink {
            out: &mut out,
            limit,
            root: &self.root,
        };
        leaves::collect(&self.node, 0, &mut Vec::new(), &mut sink)?;
        Ok(out)
    }

    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    pub(crate) fn root(&self) -> &str {
        &self.root
    }
}

fn root_what(root: &str) -> &'static str {
    match root {
        "key" => "key",
        _ => "value",
    }
}
