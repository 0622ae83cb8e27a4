//! A reconciler: keeps maps holding what a state file says.
//!
//! [`Reconciler::run`] applies the file at start, then whenever it changes
//! (including the atomic `..data` symlink swap of a Kubernetes ConfigMap
//! volume and editors that write a new file and rename it over), whenever a
//! map's pin holds another map (same pin, new map id: the program was
//! reloaded), and every [`WatchOptions::resync`]. Each apply is the
//! library's ([`ebpf_sdk::MapHandle::apply_reader`] for one map,
//! [`ebpf_sdk::Object::apply_state`] for a state file naming several):
//! every entry is validated before anything is written, so a bad file
//! writes nothing; it is reported and the last good state stays in the
//! maps (and is written again into a map that was replaced meanwhile).
//! Every reconcile is reported as a [`Reconcile`] (serializable: one JSON
//! log line). Setting the stop flag, which is also
//! [`ApplyOptions::cancel`], stops it after the batch in flight.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::sync::Arc;
//! use ebpf_sdk::{ApplyOptions, Object};
//! use ebpf_sdk_ops::watch::{Reconciler, WatchOptions, WatchTarget};
//!
//! let obj = Object::from_elf("firewall-ebpf/firewall.bpf.o")?;
//! let stop = Arc::new(AtomicBool::new(false));
//! let opts = WatchOptions {
//!     apply: ApplyOptions { prune: true, cancel: Some(stop.clone()), ..Default::default() },
//!     ..Default::default()
//! };
//! let mut reconciler = Reconciler::new(obj, WatchTarget::State, "/etc/ebpf-sdk/state.yaml", opts);
//! reconciler.run(&stop, &mut |r| println!("{}", serde_json::to_string(r).unwrap()))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod files;
mod health;
mod record;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ebpf_sdk::backend::Map;
use ebpf_sdk::{ApplyOptions, ApplyRecord, ErrorClass, IoOp, Object, SdkError};

pub use health::WatchHealth;
pub use record::rfc3339;

use crate::OpsError;
use files::{FileWatcher, Wake};

/// How often the loop looks at the stop flag at least.
const TICK: Duration = Duration::from_millis(100);

/// When and how to reconcile.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Apply again this long after the last reconcile even if nothing
    /// changed, correcting whatever else wrote to the maps (default 5 min).
    pub resync: Duration,
    /// How often the pins are checked for a replaced map, besides the
    /// inotify events on their directories (default 1 s).
    pub pin_check: Duration,
    /// How long a file must be quiet after an event before it is read
    /// (default 50 ms): an editor's several writes make one reconcile.
    pub settle: Duration,
    /// How soon a reconcile that failed for a reason other than the file
    /// (the map is not pinned yet, the kernel refused) is tried again
    /// (default 5 s).
    pub retry: Duration,
    /// The apply itself: prune, dry run, flags, the stop flag. A backup
    /// ([`ebpf_sdk::Backup::To`]) is overwritten by every reconcile;
    /// [`ebpf_sdk::Backup::Auto`] would make a new file each time, so the
    /// reconciler makes none instead.
    pub apply: ApplyOptions,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            resync: Duration::from_secs(300),
            pin_check: Duration::from_secs(1),
            settle: Duration::from_millis(50),
            retry: Duration::from_secs(5),
            apply: ApplyOptions::default(),
        }
    }
}

/// Which maps the file is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchTarget {
    /// One map's entries, for the map called `name` pinned at `pin`.
    Map {
        /// The map's name in the object.
        name: String,
        /// Its pin.
        pin: PathBuf,
    },
    /// A state file naming its maps (`maps: {NAME: [entries]}`), each at
    /// the object's [`Object::pin_path`].
    State,
}

/// Why a reconcile ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Trigger {
    /// The watcher started.
    Start,
    /// The file's content changed.
    FileChanged,
    /// A pin holds another map now (or a map was pinned where none was).
    MapReplaced {
        /// The map's name.
        map: String,
        /// Its pin.
        pin: PathBuf,
        /// The kernel id of the map seen before (`None`: none was pinned).
        old_id: Option<u32>,
        /// The kernel id of the map pinned now.
        new_id: u32,
    },
    /// The resync interval passed.
    Resync,
    /// The last reconcile failed for a reason other than the file.
    Retry,
}

impl Trigger {
    /// One word for logs: `start`, `file`, `map_replaced`, `resync`, `retry`.
    pub fn name(&self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::FileChanged => "file",
            Trigger::MapReplaced { .. } => "map_replaced",
            Trigger::Resync => "resync",
            Trigger::Retry => "retry",
        }
    }
}

/// How a reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The maps hold the file's state.
    Applied,
    /// The file was refused (unreadable, or an entry is wrong); nothing of
    /// it was written and the maps keep the last good state.
    BadFile {
        /// What is wrong, naming the place in the file.
        error: String,
        /// Whether the last good state was written again (into a map that
        /// was replaced, or on a resync).
        restored: bool,
    },
    /// The maps could not be written (not pinned, a different map at the
    /// pin, the kernel refused); tried again after [`WatchOptions::retry`].
    Failed {
        /// Why.
        error: String,
    },
    /// Stopped by the stop flag after the batch in flight.
    Interrupted {
        /// How far it got.
        error: String,
    },
}

impl Outcome {
    /// One word for logs: `applied`, `bad_file`, `failed`, `interrupted`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::BadFile { .. } => "bad_file",
            Outcome::Failed { .. } => "failed",
            Outcome::Interrupted { .. } => "interrupted",
        }
    }

    /// The error, unless it was applied.
    pub fn error(&self) -> Option<&str> {
        match self {
            Outcome::Applied => None,
            Outcome::BadFile { error, .. }
            | Outcome::Failed { error }
            | Outcome::Interrupted { error } => Some(error),
        }
    }
}

/// One reconcile: why, when, how long, what each map's apply did.
#[derive(Debug, Clone)]
pub struct Reconcile {
    /// Why it ran.
    pub trigger: Trigger,
    /// When it started.
    pub at: SystemTime,
    /// How long it took.
    pub duration: Duration,
    /// The state file.
    pub file: PathBuf,
    /// The record of every map applied (for a bad file that was not
    /// restored: none).
    pub records: Vec<ApplyRecord>,
    /// How it ended.
    pub outcome: Outcome,
}

/// What [`Reconciler::run`] did before it stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunSummary {
    /// Reconciles run.
    pub reconciles: u64,
    /// Whether the stop flag cut an apply short (the batch in flight was
    /// completed; the rest of that apply was not written).
    pub interrupted: bool,
}

/// Keeps maps holding a state file's entries: see the [module docs](self).
#[derive(Debug)]
pub struct Reconciler {
    object: Object,
    target: WatchTarget,
    file: PathBuf,
    opts: WatchOptions,
    /// The content of the last file that applied.
    last_good: Option<Vec<u8>>,
    /// Hash of the content read last (applied or not).
    last_seen: Option<u64>,
    /// The pins of the maps applied, with the map's name and the id of the
    /// map seen there.
    pins: BTreeMap<PathBuf, (String, Option<u32>)>,
    health: WatchHealth,
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// The kernel id of the map pinned at `pin`, `None` if there is none.
fn pinned_id(pin: &Path) -> Option<u32> {
    Map::open_pinned_read_only(pin).ok().map(|m| m.info().id)
}

impl Reconciler {
    /// A reconciler of `file` into `target`'s maps of `object`.
    pub fn new(
        object: Object,
        target: WatchTarget,
        file: impl Into<PathBuf>,
        mut opts: WatchOptions,
    ) -> Reconciler {
        if opts.apply.backup == ebpf_sdk::Backup::Auto {
            opts.apply.backup = ebpf_sdk::Backup::Off;
        }
        let mut pins = BTreeMap::new();
        if let WatchTarget::Map { name, pin } = &target {
            pins.insert(pin.clone(), (name.clone(), None));
        }
        Reconciler {
            object,
            target,
            file: file.into(),
            opts,
            last_good: None,
            last_seen: None,
            pins,
            health: WatchHealth::default(),
        }
    }

    /// The health and counters of this reconciler, updated as it runs
    /// (share it with an HTTP endpoint: [`crate::http::serve_health`]).
    pub fn health(&self) -> WatchHealth {
        self.health.clone()
    }

    /// Whether the file's content differs from what was last read.
    fn read_if_changed(&self) -> Option<std::io::Result<Vec<u8>>> {
        match std::fs::read(&self.file) {
            Ok(bytes) if Some(content_hash(&bytes)) == self.last_seen => None,
            other => Some(other),
        }
    }

    /// Reads the file and reconciles now.
    pub fn reconcile(&mut self, trigger: Trigger) -> Reconcile {
        let content = std::fs::read(&self.file);
        self.reconcile_content(trigger, content)
    }

    fn reconcile_content(
        &mut self,
        trigger: Trigger,
        content: std::io::Result<Vec<u8>>,
    ) -> Reconcile {
        let at = SystemTime::now();
        let started = Instant::now();
        // Ids before writing: a map replaced during the apply is seen as
        // replaced by the next check, never missed.
        for (pin, (_, id)) in self.pins.iter_mut() {
            *id = pinned_id(pin);
        }
        let (outcome, records) = match content {
            Err(e) => {
                self.last_seen = None;
                let error = SdkError::Io {
                    op: IoOp::Read,
                    path: self.file.clone(),
                    source: e,
                }
                .to_string();
                self.refused(&trigger, error)
            }
            Ok(bytes) => {
                self.last_seen = Some(content_hash(&bytes));
                let (result, records) = self.attempt(&bytes);
                match result {
                    Ok(()) => {
                        self.last_good = Some(bytes);
                        (Outcome::Applied, records)
                    }
                    Err(e) => match e.class() {
                        ErrorClass::Input => self.refused(&trigger, e.to_string()),
                        ErrorClass::Interrupted => (
                            Outcome::Interrupted {
                                error: e.to_string(),
                            },
                            records,
                        ),
                        ErrorClass::Kernel | ErrorClass::Internal => (
                            Outcome::Failed {
                                error: e.to_string(),
                            },
                            records,
                        ),
                    },
                }
            }
        };
        for r in &records {
            if !self.pins.contains_key(&r.pin) {
                let id = pinned_id(&r.pin);
                self.pins.insert(r.pin.clone(), (r.map.clone(), id));
            }
        }
        let r = Reconcile {
            trigger,
            at,
            duration: started.elapsed(),
            file: self.file.clone(),
            records,
            outcome,
        };
        self.health.record(&r);
        r
    }

    /// The file was refused: keep the last good state, and write it again
    /// when the maps may have lost it (a replaced map, a resync).
    fn refused(&self, trigger: &Trigger, error: String) -> (Outcome, Vec<ApplyRecord>) {
        let restore = matches!(
            trigger,
            Trigger::MapReplaced { .. } | Trigger::Resync | Trigger::Retry
        );
        match (&self.last_good, restore) {
            (Some(good), true) => {
                let (result, records) = self.attempt(good);
                let restored = result.is_ok();
                (Outcome::BadFile { error, restored }, records)
            }
            _ => (
                Outcome::BadFile {
                    error,
                    restored: false,
                },
                Vec::new(),
            ),
        }
    }

    /// One apply of `bytes` with the library's engine.
    fn attempt(&self, bytes: &[u8]) -> (Result<(), SdkError>, Vec<ApplyRecord>) {
        let name = self.file.display().to_string();
        let mut records = Vec::new();
        let result = match &self.target {
            WatchTarget::Map { name: map, pin } => (|| {
                let handle = self.object.open_at(map, pin)?;
                let opts = self.opts.apply.for_map(handle.name());
                let r = handle.apply_reader(Cursor::new(bytes), &name, &opts, &mut |_| {});
                records.push(ApplyRecord::new(&handle, &name, &opts, &r));
                r.map(|_| ())
            })(),
            WatchTarget::State => self.object.apply_state(
                Cursor::new(bytes),
                &name,
                &self.opts.apply,
                &mut |_, _| {},
                &mut records,
            ),
        };
        (result, records)
    }

    /// The first pin that holds another map than when it was last applied.
    pub fn replaced_map(&mut self) -> Option<Trigger> {
        for (pin, (map, seen)) in self.pins.iter_mut() {
            let now = pinned_id(pin);
            match (now, *seen) {
                (Some(new_id), old_id) if Some(new_id) != old_id => {
                    *seen = now;
                    return Some(Trigger::MapReplaced {
                        map: map.clone(),
                        pin: pin.clone(),
                        old_id,
                        new_id,
                    });
                }
                // Gone: nothing to write into until a map is pinned again.
                (None, _) => *seen = None,
                _ => {}
            }
        }
        None
    }

    /// Reconciles at start and then on every change (see the
    /// [module docs](self)) until `stop` is set; `on` gets every
    /// [`Reconcile`]. Errors only when the file's directory cannot be
    /// watched.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        on: &mut dyn FnMut(&Reconcile),
    ) -> Result<RunSummary, OpsError> {
        let mut watcher = FileWatcher::new()?;
        watcher.watch_file(&self.file)?;
        let mut summary = RunSummary::default();
        let mut next = Schedule::new(&self.opts);
        let mut run_one = |me: &mut Reconciler,
                           watcher: &mut FileWatcher,
                           next: &mut Schedule,
                           trigger: Trigger,
                           content: Option<std::io::Result<Vec<u8>>>| {
            let r = match content {
                Some(c) => me.reconcile_content(trigger, c),
                None => me.reconcile(trigger),
            };
            summary.reconciles += 1;
            summary.interrupted |= matches!(r.outcome, Outcome::Interrupted { .. });
            next.after_reconcile(&me.opts, matches!(r.outcome, Outcome::Failed { .. }));
            on(&r);
            // The symlink may lead elsewhere now; new pins may have appeared.
            let _ = watcher.watch_file(&me.file);
            watcher.watch_pins(me.pins.keys().map(PathBuf::as_path));
        };
        run_one(self, &mut watcher, &mut next, Trigger::Start, None);
        let mut dirty: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            self.health.tick();
            let wait = dirty.map_or(TICK, |d| {
                (d + self.opts.settle)
                    .saturating_duration_since(Instant::now())
                    .min(TICK)
            });
            match watcher.wait(wait) {
                Some(Wake::File) => dirty = Some(Instant::now()),
                Some(Wake::Pin) => next.pins = Instant::now(),
                None => {}
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let now = Instant::now();
            if dirty.is_some_and(|d| now >= d + self.opts.settle) {
                dirty = None;
                if let Some(content) = self.read_if_changed() {
                    run_one(
                        self,
                        &mut watcher,
                        &mut next,
                        Trigger::FileChanged,
                        Some(content),
                    );
                    continue;
                }
            }
            if now >= next.pins {
                next.pins = now + self.opts.pin_check;
                if let Some(t) = self.replaced_map() {
                    run_one(self, &mut watcher, &mut next, t, None);
                    continue;
                }
            }
            if next.retry.is_some_and(|r| now >= r) {
                run_one(self, &mut watcher, &mut next, Trigger::Retry, None);
            } else if now >= next.resync {
                run_one(self, &mut watcher, &mut next, Trigger::Resync, None);
            }
        }
        Ok(summary)
    }
}

/// When the loop next checks pins, retries and resyncs.
struct Schedule {
    pins: Instant,
    resync: Instant,
    retry: Option<Instant>,
}

impl Schedule {
    fn new(opts: &WatchOptions) -> Schedule {
        let now = Instant::now();
        Schedule {
            pins: now + opts.pin_check,
            resync: now + opts.resync,
            retry: None,
        }
    }

    fn after_reconcile(&mut self, opts: &WatchOptions, failed: bool) {
        let now = Instant::now();
        self.resync = now + opts.resync;
        self.retry = failed.then(|| now + opts.retry);
    }
}
