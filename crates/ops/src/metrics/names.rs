//! Prometheus names: C field names made into metric and label names, and
//! the heuristic that tells counters from gauges.

/// Words that make a field a counter when its name ends with one (see
/// [`is_counter_name`]).
pub const COUNTER_WORDS: &[&str] = &[
    "packets", "pkts", "bytes", "count", "cnt", "total", "drops", "errors", "hits", "misses",
];

/// `name` in `snake_case` with only `[a-z0-9_]`: camelCase words split
/// (`dstPortStart` -> `dst_port_start`, `HTTPCode` -> `http_code`), other
/// characters made `_`, runs of `_` collapsed, no `_` at either end.
pub fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase())
                    && next.is_some_and(|n| n.is_ascii_lowercase()));
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    let mut clean = String::with_capacity(out.len());
    for c in out.chars() {
        if c == '_' && (clean.is_empty() || clean.ends_with('_')) {
            continue;
        }
        clean.push(c);
    }
    while clean.ends_with('_') {
        clean.pop();
    }
    clean
}

/// Joins parts (each made [`snake`]) with `_` into a valid metric or label
/// name: empty parts are skipped, and a name that would start with a digit
/// (or be empty) gets a leading `_`.
pub fn join(parts: &[&str]) -> String {
    let mut name = String::new();
    for p in parts {
        let s = snake(p);
        if s.is_empty() {
            continue;
        }
        if !name.is_empty() {
            name.push('_');
        }
        name.push_str(&s);
    }
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// First words that make a field a gauge whatever it ends with: a limit or
/// a snapshot, not a running count (`max_event_bytes`, `last_packets`).
pub const GAUGE_FIRST_WORDS: &[&str] = &["max", "min", "limit", "last", "cur", "current"];

/// Whether a field called `name` holds a counter: its last word (after
/// [`snake`]) is one of [`COUNTER_WORDS`] and its first word is not one of
/// [`GAUGE_FIRST_WORDS`]; e.g. `packets`, `rx_bytes`, `dropCount`,
/// `errors_total`, but not `bytes_in_flight`, `last_count_at` or
/// `max_event_bytes`.
pub fn is_counter_name(name: &str) -> bool {
    let s = snake(name);
    let last = s.rsplit('_').next().unwrap_or("");
    let first = s.split('_').next().unwrap_or("");
    COUNTER_WORDS.contains(&last) && !GAUGE_FIRST_WORDS.contains(&first)
}

/// Whether `name` is a valid metric name prefix: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn valid_prefix(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Appends `text` to `out` escaped for a label value (`\`, `"`, newline).
pub fn escape_label_value(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `text` escaped for a `# HELP` line (`\` and newline).
pub fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_snake_case() {
        assert_eq!(snake("prefixLen"), "prefix_len");
        assert_eq!(snake("dstPortStart"), "dst_port_start");
        assert_eq!(snake("HTTPCode"), "http_code");
        assert_eq!(snake("ip_data"), "ip_data");
        assert_eq!(snake("rx2Bytes"), "rx2_bytes");
        assert_eq!(snake("a.b-c__d_"), "a_b_c_d");
        assert_eq!(snake("firewall.rodata"), "firewall_rodata");
        assert_eq!(
            join(&[
                "ebpf",
                "ingress_node_firewall_statistics_map",
                "deny_stats",
                "packets"
            ]),
            "ebpf_ingress_node_firewall_statistics_map_deny_stats_packets"
        );
        assert_eq!(join(&["9lives"]), "_9lives");
        assert_eq!(join(&["", "_"]), "_");
    }

    #[test]
    fn counters_by_their_last_word() {
        for c in [
            "packets",
            "rx_bytes",
            "dropCount",
            "errors_total",
            "total",
            "pkts",
        ] {
            assert!(is_counter_name(c), "{c}");
        }
        for g in [
            "bytes_in_flight",
            "last_count_at",
            "mode",
            "ruleId",
            "",
            "max_event_bytes",
            "lastPackets",
        ] {
            assert!(!is_counter_name(g), "{g}");
        }
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        escape_label_value("a\"b\\c\nd", &mut s);
        assert_eq!(s, r#"a\"b\\c\nd"#);
        assert_eq!(escape_help("x\\y\nz"), r"x\\y\nz");
        assert!(valid_prefix("ebpf_sdk") && valid_prefix("_x1"));
        assert!(!valid_prefix("1x") && !valid_prefix("a-b") && !valid_prefix(""));
    }
}
