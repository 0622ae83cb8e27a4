//! The crate's error type.

use std::path::PathBuf;

use ebpf_sdk::SdkError;

/// Everything that can go wrong exporting metrics or reconciling maps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// A library call failed (the map, the schema, the input file).
    #[error(transparent)]
    Sdk(#[from] SdkError),
    /// This map cannot be exported as metrics.
    #[error("map `{map}` cannot be exported: {reason}")]
    NotExportable {
        /// Map name.
        map: String,
        /// Why.
        reason: String,
    },
    /// Bytes read from a map could not be read as its schema says.
    #[error("map `{map}`: {reason}")]
    Decode {
        /// Map name.
        map: String,
        /// Why.
        reason: String,
    },
    /// A counter/gauge override is not `[MAP:]FIELD`.
    #[error("`{text}`: give the field as [MAP:]FIELD, e.g. ingress_node_firewall_statistics_map:deny_stats.packets")]
    BadOverride {
        /// What was given.
        text: String,
    },
    /// An override names a field the map does not export.
    #[error("map `{map}` has no numeric field `{field}`; its fields: {}", .fields.join(", "))]
    NoSuchField {
        /// Map name.
        map: String,
        /// The field asked for.
        field: String,
        /// The fields it has.
        fields: Vec<String>,
    },
    /// An override names a map that is not exported.
    #[error("map `{map}` is not exported; exported: {}", .exported.join(", "))]
    NotExported {
        /// The map asked for.
        map: String,
        /// The maps exported.
        exported: Vec<String>,
    },
    /// The metric name prefix is not a valid Prometheus name.
    #[error("metric prefix `{prefix}` must match [a-zA-Z_][a-zA-Z0-9_]*")]
    BadPrefix {
        /// What was given.
        prefix: String,
    },
    /// Two maps would export a metric of the same name.
    #[error("maps `{}` and `{}` both export `{metric}`; export them separately or with another prefix", .maps[0], .maps[1])]
    NameClash {
        /// The metric name.
        metric: String,
        /// The two maps.
        maps: [String; 2],
    },
    /// The HTTP endpoint could not be started.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A file or directory could not be watched.
    #[error("cannot watch {}: {source}", .path.display())]
    Watch {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
