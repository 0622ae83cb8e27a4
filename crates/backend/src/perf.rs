//! Reading `BPF_MAP_TYPE_PERF_EVENT_ARRAY` maps: one perf ring per CPU.
//!
//! A program calls `bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`;
//! the kernel looks up the perf event stored in `map[cpu]` and appends a
//! `PERF_RECORD_SAMPLE` to that event's ring buffer. [`PerfEventArray::open`]
//! creates those events (`PERF_COUNT_SW_BPF_OUTPUT`, one per CPU), maps their
//! rings, stores their fds in the map and enables them;
//! [`PerfEventArray::read_events`] waits for records and hands each sample to
//! a callback. Dropping it removes the fds from the map again.
//!
//! Each ring is a power-of-two data area the kernel fills at `data_head` and
//! user space frees by advancing `data_tail`; both are running byte counts.
//! The walker ([`walk`]) is plain safe code over any [`RingData`] — the
//! mapped ring, or a byte slice in tests — and bounds every record by what
//! lies between `data_tail` and `data_head`, so a corrupt header cannot make
//! it read outside the ring.
//!
//! ```no_run
//! use std::time::Duration;
//! use ebpf_sdk_backend::{Map, PerfEventArray, PerfOptions};
//!
//! # fn main() -> Result<(), ebpf_sdk_backend::BackendError> {
//! let map = Map::open_pinned("/sys/fs/bpf/ingress_node_firewall_events_map")?;
//! let mut events = PerfEventArray::open(&map, PerfOptions::default())?;
//! loop {
//!     let stats = events.read_events(Duration::from_secs(1), |event| {
//!         println!("cpu {}: {} bytes", event.cpu, event.data.len());
//!     })?;
//!     if stats.lost > 0 {
//!         eprintln!("{} events lost (ring full)", stats.lost);
//!     }
//! }
//! # }
//! ```

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::Duration;

use crate::backend::UpdateFlags;
use crate::error::{BackendError, MapContext, Op, Target};
use crate::map::Map;
use crate::percpu::{parse_cpu_list, possible_cpus};
use crate::program::Program;
use crate::sys::{self, PerfRing};
use ebpf_sdk_schema::MapType;

/// Default data pages per CPU ring ([`PerfOptions::pages_per_cpu`]).
pub const DEFAULT_PAGES_PER_CPU: usize = 8;

/// Where the kernel lists the online CPUs.
const ONLINE_CPUS_PATH: &str = "/sys/devices/system/cpu/online";

/// `PERF_RECORD_LOST`: `{ header, u64 id, u64 lost }`.
const PERF_RECORD_LOST: u32 = 2;
/// `PERF_RECORD_SAMPLE`; with `PERF_SAMPLE_RAW` only: `{ header, u32 size, u8 data[size] }`.
const PERF_RECORD_SAMPLE: u32 = 9;
/// `struct perf_event_header`: `u32 type, u16 misc, u16 size`.
const HEADER_LEN: usize = 8;

/// How [`PerfEventArray::open`] sets up the rings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfOptions {
    /// Data pages per CPU ring: a power of two (the kernel's rule), default
    /// [`DEFAULT_PAGES_PER_CPU`]. Each ring also maps one metadata page, and
    /// all of it counts against `kernel.perf_event_mlock_kb`.
    pub pages_per_cpu: usize,
    /// The CPUs to read. `None`: every possible CPU that is online (a
    /// program running on a CPU without a ring gets `-ENOENT` from
    /// `bpf_perf_event_output` and the event is dropped).
    pub cpus: Option<Vec<u32>>,
}

impl Default for PerfOptions {
    fn default() -> Self {
        PerfOptions {
            pages_per_cpu: DEFAULT_PAGES_PER_CPU,
            cpus: None,
        }
    }
}

/// One sample a program wrote with `bpf_perf_event_output`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// The CPU whose ring it came from (where the program ran).
    pub cpu: u32,
    /// The raw sample as the kernel declared it: what the program passed
    /// (e.g. a header, then the packet bytes `flags >> 32` asked for),
    /// followed by 0..=7 zero bytes the kernel adds to keep records 8-byte
    /// aligned. The perf ABI does not record the unpadded length.
    pub data: Vec<u8>,
}

/// What one [`PerfEventArray::read_events`] call saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadStats {
    /// Samples passed to the callback.
    pub events: usize,
    /// Samples the kernel dropped because a ring was full
    /// (`PERF_RECORD_LOST`); read more often or use more `pages_per_cpu`.
    pub lost: u64,
    /// Records skipped: samples whose declared size overflows their
    /// record, and record types other than samples and lost counts.
    pub skipped: usize,
}

impl ReadStats {
    fn is_empty(&self) -> bool {
        self.events == 0 && self.lost == 0
    }
}

struct CpuRing {
    cpu: u32,
    ring: PerfRing,
    /// `poll` reported `POLLHUP`/`POLLERR`: read, but not waited on.
    hung_up: bool,
}

/// The perf rings of a perf event array: open, read, and removed from the
/// map on drop.
///
/// The kernel stores one fd per array index, so one reader serves a map at
/// a time: opening a second reader on the same map replaces the first one's
/// rings (it then receives nothing), and whichever is dropped first removes
/// the entries of both. Reading takes `&mut self`; a reader can be moved to
/// another thread.
pub struct PerfEventArray {
    rings: Vec<CpuRing>,
    /// A duplicate of the caller's map fd: keeps the entries alive if the
    /// caller closes theirs (the kernel clears a perf event array's entries
    /// when the map file used to store them is released), and deletes them
    /// on drop.
    map: Map,
    /// The caller's map context (with its pin path), for errors.
    ctx: MapContext,
    ring_size: usize,
    scratch: Vec<u8>,
    lost: u64,
}

impl std::fmt::Debug for PerfEventArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerfEventArray")
            .field("map", &self.ctx)
            .field("cpus", &self.cpus())
            .field("ring_size", &self.ring_size)
            .field("lost", &self.lost)
            .finish()
    }
}

impl PerfEventArray {
    /// Sets up a ring on each CPU of `opts` for the perf event array `map`:
    /// `perf_event_open(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_BPF_OUTPUT,
    /// PERF_SAMPLE_RAW, wakeup_events = 1)` on that CPU for all processes,
    /// `mmap` of `1 + pages_per_cpu` pages, `map[cpu] = fd`, enable.
    ///
    /// Refused before the kernel is asked: a map that is not a perf event
    /// array ([`BackendError::WrongMapType`]), a page count that is not a
    /// power of two, or a CPU list that is empty, repeats a CPU or names
    /// one that is not possible ([`BackendError::InvalidPerfOptions`]), a
    /// CPU at or past the map's `max_entries`
    /// ([`BackendError::IndexOutOfRange`]). Kernel refusals are
    /// [`BackendError::PerfBuffer`] with the op, the CPU and what the errno
    /// usually means (e.g. `EACCES`: CAP_PERFMON is missing). On error,
    /// everything set up so far is undone.
    pub fn open(map: &Map, opts: PerfOptions) -> Result<PerfEventArray, BackendError> {
        let ctx = map.context().clone();
        let info = map.info();
        if info.map_type != MapType::PerfEventArray {
            return Err(BackendError::WrongMapType {
                op: Op::PerfEventOpen,
                map: ctx,
                map_type: info.map_type,
                expected: "a perf event array",
            });
        }
        let invalid = |detail: String| BackendError::InvalidPerfOptions {
            map: ctx.clone(),
            detail,
        };
        let pages = opts.pages_per_cpu;
        if !pages.is_power_of_two() {
            return Err(invalid(format!(
                "pages_per_cpu is {pages}; it must be a power of two (1, 2, 4, 8, ...)"
            )));
        }
        let page_size = sys::page_size();
        let ring_size = pages
            .checked_mul(page_size)
            .filter(|n| n.checked_add(page_size).is_some() && *n <= 1 << 30)
            .ok_or_else(|| {
                invalid(format!(
                    "pages_per_cpu is {pages}; a ring of {pages} x {page_size} bytes is too large (at most 1 GiB)"
                ))
            })?;
        let cpus = select_cpus(opts.cpus.as_deref(), &invalid)?;
        if let Some(&cpu) = cpus.iter().find(|&&c| c >= info.max_entries) {
            return Err(BackendError::IndexOutOfRange {
                op: Op::Update,
                map: ctx,
                index: cpu,
                max_entries: info.max_entries,
            });
        }
        let dup = map
            .as_fd()
            .try_clone_to_owned()
            .map_err(|source| BackendError::Kernel {
                op: Op::Open,
                target: Target::Map(ctx.clone()),
                source,
            })?;
        let mut this = PerfEventArray {
            rings: Vec::with_capacity(cpus.len()),
            map: Map::from_fd(dup)?,
            ctx,
            ring_size,
            scratch: Vec::new(),
            lost: 0,
        };
        for cpu in cpus {
            let fd = sys::perf_event_open_bpf_output(cpu, 1)
                .map_err(|e| this.perf_err(Op::PerfEventOpen, Some(cpu), e))?;
            let ring = PerfRing::new(fd, pages, page_size)
                .map_err(|e| this.perf_err(Op::PerfMmap, Some(cpu), e))?;
            let raw = u32::try_from(ring.as_fd().as_raw_fd()).unwrap_or(u32::MAX);
            // Through the caller's map, so errors name its pin path.
            map.update(&cpu.to_ne_bytes(), &raw.to_ne_bytes(), UpdateFlags::Any)?;
            this.rings.push(CpuRing {
                cpu,
                ring,
                hung_up: false,
            });
            if let Some(r) = this.rings.last() {
                r.ring
                    .enable()
                    .map_err(|e| this.perf_err(Op::PerfEnable, Some(cpu), e))?;
            }
        }
        Ok(this)
    }

    fn perf_err(&self, op: Op, cpu: Option<u32>, source: io::Error) -> BackendError {
        BackendError::PerfBuffer {
            op,
            map: self.ctx.clone(),
            cpu,
            hint: perf_hint(op, source.raw_os_error()),
            source,
        }
    }

    /// The CPUs with a ring, ascending.
    pub fn cpus(&self) -> Vec<u32> {
        self.rings.iter().map(|r| r.cpu).collect()
    }

    /// Bytes in each CPU's ring (`pages_per_cpu` pages).
    pub fn ring_size(&self) -> usize {
        self.ring_size
    }

    /// The map's name, id and pin path (as given to [`PerfEventArray::open`]).
    pub fn context(&self) -> &MapContext {
        &self.ctx
    }

    /// Samples lost since open (the sum of [`ReadStats::lost`]).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Passes every sample now in the rings to `f`, in ring order per CPU
    /// (CPUs one after the other, so samples of different CPUs are not in
    /// time order). When there are none, waits up to `timeout` for the
    /// rings to wake it (`Duration::ZERO`: do not wait) and reads them
    /// again.
    ///
    /// The call may end before `timeout` with nothing read — a signal, or a
    /// wakeup for records that are not samples — so callers read in a loop
    /// (and can check their own stop flag in it). A ring whose event hangs
    /// up (`POLLHUP`/`POLLERR`) is still read but no longer waited on, so
    /// it cannot make the loop spin.
    ///
    /// Errors: [`BackendError::PerfBuffer`] if `poll` fails, and
    /// [`BackendError::PerfRingCorrupt`] if a ring held a record with an
    /// impossible size. That is reported after every ring was read (events
    /// before it were passed to `f`, lost counts are in
    /// [`PerfEventArray::lost`]); the bad ring's unread rest is discarded
    /// and reading can continue.
    pub fn read_events(
        &mut self,
        timeout: Duration,
        mut f: impl FnMut(Event),
    ) -> Result<ReadStats, BackendError> {
        let mut stats = ReadStats::default();
        self.drain(&mut stats, &mut f)?;
        if !stats.is_empty() || timeout.is_zero() {
            return Ok(stats);
        }
        // Round up: a sub-millisecond timeout must still wait, not spin.
        let ms = timeout
            .as_micros()
            .div_ceil(1000)
            .try_into()
            .unwrap_or(i32::MAX);
        let live: Vec<usize> = (0..self.rings.len())
            .filter(|&i| !self.rings[i].hung_up)
            .collect();
        let fds: Vec<BorrowedFd<'_>> = live.iter().map(|&i| self.rings[i].ring.as_fd()).collect();
        match sys::poll(&fds, ms) {
            Ok(revents) => {
                for (&i, ev) in live.iter().zip(revents) {
                    if ev & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                        self.rings[i].hung_up = true;
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(self.perf_err(Op::PerfPoll, None, e)),
        }
        self.drain(&mut stats, &mut f)?;
        Ok(stats)
    }

    /// Walks every ring once.
    fn drain(
        &mut self,
        stats: &mut ReadStats,
        f: &mut impl FnMut(Event),
    ) -> Result<(), BackendError> {
        let mut first_corrupt = None;
        for r in &self.rings {
            let head = r.ring.data_head();
            let tail = r.ring.data_tail();
            if head == tail {
                continue;
            }
            let walked = walk(&r.ring, tail, head, &mut self.scratch, |rec| match rec {
                Record::Sample(data) => {
                    stats.events += 1;
                    f(Event {
                        cpu: r.cpu,
                        data: data.to_vec(),
                    });
                }
                Record::Lost(n) => {
                    stats.lost = stats.lost.saturating_add(n);
                    self.lost = self.lost.saturating_add(n);
                }
                Record::Malformed { .. } | Record::Other(_) => stats.skipped += 1,
            });
            r.ring.set_data_tail(walked.tail);
            if let Some(c) = walked.corrupt {
                first_corrupt.get_or_insert((r.cpu, c, r.ring.data_size()));
            }
        }
        match first_corrupt {
            None => Ok(()),
            Some((cpu, c, ring_size)) => Err(BackendError::PerfRingCorrupt {
                map: self.ctx.clone(),
                cpu,
                position: c.position,
                size: c.size,
                available: c.available,
                ring_size,
            }),
        }
    }
}

impl Drop for PerfEventArray {
    fn drop(&mut self) {
        // Remove our events from the map before they go away (ENOENT: the
        // slot was already cleared). Each ring is then unmapped and its fd
        // closed as `rings` drops.
        for r in &self.rings {
            let _ = self.map.delete(&r.cpu.to_ne_bytes());
        }
    }
}

/// The CPUs to open: the caller's list, checked, or the possible CPUs that
/// are online.
fn select_cpus(
    wanted: Option<&[u32]>,
    invalid: &dyn Fn(String) -> BackendError,
) -> Result<Vec<u32>, BackendError> {
    let possible = possible_cpus()?;
    let Some(wanted) = wanted else {
        // Without the online list (unusual), try every possible CPU.
        let online = std::fs::read_to_string(ONLINE_CPUS_PATH)
            .ok()
            .and_then(|s| parse_cpu_list(&s));
        return Ok(match online {
            Some(online) => possible
                .into_iter()
                .filter(|c| online.contains(c))
                .collect(),
            None => possible,
        });
    };
    if wanted.is_empty() {
        return Err(invalid("the CPU list is empty".into()));
    }
    let mut cpus = wanted.to_vec();
    cpus.sort_unstable();
    if let Some(w) = cpus.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!("CPU {} is listed twice", w[0])));
    }
    if let Some(c) = cpus.iter().find(|c| !possible.contains(c)) {
        return Err(invalid(format!(
            "CPU {c} is not a possible CPU (possible: {})",
            cpu_list_text(&possible)
        )));
    }
    Ok(cpus)
}

/// `0-3,8` for messages.
fn cpu_list_text(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = cpus[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

/// What an errno of a perf buffer operation usually means.
fn perf_hint(op: Op, errno: Option<i32>) -> Option<&'static str> {
    Some(match (op, errno?) {
        (Op::PerfEventOpen, libc::EACCES | libc::EPERM) => {
            "a CPU-wide perf event needs CAP_PERFMON (or CAP_SYS_ADMIN), or sysctl kernel.perf_event_paranoid <= 0"
        }
        (Op::PerfEventOpen, libc::ENOENT | libc::EOPNOTSUPP) => {
            "this kernel has no PERF_COUNT_SW_BPF_OUTPUT software event (needs Linux 4.4+ with CONFIG_PERF_EVENTS)"
        }
        (Op::PerfEventOpen, libc::ENOSYS) => "this kernel was built without perf events (CONFIG_PERF_EVENTS)",
        (Op::PerfEventOpen, libc::ENODEV) => {
            "the CPU is offline; pass online CPUs in PerfOptions::cpus or leave it unset"
        }
        (Op::PerfEventOpen | Op::PerfMmap, libc::EMFILE | libc::ENFILE) => {
            "too many open files; raise the limit (ulimit -n)"
        }
        (Op::PerfMmap, libc::EPERM | libc::ENOMEM) => {
            "the rings exceed the locked-memory allowance (sysctl kernel.perf_event_mlock_kb per user, then RLIMIT_MEMLOCK, unless CAP_IPC_LOCK); use fewer pages_per_cpu"
        }
        (Op::PerfMmap, libc::EINVAL) => "the kernel refused the ring layout (pages_per_cpu must be a power of two)",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// The ring walker
// ---------------------------------------------------------------------------

/// The data area of a perf ring as the walker reads it.
pub(crate) trait RingData {
    /// Bytes in the data area.
    fn ring_size(&self) -> usize;
    /// Copies `dst.len()` bytes from ring position `pos` (modulo the size),
    /// wrapping around the end. `false` (nothing copied) if `dst` is longer
    /// than the ring.
    fn copy_at(&self, pos: u64, dst: &mut [u8]) -> bool;
}

impl RingData for PerfRing {
    fn ring_size(&self) -> usize {
        self.data_size()
    }
    fn copy_at(&self, pos: u64, dst: &mut [u8]) -> bool {
        self.copy_data(pos, dst)
    }
}

impl RingData for [u8] {
    fn ring_size(&self) -> usize {
        self.len()
    }
    fn copy_at(&self, pos: u64, dst: &mut [u8]) -> bool {
        let size = self.len();
        if dst.len() > size {
            return false;
        }
        if dst.is_empty() {
            return true;
        }
        let start = usize::try_from(pos % size as u64).unwrap_or(0);
        let first = dst.len().min(size - start);
        let (a, b) = dst.split_at_mut(first);
        a.copy_from_slice(&self[start..start + a.len()]);
        b.copy_from_slice(&self[..b.len()]);
        true
    }
}

/// One record, as the walker hands it out.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Record<'a> {
    /// A sample's raw data (its declared size, padding included).
    Sample(&'a [u8]),
    /// A lost-records count.
    Lost(u64),
    /// A sample or lost record too short for what it declares.
    Malformed { kind: u32, size: usize },
    /// Another record type (not produced for BPF output events).
    Other(u32),
}

/// A record header that cannot be right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Corrupt {
    pub(crate) position: u64,
    pub(crate) size: u64,
    pub(crate) available: u64,
}

/// Where a walk ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Walk {
    /// The new `data_tail`: `head`, unless the walk found nothing to read.
    pub(crate) tail: u64,
    /// Set when the walk stopped at a corrupt header (and skipped to `head`).
    pub(crate) corrupt: Option<Corrupt>,
}

/// Reads the records between `tail` and `head` (running byte counts, which
/// may wrap around `u64`), copying each into `scratch` (so records that
/// wrap around the ring's end arrive whole) and passing it to `f`.
///
/// A header claiming fewer than 8 bytes or more than lie before `head`
/// (which is never more than the ring size after `tail`) stops the walk:
/// the rest up to `head` is skipped and reported, since records carry no
/// marker to resynchronise on.
pub(crate) fn walk<R: RingData + ?Sized>(
    ring: &R,
    tail: u64,
    head: u64,
    scratch: &mut Vec<u8>,
    mut f: impl FnMut(Record<'_>),
) -> Walk {
    let ring_size = u64::try_from(ring.ring_size()).unwrap_or(u64::MAX);
    let corrupt = |position, size, available| Walk {
        tail: head,
        corrupt: Some(Corrupt {
            position,
            size,
            available,
        }),
    };
    if head.wrapping_sub(tail) > ring_size {
        return corrupt(tail, 0, head.wrapping_sub(tail));
    }
    let mut pos = tail;
    while pos != head {
        let available = head.wrapping_sub(pos);
        let mut header = [0u8; HEADER_LEN];
        if available < HEADER_LEN as u64 || !ring.copy_at(pos, &mut header) {
            return corrupt(pos, 0, available);
        }
        let kind = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let size = u16::from_ne_bytes([header[6], header[7]]);
        if usize::from(size) < HEADER_LEN || u64::from(size) > available {
            return corrupt(pos, u64::from(size), available);
        }
        scratch.clear();
        scratch.resize(usize::from(size), 0);
        if !ring.copy_at(pos, scratch) {
            return corrupt(pos, u64::from(size), available);
        }
        f(parse_record(kind, scratch));
        pos = pos.wrapping_add(u64::from(size));
    }
    Walk {
        tail: pos,
        corrupt: None,
    }
}

/// Interprets one whole record (header included).
fn parse_record(kind: u32, rec: &[u8]) -> Record<'_> {
    let malformed = Record::Malformed {
        kind,
        size: rec.len(),
    };
    let u32_at = |at: usize| {
        rec.get(at..at + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    match kind {
        PERF_RECORD_SAMPLE => {
            let Some(raw_size) = u32_at(HEADER_LEN).and_then(|n| usize::try_from(n).ok()) else {
                return malformed;
            };
            let start = HEADER_LEN + 4;
            match start
                .checked_add(raw_size)
                .and_then(|end| rec.get(start..end))
            {
                Some(data) => Record::Sample(data),
                None => malformed,
            }
        }
        PERF_RECORD_LOST => match rec.get(HEADER_LEN + 8..HEADER_LEN + 16) {
            Some(b) => {
                let mut n = [0u8; 8];
                n.copy_from_slice(b);
                Record::Lost(u64::from_ne_bytes(n))
            }
            None => malformed,
        },
        other => Record::Other(other),
    }
}

// ---------------------------------------------------------------------------
// Triggering events without traffic
// ---------------------------------------------------------------------------

/// The outcome of [`Program::test_run`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestRun {
    /// The program's return value (of the last run), e.g. `XDP_DROP` = 1.
    pub retval: u32,
    /// The packet as the program left it.
    pub data: Vec<u8>,
    /// Average run time in nanoseconds.
    pub duration_ns: u32,
}

impl Program {
    /// Runs the program on `data` with `BPF_PROG_TEST_RUN`, `repeat` times
    /// (0 counts as 1), in this process on the current CPU, with the
    /// program type's context built from `ctx` when given (for XDP a
    /// `struct xdp_md` with `data = 0`, `data_end = data.len()` and the
    /// `ingress_ifindex` of an existing device; without one the program
    /// sees the loopback device). Maps, helpers and perf event output
    /// behave as for a real packet, so this triggers events without traffic.
    ///
    /// Errors: [`BackendError::PermissionDenied`] without CAP_BPF (some
    /// types also need CAP_NET_ADMIN or CAP_SYS_ADMIN), else
    /// [`BackendError::Kernel`] with [`Op::TestRun`] (e.g. `ENOTSUPP` for
    /// program types without test runs, `EINVAL` for a context the type
    /// refuses, `ENODEV` for an unknown ifindex).
    pub fn test_run(
        &self,
        data: &[u8],
        ctx: Option<&[u8]>,
        repeat: u32,
    ) -> Result<TestRun, BackendError> {
        let target = || match self.path() {
            Some(p) => Target::Path(p.to_path_buf()),
            None => Target::Id {
                kind: crate::ObjectKind::Program,
                id: self.info().id,
            },
        };
        // Room for programs that grow the packet; retried once at the size
        // the kernel asks for.
        let mut capacity = data.len().saturating_add(4096);
        for _ in 0..2 {
            match sys::prog_test_run(self.as_fd(), data, ctx, repeat, capacity) {
                Ok(r) => {
                    return Ok(TestRun {
                        retval: r.retval,
                        data: r.data_out,
                        duration_ns: r.duration,
                    })
                }
                Err((e, need))
                    if e.raw_os_error() == Some(libc::ENOSPC) && need as usize > capacity =>
                {
                    capacity = need as usize;
                }
                Err((source, _)) => {
                    return Err(match source.raw_os_error() {
                        Some(libc::EPERM | libc::EACCES) => BackendError::PermissionDenied {
                            op: Op::TestRun,
                            target: target(),
                            source,
                        },
                        _ => BackendError::Kernel {
                            op: Op::TestRun,
                            target: target(),
                            source,
                        },
                    })
                }
            }
        }
        Err(BackendError::Kernel {
            op: Op::TestRun,
            target: target(),
            source: io::Error::from_raw_os_error(libc::ENOSPC),
        })
    }
}

// A reader can be moved to the thread that reads it.
const _: () = {
    const fn is_send<T: Send>() {}
    is_send::<PerfEventArray>();
};

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a record: header (type, misc 0, size) + body, padded to 8.
    fn record(kind: u32, body: &[u8]) -> Vec<u8> {
        let size = (HEADER_LEN + body.len()).next_multiple_of(8);
        let mut r = kind.to_ne_bytes().to_vec();
        r.extend(0u16.to_ne_bytes());
        r.extend(u16::try_from(size).unwrap().to_ne_bytes());
        r.extend(body);
        r.resize(size, 0);
        r
    }

    /// A sample as the kernel writes BPF output: u32 size, then the data
    /// padded so that `4 + size` is a multiple of 8.
    fn sample(data: &[u8]) -> (Vec<u8>, usize) {
        let raw_size = (4 + data.len()).next_multiple_of(8) - 4;
        let mut body = u32::try_from(raw_size).unwrap().to_ne_bytes().to_vec();
        body.extend(data);
        body.resize(4 + raw_size, 0);
        (record(PERF_RECORD_SAMPLE, &body), raw_size)
    }

    fn lost(n: u64) -> Vec<u8> {
        let mut body = 77u64.to_ne_bytes().to_vec(); // id
        body.extend(n.to_ne_bytes());
        record(PERF_RECORD_LOST, &body)
    }

    /// Writes `records` into a ring of `size` bytes starting at running
    /// position `tail`; returns the ring and the head.
    fn ring(size: usize, tail: u64, records: &[Vec<u8>]) -> (Vec<u8>, u64) {
        let mut data = vec![0xeeu8; size];
        let mut pos = tail;
        for r in records {
            for &b in r {
                data[(pos % size as u64) as usize] = b;
                pos = pos.wrapping_add(1);
            }
        }
        (data, pos)
    }

    fn collect(data: &[u8], tail: u64, head: u64) -> (Vec<Vec<u8>>, u64, usize, Walk) {
        let (mut samples, mut lost, mut skipped) = (Vec::new(), 0, 0);
        let mut scratch = Vec::new();
        let w = walk(data, tail, head, &mut scratch, |r| match r {
            Record::Sample(d) => samples.push(d.to_vec()),
            Record::Lost(n) => lost += n,
            Record::Malformed { .. } | Record::Other(_) => skipped += 1,
        });
        (samples, lost, skipped, w)
    }

    #[test]
    fn records_wrapping_around_the_end_arrive_whole() {
        let payload: Vec<u8> = (0u8..37).collect();
        let (s1, raw1) = sample(&payload);
        let (s2, _) = sample(b"second");
        // Start 16 bytes before the end of a 128-byte ring: s1 (56 bytes)
        // wraps, then a LOST record, then s2.
        let tail = 1000 * 128 - 16;
        let (data, head) = ring(128, tail, &[s1, lost(5), s2]);
        let (samples, n_lost, skipped, w) = collect(&data, tail, head);
        assert_eq!(
            w,
            Walk {
                tail: head,
                corrupt: None
            }
        );
        assert_eq!(n_lost, 5);
        assert_eq!(skipped, 0);
        assert_eq!(samples.len(), 2);
        // The declared size is kept: the data plus the kernel's zero padding.
        assert_eq!(samples[0].len(), raw1);
        assert_eq!(&samples[0][..37], payload.as_slice());
        assert!(samples[0][37..].iter().all(|&b| b == 0));
        assert_eq!(&samples[1][..6], b"second");
    }

    #[test]
    fn a_record_header_split_by_the_ring_end_is_read() {
        let (s, _) = sample(b"abc");
        // Only 4 bytes left before the end: the header itself wraps.
        let tail = 64 - 4;
        let (data, head) = ring(64, tail, &[s.clone(), s]);
        let (samples, _, _, w) = collect(&data, tail, head);
        assert_eq!(w.corrupt, None);
        assert_eq!(samples.len(), 2);
        assert!(samples.iter().all(|d| &d[..3] == b"abc"));
    }

    #[test]
    fn positions_wrap_around_u64() {
        let (s, _) = sample(b"wrap");
        let tail = u64::MAX - 7;
        let (data, head) = ring(64, tail, &[s.clone(), lost(1), s]);
        assert!(head < tail);
        let (samples, n_lost, _, w) = collect(&data, tail, head);
        assert_eq!(
            w,
            Walk {
                tail: head,
                corrupt: None
            }
        );
        assert_eq!((samples.len(), n_lost), (2, 1));
    }

    #[test]
    fn bogus_sizes_stop_the_walk_without_reading_out_of_bounds() {
        let (s, _) = sample(b"good");
        // A header claiming 0xfff8 bytes in a 128-byte ring after one good record.
        let mut bogus = record(PERF_RECORD_SAMPLE, &[0; 8]);
        bogus[6..8].copy_from_slice(&0xfff8u16.to_ne_bytes());
        let (data, head) = ring(128, 40, &[s.clone(), bogus]);
        let (samples, _, _, w) = collect(&data, 40, head);
        assert_eq!(samples.len(), 1, "the record before it is delivered");
        assert_eq!(w.tail, head, "the rest is skipped");
        assert_eq!(
            w.corrupt,
            Some(Corrupt {
                position: 40 + s.len() as u64,
                size: 0xfff8,
                available: 16
            })
        );

        // Size 0 would loop forever if accepted.
        let mut zero = record(PERF_RECORD_SAMPLE, &[0; 8]);
        zero[6..8].copy_from_slice(&0u16.to_ne_bytes());
        let (data, head) = ring(64, 0, &[zero]);
        let (_, _, _, w) = collect(&data, 0, head);
        assert_eq!(w.corrupt.map(|c| c.size), Some(0));
        assert_eq!(w.tail, head);

        // A head more than a ring ahead of the tail.
        let data = vec![0u8; 64];
        let (_, _, _, w) = collect(&data, 0, 65);
        assert_eq!(
            w.corrupt,
            Some(Corrupt {
                position: 0,
                size: 0,
                available: 65
            })
        );

        // Fewer than 8 bytes before head.
        let (_, _, _, w) = collect(&data, 0, 4);
        assert_eq!(w.corrupt.map(|c| c.available), Some(4));
    }

    #[test]
    fn samples_overflowing_their_record_are_skipped() {
        // raw size 100 in a 24-byte record.
        let mut body = 100u32.to_ne_bytes().to_vec();
        body.extend([1; 12]);
        let bad = record(PERF_RECORD_SAMPLE, &body);
        let (good, _) = sample(b"ok");
        let short_lost = record(PERF_RECORD_LOST, &[0; 8]);
        let other = record(14, &[0; 8]); // PERF_RECORD_THROTTLE-like
        let (data, head) = ring(256, 0, &[bad, short_lost, other, good]);
        let (samples, n_lost, skipped, w) = collect(&data, 0, head);
        assert_eq!(w.corrupt, None);
        assert_eq!((samples.len(), n_lost, skipped), (1, 0, 3));
        assert_eq!(&samples[0][..2], b"ok");
    }

    #[test]
    fn an_empty_ring_reads_nothing() {
        let data = vec![0u8; 64];
        let (samples, _, _, w) = collect(&data, 48, 48);
        assert!(samples.is_empty());
        assert_eq!(
            w,
            Walk {
                tail: 48,
                corrupt: None
            }
        );
    }

    #[test]
    fn parse_record_bounds() {
        assert_eq!(
            parse_record(PERF_RECORD_SAMPLE, &[0; 10]),
            Record::Malformed {
                kind: PERF_RECORD_SAMPLE,
                size: 10
            }
        );
        let mut r = record(PERF_RECORD_SAMPLE, &u32::MAX.to_ne_bytes());
        r.truncate(12);
        assert!(matches!(
            parse_record(PERF_RECORD_SAMPLE, &r),
            Record::Malformed { .. }
        ));
        assert_eq!(parse_record(PERF_RECORD_LOST, &lost(9)), Record::Lost(9));
    }

    #[test]
    fn cpu_lists_and_hints() {
        assert_eq!(cpu_list_text(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(cpu_list_text(&[5]), "5");
        assert!(perf_hint(Op::PerfEventOpen, Some(libc::EACCES))
            .unwrap()
            .contains("CAP_PERFMON"));
        assert!(perf_hint(Op::PerfMmap, Some(libc::EPERM))
            .unwrap()
            .contains("perf_event_mlock_kb"));
        assert_eq!(perf_hint(Op::PerfPoll, Some(libc::EBADF)), None);
    }

    #[test]
    fn errors_name_the_op_map_and_cpu() {
        let map = MapContext {
            name: "ingress_node_fi".into(),
            id: 3,
            path: Some("/sys/fs/bpf/events".into()),
        };
        let source = io::Error::from_raw_os_error(libc::EACCES);
        let e = BackendError::PerfBuffer {
            op: Op::PerfEventOpen,
            map: map.clone(),
            cpu: Some(1),
            hint: perf_hint(Op::PerfEventOpen, source.raw_os_error()),
            source,
        };
        let text = e.to_string();
        assert!(
            text.starts_with(
                "perf_event_open on CPU 1 for perf event array `ingress_node_fi` at /sys/fs/bpf/events: "
            ),
            "{text}"
        );
        assert!(text.ends_with("kernel.perf_event_paranoid <= 0"), "{text}");
        assert_eq!(e.errno(), Some(libc::EACCES));
        let e = BackendError::PerfBuffer {
            op: Op::PerfPoll,
            map: map.clone(),
            cpu: None,
            hint: None,
            source: io::Error::from_raw_os_error(libc::EBADF),
        };
        assert!(
            e.to_string()
                .starts_with("poll perf events for perf event array"),
            "{e}"
        );
        let e = BackendError::PerfRingCorrupt {
            map,
            cpu: 0,
            position: 4096,
            size: 0xfff8,
            available: 16,
            ring_size: 4096,
        };
        assert!(e.to_string().contains("claims 65528 bytes"), "{e}");
    }

    #[test]
    fn invalid_cpu_lists_are_refused() {
        let invalid = |detail| BackendError::InvalidPerfOptions {
            map: MapContext {
                name: "m".into(),
                id: 0,
                path: None,
            },
            detail,
        };
        let e = select_cpus(Some(&[]), &invalid).unwrap_err();
        assert!(e.to_string().contains("empty"), "{e}");
        let e = select_cpus(Some(&[0, 0]), &invalid).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = select_cpus(Some(&[1 << 20]), &invalid).unwrap_err();
        assert!(e.to_string().contains("not a possible CPU"), "{e}");
        assert_eq!(select_cpus(Some(&[0]), &invalid).unwrap(), vec![0]);
        assert!(!select_cpus(None, &invalid).unwrap().is_empty());
    }
}
