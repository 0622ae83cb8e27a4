//! The earlier Python tool's verbose template format.
//!
//! There every value is a node `{variable_name, type_name, size, kind,
//! input}`; structs list their fields under `member: [...]`, arrays give
//! their elements as `input: [...]` (with `totalSize`, `fillWithZeros`, and
//! the element's node under `member`), and the document may say
//! `byteOrder: reversed`, meaning integers are little-endian (any other
//! value: big-endian). [`to_concise`] turns such a document into the concise
//! form this crate encodes, plus the byte order to encode with
//! ([`crate::CodecOptions::byte_order`]).
//!
//! ```
//! use ebpf_sdk_codec::{legacy, parse_yaml};
//! use ebpf_sdk_schema::ByteOrder;
//!
//! let doc = parse_yaml(r#"
//! key:
//!   variable_name: k
//!   kind: STRUCT
//!   member:
//!   - {variable_name: prefixLen, type_name: unsigned int, size: 4, kind: INT, input: 64}
//!   - {variable_name: ip_data, kind: ARRAY, input: [10, 10, 10, 2], totalSize: 16, fillWithZeros: true,
//!      member: {type_name: unsigned char, size: 1, kind: INT, input: null}}
//! byteOrder: reversed
//! "#).unwrap();
//! assert!(legacy::is_legacy(&doc));
//! let (concise, order) = legacy::to_concise(&doc).unwrap();
//! assert_eq!(order, Some(ByteOrder::Little));
//! assert_eq!(concise, parse_yaml("key: {prefixLen: 64, ip_data: [10, 10, 10, 2]}").unwrap());
//! ```

use ebpf_sdk_schema::ByteOrder;

use crate::{CodecError, Map, Value};

/// Whether `doc` is in the legacy format: it is a node (has `kind` plus
/// `variable_name`, `type_name`, `input` or `member`), or a mapping with
/// `byteOrder` or whose `key`/`value` is a node.
pub fn is_legacy(doc: &Value) -> bool {
    if is_node(doc) {
        return true;
    }
    match doc {
        Value::Map(m) => {
            m.get("byteOrder").is_some()
                || m.get("key").is_some_and(is_node)
                || m.get("value").is_some_and(is_node)
        }
        _ => false,
    }
}

fn is_node(v: &Value) -> bool {
    match v {
        Value::Map(m) => {
            m.get("kind").is_some()
                && ["variable_name", "type_name", "input", "member"]
                    .iter()
                    .any(|k| m.get(k).is_some())
        }
        _ => false,
    }
}

fn err(path: &str, reason: impl Into<String>) -> CodecError {
    CodecError::Legacy {
        path: if path.is_empty() {
            "document".into()
        } else {
            path.to_string()
        },
        reason: reason.into(),
    }
}

/// Converts a legacy document (or a single legacy node) to the concise
/// format, and returns the byte order its `byteOrder` asks for: `reversed`
/// is little-endian, any other value big-endian, no `byteOrder` (or null)
/// `None`. Top-level entries that are not nodes are kept as they are;
/// `input: null` leaves (and struct members converting to null) are
/// dropped, so they are zero and a union keeps only the member given.
pub fn to_concise(doc: &Value) -> Result<(Value, Option<ByteOrder>), CodecError> {
    if is_node(doc) {
        return Ok((node(doc, "", None)?, None));
    }
    let Value::Map(m) = doc else {
        return Err(err(
            "",
            format!(
                "expected a mapping with key/value nodes, got {}",
                doc.describe()
            ),
        ));
    };
    let mut order = None;
    let mut out = Map::with_capacity(m.len());
    for (k, v) in m.iter() {
        if k == "byteOrder" {
            order = match v {
                Value::Null => None,
                Value::String(s) if s == "reversed" => Some(ByteOrder::Little),
                _ => Some(ByteOrder::Big),
            };
        } else if is_node(v) {
            out.insert(k, node(v, k, None)?);
        } else {
            out.insert(k, v.clone());
        }
    }
    Ok((Value::Map(out), order))
}

fn field<'a>(m: &'a Map, name: &str) -> Option<&'a Value> {
    m.get(name).filter(|v| !matches!(v, Value::Null))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Converts one node; `default_kind` is the kind of an array's element
/// template, for elements written without their own `kind`.
fn node(v: &Value, path: &str, default_kind: Option<&str>) -> Result<Value, CodecError> {
    let Value::Map(m) = v else {
        return Ok(v.clone());
    };
    let kind = match field(m, "kind") {
        Some(Value::String(k)) => k.to_ascii_uppercase(),
        Some(other) => {
            return Err(err(
                path,
                format!("`kind` must be a string, got {}", other.describe()),
            ))
        }
        None => match default_kind {
            Some(k) => k.to_ascii_uppercase(),
            None if field(m, "member").is_some_and(|x| matches!(x, Value::List(_))) => {
                "STRUCT".into()
            }
            None => "INT".into(),
        },
    };
    match kind.as_str() {
        "STRUCT" | "UNION" => {
            let members = match field(m, "member") {
                None => return Ok(Value::Null),
                Some(Value::List(l)) => l,
                Some(other) => {
                    return Err(err(
                        path,
                        format!(
                            "`member` of a {kind} must be a list, got {}",
                            other.describe()
                        ),
                    ))
                }
            };
            let mut out = Map::with_capacity(members.len());
            for (i, mem) in members.iter().enumerate() {
                let Some(Value::Map(mm)) = Some(mem) else {
                    return Err(err(
                        &format!("{path}.member[{i}]"),
                        "expected a member node",
                    ));
                };
                let name = match field(mm, "variable_name") {
                    Some(Value::String(n)) => n.clone(),
                    _ => {
                        return Err(err(
                            &format!("{path}.member[{i}]"),
                            "member without `variable_name`",
                        ))
                    }
                };
                let converted = node(mem, &join(path, &name), None)?;
                if !matches!(converted, Value::Null) {
                    if out.get(&name).is_some() {
                        return Err(err(&join(path, &name), "member given twice"));
                    }
                    out.insert(name, converted);
                }
            }
            Ok(if out.is_empty() {
                Value::Null
            } else {
                Value::Map(out)
            })
        }
        "ARRAY" => {
            let elem_kind = match field(m, "member") {
                Some(Value::Map(em)) => match field(em, "kind") {
                    Some(Value::String(k)) => Some(k.clone()),
                    _ => None,
                },
                _ => None,
            };
            match field(m, "input") {
                Some(Value::List(items)) => {
                    let out = items
                        .iter()
                        .enumerate()
                        .map(|(i, it)| node(it, &format!("{path}[{i}]"), elem_kind.as_deref()))
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(Value::List(out))
                }
                // A string (address, text, hex) for the whole array.
                Some(other) => Ok(other.clone()),
                None => match field(m, "member") {
                    // Element nodes listed under `member`.
                    Some(Value::List(items)) => {
                        let out = items
                            .iter()
                            .enumerate()
                            .map(|(i, it)| node(it, &format!("{path}[{i}]"), None))
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(if out.iter().all(|x| matches!(x, Value::Null)) {
                            Value::Null
                        } else {
                            Value::List(out)
                        })
                    }
                    _ => Ok(Value::Null),
                },
            }
        }
        _ => Ok(field(m, "input").cloned().unwrap_or(Value::Null)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_yaml;

    #[test]
    fn byte_order_values() {
        let order = |s: &str| to_concise(&parse_yaml(s).unwrap()).unwrap().1;
        assert_eq!(order("byteOrder: reversed"), Some(ByteOrder::Little));
        assert_eq!(order("byteOrder: normal"), Some(ByteOrder::Big));
        assert_eq!(order("byteOrder: 1"), Some(ByteOrder::Big));
        assert_eq!(order("byteOrder: ~"), None);
        assert_eq!(order("key: {kind: INT, input: 3}"), None);
    }

    #[test]
    fn unions_keep_only_the_member_given() {
        let doc = parse_yaml(
            r#"
value:
  variable_name: cfg
  kind: STRUCT
  member:
  - variable_name: addr
    kind: UNION
    member:
    - {variable_name: v4, kind: INT, size: 4, input: null}
    - {variable_name: v6, kind: ARRAY, input: [1, 2], member: {kind: INT, size: 1}}
  - {variable_name: name, kind: ARRAY, input: "eth0", member: {kind: CHAR, size: 1}}
  - variable_name: rules
    kind: ARRAY
    input:
    - member: [{variable_name: ruleId, kind: INT, input: 1}]
    - {kind: STRUCT, member: [{variable_name: ruleId, kind: INT, input: 2}]}
    member: {kind: STRUCT}
other: 5
"#,
        )
        .unwrap();
        let (v, order) = to_concise(&doc).unwrap();
        assert_eq!(order, None);
        assert_eq!(
            v,
            parse_yaml("value: {addr: {v6: [1, 2]}, name: eth0, rules: [{ruleId: 1}, {ruleId: 2}]}\nother: 5").unwrap()
        );
    }

    #[test]
    fn errors_name_the_place() {
        let e = to_concise(
            &parse_yaml("key: {kind: STRUCT, member: [{kind: INT, input: 1}]}").unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "key.member[0]: legacy template: member without `variable_name`"
        );
        let e = to_concise(&parse_yaml("key: {kind: STRUCT, member: 3}").unwrap()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "key: legacy template: `member` of a STRUCT must be a list, got 3"
        );
        assert!(to_concise(&parse_yaml("[1]").unwrap()).is_err());
        assert!(!is_legacy(&parse_yaml("key: {prefixLen: 1}").unwrap()));
    }
}
