//! The real-world corpus: eBPF objects that Debian packages ship, and our
//! own fixtures in `crates/btf/tests/fixtures/realworld/`.
//!
//! Nothing from a package is copied into the repository: `.ci/setup` installs
//! the packages of [`PACKAGES`] and [`load`] finds their objects at test time
//! from dpkg's own file list (`/var/lib/dpkg/info/PKG.list`). An object is
//! either a file (`*.o`, `*.elf`) or embedded in a program: libbpf
//! skeletons (libbpf-tools, xdp-tools) carry their BPF ELF object as a byte
//! array, found by its ELF header (`\x7fELF`, 64-bit, `e_machine` 247) and
//! cut at `e_shoff + e_shnum * e_shentsize` (clang puts the section header
//! table last). Identical objects (libxdp's dispatcher is in six programs)
//! are kept once.
//!
//! A package that is not installed is reported in [`Corpus::missing`];
//! [`Corpus::require_complete`] turns that into a skip message, or a panic
//! when `EBPF_SDK_REQUIRE_KERNEL=1` (CI), so a test never passes silently on
//! half a corpus.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::kernel_required;

/// A Debian package whose eBPF objects are part of the corpus.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Package name, as `apt-get install` takes it.
    pub name: &'static str,
    /// Where its objects are.
    pub what: &'static str,
}

/// The packages of the corpus; `.ci/setup` installs the same list.
pub const PACKAGES: &[Package] = &[
    Package {
        name: "libxdp1",
        what: "libxdp's XDP dispatcher and AF_XDP programs, /usr/lib/<triplet>/bpf/*.o",
    },
    Package {
        name: "xdp-tools",
        what: "libbpf skeletons embedded in xdp-bench, xdp-monitor, xdp-trafficgen, ...",
    },
    Package {
        name: "xdp-tests",
        what: "xdp-tools' test objects, /usr/libexec/xdp-tools/*.o",
    },
    Package {
        name: "libbpf-tools",
        what: "bcc's libbpf-tools: one skeleton embedded in each tool",
    },
    Package {
        name: "golang-github-cilium-ebpf-dev",
        what: "cilium/ebpf's test objects, both byte orders (testdata/*-el.elf, *-eb.elf)",
    },
];

/// One eBPF ELF object of the corpus.
#[derive(Debug, Clone)]
pub struct CorpusObject {
    /// Unique name: `PACKAGE:FILE` (`#N` for the Nth object embedded in a
    /// program), or `ours:FILE`.
    pub name: String,
    /// The Debian package, or `ours`.
    pub source: String,
    /// The file it is in.
    pub origin: PathBuf,
    /// Byte offset of the object in `origin` (0 for a plain object file).
    pub offset: usize,
    /// The object.
    pub bytes: Vec<u8>,
}

impl CorpusObject {
    /// A file name for the object as libbpf would name it: ending in
    /// `.bpf.o`, so the global data maps get the names a skeleton gives them
    /// (`tcpconnect.bss` for the tool `tcpconnect`).
    pub fn file_name(&self) -> String {
        let base = self
            .name
            .rsplit([':', '/'])
            .next()
            .unwrap_or(&self.name)
            .replace('#', "-");
        if self.offset == 0 && (base.ends_with(".o") || base.ends_with(".elf")) {
            base
        } else {
            format!("{base}.bpf.o")
        }
    }
}

/// Every object found, and what could not be found.
#[derive(Debug, Default)]
pub struct Corpus {
    /// The objects, ours first, then by package in [`PACKAGES`] order.
    pub objects: Vec<CorpusObject>,
    /// One line per package that is not installed (or has no object).
    pub missing: Vec<String>,
    /// Installed packages with their versions (`libbpf-tools 0.26.0+ds-1`).
    pub versions: Vec<String>,
    /// Objects dropped because an identical one was already in the corpus.
    pub duplicates: usize,
}

impl Corpus {
    /// `true` when every package was found. Otherwise prints
    /// `skipping part of <test>: <reasons>` and returns `false`, or panics
    /// when `EBPF_SDK_REQUIRE_KERNEL=1` (CI must test the whole corpus).
    pub fn require_complete(&self, test: &str) -> bool {
        if self.missing.is_empty() {
            return true;
        }
        let reasons = self.missing.join("; ");
        if kernel_required() {
            panic!(
                "{test}: EBPF_SDK_REQUIRE_KERNEL=1 but the corpus is incomplete: {reasons} (bash .ci/setup installs it)"
            );
        }
        eprintln!("skipping part of {test}: {reasons} (bash .ci/setup installs it)");
        false
    }

    /// Writes every object to `dir` (for tools that read files, like
    /// bpftool) and returns the paths, in `objects` order.
    pub fn write_to(&self, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
        std::fs::create_dir_all(dir)?;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(self.objects.len());
        for o in &self.objects {
            let mut name = format!("{}__{}", o.source, o.file_name());
            let n = seen.entry(name.clone()).or_default();
            *n += 1;
            if *n > 1 {
                name = format!("{}__{n}__{}", o.source, o.file_name());
            }
            let path = dir.join(name);
            if std::fs::read(&path).ok().as_deref() != Some(&o.bytes[..]) {
                std::fs::write(&path, &o.bytes)?;
            }
            out.push(path);
        }
        Ok(out)
    }
}

/// Finds the whole corpus: our objects in `ours` (every `*.o` there), then
/// those of every package in [`PACKAGES`].
pub fn load(ours: &Path) -> Corpus {
    let mut c = Corpus::default();
    let mut index = Dedup::default();
    let mut own: Vec<PathBuf> = std::fs::read_dir(ours)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    own.retain(|p| p.extension().is_some_and(|x| x == "o"));
    own.sort();
    if own.is_empty() {
        c.missing
            .push(format!("no objects of our own in {}", ours.display()));
    }
    for p in own {
        if let Ok(bytes) = std::fs::read(&p) {
            let file = p.file_name().unwrap_or_default().to_string_lossy();
            index.push(
                &mut c,
                CorpusObject {
                    name: format!("ours:{file}"),
                    source: "ours".into(),
                    origin: p.clone(),
                    offset: 0,
                    bytes,
                },
            );
        }
    }
    for pkg in PACKAGES {
        let Some(files) = package_files(pkg.name) else {
            c.missing
                .push(format!("Debian package {} is not installed", pkg.name));
            continue;
        };
        if let Some(v) = package_version(pkg.name) {
            c.versions.push(format!("{} {v}", pkg.name));
        }
        let before = c.objects.len();
        for f in files {
            scan_file(&mut c, &mut index, pkg.name, &f);
        }
        if c.objects.len() == before {
            c.missing.push(format!(
                "Debian package {} is installed but none of its files holds an eBPF object",
                pkg.name
            ));
        }
    }
    c
}

/// Content index so each distinct object is kept once.
#[derive(Default)]
struct Dedup {
    by_hash: HashMap<u64, Vec<usize>>,
}

impl Dedup {
    fn push(&mut self, c: &mut Corpus, o: CorpusObject) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        o.bytes.hash(&mut h);
        let slot = self.by_hash.entry(h.finish()).or_default();
        if slot.iter().any(|&i| c.objects[i].bytes == o.bytes) {
            c.duplicates += 1;
            return;
        }
        slot.push(c.objects.len());
        c.objects.push(o);
    }
}

fn scan_file(c: &mut Corpus, index: &mut Dedup, pkg: &str, path: &Path) {
    // Regular files only: dpkg lists directories, and symlinks point at
    // files listed anyway.
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_file() || meta.len() < 64 || meta.len() > 64 << 20 {
        return;
    }
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if !bytes.starts_with(b"\x7fELF") {
        return;
    }
    let found = embedded_objects(&bytes);
    let file = path.file_name().unwrap_or_default().to_string_lossy();
    let several = found.len() > 1;
    for (k, (off, len)) in found.into_iter().enumerate() {
        let name = if several {
            format!("{pkg}:{file}#{k}")
        } else {
            format!("{pkg}:{file}")
        };
        index.push(
            c,
            CorpusObject {
                name,
                source: pkg.to_string(),
                origin: path.to_path_buf(),
                offset: off,
                bytes: bytes[off..off + len].to_vec(),
            },
        );
    }
}

/// `(offset, length)` of every eBPF ELF object in `data`: the file itself
/// when it is one, and each one a program embeds (libbpf skeletons). The
/// length is `e_shoff + e_shnum * e_shentsize`: clang writes the section
/// header table last.
pub fn embedded_objects(data: &[u8]) -> Vec<(usize, usize)> {
    const EM_BPF: u16 = 247;
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(rel) = data
        .get(at..)
        .and_then(|rest| rest.windows(4).position(|w| w == b"\x7fELF"))
    {
        let off = at + rel;
        at = off + 1;
        let Some(h) = data.get(off..off + 64) else {
            break;
        };
        // ELFCLASS64 only (BPF objects are 64-bit), either byte order.
        let le = match (h[4], h[5]) {
            (2, 1) => true,
            (2, 2) => false,
            _ => continue,
        };
        let u16_at = |i: usize| {
            let b = [h[i], h[i + 1]];
            if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }
        };
        let mut q = [0u8; 8];
        q.copy_from_slice(&h[40..48]);
        let shoff = if le {
            u64::from_le_bytes(q)
        } else {
            u64::from_be_bytes(q)
        };
        if u16_at(18) != EM_BPF || u16_at(58) != 64 {
            continue;
        }
        let len = shoff.checked_add(u64::from(u16_at(60)) * 64);
        let Some(len) = len.and_then(|l| usize::try_from(l).ok()) else {
            continue;
        };
        if len <= 64 || off.checked_add(len).is_none_or(|end| end > data.len()) {
            continue;
        }
        out.push((off, len));
        at = off + len;
    }
    out
}

/// The files dpkg installed for `pkg`, or `None` when it is not installed.
fn package_files(pkg: &str) -> Option<Vec<PathBuf>> {
    let info = Path::new("/var/lib/dpkg/info");
    let arch = std::env::consts::ARCH
        .replace("x86_64", "amd64")
        .replace("aarch64", "arm64");
    [format!("{pkg}.list"), format!("{pkg}:{arch}.list")]
        .iter()
        .find_map(|n| std::fs::read_to_string(info.join(n)).ok())
        .filter(|_| package_version(pkg).is_some())
        .map(|text| text.lines().map(PathBuf::from).collect())
}

/// The installed version, from `dpkg-query`.
pub fn package_version(pkg: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Status} ${Version}", pkg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let v = text.strip_prefix("installed ")?;
    (out.status.success() && !v.is_empty()).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF header: 64-bit, `e_machine`, section headers at
    /// `shoff`, `shnum` of them.
    fn header(le: bool, machine: u16, shoff: u64, shnum: u16) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = if le { 1 } else { 2 };
        let put16 = |h: &mut Vec<u8>, at: usize, v: u16| {
            let b = if le { v.to_le_bytes() } else { v.to_be_bytes() };
            h[at..at + 2].copy_from_slice(&b);
        };
        put16(&mut h, 18, machine);
        put16(&mut h, 58, 64);
        put16(&mut h, 60, shnum);
        let b = if le {
            shoff.to_le_bytes()
        } else {
            shoff.to_be_bytes()
        };
        h[40..48].copy_from_slice(&b);
        h
    }

    #[test]
    fn finds_embedded_objects_of_both_byte_orders() {
        let mut host = header(true, 62, 0, 0); // an x86-64 program
        host.extend_from_slice(b"padding");
        let a = host.len();
        let mut obj = header(true, 247, 100, 2);
        obj.resize(100 + 2 * 64, 0xaa);
        host.extend_from_slice(&obj);
        let b = host.len();
        let mut obj_be = header(false, 247, 64, 1);
        obj_be.resize(128, 0xbb);
        host.extend_from_slice(&obj_be);
        // A truncated one at the end is not an object.
        host.extend_from_slice(&header(true, 247, 1000, 3));
        assert_eq!(embedded_objects(&host), vec![(a, 228), (b, 128)]);
    }

    #[test]
    fn an_incomplete_corpus_skips_or_fails() {
        let c = Corpus {
            missing: vec!["Debian package libbpf-tools is not installed".into()],
            ..Corpus::default()
        };
        let r = std::panic::catch_unwind(|| c.require_complete("t"));
        match kernel_required() {
            true => assert!(r.is_err(), "must fail when the corpus is required"),
            false => assert!(!r.unwrap()),
        }
        assert!(Corpus::default().require_complete("t"));
    }

    #[test]
    fn file_names_end_like_libbpf_objects() {
        let o = |name: &str, offset| CorpusObject {
            name: name.into(),
            source: "x".into(),
            origin: PathBuf::new(),
            offset,
            bytes: vec![],
        };
        assert_eq!(
            o("libbpf-tools:tcpconnect", 200).file_name(),
            "tcpconnect.bpf.o"
        );
        assert_eq!(
            o("xdp-tools:xdp-bench#3", 10).file_name(),
            "xdp-bench-3.bpf.o"
        );
        assert_eq!(
            o("libxdp1:xdp-dispatcher.o", 0).file_name(),
            "xdp-dispatcher.o"
        );
        assert_eq!(o("pkg:loader-el.elf", 0).file_name(), "loader-el.elf");
    }
}
