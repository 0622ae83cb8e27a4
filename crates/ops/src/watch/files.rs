//! Wake-ups from the file system: inotify on the directories that hold the
//! state file (as given, and where its symlinks lead) and the maps' pins.
//!
//! Directories are watched, not the file: an editor that writes a new file
//! and renames it over the old one, and the atomic swap of a Kubernetes
//! ConfigMap volume (a new `..2024_...` directory, then the `..data`
//! symlink renamed over), replace the inode a file watch would follow.
//! Every event in those directories wakes the reconciler, which reads the
//! file and compares it with what it last saw.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};

use crate::OpsError;

/// What a wake-up is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Something changed where the state file is.
    File,
    /// A pin was created, removed or renamed.
    Pin,
}

type Kinds = Arc<Mutex<HashMap<WatchDescriptor, Wake>>>;

fn lock(k: &Kinds) -> MutexGuard<'_, HashMap<WatchDescriptor, Wake>> {
    k.lock().unwrap_or_else(|p| p.into_inner())
}

/// The inotify instance, read by a thread that turns events into [`Wake`]s.
pub(crate) struct FileWatcher {
    watches: Watches,
    kinds: Kinds,
    /// Directories watched, with their watch.
    dirs: HashMap<PathBuf, WatchDescriptor>,
    rx: Receiver<Wake>,
    stop: Arc<AtomicBool>,
}

impl FileWatcher {
    /// Starts the reader thread; nothing is watched yet.
    pub(crate) fn new() -> Result<FileWatcher, OpsError> {
        let inotify = Inotify::init().map_err(|source| OpsError::Watch {
            path: PathBuf::from("<inotify>"),
            source,
        })?;
        let watches = inotify.watches();
        let kinds: Kinds = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (k, s) = (kinds.clone(), stop.clone());
        std::thread::Builder::new()
            .name("ebpf-sdk-inotify".into())
            .spawn(move || read_events(inotify, &k, &s, &tx))
            .map_err(|source| OpsError::Watch {
                path: PathBuf::from("<inotify thread>"),
                source,
            })?;
        Ok(FileWatcher {
            watches,
            kinds,
            dirs: HashMap::new(),
            rx,
            stop,
        })
    }

    /// Watches the directory of `file` as given and, when it is a symlink
    /// (or in a symlinked directory), the directory of the file it leads
    /// to now. The first must exist; the second is best effort, as it
    /// changes with every ConfigMap update.
    pub(crate) fn watch_file(&mut self, file: &Path) -> Result<(), OpsError> {
        let mask = WatchMask::CLOSE_WRITE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::ATTRIB
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR;
        let dir = parent(file);
        self.add(&dir, mask, Wake::File)
            .map_err(|source| OpsError::Watch { path: dir, source })?;
        if let Ok(real) = std::fs::canonicalize(file) {
            let real_dir = parent(&real);
            let _ = self.add(&real_dir, mask, Wake::File);
        }
        Ok(())
    }

    /// Watches the directories of `pins` (best effort: a directory that
    /// does not exist yet is looked at again on the next call).
    pub(crate) fn watch_pins<'a>(&mut self, pins: impl IntoIterator<Item = &'a Path>) {
        let mask = WatchMask::CREATE
            | WatchMask::DELETE
            | WatchMask::MOVED_TO
            | WatchMask::MOVED_FROM
            | WatchMask::ONLYDIR;
        for pin in pins {
            let _ = self.add(&parent(pin), mask, Wake::Pin);
        }
    }

    fn add(&mut self, dir: &Path, mask: WatchMask, kind: Wake) -> std::io::Result<()> {
        // Adding a watch for a directory already watched returns its
        // descriptor again; a directory replaced since gets a new one.
        let wd = self.watches.add(dir, mask)?;
        let mut kinds = lock(&self.kinds);
        kinds.entry(wd.clone()).or_insert(kind);
        self.dirs.insert(dir.to_path_buf(), wd);
        Ok(())
    }

    /// Waits up to `timeout` for a wake-up; several pending ones are merged
    /// (a file wake-up first).
    pub(crate) fn wait(&self, timeout: Duration) -> Option<Wake> {
        let first = match self.rx.recv_timeout(timeout) {
            Ok(w) => w,
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
        };
        let mut file = first == Wake::File;
        let mut pin = first == Wake::Pin;
        while let Ok(w) = self.rx.try_recv() {
            file |= w == Wake::File;
            pin |= w == Wake::Pin;
        }
        if file {
            // A pin wake-up merged into a file one is not lost: the caller
            // checks pins on its own schedule too.
            Some(Wake::File)
        } else if pin {
            Some(Wake::Pin)
        } else {
            None
        }
    }
}

impl Drop for FileWatcher {
    /// Stops the reader thread: removing the watches makes the kernel send
    /// `IN_IGNORED` events, which wake it to see the stop flag. (With no
    /// watch left it stays blocked until the process ends.)
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (_, wd) in self.dirs.drain() {
            let _ = self.watches.remove(wd);
        }
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The reader thread: blocks on inotify and sends what each batch of events
/// is about, until stopped or the receiver is gone.
fn read_events(mut inotify: Inotify, kinds: &Kinds, stop: &AtomicBool, tx: &Sender<Wake>) {
    let mut buf = [0u8; 4096];
    loop {
        let events = match inotify.read_events_blocking(&mut buf) {
            Ok(ev) => ev,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (mut file, mut pin) = (false, false);
        {
            let kinds = lock(kinds);
            for ev in events {
                match kinds.get(&ev.wd) {
                    Some(Wake::File) => file = true,
                    Some(Wake::Pin) => pin = true,
                    None => {}
                }
            }
        }
        for (woke, w) in [(file, Wake::File), (pin, Wake::Pin)] {
            if woke && tx.send(w).is_err() {
                return;
            }
        }
    }
}
