//! The one error type of this crate, and the path-carrying internal form the
//! encoder builds it from.

use std::fmt;

/// Everything that can go wrong parsing, encoding or decoding a value.
///
/// Encode errors carry the `path` of the offending part of the value, rooted
/// at `key` or `value` (`value.rules[3].dstPortEnd`), and the C type it was
/// meant for as the schema names it (the outermost typedef, e.g. `__u16`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// YAML or JSON text that does not parse, or that breaks a limit
    /// (duplicate key, nesting depth, alias expansion, ...).
    #[error("invalid {format}: {message}")]
    Parse {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message, with line and column where it has them.
        message: String,
    },
    /// Input bytes that are not UTF-8.
    #[error("invalid {format}: not UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// `YAML` or `JSON`.
        format: &'static str,
        /// Offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The schema describes a layout the codec cannot use (a member beyond
    /// its struct, a bitfield wider than its type, nesting too deep, ...).
    #[error("{path}: unusable schema: {reason}")]
    InvalidSchema {
        /// Where in the type tree (`value.rules[]`).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A number outside the range of its C type.
    #[error("{path}: {given} does not fit in {ty} ({range})")]
    OutOfRange {
        /// Path in the value.
        path: String,
        /// The number as given.
        given: String,
        /// C type, e.g. `__u16` or `3-bit field of __u32`.
        ty: String,
        /// The allowed range, e.g. `0..=65535`.
        range: String,
    },
    /// A value of the wrong kind, e.g. a float where an integer belongs, or
    /// a string that is no address, hex string or number.
    #[error("{path}: expected {expected} for {ty}, got {given}")]
    Mismatch {
        /// Path in the value.
        path: String,
        /// C type.
        ty: String,
        /// What is accepted there.
        expected: String,
        /// A short description of what was given.
        given: String,
    },
    /// More list elements or string bytes than the array holds.
    #[error("{path}: {given} {unit} given, {ty} holds at most {max}")]
    TooLong {
        /// Path in the value.
        path: String,
        /// C type of the array.
        ty: String,
        /// Capacity in `unit`s.
        max: usize,
        /// Length given.
        given: usize,
        /// `elements` or `bytes`.
        unit: &'static str,
    },
    /// A struct or union field name the type does not have.
    #[error("{path}: unknown field; valid fields: {}", valid.join(", "))]
    UnknownField {
        /// Path in the value, ending with the unknown name.
        path: String,
        /// The names the type has, in declaration order.
        valid: Vec<String>,
    },
    /// A union given none or more than one of its members.
    #[error("{path}: {ty} takes exactly one of {}; got {}", members.join(", "), given_text(given))]
    UnionChoice {
        /// Path of the union (for an anonymous union: of its parent).
        path: String,
        /// C type of the union.
        ty: String,
        /// Its alternatives.
        members: Vec<String>,
        /// The alternatives given.
        given: Vec<String>,
    },
    /// An enum variant name the enum does not have.
    #[error("{path}: `{name}` is not a variant of {ty}; variants: {}", variants.join(", "))]
    UnknownVariant {
        /// Path in the value.
        path: String,
        /// C type of the enum.
        ty: String,
        /// The name given.
        name: String,
        /// Declared variant names.
        variants: Vec<String>,
    },
    /// A per-CPU list whose length is not the number of CPUs.
    #[error("{path}: per-CPU value list has {given} entries, expected one per possible CPU ({ncpus}) or a single value for all")]
    PerCpuCount {
        /// `value`.
        path: String,
        /// Possible CPUs.
        ncpus: usize,
        /// Entries given.
        given: usize,
    },
    /// A buffer of the wrong length for the key or value.
    #[error("{what}: buffer is {actual} bytes, expected {expected}")]
    BufferSize {
        /// `key`, `value` or `per-CPU value`.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        actual: usize,
    },
    /// The map has no key (queue, stack, bloom filter) or no value (ring buffer).
    #[error("map `{map}` has no {what}")]
    Absent {
        /// Map name.
        map: String,
        /// `key` or `value`.
        what: &'static str,
    },
    /// A Rust value that cannot be written as a [`crate::Value`] (see
    /// [`crate::to_value`]).
    #[error("{}{message}", path_prefix(path))]
    ToValue {
        /// Path in the Rust value (`rules[3].port`), empty at the top.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A [`crate::Value`] that does not fit the Rust type asked for (see
    /// [`crate::from_value`]).
    #[error("{}cannot be read as the Rust type: {message}", path_prefix(path))]
    FromValue {
        /// Path in the value (`rules[3].port`), empty at the top.
        path: String,
        /// serde's message, e.g. `invalid value: integer `70000`, expected u16`.
        message: String,
    },
    /// A document in the earlier tool's verbose template format that cannot
    /// be converted.
    #[error("{path}: legacy template: {reason}")]
    Legacy {
        /// Path in the legacy document.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

fn path_prefix(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

impl CodecError {
    /// Where in the value the error is (`value.rules[3].dstPortEnd`), for
    /// errors about a part of a value.
    pub fn path(&self) -> Option<&str> {
        match self {
            CodecError::InvalidSchema { path, .. }
            | CodecError::OutOfRange { path, .. }
            | CodecError::Mismatch { path, .. }
            | CodecError::TooLong { path, .. }
            | CodecError::UnknownField { path, .. }
            | CodecError::UnionChoice { path, .. }
            | CodecError::UnknownVariant { path, .. }
            | CodecError::PerCpuCount { path, .. }
            | CodecError::ToValue { path, .. }
            | CodecError::FromValue { path, .. }
            | CodecError::Legacy { path, .. } => Some(path),
            CodecError::Parse { .. }
            | CodecError::NotUtf8 { .. }
            | CodecError::BufferSize { .. }
            | CodecError::Absent { .. } => None,
        }
    }

    /// The same error with `root` in front of its path (`value` + `.rules`).
    pub fn under(mut self, root: &str) -> CodecError {
        if let CodecError::ToValue { path, .. } | CodecError::FromValue { path, .. } = &mut self {
            *path = match (root.is_empty(), path.is_empty(), path.starts_with('[')) {
                (true, _, _) => std::mem::take(path),
                (false, true, _) => root.to_string(),
                (false, false, true) => format!("{root}{path}"),
                (false, false, false) => format!("{root}.{path}"),
            };
        }
        self
    }

    pub(crate) fn to_value_error(path: String, message: String) -> CodecError {
        CodecError::ToValue { path, message }
    }

    pub(crate) fn from_value_error(path: String, message: String) -> CodecError {
        CodecError::FromValue { path, message }
    }
}

fn given_text(given: &[String]) -> String {
    match given {
        [] => "none".to_string(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// One step of a path into a value.
#[derive(Debug, Clone)]
pub(crate) enum Seg {
    Field(Box<str>),
    Index(usize),
}

/// An encode error on its way up: the error minus its path, plus the path
/// segments collected (innermost first) while unwinding. Costs nothing on
/// the success path.
#[derive(Debug)]
pub(crate) struct Fault {
    pub(crate) kind: FaultKind,
    rev_path: Vec<Seg>,
}

#[derive(Debug)]
pub(crate) enum FaultKind {
    OutOfRange {
        given: String,
        ty: String,
        range: String,
    },
    Mismatch {
        ty: String,
        expected: String,
        given: String,
    },
    TooLong {
        ty: String,
        max: usize,
        given: usize,
        unit: &'static str,
    },
    UnknownField {
        field: Box<str>,
        valid: Vec<String>,
    },
    UnionChoice {
        ty: String,
        members: Vec<String>,
        given: Vec<String>,
    },
    UnknownVariant {
        ty: String,
        name: String,
        variants: Vec<String>,
    },
    PerCpuCount {
        ncpus: usize,
        given: usize,
    },
}

impl Fault {
    pub(crate) fn new(kind: FaultKind) -> Self {
        Fault {
            kind,
            rev_path: Vec::new(),
        }
    }

    pub(crate) fn at_field(mut self, name: &str) -> Self {
        self.rev_path.push(Seg::Field(name.into()));
        self
    }

    pub(crate) fn at_index(mut self, i: usize) -> Self {
        self.rev_path.push(Seg::Index(i));
        self
    }

    /// The public error, with the path rooted at `root` (`key`, `value`).
    pub(crate) fn into_error(self, root: &str) -> CodecError {
        let mut path = String::from(root);
        for seg in self.rev_path.iter().rev() {
            push_seg(&mut path, seg);
        }
        match self.kind {
            FaultKind::OutOfRange { given, ty, range } => CodecError::OutOfRange {
                path,
                given,
                ty,
                range,
            },
            FaultKind::Mismatch {
                ty,
                expected,
                given,
            } => CodecError::Mismatch {
                path,
                ty,
                expected,
                given,
            },
            FaultKind::TooLong {
                ty,
                max,
                given,
                unit,
            } => CodecError::TooLong {
                path,
                ty,
                max,
                given,
                unit,
            },
            FaultKind::UnknownField { field, valid } => {
                push_seg(&mut path, &Seg::Field(field));
                CodecError::UnknownField { path, valid }
            }
            FaultKind::UnionChoice { ty, members, given } => CodecError::UnionChoice {
                path,
                ty,
                members,
                given,
            },
            FaultKind::UnknownVariant { ty, name, variants } => CodecError::UnknownVariant {
                path,
                ty,
                name,
                variants,
            },
            FaultKind::PerCpuCount { ncpus, given } => {
                CodecError::PerCpuCount { path, ncpus, given }
            }
        }
    }
}

pub(crate) fn push_seg(path: &mut String, seg: &Seg) {
    use fmt::Write;
    match seg {
        Seg::Field(name) => {
            path.push('.');
            path.push_str(name);
        }
        Seg::Index(i) => {
            let _ = write!(path, "[{i}]");
        }
    }
}
