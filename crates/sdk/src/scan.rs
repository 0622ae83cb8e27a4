//! Finding what is pinned under a bpffs directory.

use std::path::{Path, PathBuf};

use ebpf_sdk_backend::{Map, MapInfo, ObjectKind};
use ebpf_sdk_schema::MapSchema;

/// What a pinned path holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PinnedKind {
    /// A map, with what the kernel reports about it.
    Map(MapInfo),
    /// A program.
    Program,
    /// A link (an attachment of a program).
    Link,
    /// Something that could not be opened (the reason).
    Unreadable(String),
}

/// One pinned object.
#[derive(Debug, Clone)]
pub struct Pinned {
    /// Its pin path.
    pub path: PathBuf,
    /// What it is.
    pub kind: PinnedKind,
}

impl Pinned {
    /// The map's kernel info, if this is a map.
    pub fn map_info(&self) -> Option<&MapInfo> {
        match &self.kind {
            PinnedKind::Map(info) => Some(info),
            _ => None,
        }
    }
}

/// Deepest directory level [`scan_pinned`] descends to.
pub const MAX_SCAN_DEPTH: usize = 8;

/// Every object pinned under `dir` (a bpffs directory), recursively, sorted
/// by path. Entries that are not BPF objects are skipped; objects that
/// cannot be opened are listed as [`PinnedKind::Unreadable`].
///
/// ```no_run
/// for p in ebpf_sdk::scan_pinned("/sys/fs/bpf") {
///     if let Some(info) = p.map_info() {
///         println!("{} {} {}", p.path.display(), info.map_type, info.name);
///     }
/// }
/// ```
pub fn scan_pinned(dir: impl AsRef<Path>) -> Vec<Pinned> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.as_ref().to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() && depth < MAX_SCAN_DEPTH => stack.push((p, depth + 1)),
                Ok(t) if t.is_file() => {
                    if let Some(kind) = classify(&p) {
                        out.push(Pinned { path: p, kind });
                    }
                }
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn classify(path: &Path) -> Option<PinnedKind> {
    match ebpf_sdk_backend::pinned_object_kind(path) {
        Ok(ObjectKind::Map) => Some(match Map::open_pinned_read_only(path) {
            Ok(m) => PinnedKind::Map(m.info().clone()),
            Err(e) => PinnedKind::Unreadable(e.to_string()),
        }),
        Ok(ObjectKind::Program) => Some(PinnedKind::Program),
        Ok(ObjectKind::Link) => Some(PinnedKind::Link),
        Ok(_) => None,
        Err(e) => Some(PinnedKind::Unreadable(e.to_string())),
    }
}

/// The pinned maps of `pins` that could be the map `schema` describes:
/// same type, key size and value size.
pub fn candidates<'a>(schema: &MapSchema, pins: &'a [Pinned]) -> Vec<&'a Pinned> {
    pins.iter()
        .filter(|p| {
            p.map_info().is_some_and(|info| {
                info.map_type == schema.map_type
                    && info.key_size == schema.key_size
                    && info.value_size == schema.value_size
            })
        })
        .collect()
}
