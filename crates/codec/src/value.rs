//! [`Value`]: the named, typed-by-schema-later data users write and `decode`
//! produces, and reading it from YAML and JSON with hard limits.

use std::cell::Cell;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::CodecError;

/// Deepest nesting of lists and mappings accepted when parsing.
pub const MAX_DEPTH: usize = 100;

/// A value as written in YAML or JSON, before the schema gives it a type.
///
/// Integers are held as `i128`; integers beyond it (the upper half of
/// `unsigned __int128`) are written as strings, which every integer field
/// accepts. [`Map`] keeps insertion order and never holds a key twice.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`, `~` or an empty YAML value: zero for any field.
    #[default]
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A string: text, or sugar such as `0x1f`, `10.0.0.1`, `aa:bb:cc:dd:ee:ff`.
    String(String),
    /// A sequence.
    List(Vec<Value>),
    /// A mapping with string keys, in the order written.
    Map(Map),
}

impl Value {
    /// The entry `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.get(key),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i128> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The elements, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The mapping, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// YAML text (block style, ends with a newline).
    pub fn to_yaml(&self) -> String {
        // Serializing a `Value` cannot fail: keys are strings, no tags.
        serde_norway::to_string(self).unwrap_or_default()
    }

    /// Compact JSON text. Non-finite floats become `null` in JSON; decoded
    /// values never hold them (they decode to the strings `nan`, `inf`).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A short description for error messages: `70000`, `a float (1.5)`,
    /// `a string of 3000000 bytes`, `a list of 3 elements`.
    pub fn describe(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("a float ({f})"),
            Value::String(s) if s.len() <= 48 => format!("{s:?}"),
            Value::String(s) => format!("a string of {} bytes", s.len()),
            Value::List(l) => format!("a list of {} elements", l.len()),
            Value::Map(m) => {
                let keys: Vec<&str> = m.keys().take(6).collect();
                let more = if m.len() > 6 { ", ..." } else { "" };
                format!("a mapping {{{}{more}}}", keys.join(", "))
            }
        }
    }
}

impl fmt::Display for Value {
    /// One-line JSON-like text, for messages and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i128::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, u64, i128);

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::String(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::List(v)
    }
}
impl From<Map> for Value {
    fn from(v: Map) -> Self {
        Value::Map(v)
    }
}
impl From<u128> for Value {
    /// Above `i128::MAX` the number becomes a decimal string.
    fn from(v: u128) -> Self {
        match i128::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::String(v.to_string()),
        }
    }
}

/// A mapping with string keys in insertion order; a key appears at most once.
///
/// Keys are shared strings: decoding many entries of one map reuses the
/// schema's field names instead of allocating them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map {
    entries: Vec<(Arc<str>, Value)>,
}

impl Map {
    /// An empty mapping.
    pub fn new() -> Self {
        Map::default()
    }

    /// An empty mapping with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// Sets `key`, replacing (in place) and returning an existing value.
    /// Linear in the number of entries.
    pub fn insert(&mut self, key: impl Into<String>, value: Value) -> Option<Value> {
        let key: String = key.into();
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| **k == *key) {
            return Some(std::mem::replace(&mut slot.1, value));
        }
        self.entries.push((key.into(), value));
        None
    }

    /// Appends a key known not to be present (decoder: schema names are unique).
    pub(crate) fn push_unique(&mut self, key: Arc<str>, value: Value) {
        debug_assert!(self.get(&key).is_none());
        self.entries.push((key, value));
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| v)
    }

    /// Mutable access to the value of `key`.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.entries
            .iter_mut()
            .find(|(k, _)| **k == *key)
            .map(|(_, v)| v)
    }

    /// Removes `key`, keeping the order of the rest.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.entries.iter().position(|(k, _)| **k == *key)?;
        Some(self.entries.remove(i).1)
    }

    /// The `i`th entry, in order.
    pub(crate) fn entry_at(&self, i: usize) -> Option<(&str, &Value)> {
        self.entries.get(i).map(|(k, v)| (&**k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (&**k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| &**k)
    }
}

impl<K: Into<String>> FromIterator<(K, Value)> for Map {
    /// Later duplicates replace earlier ones.
    fn from_iter<I: IntoIterator<Item = (K, Value)>>(iter: I) -> Self {
        let mut m = Map::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl IntoIterator for Map {
    type Item = (String, Value);
    type IntoIter = std::iter::Map<
        std::vec::IntoIter<(Arc<str>, Value)>,
        fn((Arc<str>, Value)) -> (String, Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter().map(|(k, v)| (k.to_string(), v))
    }
}

// ---------------------------------------------------------------------------
// Serialize
// ---------------------------------------------------------------------------

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => {
                if let Ok(v) = i64::try_from(*i) {
                    s.serialize_i64(v)
                } else if let Ok(v) = u64::try_from(*i) {
                    s.serialize_u64(v)
                } else {
                    s.serialize_i128(*i)
                }
            }
            Value::Float(f) => s.serialize_f64(*f),
            Value::String(v) => s.serialize_str(v),
            Value::List(l) => {
                let mut seq = s.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => m.serialize(s),
        }
    }
}

impl Serialize for Map {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(&**k, v)?;
        }
        map.end()
    }
}

// ---------------------------------------------------------------------------
// Deserialize, with limits
// ---------------------------------------------------------------------------

/// Shared limits of one parse: nodes built so far against a budget (YAML
/// aliases can expand a small text into an enormous tree).
struct Budget {
    used: Cell<usize>,
    max: usize,
}

impl Budget {
    fn charge<E: de::Error>(&self, n: usize) -> Result<(), E> {
        let used = self.used.get().saturating_add(n);
        self.used.set(used);
        if used > self.max {
            return Err(E::custom(format_args!(
                "document expands to more than {} nodes and string bytes (YAML alias bomb?)",
                self.max
            )));
        }
        Ok(())
    }
}

struct Seed<'a> {
    depth: usize,
    budget: &'a Budget,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, string, boolean, null, list or mapping")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.visit_i128(i128::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.visit_i128(i128::from(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Int(v))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.budget.charge(1)?;
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.budget.charge(1 + v.len())?;
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.budget.charge(1 + v.len())?;
        Ok(Value::String(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        match std::str::from_utf8(v) {
            Ok(s) => self.visit_str(s),
            Err(_) => Err(E::custom("byte string is not UTF-8")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        self.budget.charge(1)?;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(Seed {
            depth,
            budget: self.budget,
        })? {
            out.push(v);
        }
        Ok(Value::List(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.enter::<A::Error>()?;
        self.budget.charge(1)?;
        let mut out = Map::new();
        // Small mappings check duplicates by scanning; large ones by a set,
        // so a 100k-key mapping stays linear.
        let mut seen: Option<HashSet<String>> = None;
        while let Some(key) = map.next_key_seed(KeySeed)? {
            self.budget.charge(key.len())?;
            let dup = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => out.get(&key).is_some(),
            };
            if dup {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{key}` in a mapping"
                )));
            }
            if seen.is_none() && out.len() >= 32 {
                seen = Some(
                    out.keys()
                        .map(str::to_string)
                        .chain([key.clone()])
                        .collect(),
                );
            }
            let v = map.next_value_seed(Seed {
                depth,
                budget: self.budget,
            })?;
            out.push_unique(key.into(), v);
        }
        Ok(Value::Map(out))
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, _data: A) -> Result<Value, A::Error> {
        Err(de::Error::custom("YAML tags (`!name`) are not supported"))
    }
}

impl Seed<'_> {
    fn enter<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "lists and mappings nested deeper than {MAX_DEPTH} levels"
            )));
        }
        Ok(self.depth + 1)
    }
}

/// Mapping keys: strings; integers and booleans are taken as their text.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = String;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
}

impl<'de> Deserialize<'de> for Value {
    /// Reads any self-describing format with the depth limit; the node
    /// budget is only applied by [`parse_yaml`] and friends, which know the
    /// input size.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        let budget = Budget {
            used: Cell::new(0),
            max: usize::MAX,
        };
        Seed {
            depth: 0,
            budget: &budget,
        }
        .deserialize(d)
    }
}

/// Node budget for a text of `len` bytes: plenty for anything written out,
/// a hard stop for alias expansion.
fn budget_for(len: usize) -> Budget {
    Budget {
        used: Cell::new(0),
        max: len.saturating_mul(16).saturating_add(1 << 20),
    }
}

fn yaml_error(e: serde_norway::Error) -> CodecError {
    CodecError::Parse {
        format: "YAML",
        message: e.to_string(),
    }
}

/// Refuses flow collections (`[`, `{`) nested deeper than [`MAX_DEPTH`]
/// before the YAML parser sees them: libyaml's scanner takes time quadratic
/// in that depth, so `key: [[[[...` 100k deep would take minutes before the
/// depth limit of the value could apply. Quoted scalars, comments and the
/// text of block scalars (`|`, `>`) are skipped; block nesting is limited by
/// indentation and checked later.
fn check_flow_depth(text: &str) -> Result<(), CodecError> {
    /// Where a block scalar stands.
    #[derive(Clone, Copy)]
    enum Block {
        None,
        /// After `|`/`>` on a line indented this much: text follows if the
        /// next non-blank line is indented more.
        Pending(usize),
        /// Inside one: lines indented at least this much are its text.
        In(usize),
    }
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut block = Block::None;
    for (n, line) in text.split('\n').enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let blank = line.trim().is_empty();
        match block {
            Block::Pending(_) | Block::In(_) if blank => continue,
            Block::Pending(parent) if indent > parent => {
                block = Block::In(indent);
                continue;
            }
            Block::In(text_indent) if indent >= text_indent => continue,
            _ => block = Block::None,
        }
        let mut prev = '\n';
        for (col, (at, c)) in line.char_indices().enumerate() {
            if let Some(q) = quote {
                if escaped {
                    escaped = false;
                } else if q == '"' && c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            } else {
                match c {
                    '#' if prev.is_whitespace() => break,
                    '"' | '\'' if !prev.is_alphanumeric() => quote = Some(c),
                    '[' | '{' => {
                        depth += 1;
                        if depth > MAX_DEPTH {
                            return Err(CodecError::Parse {
                                format: "YAML",
                                message: format!(
                                    "lists and mappings nested deeper than {MAX_DEPTH} levels at line {} column {}",
                                    n + 1,
                                    col + 1
                                ),
                            });
                        }
                    }
                    ']' | '}' => depth = depth.saturating_sub(1),
                    '|' | '>' if depth == 0 && prev.is_whitespace() => {
                        // A block scalar header: indicator, then only
                        // chomping/indentation indicators and a comment.
                        let rest = line[at + 1..]
                            .trim_start_matches(|c: char| {
                                c == '-' || c == '+' || c.is_ascii_digit()
                            })
                            .trim_start();
                        if rest.is_empty() || rest.starts_with('#') {
                            block = Block::Pending(indent);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            prev = c;
        }
    }
    Ok(())
}

/// Parses one YAML document. An empty document is [`Value::Null`].
///
/// Limits: duplicate keys, nesting beyond [`MAX_DEPTH`], YAML tags, and alias
/// expansion beyond a budget proportional to the text are errors.
pub fn parse_yaml(text: &str) -> Result<Value, CodecError> {
    let mut docs = parse_yaml_documents(text)?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0)),
        n => Err(CodecError::Parse {
            format: "YAML",
            message: format!("expected one document, found {n} (separated by `---`)"),
        }),
    }
}

/// Parses every `---`-separated YAML document of `text`.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, CodecError> {
    check_flow_depth(text)?;
    let budget = budget_for(text.len());
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Seed {
            depth: 0,
            budget: &budget,
        }
        .deserialize(doc)
        .map_err(yaml_error)?;
        out.push(v);
    }
    Ok(out)
}

/// Parses a JSON text (one value).
pub fn parse_json(text: &str) -> Result<Value, CodecError> {
    let budget = budget_for(text.len());
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed {
        depth: 0,
        budget: &budget,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v))
    .map_err(|e| CodecError::Parse {
        format: "JSON",
        message: e.to_string(),
    })?;
    Ok(v)
}

fn utf8<'a>(bytes: &'a [u8], format: &'static str) -> Result<&'a str, CodecError> {
    std::str::from_utf8(bytes).map_err(|e| CodecError::NotUtf8 {
        format,
        offset: e.valid_up_to(),
    })
}

/// [`parse_yaml`] for raw bytes (a file's content): non-UTF-8 is an error.
pub fn parse_yaml_bytes(bytes: &[u8]) -> Result<Value, CodecError> {
    parse_yaml(utf8(bytes, "YAML")?)
}

/// [`parse_json`] for raw bytes: non-UTF-8 is an error.
pub fn parse_json_bytes(bytes: &[u8]) -> Result<Value, CodecError> {
    parse_json(utf8(bytes, "JSON")?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars_and_order() {
        let v =
            parse_yaml("b: 1\na: -2\nc: 0x10\nd: 1.5\ne: true\nf: ~\ng: 10.10.10.2\nh: [1, x]\n")
                .unwrap();
        let m = v.as_map().unwrap();
        assert_eq!(
            m.keys().collect::<Vec<_>>(),
            ["b", "a", "c", "d", "e", "f", "g", "h"]
        );
        assert_eq!(v.get("a"), Some(&Value::Int(-2)));
        assert_eq!(v.get("c"), Some(&Value::Int(16)));
        assert_eq!(v.get("d"), Some(&Value::Float(1.5)));
        assert_eq!(v.get("e"), Some(&Value::Bool(true)));
        assert_eq!(v.get("f"), Some(&Value::Null));
        assert_eq!(v.get("g"), Some(&Value::from("10.10.10.2")));
    }

    #[test]
    fn big_integers() {
        let v = parse_yaml("[170141183460469231731687303715884105727, 340282366920938463463374607431768211455, -170141183460469231731687303715884105728]").unwrap();
        assert_eq!(
            v,
            Value::List(vec![
                Value::Int(i128::MAX),
                Value::from("340282366920938463463374607431768211455"),
                Value::Int(i128::MIN),
            ])
        );
        // Round trip through YAML text.
        assert_eq!(parse_yaml(&v.to_yaml()).unwrap(), v);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let e = parse_yaml("a: 1\nb: 2\na: 3\n").unwrap_err().to_string();
        assert!(e.contains("duplicate key `a`"), "{e}");
        let e = parse_json(r#"{"a": 1, "a": 2}"#).unwrap_err().to_string();
        assert!(e.contains("duplicate key `a`"), "{e}");
        // Large mappings use the set.
        let mut text: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        text.push_str("k77: 0\n");
        let e = parse_yaml(&text).unwrap_err().to_string();
        assert!(e.contains("duplicate key `k77`"), "{e}");
    }

    #[test]
    fn depth_limit() {
        let deep = format!("{}1{}", "[".repeat(150), "]".repeat(150));
        let e = parse_json(&deep).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 100"), "{e}");
        let e = parse_yaml(&deep).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 100"), "{e}");
        let ok = format!("{}1{}", "[".repeat(99), "]".repeat(99));
        parse_json(&ok).unwrap();
        // Far deeper than any parser's own limit: still an error, no overflow.
        let very = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_json(&very).is_err());
        assert!(parse_yaml(&very).is_err());
    }

    /// The text of a block scalar is not YAML: brackets in it do not nest
    /// (found by fuzzing `decode`: a `char[]` holding `[[[[...` and a newline
    /// printed as `|-` did not read back). Deep flow after the block still
    /// counts.
    #[test]
    fn depth_check_skips_block_scalars() {
        let brackets = "[".repeat(150);
        for header in ["|", "|-", ">+", "|2", "| # note"] {
            let doc = format!("a:\n  - - {header}\n      {brackets}0\n\n      x\n    - y\nb: 1\n");
            let v = parse_yaml(&doc).unwrap_or_else(|e| panic!("{header}: {e}\n{doc}"));
            assert_eq!(v.get("b"), Some(&Value::Int(1)), "{header}");
        }
        let s = format!("{brackets}0\n&");
        let v = Value::List(vec![Value::List(vec![Value::String(s.clone())])]);
        assert_eq!(parse_yaml(&v.to_yaml()).unwrap(), v);
        // Less indented: the block has ended, and the flow counts.
        let doc = format!("a: |\n  text\nb: {}1{}\n", brackets, "]".repeat(150));
        let e = parse_yaml(&doc).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 100 levels at line 3"), "{e}");
        // `|` inside a flow collection or a plain scalar is no header.
        let doc = format!("a: [x, '|']\nb: c | d\n  {brackets}\n");
        let e = parse_yaml(&doc).unwrap_err().to_string();
        assert!(e.contains("nested deeper than 100 levels at line 3"), "{e}");
    }

    #[test]
    fn billion_laughs_fails_fast() {
        let mut doc = String::from("a0: &a0 [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let t = std::time::Instant::now();
        let e = parse_yaml(&doc).unwrap_err().to_string();
        // A bound against exponential expansion, not a speed target.
        assert!(t.elapsed() < std::time::Duration::from_secs(30));
        assert!(
            e.contains("repetition limit") || e.contains("alias bomb"),
            "{e}"
        );

        // Wide rather than deep: one big anchor aliased many times.
        let mut doc = format!("a: &a [{}]\nb: [", vec!["1"; 20_000].join(","));
        doc.push_str(&vec!["*a"; 2000].join(","));
        doc.push_str("]\n");
        let e = parse_yaml(&doc).unwrap_err().to_string();
        assert!(
            e.contains("alias bomb") || e.contains("repetition limit"),
            "{e}"
        );

        // Reasonable alias use still works.
        let v = parse_yaml("base: &r {ruleId: 1, action: 2}\nrules: [*r, *r]\n").unwrap();
        assert_eq!(v.get("rules").unwrap().as_list().unwrap().len(), 2);
    }

    #[test]
    fn not_utf8_and_tags_and_multi_docs() {
        let e = parse_yaml_bytes(b"a: \xff\xfe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid YAML: not UTF-8 (first bad byte at offset 3)"
        );
        assert!(parse_json_bytes(b"[1, \xc3]").is_err());
        let e = parse_yaml("a: !custom 1").unwrap_err().to_string();
        assert!(e.contains("tags"), "{e}");
        let docs = parse_yaml_documents("a: 1\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
        assert!(parse_yaml("a: 1\n---\nb: 2\n").is_err());
        assert_eq!(parse_yaml("").unwrap(), Value::Null);
        assert!(parse_json("{} x").is_err());
    }

    #[test]
    fn json_round_trip() {
        let v =
            parse_json(r#"{"x": [1, -2, "s", null, true, 2.5], "y": {"z": 18446744073709551615}}"#)
                .unwrap();
        assert_eq!(
            v.get("y").unwrap().get("z"),
            Some(&Value::Int(u64::MAX as i128))
        );
        assert_eq!(parse_json(&v.to_json()).unwrap(), v);
        assert_eq!(parse_yaml(&v.to_yaml()).unwrap(), v);
    }
}
