//! YAML in the block style `dump -o yaml` prints, rewritten as compact
//! JSON text, without a YAML parser.
//!
//! A list of a million entries from `dump -o yaml` took libyaml (and the
//! pure-Rust YAML parsers, measured in `docs/performance.md`) 15-30 times
//! as long as the same entries as JSON Lines. Bulk YAML is nearly always
//! that one shape: block mappings and sequences indented by two spaces,
//! decimal integers, identifiers as keys and a few plain or single-quoted
//! strings. [`block_yaml_to_json`] reads exactly that shape and writes the
//! same value as JSON, which the JSON fast path then encodes; it gives up
//! on anything else (comments, flow collections other than `[]` and `{}`,
//! double quotes, anchors, tags, numbers in other forms, odd indentation),
//! and the caller parses the text with libyaml instead.
//!
//! Giving up is always safe; accepting is exact: whenever this returns
//! `true`, `parse_json(json)` equals `parse_yaml(text)` (property tests
//! in this file and the `fast_json` fuzz target check it), so every rule
//! of libyaml and of the scalar resolution of serde_norway that applies to
//! the text applies unchanged.

/// Deepest nesting this reads; deeper text is left to the general parser.
const MAX_NEST: usize = 64;

/// One line of the text: its indentation and the content after it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

struct Doc<'a> {
    lines: Vec<Line<'a>>,
    /// The next line to read.
    at: usize,
    /// Keys of the mappings being read, innermost last (for duplicates).
    keys: Vec<&'a str>,
}

/// Rewrites one YAML document (`text`, as [`crate::parse_yaml`] takes it)
/// into `out` as compact JSON of the same value. Returns `false` when the
/// text is not in the plain block style this reads; `out` then holds
/// nothing of use.
pub fn block_yaml_to_json(text: &str, out: &mut Vec<u8>) -> bool {
    out.clear();
    let Some(lines) = split_lines(text) else {
        return false;
    };
    if lines.is_empty() || lines[0].indent != 0 {
        return false;
    }
    let mut doc = Doc {
        lines,
        at: 0,
        keys: Vec::new(),
    };
    let first = doc.lines[0];
    doc.node(first.text, 0, 0, out).is_some() && doc.at == doc.lines.len()
}

/// The lines of `text`, or `None` for anything this does not read: tabs,
/// carriage returns, comments (any `#`), blank lines, trailing spaces, a
/// document marker, or a last line without its newline... which is fine.
fn split_lines(text: &str) -> Option<Vec<Line<'_>>> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() || body.bytes().any(|b| matches!(b, b'\t' | b'\r' | b'#')) {
        return None;
    }
    let mut lines = Vec::with_capacity(body.len() / 16 + 1);
    for l in body.split('\n') {
        let t = l.trim_start_matches(' ');
        if t.is_empty() || t.ends_with(' ') || t.starts_with("---") || t.starts_with("...") {
            return None;
        }
        lines.push(Line {
            indent: l.len() - t.len(),
            text: t,
        });
    }
    Some(lines)
}

impl<'a> Doc<'a> {
    /// The node whose text starts with `t` at column `col` of the current
    /// line (the line itself, or what follows its `- `).
    fn node(&mut self, t: &'a str, col: usize, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        if depth > MAX_NEST {
            return None;
        }
        if t.starts_with("- ") {
            self.sequence(col, depth, out)
        } else if key_of(t).is_some() {
            self.mapping(t, col, depth, out)
        } else {
            // A scalar alone: the node is this one line.
            scalar(t, out)?;
            self.at += 1;
            Some(())
        }
    }

    /// A block sequence whose first `- ` is at column `col` of the current
    /// line; its items follow on lines indented exactly `col`.
    fn sequence(&mut self, col: usize, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        out.push(b'[');
        let mut first = true;
        // The first item's line may be a mapping line whose `- ` starts
        // after its indentation (`- - x` is not read here).
        let mut t = self.current_from(col)?;
        loop {
            let item = t.strip_prefix("- ")?;
            if !first {
                out.push(b',');
            }
            first = false;
            if item.starts_with("- ") {
                return None;
            }
            self.node(item, col + 2, depth + 1, out)?;
            match self.lines.get(self.at) {
                Some(l) if l.indent == col && l.text.starts_with("- ") => t = l.text,
                // Lines indented more that no item took: not this shape.
                Some(l) if l.indent > col => return None,
                _ => break,
            }
        }
        out.push(b']');
        Some(())
    }

    /// A block mapping whose first `key:` is at column `col` of the current
    /// line; its other keys start lines indented exactly `col`.
    fn mapping(&mut self, t: &'a str, col: usize, depth: usize, out: &mut Vec<u8>) -> Option<()> {
        out.push(b'{');
        let mut t = t;
        let mut first = true;
        let outer = self.keys.len();
        loop {
            let (key, rest) = key_of(t)?;
            // A key given twice is an error libyaml's reader reports.
            if self.keys[outer..].contains(&key) {
                return None;
            }
            self.keys.push(key);
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            if rest.is_empty() {
                // `key:` then the value on the next lines: a sequence at
                // this column, or a node indented more.
                self.at += 1;
                let next = *self.lines.get(self.at)?;
                if next.indent == col && next.text.starts_with("- ") {
                    self.sequence(col, depth + 1, out)?;
                } else if next.indent > col {
                    self.node(next.text, next.indent, depth + 1, out)?;
                } else {
                    // An empty value (null): dump never writes one.
                    return None;
                }
            } else {
                scalar(rest.strip_prefix(' ')?, out)?;
                self.at += 1;
            }
            match self.lines.get(self.at) {
                Some(l) if l.indent == col && !l.text.starts_with("- ") => t = l.text,
                Some(l) if l.indent > col => return None,
                _ => break,
            }
        }
        out.push(b'}');
        self.keys.truncate(outer);
        Some(())
    }

    /// The current line's text from column `col` (which must be where its
    /// indentation ends, or inside a `- ` prefix on it).
    fn current_from(&self, col: usize) -> Option<&'a str> {
        let l = self.lines.get(self.at)?;
        if col == l.indent {
            Some(l.text)
        } else {
            // Column `col` lies after one or more `- ` on this line.
            l.text.get(col.checked_sub(l.indent)?..)
        }
    }
}

/// `name:` or `name: rest` with a name that is a plain identifier (and not
/// a word YAML reads as null or a boolean): the name and what follows the
/// colon.
fn key_of(t: &str) -> Option<(&str, &str)> {
    let end = t
        .bytes()
        .position(|b| !(b.is_ascii_alphanumeric() || b == b'_'))?;
    let (key, rest) = t.split_at(end);
    let rest = rest.strip_prefix(':')?;
    let first = *key.as_bytes().first()?;
    if !(first.is_ascii_alphabetic() || first == b'_') || is_special_word(key) {
        return None;
    }
    // `key:x` is a plain scalar, not a key.
    (rest.is_empty() || rest.starts_with(' ')).then_some((key, rest))
}

/// Words serde_norway reads as null or a boolean.
fn is_special_word(w: &str) -> bool {
    matches!(
        w,
        "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
    )
}

/// A scalar to the end of the line as JSON: `null`, `true`, `false`, a
/// decimal integer, `[]`, `{}`, a single-quoted string without quotes in it,
/// or a plain string that cannot be read as anything else.
fn scalar(t: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = t.as_bytes();
    match t {
        "null" | "true" | "false" | "[]" | "{}" => {
            out.extend_from_slice(b);
            return Some(());
        }
        _ => {}
    }
    if is_decimal(b) {
        out.extend_from_slice(b);
        return Some(());
    }
    let s = if let Some(inner) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        // Printable ASCII that JSON writes as it is; no '' escapes.
        inner
            .bytes()
            .all(|c| (0x20..0x7f).contains(&c) && !matches!(c, b'\'' | b'"' | b'\\'))
            .then_some(inner)?
    } else {
        plain_string(b).then_some(t)?
    };
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
    Some(())
}

/// `0`, or a decimal integer without a leading zero, optionally negative,
/// of at most 18 digits (so within 64 bits both as YAML and as JSON).
fn is_decimal(b: &[u8]) -> bool {
    let d = b.strip_prefix(b"-").unwrap_or(b);
    !d.is_empty()
        && d.len() <= 18
        && d.iter().all(u8::is_ascii_digit)
        && (d[0] != b'0' || (d.len() == 1 && d.len() == b.len()))
}

/// A plain scalar that serde_norway reads as a string and JSON writes as it
/// is: letters, digits and `_.:/-` only, not ending in `:`, and either
/// starting with a letter (and not a null or boolean word: no number or
/// float starts with a letter), or starting with a digit and holding a `:`
/// or `/` or two `.` (addresses: no number or float has those).
fn plain_string(b: &[u8]) -> bool {
    let Some(&first) = b.first() else {
        return false;
    };
    if !b
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'/' | b'-'))
        || b.ends_with(b":")
    {
        return false;
    }
    if first.is_ascii_alphabetic() {
        // The text is ASCII: a str.
        return !is_special_word(std::str::from_utf8(b).unwrap_or("null"));
    }
    first.is_ascii_digit()
        && (b.contains(&b':') || b.contains(&b'/') || b.iter().filter(|c| **c == b'.').count() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_json, parse_yaml, Map, Value};
    use proptest::prelude::*;

    fn json_of(text: &str) -> Option<String> {
        let mut out = Vec::new();
        block_yaml_to_json(text, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    /// Whenever the text is taken, its JSON is the YAML's value.
    fn check(text: &str) -> Result<bool, TestCaseError> {
        let Some(json) = json_of(text) else {
            return Ok(false);
        };
        let yaml = parse_yaml(text);
        prop_assert!(
            yaml.is_ok(),
            "taken but not YAML: {text:?} -> {json}: {yaml:?}"
        );
        prop_assert_eq!(parse_json(&json).ok(), yaml.ok(), "{:?} -> {}", text, json);
        Ok(true)
    }

    #[test]
    fn dump_shapes_are_read() {
        let item = "- key:\n    prefixLen: 160\n    ip_data: fd00:0:0:1::5\n  value:\n    rules:\n    - ruleId: 9\n      protocol: 17\n    - ruleId: -10\n      x: []\n    pad:\n    - 0\n    - 0\n";
        assert_eq!(
            json_of(item).as_deref(),
            Some(
                r#"[{"key":{"prefixLen":160,"ip_data":"fd00:0:0:1::5"},"value":{"rules":[{"ruleId":9,"protocol":17},{"ruleId":-10,"x":[]}],"pad":[0,0]}}]"#
            )
        );
        check(item).unwrap();
        let quoted = "- key:\n    ip_data: 'fd00:0:0:1::'\n  value: {}\n";
        assert_eq!(
            json_of(quoted).as_deref(),
            Some(r#"[{"key":{"ip_data":"fd00:0:0:1::"},"value":{}}]"#)
        );
        assert_eq!(
            json_of("key: 10.0.0.1\nvalue: null\n").as_deref(),
            Some(r#"{"key":"10.0.0.1","value":null}"#)
        );
        // Left to libyaml: numbers it reads otherwise, comments, quotes,
        // flow collections, anchors, odd indentation.
        for t in [
            "a: 0x10\n",
            "a: 1.5\n",
            "a: 007\n",
            "a: 1e3\n",
            "a: 10.5\n",
            "a: yes # no\n",
            "a: \"x\"\n",
            "a: [1]\n",
            "a: &x 1\n",
            "a:\n   b: 1\n  c: 2\n",
            "a: 'it''s'\n",
            "a:\n",
            "- - 1\n",
            "a: b: c\n",
            "a: fd00::\n",
            "a: .5\n",
            "a: ~\n",
            "True: 1\n",
            "a: 1\n\nb: 2\n",
            "a: 1 \n",
            "a:\tb\n",
            "a: 12345678901234567890\n",
        ] {
            assert_eq!(json_of(t), None, "{t:?}");
        }
    }

    /// Values in the shapes `dump` prints, and some it does not.
    fn value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
            Just("null".to_string()),
            Just("true".to_string()),
            Just("1".to_string()),
        ];
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::from),
            (0u64..1000).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            "[a-zA-Z0-9_.:/ '-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("10.0.0.1"),
                Just("fd00::1"),
                Just("fd00::"),
                Just("0x1f"),
                Just("1.5"),
                Just("007"),
                Just("true"),
                Just("null"),
                Just("nan"),
                Just("inf"),
                Just("1e5"),
                Just("2001:db8::1"),
                Just("a: b"),
            ]
            .prop_map(Value::from),
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Float(1.5)),
        ];
        leaf.prop_recursive(5, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::List),
                proptest::collection::vec((key.clone(), inner), 0..5)
                    .prop_map(|kv| Value::Map(kv.into_iter().collect::<Map>())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn printed_yaml_reads_back_as_the_same_json(v in value()) {
            let text = v.to_yaml();
            check(&text)?;
            let entry = Value::List(vec![v.clone()]).to_yaml();
            check(&entry)?;
        }

        #[test]
        fn edited_yaml_is_taken_only_when_equal(
            v in value(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..7), 1..4),
        ) {
            let mut text = v.to_yaml().into_bytes();
            for (at, what) in edits {
                if text.is_empty() {
                    break;
                }
                let i = at.index(text.len());
                let inserted = [b' ', b'-', b':', b'\n', b'0', b'\''][what % 6];
                match what {
                    6 => { text.remove(i); }
                    _ => text.insert(i, inserted),
                }
            }
            if let Ok(t) = String::from_utf8(text) {
                check(&t)?;
            }
        }
    }
}
