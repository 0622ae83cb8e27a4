//! Reading entries in every shape a user will have them.
//!
//! One map's entries may come as:
//! - one `key:`/`value:` YAML or JSON document;
//! - several YAML documents separated by `---`;
//! - a YAML or JSON list of `{key, value}`;
//! - JSON Lines, one `{"key": .., "value": ..}` a line;
//! - exactly what `ebpf-sdk dump` printed (any of its `-o` formats but
//!   `table`); a `total` field there is computed output and is ignored;
//! - the earlier Python tool's verbose template (`variable_name`, `member`,
//!   `input`, `byteOrder: reversed`).
//!
//! A state file for several maps is a mapping `maps: {NAME: [entries...]}`.
//!
//! [`EntryReader`] streams: JSON Lines and `---`-separated YAML documents are
//! parsed one at a time, so memory does not grow with the file. A single YAML
//! or JSON list is parsed whole.

use std::io::BufRead;

use ebpf_sdk_codec::{legacy, parse_json, parse_yaml, Value};
use ebpf_sdk_schema::ByteOrder;

use crate::error::{InputError, InputErrorKind, Location};
use crate::SdkError;

/// One entry as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The map it is for, when the file names maps (`maps:` state files).
    pub map: Option<String>,
    /// The key (`Null` for queue, stack and bloom filter maps).
    pub key: Value,
    /// The value; `None` where only keys are given (delete, lookup).
    pub value: Option<Value>,
    /// Byte order for every integer, from the legacy format's `byteOrder`.
    pub byte_order: Option<ByteOrder>,
    /// Where it was read, for messages: `entries.yaml:14`.
    pub location: Location,
}

impl Entry {
    /// An entry for one map, given in a call or on a command line; `at`
    /// names it in messages (empty for none).
    pub fn new(key: Value, value: Option<Value>, at: Location) -> Entry {
        Entry {
            map: None,
            key,
            value,
            byte_order: None,
            location: at,
        }
    }

    /// An input error about this entry.
    pub fn error(&self, kind: InputErrorKind) -> SdkError {
        InputError::new(self.location.clone(), kind).into()
    }
}

fn input(at: &Location, kind: InputErrorKind) -> SdkError {
    InputError::new(at.clone(), kind).into()
}

fn syntax(at: Location, e: ebpf_sdk_codec::CodecError) -> SdkError {
    InputError::new(at, InputErrorKind::Syntax(e)).into()
}

/// Fields an entry may have; anything else is an error.
const ENTRY_FIELDS: &[&str] = &["key", "value", "total", "byteOrder"];

/// Converts one parsed document (or list element) into entries.
pub(crate) fn entries_from_value_at(
    v: Value,
    at: &Location,
    map: Option<&str>,
    out: &mut Vec<Entry>,
) -> Result<(), SdkError> {
    match v {
        Value::Null => Ok(()),
        Value::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                entries_from_value_at(item, &at.at_index(i), map, out)?;
            }
            Ok(())
        }
        Value::Map(m) if map.is_none() && m.get("maps").is_some() => {
            if m.len() != 1 {
                return Err(input(at, InputErrorKind::StateFileFields));
            }
            let Some(Value::Map(maps)) = m.get("maps").cloned() else {
                return Err(input(at, InputErrorKind::StateFileMaps));
            };
            for (name, list) in maps {
                entries_from_value_at(list, &at.in_map(&name), Some(&name), out)?;
            }
            Ok(())
        }
        Value::Map(m) => {
            if let Some(bad) = m.keys().find(|k| !ENTRY_FIELDS.contains(k)) {
                return Err(input(
                    at,
                    InputErrorKind::UnknownEntryField {
                        field: bad.to_string(),
                    },
                ));
            }
            if m.get("key").is_none() && m.get("value").is_none() {
                return Err(input(at, InputErrorKind::EmptyEntry));
            }
            let whole = Value::Map(m);
            let (concise, byte_order) = if legacy::is_legacy(&whole) {
                legacy::to_concise(&whole).map_err(|e| input(at, InputErrorKind::Legacy(e)))?
            } else {
                (whole, None)
            };
            let Value::Map(mut m) = concise else {
                unreachable!("legacy conversion keeps an entry a mapping")
            };
            out.push(Entry {
                map: map.map(str::to_string),
                key: m.remove("key").unwrap_or(Value::Null),
                value: m.remove("value"),
                byte_order,
                location: at.clone(),
            });
            Ok(())
        }
        other => Err(input(
            at,
            InputErrorKind::NotAnEntry {
                found: kind_of(&other),
            },
        )),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Int(_) => "a number",
        Value::Float(_) => "a number",
        Value::String(_) => "a string",
        Value::List(_) => "a list",
        Value::Map(_) => "a mapping",
    }
}

/// Entries from values already parsed (built by a program, or converted
/// from another language's objects), with exactly the rules of a file:
/// one `{key, value}` mapping, a list of them (nested lists are
/// flattened), the earlier Python tool's verbose format, or a state file
/// `{maps: {NAME: [entries]}}`. A `total` field (what `dump` prints for
/// per-CPU maps) is ignored. Messages name the entry as `name[3]` for the
/// fourth element of a list.
///
/// ```
/// use ebpf_sdk::{entries_from_value, parse_inline, SdkError};
///
/// let v = parse_inline("[{key: 1, value: 2}, {key: 3, vlaue: 4}]", "x")?;
/// let e = entries_from_value(v, "entries").unwrap_err();
/// assert_eq!(
///     e.to_string(),
///     "entries[1]: unknown field `vlaue` in an entry; an entry has `key:` and `value:`"
/// );
/// let v = parse_inline("[{key: 1, value: 2}, {key: 3, value: 4, total: 4}]", "x")?;
/// let entries = entries_from_value(v, "entries")?;
/// assert_eq!(entries.len(), 2);
/// assert_eq!(entries[1].location.to_string(), "entries[1]");
/// # Ok::<(), SdkError>(())
/// ```
pub fn entries_from_value(value: Value, name: &str) -> Result<Vec<Entry>, SdkError> {
    let mut out = Vec::new();
    entries_from_value_at(value, &Location::named(name), None, &mut out)?;
    Ok(out)
}

/// Parses a whole text (file contents or an inline `--key` argument) into
/// entries. `name` is used in messages.
pub fn parse_entries(text: &str, name: &str) -> Result<Vec<Entry>, SdkError> {
    let mut out = Vec::new();
    for e in EntryReader::new(text.as_bytes(), name) {
        out.push(e?);
    }
    Ok(out)
}

/// Parses one inline key or value (`--key '{prefixLen: 64, ...}'`), YAML or
/// JSON; `what` names it in messages.
pub fn parse_inline(text: &str, what: &str) -> Result<Value, SdkError> {
    parse_yaml(text).map_err(|e| syntax(Location::named(what), e))
}

/// One piece of input as [`EntryReader`] cuts it, before YAML is parsed:
/// the parallel `apply` path parses and encodes the YAML on its threads.
pub(crate) enum Unparsed {
    /// One YAML document, or one item of a top-level YAML list (`item`),
    /// and where it starts.
    Yaml {
        text: String,
        at: Location,
        item: bool,
    },
    /// An entry read otherwise (JSON), or an error.
    Entry(Result<Entry, SdkError>),
}

/// The entries of one YAML document or list item cut by [`EntryReader`]
/// (what it gives for that text), appended to `out`.
pub(crate) fn yaml_entries(
    text: &str,
    at: &Location,
    item: bool,
    out: &mut Vec<Entry>,
) -> Result<(), SdkError> {
    match parse_yaml(text) {
        // A one-item list: the item carries the item's location.
        Ok(Value::List(mut items)) if item && items.len() == 1 => {
            let item = items.pop().unwrap_or(Value::Null);
            entries_from_value_at(item, at, None, out)
        }
        Ok(v) => entries_from_value_at(v, at, None, out),
        Err(e) => Err(syntax(at.clone(), e)),
    }
}

enum Mode {
    /// Not decided yet: the first non-blank, non-comment line decides.
    Start,
    /// One JSON object per line.
    JsonLines,
    /// YAML documents separated by `---` lines, parsed one at a time.
    YamlDocs,
    /// Everything was read and parsed at once (a JSON document, or a YAML list).
    Done,
}

/// Streams entries from a reader; see the module docs for the shapes.
pub struct EntryReader<R> {
    reader: R,
    name: std::sync::Arc<str>,
    mode: Mode,
    line_no: usize,
    pending: std::collections::VecDeque<Unparsed>,
    /// Entries of the YAML text last taken from `pending`, in order.
    parsed: std::collections::VecDeque<Result<Entry, SdkError>>,
    /// A line read while deciding the mode, not yet consumed.
    carry: Option<String>,
    doc_index: usize,
    entry_index: usize,
    eof: bool,
    /// Inside a top-level YAML sequence read item by item.
    in_list: bool,
    /// The longest YAML text so far, to size the next one.
    last_len: usize,
    /// The line that starts the next YAML text was looked at and left in
    /// the reader.
    left_in_reader: bool,
}

/// What [`EntryReader`] does with one line of YAML.
enum Step {
    /// It belongs to the text being read.
    Keep,
    /// It is dropped (`...`).
    Drop,
    /// It starts the next document or list item: the text is complete.
    Next,
}

/// Where the reading of one YAML document or list item stands.
#[derive(Default)]
struct DocState {
    /// A line with content was read.
    saw_content: bool,
    /// The line of the `- ` that starts this text, for a list item.
    item_line: Option<usize>,
}

impl DocState {
    /// Takes line `line_no`, `line`: `---` and `...` markers, the `- ` of
    /// a top-level list item (which starts a list, or ends the item).
    fn step(
        &mut self,
        line: &str,
        line_no: usize,
        in_list: &mut bool,
        doc_index: &mut usize,
    ) -> Step {
        if line.starts_with("---") && (line.trim_end() == "---" || line.starts_with("--- ")) {
            if self.saw_content || *in_list {
                // The separator starts the next document.
                *in_list = false;
                return Step::Next;
            }
            return Step::Keep;
        }
        if line.starts_with("...") && line.trim_end() == "..." {
            return Step::Drop;
        }
        let content = has_content(line);
        let item_start =
            line.starts_with('-') && (line.starts_with("- ") || line.trim_end() == "-");
        if content && item_start && (*in_list || !self.saw_content) {
            if self.item_line.is_some() {
                // The next item: this one is complete.
                return Step::Next;
            }
            if !*in_list {
                // A new document that is a list.
                *doc_index += 1;
            }
            *in_list = true;
            self.item_line = Some(line_no);
        }
        if content {
            self.saw_content = true;
        }
        Step::Keep
    }
}

/// Whether a line holds more than whitespace and a comment: `line.trim()`
/// is neither empty nor starts with `#`, looked at without trimming when
/// the line's first character after its indentation is plain ASCII.
fn has_content(line: &str) -> bool {
    match line.trim_start_matches(' ').as_bytes().first() {
        Some(&b) if b > b' ' && b < 0x7f => b != b'#',
        _ => {
            let t = line.trim();
            !t.is_empty() && !t.starts_with('#')
        }
    }
}

impl<R: BufRead> EntryReader<R> {
    /// Reads entries from `reader`; `name` (a file name, `-` for stdin)
    /// prefixes every message.
    pub fn new(reader: R, name: &str) -> Self {
        EntryReader {
            reader,
            name: name.into(),
            mode: Mode::Start,
            line_no: 0,
            pending: Default::default(),
            parsed: Default::default(),
            carry: None,
            doc_index: 0,
            entry_index: 0,
            eof: false,
            in_list: false,
            last_len: 0,
            left_in_reader: false,
        }
    }

    fn read_line(&mut self) -> Result<Option<String>, SdkError> {
        if let Some(l) = self.carry.take() {
            return Ok(Some(l));
        }
        let mut buf = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| SdkError::read(&*self.name, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        String::from_utf8(buf).map(Some).map_err(|_| {
            input(
                &Location::line(self.name.clone(), self.line_no),
                InputErrorKind::NotUtf8,
            )
        })
    }

    /// Appends the next line to `buf` (not checked for UTF-8); false at
    /// the end of the input.
    fn read_line_into(&mut self, buf: &mut Vec<u8>) -> Result<bool, SdkError> {
        let n = self
            .reader
            .read_until(b'\n', buf)
            .map_err(|e| SdkError::read(&*self.name, e))?;
        if n > 0 {
            self.line_no += 1;
        }
        Ok(n > 0)
    }

    fn push_value(&mut self, v: Value, at: Location) {
        let mut out = Vec::new();
        match entries_from_value_at(v, &at, None, &mut out) {
            Ok(()) => self
                .pending
                .extend(out.into_iter().map(|e| Unparsed::Entry(Ok(e)))),
            Err(e) => self.pending.push_back(Unparsed::Entry(Err(e))),
        }
    }

    /// The next piece of input, YAML not parsed yet; `None` at the end.
    pub(crate) fn next_unparsed(&mut self) -> Option<Unparsed> {
        loop {
            if let Some(e) = self.parsed.pop_front() {
                return Some(Unparsed::Entry(e));
            }
            if let Some(u) = self.pending.pop_front() {
                return Some(u);
            }
            if matches!(self.mode, Mode::Done) {
                return None;
            }
            if let Err(e) = self.fill() {
                self.mode = Mode::Done;
                return Some(Unparsed::Entry(Err(e)));
            }
        }
    }

    fn fill(&mut self) -> Result<(), SdkError> {
        loop {
            match self.mode {
                Mode::Done => return Ok(()),
                Mode::Start => {
                    let Some(line) = self.read_line()? else {
                        self.mode = Mode::Done;
                        return Ok(());
                    };
                    let t = line.trim_start();
                    if t.is_empty() || t.starts_with('#') {
                        continue;
                    }
                    if t.starts_with('{') && parse_json(line.trim()).is_ok() {
                        self.mode = Mode::JsonLines;
                    } else if t.starts_with('{') || t.starts_with('[') {
                        // A JSON document spanning lines: read it whole.
                        let mut text = line;
                        while let Some(l) = self.read_line()? {
                            text.push_str(&l);
                        }
                        self.mode = Mode::Done;
                        let at = Location::named(self.name.clone());
                        match parse_json(&text) {
                            Ok(v) => self.push_value(v, at),
                            Err(e) => self.pending.push_back(Unparsed::Entry(Err(syntax(at, e)))),
                        }
                        return Ok(());
                    } else {
                        self.mode = Mode::YamlDocs;
                    }
                    self.line_no -= 1;
                    self.carry = Some(line);
                    self.line_no += 1;
                }
                Mode::JsonLines => {
                    let Some(line) = self.read_line()? else {
                        self.mode = Mode::Done;
                        return Ok(());
                    };
                    let t = line.trim();
                    if t.is_empty() {
                        continue;
                    }
                    let at = Location::line(self.name.clone(), self.line_no);
                    match parse_json(t) {
                        Ok(v) => self.push_value(v, at),
                        Err(e) => self.pending.push_back(Unparsed::Entry(Err(syntax(at, e)))),
                    }
                    return Ok(());
                }
                Mode::YamlDocs => {
                    // As counted when the line that starts this text was
                    // already read (and carried over) when the last one ended.
                    let start_line = self.line_no + usize::from(self.left_in_reader);
                    self.left_in_reader = false;
                    // Lines are looked at where the reader buffered them and
                    // copied onto the text in runs (no allocation or copy per
                    // line); the line that starts the next document or item
                    // is left in the reader. A line the buffer holds only part
                    // of is read whole onto the text instead, and kept as the
                    // carry when it belongs to the next one.
                    let mut text: Vec<u8> = Vec::with_capacity(self.last_len);
                    // A document that is a top-level block sequence (`- key: ...`,
                    // what `dump` prints) is read one item at a time, so a
                    // large list streams; each item is its own YAML text, so
                    // anchors cannot reach across items there.
                    let mut doc = DocState::default();
                    loop {
                        if self.carry.is_none() {
                            let buf = self
                                .reader
                                .fill_buf()
                                .map_err(|e| SdkError::read(&*self.name, e))?;
                            if buf.is_empty() {
                                self.eof = true;
                                break;
                            }
                            let (mut used, mut run) = (0, 0);
                            let mut stop = false;
                            let mut bad = false;
                            while let Some(nl) = memchr::memchr(b'\n', &buf[used..]) {
                                let end = used + nl + 1;
                                let Ok(line) = std::str::from_utf8(&buf[used..end]) else {
                                    bad = true;
                                    break;
                                };
                                self.line_no += 1;
                                match doc.step(
                                    line,
                                    self.line_no,
                                    &mut self.in_list,
                                    &mut self.doc_index,
                                ) {
                                    Step::Keep => {}
                                    Step::Drop => {
                                        text.extend_from_slice(&buf[run..used]);
                                        run = end;
                                    }
                                    Step::Next => {
                                        self.line_no -= 1;
                                        self.left_in_reader = true;
                                        stop = true;
                                        break;
                                    }
                                }
                                used = end;
                            }
                            text.extend_from_slice(&buf[run..used]);
                            self.reader.consume(used);
                            if bad {
                                return Err(input(
                                    &Location::line(self.name.clone(), self.line_no + 1),
                                    InputErrorKind::NotUtf8,
                                ));
                            }
                            if stop {
                                break;
                            }
                            if used > 0 {
                                continue;
                            }
                        }
                        let at = text.len();
                        if let Some(l) = self.carry.take() {
                            text.extend_from_slice(l.as_bytes());
                        } else if !self.read_line_into(&mut text)? {
                            self.eof = true;
                            break;
                        }
                        let line = std::str::from_utf8(&text[at..]).map_err(|_| {
                            input(
                                &Location::line(self.name.clone(), self.line_no),
                                InputErrorKind::NotUtf8,
                            )
                        })?;
                        match doc.step(line, self.line_no, &mut self.in_list, &mut self.doc_index) {
                            Step::Keep => {}
                            Step::Drop => text.truncate(at),
                            Step::Next => {
                                self.carry = Some(line.to_string());
                                text.truncate(at);
                                break;
                            }
                        }
                    }
                    let (saw_content, item_line) = (doc.saw_content, doc.item_line);
                    self.last_len = self.last_len.max(text.len());
                    // Every line was checked as it was read.
                    let text = String::from_utf8(text).map_err(|_| {
                        input(
                            &Location::line(self.name.clone(), self.line_no),
                            InputErrorKind::NotUtf8,
                        )
                    })?;
                    if self.eof {
                        self.mode = Mode::Done;
                    }
                    if !saw_content {
                        continue;
                    }
                    let at = if let Some(l) = item_line {
                        Location::line(self.name.clone(), l)
                    } else {
                        self.doc_index += 1;
                        if self.eof && self.doc_index == 1 {
                            Location::named(self.name.clone())
                        } else {
                            Location {
                                document: Some(self.doc_index),
                                ..Location::line(self.name.clone(), start_line.max(1))
                            }
                        }
                    };
                    self.pending.push_back(Unparsed::Yaml {
                        text,
                        at,
                        item: item_line.is_some(),
                    });
                    return Ok(());
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for EntryReader<R> {
    type Item = Result<Entry, SdkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.next_unparsed()? {
                Unparsed::Entry(e) => {
                    self.entry_index += 1;
                    return Some(e);
                }
                Unparsed::Yaml { text, at, item } => {
                    let mut out = Vec::new();
                    match yaml_entries(&text, &at, item, &mut out) {
                        Ok(()) => self.parsed.extend(out.into_iter().map(Ok)),
                        Err(e) => self.parsed.push_back(Err(e)),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<Value> {
        parse_entries(text, "t")
            .unwrap()
            .into_iter()
            .map(|e| e.key)
            .collect()
    }

    #[test]
    fn every_shape_gives_the_same_entries() {
        let want = vec![Value::Int(1), Value::Int(2)];
        assert_eq!(keys("key: 1\nvalue: 10\n---\nkey: 2\nvalue: 20\n"), want);
        assert_eq!(
            keys("---\nkey: 1\nvalue: 10\n---\nkey: 2\nvalue: 20\n"),
            want
        );
        assert_eq!(keys("- key: 1\n  value: 10\n- key: 2\n  value: 20\n"), want);
        assert_eq!(
            keys("{\"key\": 1, \"value\": 10}\n{\"key\": 2, \"value\": 20}\n"),
            want
        );
        assert_eq!(
            keys("[\n {\"key\": 1, \"value\": 10},\n {\"key\": 2, \"value\": 20}\n]\n"),
            want
        );
        assert_eq!(
            keys("# dump\n- key: 1\n  value: 10\n  total: 10\n- key: 2\n  value: 20\n"),
            want
        );
        assert_eq!(keys(""), Vec::<Value>::new());
    }

    #[test]
    fn state_files_name_maps() {
        let e = parse_entries(
            "maps:\n  a:\n  - key: 1\n    value: 2\n  b:\n  - key: 3\n",
            "s.yaml",
        )
        .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].map.as_deref(), Some("a"));
        assert_eq!(e[1].map.as_deref(), Some("b"));
        assert_eq!(e[1].value, None);
    }

    #[test]
    fn errors_say_where() {
        let err =
            parse_entries("{\"key\": 1}\n{\"key\": 2, \"vlaue\": 3}\n", "rules.jsonl").unwrap_err();
        assert_eq!(
            err.to_string(),
            "rules.jsonl:2: unknown field `vlaue` in an entry; an entry has `key:` and `value:`"
        );
        let err = parse_entries("key: 1\n---\nkey: [1\n", "x.yaml").unwrap_err();
        assert!(
            err.to_string().starts_with("x.yaml: document 2 (line 2)"),
            "{err}"
        );
        let err = parse_entries("- key: 1\n- 5\n", "l.yaml").unwrap_err();
        assert_eq!(err.to_string(), "l.yaml:2: expected an entry `{key: ..., value: ...}` or a list of them, found a number");
    }

    #[test]
    fn a_yaml_list_streams_item_by_item_with_line_numbers() {
        let text = "# from dump\n- key: 1\n  value:\n  - 1\n  - 2\n\n- key: 2\n  value: {a: [1, 2]}\n-\n  key: 3\n---\nkey: 4\n";
        let mut r = EntryReader::new(text.as_bytes(), "d.yaml");
        let got: Vec<(Value, String)> = r
            .by_ref()
            .map(|e| e.map(|e| (e.key, e.location.to_string())).unwrap())
            .collect();
        assert_eq!(
            got,
            vec![
                (Value::Int(1), "d.yaml:2".to_string()),
                (Value::Int(2), "d.yaml:7".to_string()),
                (Value::Int(3), "d.yaml:9".to_string()),
                (Value::Int(4), "d.yaml: document 2 (line 11)".to_string()),
            ]
        );
        // One item is parsed at a time: a bad item fails after the good ones.
        let mut r = EntryReader::new("- key: 1\n- key: [\n- key: 3\n".as_bytes(), "b.yaml");
        assert!(r.next().unwrap().is_ok());
        assert!(r
            .next()
            .unwrap()
            .unwrap_err()
            .to_string()
            .starts_with("b.yaml:2: "));
    }

    #[test]
    fn json_lines_stream_one_line_at_a_time() {
        let text = "{\"key\": 1}\n{\"key\": 2}\nnot json\n";
        let mut r = EntryReader::new(text.as_bytes(), "s");
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_ok());
        let e = r.next().unwrap().unwrap_err();
        assert!(e.to_string().starts_with("s:3:"), "{e}");
    }
}
