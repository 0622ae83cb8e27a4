//! The library's error type.

use std::path::PathBuf;

use ebpf_sdk_backend::{BackendError, BatchError};
use ebpf_sdk_btf::ExtractError;
use ebpf_sdk_codec::CodecError;
use ebpf_sdk_schema::SchemaError;

/// Everything that can go wrong between a user's file and a kernel map.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SdkError {
    /// An entry file or inline argument is malformed.
    #[error("{origin}: {detail}")]
    Input {
        /// File and position (`rules.jsonl:7`, `entries.yaml: document 2`).
        origin: String,
        /// What is wrong.
        detail: String,
    },
    /// A value does not fit the map's types.
    #[error("{origin}: {source}")]
    Encode {
        /// File and position of the entry.
        origin: String,
        /// The codec's error, with the path inside the value.
        #[source]
        source: Box<CodecError>,
    },
    /// Two entries of one input have the same key.
    #[error("{second}: the same key as {first}; each key may appear once")]
    DuplicateKey {
        /// The first occurrence.
        first: String,
        /// The repeated one.
        second: String,
    },
    /// Reading the schema document failed.
    #[error("{path}: {source}")]
    Schema {
        /// The schema file.
        path: PathBuf,
        /// Why.
        #[source]
        source: SchemaError,
    },
    /// Reading the schema file failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// No map of that name in the schema.
    #[error(transparent)]
    NoSuchMap(SchemaError),
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
    #[error("{pin}: the pinned map does not match the schema for `{map}`: {detail}\n  schema: {ours}\n  pinned: {live}\nnothing was written")]
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
    /// Stopped by the user (SIGINT) part way.
    #[error("{map}: interrupted; {written} of {requested} entries were written")]
    Interrupted {
        /// Map name.
        map: String,
        /// Entries written before stopping (the batch in flight completed).
        written: usize,
        /// Entries asked for.
        requested: usize,
    },
    /// An operation the map type does not have.
    #[error("{map}: {detail}")]
    Unsupported {
        /// Map name.
        map: String,
        /// What and why.
        detail: String,
    },
}

impl From<BackendError> for SdkError {
    fn from(e: BackendError) -> Self {
        SdkError::Backend(Box::new(e))
    }
}

/// How the CLI maps errors to exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Bad input or usage: exit 2.
    Input,
    /// The kernel refused or the map is not usable: exit 3.
    Kernel,
    /// Stopped by SIGINT: exit 130.
    Interrupted,
}

impl SdkError {
    /// Whether this is the user's input or the kernel's refusal.
    pub fn class(&self) -> ErrorClass {
        match self {
            SdkError::Backend(_)
            | SdkError::Batch { .. }
            | SdkError::Mismatch { .. }
            | SdkError::Unsupported { .. } => ErrorClass::Kernel,
            SdkError::Interrupted { .. } => ErrorClass::Interrupted,
            _ => ErrorClass::Input,
        }
    }
}
