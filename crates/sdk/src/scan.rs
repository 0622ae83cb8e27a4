//! Finding what is pinned under a bpffs directory, and which map of a
//! schema a pinned map is.

use std::path::{Path, PathBuf};

use ebpf_sdk_backend::{Link, LinkInfo, Map, MapInfo, ObjectKind, ProgInfo, Program};
use ebpf_sdk_schema::MapSchema;

use crate::handle::{check_layout, check_shape};
use crate::{Object, SdkError};

/// What a pinned path holds.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PinnedKind {
    /// A map, with what the kernel reports about it.
    Map(MapInfo),
    /// A program, with what the kernel reports about it.
    Program(ProgInfo),
    /// A link (an attachment of a program), with what the kernel reports.
    Link(LinkInfo),
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

    /// Whether the kernel holds BTF describing this map's key or value (what
    /// `describe --pinned` and the layout check before writes read); `false`
    /// for maps created without it and for anything that is not a map.
    pub fn has_btf(&self) -> bool {
        self.map_info().is_some_and(|i| {
            i.btf_id != 0
                && (i.btf_key_type_id != 0
                    || i.btf_value_type_id != 0
                    || i.btf_vmlinux_value_type_id != 0)
        })
    }
}

/// Deepest directory level [`scan_pinned`] descends to.
pub const MAX_SCAN_DEPTH: usize = 8;

/// Every object pinned under `dir` (a bpffs directory), recursively, sorted
/// by path. Entries that are not BPF objects are skipped; objects that
/// cannot be opened are listed as [`PinnedKind::Unreadable`]. A `dir` that
/// cannot be read gives nothing; [`list_pinned`] says why instead.
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

/// [`scan_pinned`], after checking that `dir` is a directory on bpffs (what
/// `ebpf-sdk ls` lists).
///
/// ```no_run
/// for p in ebpf_sdk::list_pinned("/sys/fs/bpf")? {
///     println!("{} btf: {}", p.path.display(), p.has_btf());
/// }
/// # Ok::<(), ebpf_sdk::SdkError>(())
/// ```
pub fn list_pinned(dir: impl AsRef<Path>) -> Result<Vec<Pinned>, SdkError> {
    let dir = dir.as_ref();
    ebpf_sdk_backend::check_bpffs_dir(dir)?;
    std::fs::read_dir(dir).map_err(|e| SdkError::read(dir, e))?;
    Ok(scan_pinned(dir))
}

fn classify(path: &Path) -> Option<PinnedKind> {
    let unreadable = |e: ebpf_sdk_backend::BackendError| {
        PinnedKind::Unreadable(match e {
            // The file is there, the kernel gives nothing for it (a stale
            // `maps.debug` of the kernel's bpf_preload, say).
            ebpf_sdk_backend::BackendError::PinNotFound { .. } if path.exists() => {
                "the kernel gives no BPF object for this file (ENOENT)".to_string()
            }
            e => e.to_string(),
        })
    };
    match ebpf_sdk_backend::pinned_object_kind(path) {
        Ok(ObjectKind::Map) => Some(match Map::open_pinned_read_only(path) {
            Ok(m) => PinnedKind::Map(m.info().clone()),
            Err(e) => unreadable(e),
        }),
        Ok(ObjectKind::Program) => Some(match Program::open_pinned(path) {
            Ok(p) => PinnedKind::Program(p.info().clone()),
            Err(e) => unreadable(e),
        }),
        Ok(ObjectKind::Link) => Some(match Link::open_pinned(path) {
            Ok(l) => PinnedKind::Link(l.info().clone()),
            Err(e) => unreadable(e),
        }),
        Ok(_) => None,
        Err(e) => Some(unreadable(e)),
    }
}

/// The pinned maps of `pins` that could be the map `schema` describes:
/// same type, key size and value size.
pub fn candidates<'a>(schema: &MapSchema, pins: &'a [Pinned]) -> Vec<&'a Pinned> {
    pins.iter()
        .filter(|p| {
            p.map_info()
                .is_some_and(|info| check_shape(schema, info, &p.path).is_ok())
        })
        .collect()
}

/// Which map of a schema a pinned map is ([`Object::match_pinned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaMatch {
    /// This map: the type, key and value sizes agree, and so do the key
    /// and value layouts where the kernel has BTF for the pinned map (the
    /// checks made before every write).
    Map(String),
    /// Several maps fit equally and none has the pinned map's name.
    Several(Vec<String>),
    /// No map fits: why (the difference from the map of that name, or from
    /// a map of the same shape).
    NoMatch(String),
}

/// A map's name as the kernel keeps it: at most 15 bytes.
fn kernel_name(name: &str) -> &str {
    let mut end = name.len().min(15);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Whether the map pinned at `path` is `schema`'s map: the shape, then
/// (with kernel BTF) the layouts agree. The error says why not, and whether
/// the shape agreed.
fn fits(schema: &MapSchema, path: &Path, info: &MapInfo) -> Result<(), (bool, String)> {
    let detail = |e: SdkError| match e {
        SdkError::Mismatch { detail, .. } => detail,
        e => e.to_string(),
    };
    check_shape(schema, info, path).map_err(|e| (false, detail(e)))?;
    if info.btf_id != 0 {
        let map = Map::open_pinned_read_only(path).map_err(|e| (true, e.to_string()))?;
        check_layout(schema, &map, path).map_err(|e| (true, detail(e)))?;
    }
    Ok(())
}

impl Object {
    /// Which of this object's maps the pinned map `pin` is: the one whose
    /// type, sizes and (where the kernel has BTF for it) layouts agree; among
    /// several, the one named like the pin (its file name, or the kernel's
    /// 15-byte name). Else why none is: the difference from the map named
    /// like it, or from a map of the same shape. `None` for a pinned program
    /// or link, or an unreadable pin.
    ///
    /// ```no_run
    /// use ebpf_sdk::{Object, SchemaMatch};
    ///
    /// let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
    /// for p in ebpf_sdk::list_pinned("/sys/fs/bpf")? {
    ///     if let Some(SchemaMatch::Map(name)) = obj.match_pinned(&p) {
    ///         println!("{} is {name}", p.path.display());
    ///     }
    /// }
    /// # Ok::<(), ebpf_sdk::SdkError>(())
    /// ```
    pub fn match_pinned(&self, pin: &Pinned) -> Option<SchemaMatch> {
        let info = pin.map_info()?;
        let file = pin
            .path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        // How far a map is from being named like the pin: 0 by its file
        // name (libbpf and bpftool pin maps by name, `.` as `_`), 1 by the
        // kernel's name, 2 not at all.
        let distance = |m: &MapSchema| {
            if file
                .as_deref()
                .is_some_and(|f| f == m.name || f == m.name.replace('.', "_"))
            {
                0
            } else if kernel_name(&m.name) == info.name {
                1
            } else {
                2
            }
        };
        let mut fit: Vec<&MapSchema> = Vec::new();
        // The closest miss: (name distance, shape differs), reason.
        let mut miss: Option<((u8, bool), String)> = None;
        for m in self.maps() {
            match fits(m, &pin.path, info) {
                Ok(()) => fit.push(m),
                Err((shape_ok, why)) => {
                    let rank = (distance(m), !shape_ok);
                    if miss.as_ref().is_none_or(|(r, _)| rank < *r) {
                        miss = Some((rank, format!("{}: {why}", m.name)));
                    }
                }
            }
        }
        fit.sort_by_key(|m| distance(m));
        Some(match fit.as_slice() {
            [] => SchemaMatch::NoMatch(match miss {
                // A map named like it, or of its shape: what differs.
                Some(((d, shape_differs), why)) if d < 2 || !shape_differs => why,
                _ => format!(
                    "no map of the schema has type {} with a {} B key and a {} B value",
                    info.map_type, info.key_size, info.value_size
                ),
            }),
            [one] => SchemaMatch::Map(one.name.clone()),
            [first, second, ..] if distance(first) < distance(second) => {
                SchemaMatch::Map(first.name.clone())
            }
            several => SchemaMatch::Several(several.iter().map(|m| m.name.clone()).collect()),
        })
    }
}
