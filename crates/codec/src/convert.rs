//! Any Rust type with `Serialize`/`Deserialize` <-> [`Value`], so programs
//! write their own structs into maps and read them back, checked against the
//! BTF by the same encoder as YAML input.
//!
//! [`to_value`] is a serde `Serializer` producing a [`Value`]; [`from_value`]
//! a `Deserializer` reading one. Both are human-readable formats, so
//! `std::net::Ipv4Addr`, `Ipv6Addr` and `IpAddr` go as address text (which
//! the codec stores in network order), and Rust enums as their variant names
//! (which the codec matches against C enum variants). Conversions the codec
//! makes when decoding are undone on the way back: a decimal string holding
//! a number beyond 64 bits reads into `u128`/`i128`, a `0x...` string into
//! any integer, an address into `u32` (network order) or a byte array, a
//! string into a byte array.
//!
//! ```
//! use ebpf_sdk_codec::{from_value, to_value, Value};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct Key {
//!     #[serde(rename = "prefixLen")]
//!     prefix_len: u32,
//!     ip_data: std::net::Ipv4Addr,
//! }
//!
//! let key = Key { prefix_len: 32, ip_data: "10.0.0.1".parse().unwrap() };
//! let v = to_value(&key).unwrap();
//! assert_eq!(v.to_json(), r#"{"prefixLen":32,"ip_data":"10.0.0.1"}"#);
//! assert_eq!(from_value::<Key>(&v).unwrap(), key);
//! ```

use std::fmt::{self, Display};

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::ser::{self, Serialize};

use crate::error::{push_seg, Seg};
use crate::sugar;
use crate::{CodecError, Map, Value};

/// Converts any `Serialize` value to a [`Value`].
///
/// Fails only for what a [`Value`] cannot hold: a map whose keys are not
/// strings or integers. Whether the value fits a map's key or value is
/// checked when it is encoded.
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value, CodecError> {
    value
        .serialize(ValueSerializer)
        .map_err(|e| e.into_error(CodecError::to_value_error))
}

/// Builds any `Deserialize` type from a [`Value`], e.g. what
/// [`crate::Codec::decode_value`] returns. Fields of the value that the type
/// does not have are ignored (unless it says `#[serde(deny_unknown_fields)]`),
/// so a struct may name only the fields it needs.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, CodecError> {
    T::deserialize(value).map_err(|e| e.into_error(CodecError::from_value_error))
}

/// A conversion error on its way up, collecting the path (innermost first).
#[derive(Debug)]
pub struct ConvertError {
    message: String,
    rev_path: Vec<Seg>,
}

impl ConvertError {
    fn at(mut self, seg: Seg) -> Self {
        self.rev_path.push(seg);
        self
    }

    fn into_error(self, make: fn(String, String) -> CodecError) -> CodecError {
        let mut path = String::new();
        for seg in self.rev_path.iter().rev() {
            push_seg(&mut path, seg);
        }
        let path = path.strip_prefix('.').unwrap_or(&path).to_string();
        make(path, self.message)
    }
}

impl Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConvertError {}

impl ser::Error for ConvertError {
    fn custom<T: Display>(msg: T) -> Self {
        ConvertError {
            message: msg.to_string(),
            rev_path: Vec::new(),
        }
    }
}

impl de::Error for ConvertError {
    fn custom<T: Display>(msg: T) -> Self {
        <ConvertError as ser::Error>::custom(msg)
    }
}

fn field(name: &str) -> Seg {
    Seg::Field(name.into())
}

// ---------------------------------------------------------------------------
// Rust -> Value
// ---------------------------------------------------------------------------

struct ValueSerializer;

fn int_u128(v: u128) -> Value {
    match i128::try_from(v) {
        Ok(i) => Value::Int(i),
        // Beyond i128: integer fields take decimal strings.
        Err(_) => Value::String(v.to_string()),
    }
}

fn one(variant: &str, v: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(variant, v);
    Value::Map(m)
}

impl ser::Serializer for ValueSerializer {
    type Ok = Value;
    type Error = ConvertError;
    type SerializeSeq = SeqBuilder;
    type SerializeTuple = SeqBuilder;
    type SerializeTupleStruct = SeqBuilder;
    type SerializeTupleVariant = SeqBuilder;
    type SerializeMap = MapBuilder;
    type SerializeStruct = MapBuilder;
    type SerializeStructVariant = MapBuilder;

    fn serialize_bool(self, v: bool) -> Result<Value, ConvertError> {
        Ok(Value::Bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_i128(self, v: i128) -> Result<Value, ConvertError> {
        Ok(Value::Int(v))
    }
    fn serialize_u8(self, v: u8) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<Value, ConvertError> {
        Ok(Value::Int(v.into()))
    }
    fn serialize_u128(self, v: u128) -> Result<Value, ConvertError> {
        Ok(int_u128(v))
    }
    fn serialize_f32(self, v: f32) -> Result<Value, ConvertError> {
        Ok(Value::Float(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<Value, ConvertError> {
        Ok(Value::Float(v))
    }
    fn serialize_char(self, v: char) -> Result<Value, ConvertError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_str(self, v: &str) -> Result<Value, ConvertError> {
        Ok(Value::String(v.to_string()))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<Value, ConvertError> {
        Ok(Value::List(
            v.iter().map(|b| Value::Int(i128::from(*b))).collect(),
        ))
    }
    fn serialize_none(self) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Result<Value, ConvertError> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<Value, ConvertError> {
        Ok(Value::Null)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Value, ConvertError> {
        Ok(Value::String(variant.to_string()))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        v: &T,
    ) -> Result<Value, ConvertError> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        v: &T,
    ) -> Result<Value, ConvertError> {
        let inner = v
            .serialize(ValueSerializer)
            .map_err(|e| e.at(field(variant)))?;
        Ok(one(variant, inner))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<SeqBuilder, ConvertError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len.unwrap_or(0)),
            variant: None,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<SeqBuilder, ConvertError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ConvertError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqBuilder, ConvertError> {
        Ok(SeqBuilder {
            items: Vec::with_capacity(len),
            variant: Some(variant),
        })
    }
    fn serialize_map(self, len: Option<usize>) -> Result<MapBuilder, ConvertError> {
        Ok(MapBuilder {
            map: Map::with_capacity(len.unwrap_or(0)),
            key: None,
            variant: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapBuilder, ConvertError> {
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapBuilder, ConvertError> {
        Ok(MapBuilder {
            map: Map::with_capacity(len),
            key: None,
            variant: Some(variant),
        })
    }
}

#[doc(hidden)]
pub struct SeqBuilder {
    items: Vec<Value>,
    variant: Option<&'static str>,
}

impl SeqBuilder {
    fn push<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvertError> {
        let i = self.items.len();
        let v = v
            .serialize(ValueSerializer)
            .map_err(|e| e.at(Seg::Index(i)))?;
        self.items.push(v);
        Ok(())
    }

    fn done(self) -> Result<Value, ConvertError> {
        let list = Value::List(self.items);
        Ok(match self.variant {
            Some(name) => one(name, list),
            None => list,
        })
    }
}

/// The serde traits of sequences and tuples all add an element.
macro_rules! seq_like {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for SeqBuilder {
            type Ok = Value;
            type Error = ConvertError;
            fn $method<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvertError> {
                self.push(v)
            }
            fn end(self) -> Result<Value, ConvertError> {
                self.done()
            }
        }
    )*};
}

seq_like!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

#[doc(hidden)]
pub struct MapBuilder {
    map: Map,
    key: Option<String>,
    variant: Option<&'static str>,
}

impl MapBuilder {
    fn put<T: Serialize + ?Sized>(&mut self, key: String, v: &T) -> Result<(), ConvertError> {
        let v = v
            .serialize(ValueSerializer)
            .map_err(|e| e.at(field(&key)))?;
        self.map.insert(key, v);
        Ok(())
    }

    fn done(self) -> Result<Value, ConvertError> {
        let map = Value::Map(self.map);
        Ok(match self.variant {
            Some(name) => one(name, map),
            None => map,
        })
    }
}

impl ser::SerializeMap for MapBuilder {
    type Ok = Value;
    type Error = ConvertError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), ConvertError> {
        self.key = Some(match key.serialize(ValueSerializer)? {
            Value::String(s) => s,
            Value::Int(i) => i.to_string(),
            other => {
                return Err(<ConvertError as ser::Error>::custom(format!(
                    "a mapping key must be a string or an integer, not {}",
                    other.describe()
                )))
            }
        });
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), ConvertError> {
        let key = self.key.take().unwrap_or_default();
        self.put(key, v)
    }
    fn end(self) -> Result<Value, ConvertError> {
        self.done()
    }
}

/// Structs and struct variants both add named fields.
macro_rules! struct_like {
    ($($trait:ident),*) => {$(
        impl ser::$trait for MapBuilder {
            type Ok = Value;
            type Error = ConvertError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                v: &T,
            ) -> Result<(), ConvertError> {
                self.put(key.to_string(), v)
            }
            fn end(self) -> Result<Value, ConvertError> {
                self.done()
            }
        }
    )*};
}

struct_like!(SerializeStruct, SerializeStructVariant);

// ---------------------------------------------------------------------------
// Value -> Rust
// ---------------------------------------------------------------------------

fn invalid(v: &Value, exp: &dyn de::Expected) -> ConvertError {
    let unexp = match v {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Int(i) => match (i64::try_from(*i), u64::try_from(*i)) {
            (Ok(s), _) => de::Unexpected::Signed(s),
            (_, Ok(u)) => de::Unexpected::Unsigned(u),
            _ => de::Unexpected::Other("a 128-bit integer"),
        },
        Value::Float(f) => de::Unexpected::Float(*f),
        Value::String(s) => de::Unexpected::Str(s),
        Value::List(_) => de::Unexpected::Seq,
        Value::Map(_) => de::Unexpected::Map,
    };
    <ConvertError as de::Error>::invalid_type(unexp, exp)
}

/// The bytes a string stands for where a byte array is wanted: hex, an
/// address, a MAC, or the string's own UTF-8 bytes.
fn string_bytes(s: &str) -> Vec<u8> {
    let t = s.trim();
    if t.starts_with("0x") || t.starts_with("0X") {
        if let Ok(b) = sugar::parse_hex_bytes(t) {
            return b;
        }
    }
    if let Some(o) = sugar::parse_ipv4(t) {
        return o.to_vec();
    }
    if let Some(o) = sugar::parse_ipv6(t) {
        return o.to_vec();
    }
    if let Some(o) = sugar::parse_mac(t) {
        return o.to_vec();
    }
    s.as_bytes().to_vec()
}

/// An integer given as text (`0x1f`, a decimal beyond 64 bits, an IPv4
/// address read as a big-endian `u32`), handed to the visitor.
fn visit_text_int<'de, V: Visitor<'de>>(
    s: &str,
    visitor: V,
) -> Option<Result<V::Value, ConvertError>> {
    if let Some(w) = sugar::parse_int_text(s) {
        return Some(match (w.neg, i128::try_from(w.mag)) {
            (false, Ok(i)) => visit_int(i, visitor),
            (false, Err(_)) => visitor.visit_u128(w.mag),
            (true, Ok(i)) => visit_int(-i, visitor),
            (true, Err(_)) => visitor.visit_i128(i128::MIN),
        });
    }
    let o = sugar::parse_ipv4(s.trim())?;
    Some(visitor.visit_u32(u32::from_be_bytes(o)))
}

fn visit_int<'de, V: Visitor<'de>>(i: i128, visitor: V) -> Result<V::Value, ConvertError> {
    if let Ok(s) = i64::try_from(i) {
        visitor.visit_i64(s)
    } else if let Ok(u) = u64::try_from(i) {
        visitor.visit_u64(u)
    } else {
        visitor.visit_i128(i)
    }
}

macro_rules! int_from_text {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
            match self {
                Value::String(s) => {
                    let exp = format!("{}", &visitor as &dyn de::Expected);
                    visit_text_int(s, visitor).unwrap_or_else(|| Err(invalid(self, &exp.as_str())))
                }
                _ => self.deserialize_any(visitor),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &'de Value {
    type Error = ConvertError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visit_int(*i, visitor),
            Value::Float(f) => visitor.visit_f64(*f),
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::List(items) => visitor.visit_seq(SeqReader {
                items: items.iter(),
                index: 0,
                pad: 0,
            }),
            Value::Map(m) => visitor.visit_map(MapReader {
                map: m,
                next: 0,
                value: None,
            }),
        }
    }

    int_from_text! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Int(i) => visitor.visit_f64(*i as f64),
            Value::String(s) => match s.as_str() {
                "nan" => visitor.visit_f64(f64::NAN),
                "inf" => visitor.visit_f64(f64::INFINITY),
                "-inf" => visitor.visit_f64(f64::NEG_INFINITY),
                _ => Err(invalid(self, &visitor)),
            },
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) => visitor.visit_byte_buf(string_bytes(s)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) => visitor.visit_seq(BytesReader {
                bytes: string_bytes(s),
                index: 0,
                len: None,
            }),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self {
            // `[u8; N]` from a string, zero-padded as the C array is.
            Value::String(s) => {
                let mut r = BytesReader {
                    bytes: string_bytes(s),
                    index: 0,
                    len: Some(len),
                };
                let v = visitor.visit_seq(&mut r)?;
                too_many(r.bytes.len(), len, "bytes")?;
                Ok(v)
            }
            // Decode leaves out trailing zero structs: pad with `null`.
            Value::List(items) => {
                too_many(items.len(), len, "elements")?;
                visitor.visit_seq(SeqReader {
                    items: items.iter(),
                    index: 0,
                    pad: len - items.len(),
                })
            }
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        self.deserialize_tuple(len, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        match self {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Map(m) if m.len() == 1 => {
                let (k, v) = m.iter().next().expect("one entry");
                visitor
                    .visit_enum(EnumReader {
                        variant: k,
                        value: v,
                    })
                    .map_err(|e| e.at(field(k)))
            }
            _ => Err(invalid(self, &"a variant name or a mapping of one variant")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool char str string unit unit_struct map struct identifier ignored_any
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

fn too_many(given: usize, len: usize, unit: &str) -> Result<(), ConvertError> {
    if given > len {
        return Err(<ConvertError as de::Error>::custom(format!(
            "{given} {unit} given, the Rust array holds {len}"
        )));
    }
    Ok(())
}

struct SeqReader<'de> {
    items: std::slice::Iter<'de, Value>,
    index: usize,
    /// `null` elements to give after the items.
    pad: usize,
}

static NULL: Value = Value::Null;

impl<'de> de::SeqAccess<'de> for SeqReader<'de> {
    type Error = ConvertError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        let item = match self.items.next() {
            Some(v) => v,
            None if self.pad > 0 => {
                self.pad -= 1;
                &NULL
            }
            None => return Ok(None),
        };
        let i = self.index;
        self.index += 1;
        seed.deserialize(item)
            .map(Some)
            .map_err(|e| e.at(Seg::Index(i)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() + self.pad)
    }
}

struct BytesReader {
    bytes: Vec<u8>,
    index: usize,
    /// The array's length (zero-padded), `None` for a list.
    len: Option<usize>,
}

impl<'de> de::SeqAccess<'de> for BytesReader {
    type Error = ConvertError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ConvertError> {
        let end = self.len.unwrap_or(self.bytes.len()).max(self.bytes.len());
        if self.index >= end {
            return Ok(None);
        }
        let b = self.bytes.get(self.index).copied().unwrap_or(0);
        let i = self.index;
        self.index += 1;
        seed.deserialize(b.into_deserializer())
            .map(Some)
            .map_err(|e: ConvertError| e.at(Seg::Index(i)))
    }
}

struct MapReader<'de> {
    map: &'de Map,
    next: usize,
    value: Option<(&'de str, &'de Value)>,
}

impl<'de> de::MapAccess<'de> for MapReader<'de> {
    type Error = ConvertError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ConvertError> {
        match self.map.entry_at(self.next) {
            Some((k, v)) => {
                self.next += 1;
                self.value = Some((k, v));
                seed.deserialize(de::value::BorrowedStrDeserializer::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, ConvertError> {
        let (k, v) = self
            .value
            .take()
            .ok_or_else(|| <ConvertError as de::Error>::custom("value without a key"))?;
        seed.deserialize(v).map_err(|e| e.at(field(k)))
    }
}

struct EnumReader<'de> {
    variant: &'de str,
    value: &'de Value,
}

impl<'de> de::EnumAccess<'de> for EnumReader<'de> {
    type Error = ConvertError;
    type Variant = &'de Value;

    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'de Value), ConvertError> {
        let v = seed.deserialize(de::value::BorrowedStrDeserializer::new(self.variant))?;
        Ok((v, self.value))
    }
}

impl<'de> de::VariantAccess<'de> for &'de Value {
    type Error = ConvertError;

    fn unit_variant(self) -> Result<(), ConvertError> {
        match self {
            Value::Null => Ok(()),
            other => Err(invalid(other, &"nothing (a unit variant)")),
        }
    }

    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, ConvertError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_tuple(self, len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ConvertError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::parse_yaml;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone, Copy)]
    enum Action {
        #[serde(rename = "ALLOW")]
        Allow,
        #[serde(rename = "DENY")]
        Deny,
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Rule {
        rule_id: u32,
        protocol: u8,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        dst_port_start: Option<u16>,
        action: Action,
    }

    #[test]
    fn structs_enums_and_options() {
        let r = Rule {
            rule_id: 7,
            protocol: 6,
            dst_port_start: None,
            action: Action::Deny,
        };
        let v = to_value(&r).unwrap();
        assert_eq!(v.to_json(), r#"{"ruleId":7,"protocol":6,"action":"DENY"}"#);
        assert_eq!(from_value::<Rule>(&v).unwrap(), r);
        // Fields the type does not have are ignored on the way back.
        let wide = parse_yaml("{ruleId: 7, protocol: 6, icmpType: 0, action: DENY}").unwrap();
        assert_eq!(from_value::<Rule>(&wide).unwrap(), r);
    }

    #[test]
    fn numbers_in_every_form() {
        assert_eq!(
            to_value(&u128::MAX).unwrap(),
            Value::String(u128::MAX.to_string())
        );
        assert_eq!(to_value(&-5i8).unwrap(), Value::Int(-5));
        assert_eq!(
            from_value::<u128>(&Value::String(u128::MAX.to_string())).unwrap(),
            u128::MAX
        );
        assert_eq!(
            from_value::<u16>(&Value::String("0x1f".into())).unwrap(),
            31
        );
        assert_eq!(
            from_value::<u32>(&Value::String("10.0.0.1".into())).unwrap(),
            0x0a00_0001
        );
        let e = from_value::<u8>(&Value::Int(300)).unwrap_err();
        assert!(e.to_string().contains("300"), "{e}");
        assert_eq!(
            from_value::<f64>(&Value::String("inf".into())).unwrap(),
            f64::INFINITY
        );
    }

    #[test]
    fn addresses_and_byte_arrays() {
        let v = to_value(&Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(v, Value::String("10.0.0.1".into()));
        let a: IpAddr = from_value(&Value::String("fe80::1".into())).unwrap();
        assert_eq!(a, IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)));
        // A byte array from address text, hex or a string, zero-padded.
        let b: [u8; 16] = from_value(&Value::String("10.0.0.1".into())).unwrap();
        assert_eq!(&b[..5], &[10, 0, 0, 1, 0]);
        let b: [u8; 4] = from_value(&Value::String("0x0a0b".into())).unwrap();
        assert_eq!(b, [10, 11, 0, 0]);
        let b: [u8; 6] = from_value(&Value::String("eth0".into())).unwrap();
        assert_eq!(&b, b"eth0\0\0");
        let m: Vec<u8> = from_value(&Value::String("aa:bb:cc:dd:ee:ff".into())).unwrap();
        assert_eq!(m, [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        // Too long for the array is an error, not a truncation.
        assert!(from_value::<[u8; 2]>(&Value::String("abc".into())).is_err());
    }

    #[test]
    fn arrays_of_structs_are_padded_back() {
        #[derive(Deserialize, Debug, PartialEq, Default)]
        struct S {
            #[serde(default)]
            a: u8,
        }
        // Decode shows `rules[3]` with one rule as a list of one.
        let v = parse_yaml("[{a: 1}]").unwrap();
        let got: [Option<S>; 3] = from_value(&v).unwrap();
        assert_eq!(got, [Some(S { a: 1 }), None, None]);
    }

    #[test]
    fn union_members_as_enum_variants() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        #[serde(rename_all = "snake_case")]
        enum Addr {
            V4(Ipv4Addr),
            V6(Ipv6Addr),
        }
        let v = to_value(&Addr::V4(Ipv4Addr::new(1, 2, 3, 4))).unwrap();
        assert_eq!(v.to_json(), r#"{"v4":"1.2.3.4"}"#);
        assert_eq!(
            from_value::<Addr>(&v).unwrap(),
            Addr::V4(Ipv4Addr::new(1, 2, 3, 4))
        );
    }

    #[test]
    fn errors_name_the_path() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            port: u16,
        }
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct Outer {
            rules: Vec<Inner>,
        }
        let v = parse_yaml("{rules: [{port: 1}, {port: 70000}]}").unwrap();
        let e = from_value::<Outer>(&v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "rules[1].port: cannot be read as the Rust type: invalid value: integer `70000`, expected u16"
        );
        let mut bad = BTreeMap::new();
        bad.insert(vec![1u8], 1u8);
        let e = to_value(&bad).unwrap_err();
        assert!(
            e.to_string().contains("a mapping key must be a string"),
            "{e}"
        );
    }

    #[test]
    fn json_values_go_through_the_same_door() {
        let j = serde_json::json!({"prefixLen": 32, "ip_data": "10.0.0.1"});
        let v = to_value(&j).unwrap();
        assert_eq!(v, parse_yaml("{ip_data: 10.0.0.1, prefixLen: 32}").unwrap());
    }
}
