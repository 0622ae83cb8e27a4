//! The library's error type, and where in the user's input an error is.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use ebpf_sdk_backend::{BackendError, BatchError};
use ebpf_sdk_btf::ExtractError;
use ebpf_sdk_codec::CodecError;
use ebpf_sdk_schema::{MapType, SchemaError};

/// Everything that can go wrong between a user's file (or Rust value) and a
/// kernel map. Match on the variant; [`SdkError::class`] sorts them for exit
/// codes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// The input is wrong: a file, an inline text or a Rust value. Nothing
    /// was written.
    #[error(transparent)]
    Input(Box<InputError>),
    /// Bytes read from a map (or given to decode) could not be turned into
    /// named values, or the named values into the Rust type asked for.
    #[error("{what}: {source}")]
    Decode {
        /// The map or type being decoded, e.g. `stats (bytes read back)`.
        what: String,
        /// The codec's error, with the path inside the value.
        #[source]
        source: Box<CodecError>,
    },
    /// The schema describes a layout that cannot be encoded (a member beyond
    /// its struct, a bitfield wider than its type, ...).
    #[error("{what}: {source}")]
    Layout {
        /// Whose layout: `schema of `table``, `event header type `event_hdr_st``.
        what: String,
        /// The codec's reason.
        #[source]
        source: Box<CodecError>,
    },
    /// A schema document could not be read.
    #[error("{path}: {source}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SchemaError,
    },
    /// A file could not be read or written.
    #[error("cannot {op} {path}: {source}", path = .path.display())]
    Io {
        /// Reading or writing.
        op: IoOp,
        /// The file (`<output>` for standard output, `-` for standard input).
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No map of that name in the schema.
    #[error(transparent)]
    NoSuchMap(SchemaError),
    /// The schema holds several maps and none was named.
    #[error("name one of the maps: {}", .maps.join(", "))]
    MapNotNamed {
        /// The maps of the schema.
        maps: Vec<String>,
    },
    /// Extracting from the ELF or the kernel's BTF failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// The kernel refused, or the map could not be opened.
    #[error(transparent)]
    Backend(Box<BackendError>),
    /// A batch stopped part way.
    #[error("{map}: {applied} of {requested} entries were {}, then the kernel refused: {}", if matches!(source.op, ebpf_sdk_backend::Op::DeleteBatch) { "deleted" } else { "written" }, source.source)]
    Batch {
        /// Map name.
        map: String,
        /// Entries the kernel applied.
        applied: usize,
        /// Entries asked for.
        requested: usize,
        /// The batch error.
        #[source]
        source: Box<BatchError>,
    },
    /// The live map is not the map the schema describes.
    #[error("{pin}: the pinned map does not match the schema for `{map}`: {detail}\n  schema: {ours}\n  pinned: {live}\nnothing was written", pin = .pin.display())]
    Mismatch {
        /// Map name in the schema.
        map: String,
        /// Pin path.
        pin: PathBuf,
        /// The first difference.
        detail: String,
        /// The schema's description.
        ours: String,
        /// The kernel's description.
        live: String,
    },
    /// Stopped (cancelled) part way.
    #[error("{map}: interrupted; {written} of {requested} entries were written")]
    Interrupted {
        /// Map name.
        map: String,
        /// Entries written before stopping (the batch in flight completed).
        written: usize,
        /// Entries asked for.
        requested: usize,
    },
    /// An operation this kind of map does not have.
    #[error("{map}: {operation} is not supported for a {map_type}: {reason}")]
    Unsupported {
        /// Map name.
        map: String,
        /// Its type.
        map_type: MapType,
        /// The operation, e.g. `apply`, `dump`.
        operation: &'static str,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// Writing entries into a map that holds none a user writes (a ring
    /// buffer, a user ring buffer, an arena, a perf event array): what the
    /// map is for, and what reads it ([`MapType::nothing_to_write`]).
    #[error("{map} ({map_type}): nothing to write: {why}")]
    NothingToWrite {
        /// Map name.
        map: String,
        /// Its type.
        map_type: MapType,
        /// What the map is for and which command reads it.
        why: &'static str,
    },
    /// Where a map is pinned cannot be worked out from its pinning mode.
    #[error("{map}: {detail}")]
    Pinning {
        /// Map name.
        map: String,
        /// Why.
        detail: String,
    },
    /// Reading the events of a perf event array that declares no record
    /// type, without naming one.
    #[error("{map}: the map declares no record type (`__type(value, struct event)`); name the type of the records the program sends (`ebpf-sdk events --type NAME`)")]
    NoRecordType {
        /// Map name.
        map: String,
    },
    /// A failure inside the library, not caused by the input or the kernel
    /// (a worker thread that stopped). Please report it.
    #[error("internal error: {detail}")]
    Internal {
        /// What failed.
        detail: String,
    },
}

impl From<BackendError> for SdkError {
    fn from(e: BackendError) -> Self {
        SdkError::Backend(Box::new(e))
    }
}

impl From<InputError> for SdkError {
    fn from(e: InputError) -> Self {
        SdkError::Input(Box::new(e))
    }
}

/// Whether a file was being read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// Reading.
    Read,
    /// Writing (or creating).
    Write,
}

impl fmt::Display for IoOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoOp::Read => "read",
            IoOp::Write => "write",
        })
    }
}

/// How errors sort, e.g. for exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input or usage; nothing was written.
    Input,
    /// The kernel refused, or the map is not usable.
    Kernel,
    /// Stopped on request part way.
    Interrupted,
    /// A failure inside the library.
    Internal,
}

impl SdkError {
    /// Whether this is the user's input, the kernel's refusal, a stop on
    /// request or an internal failure.
    pub fn class(&self) -> ErrorClass {
        match self {
            SdkError::Backend(_)
            | SdkError::Batch { .. }
            | SdkError::Mismatch { .. }
            | SdkError::Unsupported { .. } => ErrorClass::Kernel,
            SdkError::Interrupted { .. } => ErrorClass::Interrupted,
            SdkError::Internal { .. } => ErrorClass::Internal,
            SdkError::Input(_)
            | SdkError::Decode { .. }
            | SdkError::Layout { .. }
            | SdkError::Schema { .. }
            | SdkError::Io { .. }
            | SdkError::NoSuchMap(_)
            | SdkError::MapNotNamed { .. }
            | SdkError::NothingToWrite { .. }
            | SdkError::NoRecordType { .. }
            | SdkError::Pinning { .. }
            | SdkError::Extract(_) => ErrorClass::Input,
        }
    }

    /// The input error, if this is one.
    pub fn as_input(&self) -> Option<&InputError> {
        match self {
            SdkError::Input(e) => Some(e),
            _ => None,
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> SdkError {
        SdkError::Io {
            op: IoOp::Read,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> SdkError {
        SdkError::Io {
            op: IoOp::Write,
            path: path.into(),
            source,
        }
    }
}

/// A mistake in the input, with where it is.
///
/// ```
/// use ebpf_sdk::{InputErrorKind, SdkError};
///
/// let e = ebpf_sdk::parse_entries("{\"key\": 1, \"vlaue\": 2}\n", "rules.jsonl").unwrap_err();
/// let SdkError::Input(e) = e else { panic!() };
/// assert_eq!(e.location.to_string(), "rules.jsonl:1");
/// assert!(matches!(&e.kind, InputErrorKind::UnknownEntryField { field } if field == "vlaue"));
/// assert_eq!(
///     e.to_string(),
///     "rules.jsonl:1: unknown field `vlaue` in an entry; an entry has `key:` and `value:`"
/// );
/// ```
#[derive(Debug)]
pub struct InputError {
    /// Where: file, line, document, list index.
    pub location: Location,
    /// What is wrong.
    pub kind: InputErrorKind,
}

impl InputError {
    /// An input error at `location`.
    pub fn new(location: Location, kind: InputErrorKind) -> InputError {
        InputError { location, kind }
    }

    /// The path inside the key or value (`value.rules[3].dstPortEnd`), when
    /// the error is about one field.
    pub fn field_path(&self) -> Option<&str> {
        match &self.kind {
            InputErrorKind::Value(e) | InputErrorKind::Legacy(e) => {
                e.path().filter(|p| !p.is_empty())
            }
            _ => None,
        }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.location.is_empty() {
            write!(f, "{}", self.kind)
        } else {
            write!(f, "{}: {}", self.location, self.kind)
        }
    }
}

impl std::error::Error for InputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            InputErrorKind::Syntax(e) | InputErrorKind::Value(e) | InputErrorKind::Legacy(e) => {
                Some(e)
            }
            _ => None,
        }
    }
}

/// What is wrong with an input.
#[derive(Debug)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// Not valid YAML or JSON (with the parser's line and column).
    Syntax(CodecError),
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// A key or value that does not fit the map's types: the codec's
    /// error names the field (`value.rules[3].dstPortEnd`).
    Value(CodecError),
    /// An entry in the earlier Python tool's format that cannot be converted.
    Legacy(CodecError),
    /// An entry with a field other than `key`, `value` (and `total`).
    UnknownEntryField {
        /// The field.
        field: String,
    },
    /// An entry with neither `key` nor `value`.
    EmptyEntry,
    /// Something that is not an entry where one belongs.
    NotAnEntry {
        /// What was found: `a number`, `a string`, ...
        found: &'static str,
    },
    /// A state file with more than its `maps:` mapping.
    StateFileFields,
    /// `maps:` that does not map map names to lists of entries.
    StateFileMaps,
    /// The input holds no entries.
    NoEntries,
    /// An entry without a value where one is needed (update, create).
    MissingValue,
    /// A value for a map-in-map or program array that is not a pinned
    /// path or a kernel id.
    ObjectRef,
    /// A kernel id out of range.
    BadId {
        /// The number given.
        id: i128,
    },
    /// A key given twice in one input.
    DuplicateKey {
        /// The first occurrence.
        first: Location,
    },
    /// A state file entry for a map, where one map's entries were expected.
    MapsNotNamed,
    /// A map's entries where a state file naming maps was expected.
    MapNamed {
        /// The map the entry names.
        map: String,
    },
    /// Bytes of the wrong length for a key or value.
    Length {
        /// `key` or `value`.
        what: &'static str,
        /// Bytes given.
        given: usize,
        /// Bytes needed.
        expected: usize,
        /// Whether more bytes are allowed (a type's trailing payload).
        at_least: bool,
    },
}

impl fmt::Display for InputErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputErrorKind::Syntax(e) | InputErrorKind::Value(e) | InputErrorKind::Legacy(e) => {
                write!(f, "{e}")
            }
            InputErrorKind::NotUtf8 => f.write_str("not valid UTF-8"),
            InputErrorKind::UnknownEntryField { field } => write!(
                f,
                "unknown field `{field}` in an entry; an entry has `key:` and `value:`"
            ),
            InputErrorKind::EmptyEntry => f.write_str("an entry needs `key:` and/or `value:`"),
            InputErrorKind::NotAnEntry { found } => write!(
                f,
                "expected an entry `{{key: ..., value: ...}}` or a list of them, found {found}"
            ),
            InputErrorKind::StateFileFields => {
                f.write_str("a state file has only a `maps:` mapping of map name to entries")
            }
            InputErrorKind::StateFileMaps => {
                f.write_str("`maps:` must map each map name to its list of entries")
            }
            InputErrorKind::NoEntries => f.write_str(
                "no entries; to make the map empty on purpose, apply an empty list (`[]`) with prune",
            ),
            InputErrorKind::MissingValue => f.write_str("an update needs a value"),
            InputErrorKind::ObjectRef => f.write_str(
                "the value of a map-in-map or program array is a pinned path or a kernel id",
            ),
            InputErrorKind::BadId { id } => write!(f, "{id} is not a valid id"),
            InputErrorKind::DuplicateKey { first } => {
                write!(f, "the same key as {first}; each key may appear once")
            }
            InputErrorKind::MapsNotNamed => {
                f.write_str("this file does not name maps (`maps: {NAME: [...]}`); name the map")
            }
            InputErrorKind::MapNamed { map } => write!(
                f,
                "this entry is for map `{map}` of a state file; apply the state file to the object"
            ),
            InputErrorKind::Length {
                what,
                given,
                expected,
                at_least,
            } => write!(
                f,
                "{given} bytes given, the {what} is {}{expected} bytes",
                if *at_least { "at least " } else { "" }
            ),
        }
    }
}

/// Where in the input something is: a file (or `arguments`, `-` for
/// standard input), a line, a YAML document, a map of a state file and list
/// indices. Shown as `rules.jsonl:7`, `entries.yaml: document 2 (line 14)`,
/// `state.yaml: maps.table[3]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The input's name: a file name, `-`, `arguments`; empty for a value
    /// given in a call.
    pub source: Arc<str>,
    /// The line (1-based).
    pub line: Option<usize>,
    /// The YAML document (1-based), for files of several `---` documents.
    pub document: Option<usize>,
    /// The map, in a state file (`maps: {NAME: [...]}`).
    pub map: Option<String>,
    /// Indices into lists, outermost first.
    pub index: Vec<usize>,
}

impl Location {
    /// A whole input: `rules.yaml`, `arguments`.
    pub fn named(source: impl Into<Arc<str>>) -> Location {
        Location {
            source: source.into(),
            ..Location::default()
        }
    }

    /// A line of an input: `rules.jsonl:7`.
    pub fn line(source: impl Into<Arc<str>>, line: usize) -> Location {
        Location {
            source: source.into(),
            line: Some(line),
            ..Location::default()
        }
    }

    /// The `n`th entry (1-based) of an input whose positions were not kept.
    pub fn nth_entry(n: usize) -> Location {
        Location::named(format!("entry #{n}"))
    }

    /// This location, inside the list element `i`.
    pub fn at_index(&self, i: usize) -> Location {
        let mut l = self.clone();
        l.index.push(i);
        l
    }

    /// This location, inside the state file's entries for `map`.
    pub fn in_map(&self, map: &str) -> Location {
        let mut l = self.clone();
        l.map = Some(map.to_string());
        l
    }

    /// Whether nothing is known (a value given in a call).
    pub fn is_empty(&self) -> bool {
        self.source.is_empty()
            && self.line.is_none()
            && self.document.is_none()
            && self.map.is_none()
            && self.index.is_empty()
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        match (self.document, self.line) {
            (Some(d), Some(l)) => write!(f, ": document {d} (line {l})")?,
            (Some(d), None) => write!(f, ": document {d}")?,
            (None, Some(l)) => write!(f, ":{l}")?,
            (None, None) => {}
        }
        if let Some(m) = &self.map {
            write!(f, ": maps.{m}")?;
        }
        for i in &self.index {
            write!(f, "[{i}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_as_before() {
        assert_eq!(Location::line("r.jsonl", 7).to_string(), "r.jsonl:7");
        let mut doc = Location::named("e.yaml");
        doc.document = Some(2);
        doc.line = Some(14);
        assert_eq!(doc.to_string(), "e.yaml: document 2 (line 14)");
        assert_eq!(
            Location::named("s.yaml")
                .in_map("table")
                .at_index(3)
                .to_string(),
            "s.yaml: maps.table[3]"
        );
        assert_eq!(Location::nth_entry(4).to_string(), "entry #4");
        let e = InputError::new(Location::default(), InputErrorKind::MissingValue);
        assert_eq!(e.to_string(), "an update needs a value");
    }
}
