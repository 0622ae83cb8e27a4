//! The numbers in a value: every integer, enum, `_Bool` and float leaf of
//! a [`Plan`](super::Plan) with where it sits, so a reader (a metrics
//! exporter) takes numbers straight from the bytes without building a
//! [`Value`](crate::Value) per entry.
//!
//! What counts as a number follows what decode shows as one: integers
//! (not those hinted as IP addresses), enums (their numeric value), `_Bool`
//! (0 or 1), floats, each array element; not text (`char[N]`), byte arrays
//! shown as addresses, MACs, strings or hex, pointers' targets or opaque
//! bytes. Of a union, the alternative decode shows.

use std::fmt;
use std::sync::Arc;

use ebpf_sdk_schema::{ByteOrder, Format};

use super::bits::{load, load_bits};
use super::node::{node_size, ArrKind, Node};
use crate::sugar::sign_extend;
use crate::CodecError;

/// One step from the root of a value to a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathStep {
    /// A struct or union member (anonymous members are flattened away).
    Field(Arc<str>),
    /// An array element.
    Index(u32),
}

/// What kind of number a leaf holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// An integer (or a pointer-sized integer).
    Int {
        /// Two's complement signed.
        signed: bool,
    },
    /// An enum, read as its numeric value.
    Enum {
        /// Whether its values are signed.
        signed: bool,
    },
    /// `_Bool`: 0 or 1 (other bit patterns as they are).
    Bool,
    /// `float` or `double`.
    Float,
}

/// A number read from a leaf, exactly as stored (integers up to 128 bits).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An unsigned integer, enum or `_Bool`.
    Unsigned(u128),
    /// A signed integer or enum.
    Signed(i128),
    /// A float.
    Float(f64),
}

impl Number {
    /// The sum of two numbers of the same leaf (per-CPU totals):
    /// integers saturate instead of wrapping.
    pub fn saturating_add(self, other: Number) -> Number {
        match (self, other) {
            (Number::Unsigned(a), Number::Unsigned(b)) => Number::Unsigned(a.saturating_add(b)),
            (Number::Signed(a), Number::Signed(b)) => Number::Signed(a.saturating_add(b)),
            (a, b) => Number::Float(a.as_f64() + b.as_f64()),
        }
    }

    /// As a float (what a Prometheus sample holds; integers beyond 2^53
    /// lose their lowest bits).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Unsigned(u) => u as f64,
            Number::Signed(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

impl fmt::Display for Number {
    /// Integers in decimal, exactly; floats as Rust prints them, with
    /// `NaN`, `+Inf` and `-Inf` spelled as Prometheus reads them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Number::Unsigned(u) => write!(f, "{u}"),
            Number::Signed(i) => write!(f, "{i}"),
            Number::Float(x) if x.is_nan() => f.write_str("NaN"),
            Number::Float(x) if x.is_infinite() => {
                f.write_str(if x > 0.0 { "+Inf" } else { "-Inf" })
            }
            Number::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// Where a leaf's bits are in the value.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// Whole bytes `offset..offset + size`.
    Bytes { offset: usize, size: usize },
    /// A bitfield: bit offset from the start of the value, width.
    Bits { bit_offset: u32, width: u32 },
}

/// One numeric leaf of a value ([`super::Plan::numeric_leaves`]).
#[derive(Debug, Clone)]
pub struct NumericLeaf {
    path: Vec<PathStep>,
    c_type: Box<str>,
    kind: LeafKind,
    place: Place,
    order: ByteOrder,
}

impl NumericLeaf {
    /// The steps from the root to the leaf; empty when the whole value is
    /// one number.
    pub fn path(&self) -> &[PathStep] {
        &self.path
    }

    /// The leaf's C type as a person reads it (`__u64`, `enum fw_mode`).
    pub fn c_type(&self) -> &str {
        &self.c_type
    }

    /// What kind of number it is.
    pub fn kind(&self) -> LeafKind {
        self.kind
    }

    /// The path as dump shows it, below the root: `deny_stats.packets`,
    /// `rules[3].ruleId`; empty for the root.
    pub fn path_text(&self) -> String {
        let mut s = String::new();
        for step in &self.path {
            match step {
                PathStep::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                PathStep::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        s
    }

    /// The number in `value` (one value of the plan's size, e.g. one CPU's
    /// slot of a per-CPU buffer). `None` when `value` is too short to hold
    /// the leaf.
    pub fn read(&self, value: &[u8]) -> Option<Number> {
        let (raw, width) = match self.place {
            Place::Bytes { offset, size } => {
                let b = value.get(offset..offset.checked_add(size)?)?;
                if self.kind == LeafKind::Float {
                    return Some(Number::Float(float(b, self.order)));
                }
                (load(b, self.order), size as u32 * 8)
            }
            Place::Bits { bit_offset, width } => {
                let end = (bit_offset as usize + width as usize).div_ceil(8);
                if value.len() < end {
                    return None;
                }
                (load_bits(value, bit_offset, width, self.order), width)
            }
        };
        Some(match self.kind {
            LeafKind::Int { signed: true } | LeafKind::Enum { signed: true } => {
                Number::Signed(sign_extend(raw, width))
            }
            _ => Number::Unsigned(raw),
        })
    }
}

fn float(bytes: &[u8], order: ByteOrder) -> f64 {
    let bits = load(bytes, order);
    if bytes.len() == 4 {
        f64::from(f32::from_bits(bits as u32))
    } else {
        f64::from_bits(bits as u64)
    }
}

/// Where [`collect`] puts leaves: the list, its limit and the root's name
/// for the error.
pub(super) struct Sink<'a> {
    pub(super) out: &'a mut Vec<NumericLeaf>,
    pub(super) limit: usize,
    pub(super) root: &'a str,
}

impl Sink<'_> {
    fn push(
        &mut self,
        path: &[PathStep],
        c_type: &str,
        kind: LeafKind,
        place: Place,
        order: ByteOrder,
    ) -> Result<(), CodecError> {
        if self.out.len() >= self.limit {
            return Err(CodecError::InvalidSchema {
                path: self.root.to_string(),
                reason: format!("more than {} numeric fields", self.limit),
            });
        }
        self.out.push(NumericLeaf {
            path: path.to_vec(),
            c_type: c_type.into(),
            kind,
            place,
            order,
        });
        Ok(())
    }
}

/// The C type and kind of a scalar node that is a number, else `None`.
fn number(node: &Node) -> Option<(&str, LeafKind, ByteOrder)> {
    match node {
        Node::Int(i) if i.format == Some(Format::Ip) => None,
        Node::Int(i) => Some((&i.ty, LeafKind::Int { signed: i.signed }, i.order)),
        Node::Enum(e) => Some((&e.ty, LeafKind::Enum { signed: e.signed }, e.order)),
        Node::Bool(b) => Some((&b.ty, LeafKind::Bool, b.order)),
        Node::Float(f) => Some((&f.ty, LeafKind::Float, f.order)),
        Node::Raw(_) | Node::Record(_) | Node::Array(_) => None,
    }
}

/// Collects the leaves of `node`, which starts at byte `base` of the value.
pub(super) fn collect(
    node: &Node,
    base: usize,
    path: &mut Vec<PathStep>,
    sink: &mut Sink<'_>,
) -> Result<(), CodecError> {
    match node {
        Node::Record(r) => {
            for &i in &r.decode {
                let f = &r.fields[i];
                path.push(PathStep::Field(f.name.clone()));
                match f.bits {
                    None => collect(&f.node, base + f.offset, path, sink)?,
                    Some((off, width)) => {
                        // Bitfields are laid out in the target's order.
                        if let Some((ty, kind, _)) = number(&f.node) {
                            let bit_offset = u32::try_from(base * 8)
                                .ok()
                                .and_then(|b| b.checked_add(off))
                                .unwrap_or(u32::MAX);
                            let place = Place::Bits { bit_offset, width };
                            sink.push(path, ty, kind, place, r.bit_order)?;
                        }
                    }
                }
                path.pop();
            }
        }
        Node::Array(a) => {
            // Text and byte arrays shown as addresses, MACs or hex are not numbers.
            if a.kind == ArrKind::Text || (a.kind == ArrKind::Bytes && a.format.is_some()) {
                return Ok(());
            }
            let elem = node_size(&a.elem);
            for i in 0..a.len {
                path.push(PathStep::Index(i as u32));
                collect(&a.elem, base + i * elem, path, sink)?;
                path.pop();
            }
        }
        scalar => {
            if let Some((ty, kind, order)) = number(scalar) {
                let place = Place::Bytes {
                    offset: base,
                    size: node_size(scalar),
                };
                sink.push(path, ty, kind, place, order)?;
            }
        }
    }
    Ok(())
}
