//! Loading the bundled firewall object for a test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{find_bpftool, find_program};
use crate::fs::{BpffsDir, TestLock};
use crate::TestkitError;

/// The lock every test that loads the firewall object holds.
pub const FIREWALL_LOCK: &str = "/tmp/ebpf-sdk-firewall.lock";

/// The bundled firewall object, `firewall-ebpf/firewall.bpf.o` at the
/// workspace root (built by `make -C firewall-ebpf`).
pub fn firewall_object() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firewall-ebpf/firewall.bpf.o")
}

/// The firewall object loaded for one test, with every map and program
/// pinned in a private bpffs directory; all of it is unpinned on drop.
///
/// Maps declared with `LIBBPF_PIN_BY_NAME` are always pinned by libbpf at
/// `<pin root>/<name>`, and the pin root of bpftool is `/sys/fs/bpf`: a
/// plain `bpftool prog loadall OBJ DIR pinmaps DIR/maps` pins them globally
/// (shared by every test, and reused with stale contents if a previous test
/// died) and then fails with "already has pin path ... different from ...".
/// So the guard runs bpftool in a private mount namespace where a fresh
/// directory of the same bpffs is bind-mounted over `/sys/fs/bpf`, with
/// `pinmaps /sys/fs/bpf`: by-name maps and the `.rodata`/`.data`/`.bss`
/// maps all land in that directory, programs in its `progs/`, and nothing
/// outside it is touched. The cross-process [`FIREWALL_LOCK`] is still held
/// for the guard's lifetime, so tests that attach the program or use global
/// resources do not overlap.
#[derive(Debug)]
pub struct FirewallGuard {
    // Dropped in order: pins first, then the lock.
    dir: BpffsDir,
    maps: BTreeMap<String, PathBuf>,
    progs: BTreeMap<String, PathBuf>,
    _lock: TestLock,
}

impl FirewallGuard {
    /// Loads the bundled object ([`firewall_object`]).
    pub fn load_bundled() -> Result<FirewallGuard, TestkitError> {
        FirewallGuard::load(firewall_object())
    }

    /// Takes the firewall lock and loads `obj` with
    /// `bpftool prog loadall OBJ <dir>/progs pinmaps <dir>` (see the type docs).
    pub fn load(obj: impl AsRef<Path>) -> Result<FirewallGuard, TestkitError> {
        let obj = obj.as_ref();
        if !obj.is_file() {
            return Err(TestkitError::Missing {
                what: format!("firewall object {}", obj.display()),
                hint: "build it with `make -C firewall-ebpf`",
            });
        }
        let obj = obj.canonicalize().map_err(|source| TestkitError::Io {
            what: "cannot resolve",
            path: obj.to_path_buf(),
            source,
        })?;
        let lock = TestLock::acquire_path(Path::new(FIREWALL_LOCK))?;
        let bpftool = find_bpftool().ok_or(TestkitError::Missing {
            what: "bpftool".into(),
            hint: "apt-get install bpftool",
        })?;
        let unshare = find_program("unshare").ok_or(TestkitError::Missing {
            what: "unshare".into(),
            hint: "apt-get install util-linux",
        })?;
        let dir = BpffsDir::new("fw")?;
        let script = r#"mount --bind "$1" /sys/fs/bpf && exec "$2" prog loadall "$3" /sys/fs/bpf/progs pinmaps /sys/fs/bpf"#;
        let mut cmd = Command::new(&unshare);
        cmd.args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
        ])
        .arg(dir.path())
        .arg(&bpftool)
        .arg(&obj);
        let shown = format!(
            "unshare --mount sh -c '{script}' sh {} {} {}",
            dir.path().display(),
            bpftool.display(),
            obj.display()
        );
        let out = cmd.output().map_err(|source| TestkitError::Spawn {
            cmd: shown.clone(),
            source,
        })?;
        if !out.status.success() {
            return Err(TestkitError::Command {
                cmd: shown,
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
                stdout: String::from_utf8_lossy(&out.stdout).trim().to_string(),
            });
        }
        let maps = list_pins(dir.path())?;
        let progs = list_pins(&dir.join("progs"))?;
        Ok(FirewallGuard {
            dir,
            maps,
            progs,
            _lock: lock,
        })
    }

    /// The private bpffs directory holding every pin.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Map pins by full map name (e.g. `ingress_node_firewall_table_map`,
    /// `firewall_rodata`).
    pub fn maps(&self) -> &BTreeMap<String, PathBuf> {
        &self.maps
    }

    /// The pin of the map named `name`.
    pub fn map_path(&self, name: &str) -> Option<&Path> {
        self.maps.get(name).map(PathBuf::as_path)
    }

    /// Program pins by name (e.g. `xdp_ingress_node_firewall_process`).
    pub fn progs(&self) -> &BTreeMap<String, PathBuf> {
        &self.progs
    }

    /// The pin of the program named `name`.
    pub fn prog_path(&self, name: &str) -> Option<&Path> {
        self.progs.get(name).map(PathBuf::as_path)
    }
}

fn list_pins(dir: &Path) -> Result<BTreeMap<String, PathBuf>, TestkitError> {
    let io = |source| TestkitError::Io {
        what: "cannot list",
        path: dir.to_path_buf(),
        source,
    };
    let mut pins = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_type().map_err(io)?.is_file() {
            pins.insert(
                entry.file_name().to_string_lossy().into_owned(),
                entry.path(),
            );
        }
    }
    Ok(pins)
}
