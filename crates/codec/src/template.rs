//! A commented YAML skeleton of a map's key and value.

use ebpf_sdk_schema::{ByteOrder, Format, MapSchema, Member, TypeKind, TypeNode};

use crate::plan::{addr_text, choose_alternative, AddrText};
use crate::sugar::range_text;

/// One output line: indentation, text, comment.
struct Line {
    indent: usize,
    text: String,
    comment: String,
}

/// A node's YAML: on the same line as its name, or as a block under it.
enum Shape {
    Inline(String),
    Block(Vec<Line>),
}

/// Writes a YAML skeleton of the map's key and value in the concise format,
/// every field present with a zero (or zero-valued enum variant) and a
/// comment giving its C type, size and the forms it accepts. Parsing it and
/// encoding its `key` and `value` works unchanged and gives all-zero bytes.
///
/// A map user space never writes entries into (a ring buffer, a user ring
/// buffer, an arena, a perf event array: [`MapType::nothing_to_write`])
/// gets no entry, only comments saying what it is for and what reads it.
///
/// [`MapType::nothing_to_write`]: ebpf_sdk_schema::MapType::nothing_to_write
pub fn template(schema: &MapSchema) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "# {}: {} (key {} B, value {} B, max_entries {})\n",
        schema.name, schema.map_type, schema.key_size, schema.value_size, schema.max_entries
    ));
    if let Some(why) = schema.map_type.nothing_to_write() {
        let mut text = format!("Nothing to write: {why}.");
        if let Some(r) = &schema.record {
            text.push_str(&format!(
                " Each record is a {}; `ebpf-sdk events` decodes them with it.",
                ty_text(r)
            ));
        }
        comment_lines(&text, &mut out);
        return out;
    }
    out.push_str("# Fields left out (or null) are zero; lists shorter than their array are\n");
    out.push_str(
        "# zero-filled; unknown fields are errors. Integers: 10, -3, 0x1f, 0o17, 0b101.\n",
    );
    if schema.map_type.per_cpu() {
        out.push_str("# Per-CPU map: one value sets every CPU; a list of values sets one per possible CPU.\n");
    }
    let mut lines = Vec::new();
    side(
        &mut lines,
        "key",
        schema.key.as_ref(),
        schema.key_size,
        schema.endian,
        "",
    );
    let note = if schema.map_type.per_cpu() {
        "per CPU; "
    } else {
        ""
    };
    side(
        &mut lines,
        "value",
        schema.value.as_ref(),
        schema.value_size,
        schema.endian,
        note,
    );
    render(&lines, &mut out);
    out
}

/// `text` as `# ` comment lines of at most 78 characters.
fn comment_lines(text: &str, out: &mut String) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 78 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

fn side(
    lines: &mut Vec<Line>,
    name: &str,
    t: Option<&TypeNode>,
    size: u32,
    endian: ByteOrder,
    note: &str,
) {
    match t {
        Some(t) => entry(lines, 0, name, t, None, endian, note),
        None if size > 0 => lines.push(Line {
            indent: 0,
            text: format!("{name}: null"),
            comment: format!("{note}{size} B without type information: a 0x hex string or a list of exactly {size} bytes"),
        }),
        None => lines.push(Line {
            indent: 0,
            text: String::new(),
            comment: format!("this map has no {name}"),
        }),
    }
}

fn render(lines: &[Line], out: &mut String) {
    let width = lines
        .iter()
        .filter(|l| !l.comment.is_empty() && !l.text.is_empty())
        .map(|l| l.indent + l.text.len())
        .filter(|w| *w <= 40)
        .max()
        .unwrap_or(0);
    for l in lines {
        let mut s = " ".repeat(l.indent);
        s.push_str(&l.text);
        if !l.comment.is_empty() {
            if l.text.is_empty() {
                s.push_str("# ");
            } else {
                let pad = width.saturating_sub(s.len()) + 2;
                s.push_str(&" ".repeat(pad));
                s.push_str("# ");
            }
            s.push_str(&l.comment);
        }
        out.push_str(s.trim_end());
        out.push('\n');
    }
}

/// `name: ...` for a field of type `t` at `indent`.
fn entry(
    lines: &mut Vec<Line>,
    indent: usize,
    name: &str,
    t: &TypeNode,
    bits: Option<u32>,
    endian: ByteOrder,
    note: &str,
) {
    let (shape, comment) = shape(t, bits, endian);
    let key = yaml_key(name);
    match shape {
        Shape::Inline(v) => lines.push(Line {
            indent,
            text: format!("{key}: {v}"),
            comment: format!("{note}{comment}"),
        }),
        Shape::Block(inner) => {
            lines.push(Line {
                indent,
                text: format!("{key}:"),
                comment: format!("{note}{comment}"),
            });
            lines.extend(inner.into_iter().map(|l| Line {
                indent: l.indent + indent + 2,
                ..l
            }));
        }
    }
}

fn yaml_key(name: &str) -> String {
    let special = matches!(
        name.to_ascii_lowercase().as_str(),
        "null" | "true" | "false" | "~" | "yes" | "no" | "on" | "off" | "y" | "n" | ""
    ) || name
        .starts_with(|c: char| c.is_ascii_digit() || "-?:,[]{}#&*!|>'\"%@`".contains(c))
        || name.contains(": ")
        || name.contains(" #");
    if special {
        format!("{name:?}")
    } else {
        name.to_string()
    }
}

fn ty_text(t: &TypeNode) -> String {
    match t.typedefs.first() {
        Some(td) => format!("{td} = {}, {} B", t.name, t.size),
        None => format!("{}, {} B", t.name, t.size),
    }
}

fn shape(t: &TypeNode, bits: Option<u32>, endian: ByteOrder) -> (Shape, String) {
    let ty = ty_text(t);
    match &t.kind {
        TypeKind::Int {
            signed,
            byte_order,
            format,
            ..
        } => {
            let width = bits.unwrap_or(t.size * 8);
            let mut c = match bits {
                Some(w) => format!("{w}-bit field of {ty}, {}", range_text(w, *signed)),
                None => format!("{ty}, {}", range_text(width.min(128), *signed)),
            };
            if *byte_order == Some(ByteOrder::Big) && endian != ByteOrder::Big && bits.is_none() {
                c.push_str(", big-endian");
            }
            let addressy = *format == Some(Format::Ip) || *byte_order == Some(ByteOrder::Big);
            let v = if bits.is_none() && t.size == 4 && addressy {
                c.push_str("; or an IPv4 address");
                if *format == Some(Format::Ip) {
                    "0.0.0.0"
                } else {
                    "0"
                }
            } else {
                if bits.is_none() && t.size == 16 {
                    c.push_str("; or ");
                    c.push_str(AddrText::V6.forms());
                }
                "0"
            };
            (Shape::Inline(v.into()), c)
        }
        TypeKind::Bool => {
            let what = bits.map_or(String::new(), |w| format!("{w}-bit field of "));
            (
                Shape::Inline("false".into()),
                format!("{what}{ty}: true or false (or 0, 1)"),
            )
        }
        // Unambiguously an address: written as one.
        TypeKind::Struct { .. }
            if t.name == "struct in6_addr" && addr_text(t) == Some(AddrText::In6) =>
        {
            (
                Shape::Inline("\"::\"".into()),
                format!("{ty}: {}", AddrText::In6.forms()),
            )
        }
        TypeKind::Struct { .. }
            if t.name == "struct in_addr" && addr_text(t) == Some(AddrText::V4) =>
        {
            (
                Shape::Inline("0.0.0.0".into()),
                format!("{ty}: {}", AddrText::V4.forms()),
            )
        }
        TypeKind::Float => (Shape::Inline("0.0".into()), ty),
        TypeKind::Pointer => (
            Shape::Inline("0".into()),
            format!("{ty}: an address as a number"),
        ),
        TypeKind::Enum { variants, .. } => {
            let zero = variants
                .iter()
                .find(|v| v.value == 0)
                .map_or("0".to_string(), |v| v.name.clone());
            let list: Vec<String> = variants
                .iter()
                .map(|v| format!("{} ({})", v.name, v.value))
                .collect();
            let what = bits.map_or(String::new(), |w| format!("{w}-bit field of "));
            (
                Shape::Inline(zero),
                format!("{what}{ty}: {} or a number", list.join(" | ")),
            )
        }
        TypeKind::Opaque => {
            let v = if t.size <= 16 {
                format!("\"0x{}\"", "00".repeat(t.size as usize))
            } else {
                "null".into()
            };
            (
                Shape::Inline(v),
                format!(
                    "{ty}, no type information: a 0x hex string or a list of exactly {} bytes",
                    t.size
                ),
            )
        }
        TypeKind::Struct { members } => {
            let mut lines = Vec::new();
            fields(&mut lines, members, endian);
            let ty = match addr_text(t) {
                Some(a) => format!("{ty}; or {}", a.forms()),
                None => ty,
            };
            if lines.is_empty() {
                (Shape::Inline("{}".into()), ty)
            } else {
                (Shape::Block(lines), ty)
            }
        }
        TypeKind::Union { members } => {
            let names: Vec<String> = members.iter().map(alt_name).collect();
            let mut comment = format!("{ty}: give exactly one of {}", names.join(", "));
            if let Some(a) = addr_text(t) {
                comment.push_str("; or ");
                comment.push_str(a.forms());
            }
            match choose_alternative(members, t.size) {
                Some(i) => {
                    let mut lines = Vec::new();
                    member(&mut lines, &members[i], endian);
                    (Shape::Block(lines), comment)
                }
                None => (Shape::Inline("null".into()), comment),
            }
        }
        TypeKind::Array {
            len,
            element,
            format,
        } => array_shape(t, *len, element, *format, endian),
    }
}

fn array_shape(
    t: &TypeNode,
    len: u32,
    element: &TypeNode,
    format: Option<Format>,
    endian: ByteOrder,
) -> (Shape, String) {
    let ty = ty_text(t);
    let byte_elem = element.size == 1 && matches!(element.kind, TypeKind::Int { .. });
    let text = byte_elem
        && (matches!(element.kind, TypeKind::Int { char: true, .. })
            || format == Some(Format::String));
    if text {
        return (
            Shape::Inline("\"\"".into()),
            format!(
                "{ty}: a string of up to {len} bytes (NUL-padded) or a list of up to {len} numbers"
            ),
        );
    }
    if byte_elem {
        let mut addr = Vec::new();
        if len >= 4 {
            addr.push(if len >= 16 {
                "an IPv4/IPv6 address"
            } else {
                "an IPv4 address"
            });
        }
        if len >= 6 {
            addr.push("a MAC address");
        }
        let (v, lead) = match format {
            Some(Format::Ip) if len >= 4 => ("0.0.0.0".to_string(), addr[0].to_string()),
            Some(Format::Mac) if len >= 6 => (
                "\"00:00:00:00:00:00\"".to_string(),
                "a MAC address".to_string(),
            ),
            Some(Format::Hex) => (
                format!("\"0x{}\"", "00".repeat(len as usize)),
                format!("0x hex (up to {len} bytes)"),
            ),
            _ => {
                let mut forms = vec![format!("0x hex (up to {len} bytes)")];
                forms.extend(addr.iter().map(|s| s.to_string()));
                ("[]".to_string(), forms.join(", "))
            }
        };
        let rest = if v.starts_with('0') || v.starts_with("\"00:") {
            ", 0x hex"
        } else {
            ""
        };
        return (
            Shape::Inline(v),
            format!("{ty}: {lead}{rest} or a list of up to {len} numbers; the rest is zero"),
        );
    }
    let what = match &element.kind {
        TypeKind::Struct { .. } => "structs",
        TypeKind::Union { .. } => "unions",
        TypeKind::Array { .. } => "lists",
        TypeKind::Enum { .. } => "variant names or numbers",
        TypeKind::Bool => "booleans",
        _ => "numbers",
    };
    let each = if matches!(element.kind, TypeKind::Array { .. }) {
        format!(" (each {})", element.display_name())
    } else {
        String::new()
    };
    let mut comment =
        format!("{ty}: a list of up to {len} {what}{each}; missing elements are zero");
    if let (TypeKind::Int { .. }, Some(a)) = (&element.kind, addr_text(t)) {
        comment.push_str("; or ");
        comment.push_str(a.forms());
    }
    match &element.kind {
        TypeKind::Struct { .. } | TypeKind::Union { .. } if len > 0 => {
            let (shape, ecomment) = shape(element, None, endian);
            let mut lines = Vec::new();
            match shape {
                Shape::Inline(v) => lines.push(Line {
                    indent: 0,
                    text: format!("- {v}"),
                    comment: ecomment,
                }),
                Shape::Block(inner) => {
                    // `- ` before the first line, the rest indented under it.
                    for (i, l) in inner.into_iter().enumerate() {
                        if i == 0 && l.indent == 0 && !l.text.is_empty() {
                            lines.push(Line {
                                indent: 0,
                                text: format!("- {}", l.text),
                                comment: l.comment,
                            });
                        } else {
                            if i == 0 {
                                lines.push(Line {
                                    indent: 0,
                                    text: "-".into(),
                                    comment: String::new(),
                                });
                            }
                            lines.push(Line {
                                indent: l.indent + 2,
                                ..l
                            });
                        }
                    }
                }
            }
            (Shape::Block(lines), comment)
        }
        _ => (Shape::Inline("[]".into()), comment),
    }
}

fn alt_name(m: &Member) -> String {
    if m.name.is_empty() {
        let mut inner = Vec::new();
        if let TypeKind::Struct { members } | TypeKind::Union { members } = &m.ty.kind {
            inner = members.iter().map(alt_name).collect();
        }
        format!("{{{}}}", inner.join(", "))
    } else {
        m.name.clone()
    }
}

/// The lines of a struct's fields (anonymous members flattened).
fn fields(lines: &mut Vec<Line>, members: &[Member], endian: ByteOrder) {
    for m in members {
        member(lines, m, endian);
    }
}

fn member(lines: &mut Vec<Line>, m: &Member, endian: ByteOrder) {
    if !m.name.is_empty() {
        entry(lines, 0, &m.name, &m.ty, m.bit_size, endian, "");
        return;
    }
    match &m.ty.kind {
        TypeKind::Struct { members } => fields(lines, members, endian),
        TypeKind::Union { members } => {
            let names: Vec<String> = members.iter().map(alt_name).collect();
            lines.push(Line {
                indent: 0,
                text: String::new(),
                comment: format!(
                    "anonymous {}: give at most one of {}",
                    ty_text(&m.ty),
                    names.join(", ")
                ),
            });
            if let Some(i) = choose_alternative(members, m.ty.size) {
                member(lines, &members[i], endian);
            }
        }
        _ => {}
    }
}
