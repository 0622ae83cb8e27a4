//! Where the schema and the map come from.

use std::path::{Path, PathBuf};

use ebpf_sdk_backend::Map;
use ebpf_sdk_btf::KernelMapInfo;
use ebpf_sdk_schema::{Document, MapSchema};

use crate::SdkError;

/// The default bpffs directory where maps pinned by name live.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf";

/// Loads a schema: extracted from an object (`--elf`) or a saved `extract`
/// output (`--schema`). Exactly one must be given.
pub fn load_document(elf: Option<&Path>, schema: Option<&Path>) -> Result<Document, SdkError> {
    match (elf, schema) {
        (Some(elf), None) => Ok(ebpf_sdk_btf::extract_file(elf)?),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|source| SdkError::Io {
                path: path.to_path_buf(),
                source,
            })?;
            Document::from_json(&text).map_err(|source| SdkError::Schema {
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Err(SdkError::Input {
            origin: "arguments".into(),
            detail: "give the schema with exactly one of --elf FILE or --schema FILE".into(),
        }),
    }
}

/// The pin path of a map, in order: an explicit `--pinned`, the path
/// recorded in the schema by `enrich`, else `pin_dir/<name>` (maps pinned by
/// name).
pub fn pin_path(map: &MapSchema, pinned: Option<&Path>, pin_dir: Option<&Path>) -> PathBuf {
    if let Some(p) = pinned {
        return p.to_path_buf();
    }
    if let (Some(p), None) = (&map.pin_path, pin_dir) {
        return PathBuf::from(p);
    }
    pin_dir
        .unwrap_or(Path::new(DEFAULT_PIN_DIR))
        .join(&map.name)
}

/// Describes a pinned map from the BTF the kernel holds for it: the same
/// schema `extract` gives, with no ELF.
pub fn describe_pinned(path: &Path) -> Result<Document, SdkError> {
    let map = Map::open_pinned_read_only(path)?;
    describe_map(&map, &path.display().to_string())
}

/// [`describe_pinned`] for an open map.
pub fn describe_map(map: &Map, shown: &str) -> Result<Document, SdkError> {
    let info = map.info();
    let raw = map.btf()?;
    let kinfo = KernelMapInfo {
        name: info.name.clone(),
        map_type: info.map_type,
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        map_flags: info.map_flags,
        btf_key_type_id: raw.as_ref().map_or(0, |r| r.key_type_id),
        btf_value_type_id: raw.as_ref().map_or(0, |r| r.value_type_id),
    };
    Ok(ebpf_sdk_btf::describe_kernel_map(
        &kinfo,
        raw.as_ref().map(|r| r.bytes.as_slice()),
        shown,
    )?)
}
