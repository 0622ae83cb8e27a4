//! JSON Lines and YAML into the spool on several threads: the main thread
//! cuts the input into blocks (whole lines of JSON Lines; whole documents
//! or list items of YAML, as [`EntryReader`] cuts them), worker threads
//! parse and encode each block straight into bytes (hashing the keys for
//! the spool's index), and the blocks are spooled in input order.
//!
//! Both take a fast path where the text allows it (JSON in the plain form
//! straight to bytes; YAML in `dump`'s block style rewritten as such JSON
//! first) and the general parser, which also gives every error, elsewhere.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::BufRead;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use ebpf_sdk_codec::Value;

use super::{ApplyEvent, ApplyOptions};
use crate::entries::{yaml_entries, Entry, EntryReader, Unparsed};
use crate::entry_codec::EntryCodec;
use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::MapHandle;
use crate::spool::{write_err, Spool, Store};
use crate::SdkError;

/// A line number in [`EncodedBlock::lines`] that stands for a location
/// kept whole in [`EncodedBlock::places`].
const ELSEWHERE: u32 = u32::MAX;

/// Locations kept whole at most (later ones are named by entry number).
const MAX_PLACES: usize = 100_000;

/// Encoded records of a block.
#[derive(Default)]
struct EncodedBlock {
    /// Key then value, back to back.
    records: Vec<u8>,
    /// Each record's key hashed with the spool's hasher.
    hashes: Vec<u64>,
    /// Each record's line number, or [`ELSEWHERE`].
    lines: Vec<u32>,
    /// The locations that are more than a line of the input (a YAML
    /// document, an element of a list), by record number in the block.
    places: Vec<(u32, Location)>,
}

impl EncodedBlock {
    /// Encodes `e` (already parsed) onto the end through the general path;
    /// entries for other maps (state files) are skipped.
    fn push_entry(
        &mut self,
        cx: &BlockCx<'_>,
        e: &Entry,
        kbuf: &mut [u8],
        vbuf: &mut [u8],
    ) -> Result<(), SdkError> {
        if e.map.as_deref().is_some_and(|m| m != cx.map) {
            return Ok(());
        }
        cx.codec
            .encode_key_into(&e.key, e.byte_order, &e.location, kbuf)?;
        let value = e.value.as_ref().unwrap_or(&Value::Null);
        cx.codec
            .encode_value_into(value, e.byte_order, &e.location, vbuf)?;
        self.records.extend_from_slice(kbuf);
        self.records.extend_from_slice(vbuf);
        self.hashes.push(cx.hasher.hash_one(&*kbuf));
        self.push_location(&e.location, &cx.source);
        Ok(())
    }

    /// Encodes an entry in JSON text onto the end through the fast path;
    /// false (and nothing added) when it needs the general path. The
    /// caller records where it came from.
    fn push_json(&mut self, cx: &BlockCx<'_>, json: &[u8]) -> bool {
        let (ks, vs) = (cx.codec.key_len(), cx.codec.value_len());
        let at = self.records.len();
        self.records.resize(at + ks + vs, 0);
        let (k, v) = self.records[at..].split_at_mut(ks);
        if cx.codec.encode_json_entry(json, k, v) {
            self.hashes.push(cx.hasher.hash_one(&*k));
            return true;
        }
        self.records.truncate(at);
        false
    }

    /// Records that the last record came from line `line`.
    fn push_line(&mut self, line: usize, source: &Arc<str>) {
        match u32::try_from(line) {
            Ok(l) if l != ELSEWHERE => self.lines.push(l),
            _ => self.push_location(&Location::line(source.clone(), line), source),
        }
    }

    /// Records where the last record came from.
    fn push_location(&mut self, at: &Location, source: &Arc<str>) {
        let plain = at.document.is_none()
            && at.map.is_none()
            && at.index.is_empty()
            && at.source == *source;
        match at.line.map(u32::try_from) {
            Some(Ok(l)) if plain && l != ELSEWHERE => self.lines.push(l),
            _ => {
                self.places.push((self.lines.len() as u32, at.clone()));
                self.lines.push(ELSEWHERE);
            }
        }
    }
}

/// What every worker needs to encode a block.
struct BlockCx<'a> {
    codec: &'a EntryCodec,
    /// The map's name (entries of a state file for other maps are skipped).
    map: &'a str,
    /// The input's name, for locations.
    source: Arc<str>,
    hasher: &'a RandomState,
}

/// A block of input on its way through a parser thread, with the buffers
/// it is encoded into. Blocks are recycled: neither the text buffer nor the
/// record buffers are allocated (or zeroed) again for every block.
#[derive(Default)]
struct Work {
    /// Input order.
    seq: u64,
    /// JSON Lines: line number of the first line.
    first_line: usize,
    /// JSON Lines: `text[..len]` holds whole lines; the rest is spare room.
    text: Vec<u8>,
    len: usize,
    /// YAML: documents and list items (and anything read otherwise).
    units: Vec<Unparsed>,
    out: EncodedBlock,
}

/// Parses and encodes one block of JSON Lines (whole lines; the first is
/// line `first_line` of the input) into `out` (empty).
fn encode_block(
    cx: &BlockCx<'_>,
    block: &[u8],
    first_line: usize,
    out: &mut EncodedBlock,
) -> Result<(), SdkError> {
    let codec = cx.codec;
    let (ks, vs) = (codec.key_len(), codec.value_len());
    out.records.reserve(block.len() / 128 * (ks + vs));
    let mut kbuf = vec![0u8; ks];
    let mut vbuf = vec![0u8; vs];
    let mut entries = Vec::with_capacity(1);
    let mut start = 0;
    let mut line = first_line;
    while start <= block.len() {
        let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |p| start + p);
        let t = block[start..end].trim_ascii();
        let this_line = line;
        start = end + 1;
        line += 1;
        if t.is_empty() {
            continue;
        }
        // The plain form straight into the records; else the general path.
        if out.push_json(cx, t) {
            out.push_line(this_line, &cx.source);
            continue;
        }
        let loc = Location::line(cx.source.clone(), this_line);
        let text = std::str::from_utf8(t)
            .map_err(|_| InputError::new(loc.clone(), InputErrorKind::NotUtf8))?;
        let v = ebpf_sdk_codec::parse_json(text)
            .map_err(|e| InputError::new(loc.clone(), InputErrorKind::Syntax(e)))?;
        entries.clear();
        crate::entries::entries_from_value_at(v, &loc, None, &mut entries)?;
        for e in entries.drain(..) {
            out.push_entry(cx, &e, &mut kbuf, &mut vbuf)?;
        }
    }
    Ok(())
}

/// Parses and encodes YAML documents and list items (and entries read
/// otherwise) into `out` (empty). YAML in `dump`'s block style is rewritten
/// as JSON and takes the JSON fast path; anything else, and every error,
/// goes through the YAML parser, as [`EntryReader`] would read it.
fn encode_units(
    cx: &BlockCx<'_>,
    units: &mut Vec<Unparsed>,
    out: &mut EncodedBlock,
) -> Result<(), SdkError> {
    let (ks, vs) = (cx.codec.key_len(), cx.codec.value_len());
    let mut kbuf = vec![0u8; ks];
    let mut vbuf = vec![0u8; vs];
    let mut json = Vec::new();
    let mut entries = Vec::new();
    for u in units.drain(..) {
        let (text, at, item) = match u {
            Unparsed::Yaml { text, at, item } => (text, at, item),
            Unparsed::Entry(e) => {
                out.push_entry(cx, &e?, &mut kbuf, &mut vbuf)?;
                continue;
            }
        };
        if ebpf_sdk_codec::block_yaml_to_json(&text, &mut json) {
            // A list item is a list of one: the entry is inside `[...]`.
            let entry = match item {
                true => json.strip_prefix(b"[").and_then(|j| j.strip_suffix(b"]")),
                false => Some(&json[..]),
            };
            if entry.is_some_and(|entry| out.push_json(cx, entry)) {
                out.push_location(&at, &cx.source);
                continue;
            }
        }
        entries.clear();
        yaml_entries(&text, &at, item, &mut entries)?;
        for e in &entries {
            out.push_entry(cx, e, &mut kbuf, &mut vbuf)?;
        }
    }
    Ok(())
}

/// Cuts a reader into blocks of whole lines of about [`LineBlocks::BLOCK`]
/// bytes, read in large pieces straight into the block.
struct LineBlocks<'r, R> {
    reader: &'r mut R,
    /// The input's name, for read errors.
    name: Arc<str>,
    /// The start of a line the last block cut off.
    carry: Vec<u8>,
    /// Lines before the next block.
    line_no: usize,
    eof: bool,
}

impl<'r, R: std::io::Read> LineBlocks<'r, R> {
    const BLOCK: usize = 256 << 10;

    fn new(reader: &'r mut R, name: &str, lines_before: usize) -> Self {
        LineBlocks {
            reader,
            name: name.into(),
            carry: Vec::new(),
            line_no: lines_before,
            eof: false,
        }
    }

    /// Reads into `buf[*len..]`; false at the end of input.
    fn fill(&mut self, buf: &mut [u8], len: &mut usize) -> std::io::Result<bool> {
        loop {
            match self.reader.read(&mut buf[*len..]) {
                Ok(n) => {
                    *len += n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next block into `buf` (grown as needed, never shrunk: a
    /// recycled buffer is not zeroed again): its length and the line number
    /// of its first line; `None` at the end.
    fn next_block(&mut self, buf: &mut Vec<u8>) -> std::io::Result<Option<(usize, usize)>> {
        let room = Self::BLOCK + self.carry.len();
        if buf.len() < room {
            buf.resize(room, 0);
        }
        let mut len = self.carry.len();
        buf[..len].copy_from_slice(&self.carry);
        self.carry.clear();
        while !self.eof && len < Self::BLOCK {
            self.eof = !self.fill(buf, &mut len)?;
        }
        // A block ends at a line end: the rest waits for the next one (a
        // line longer than a block grows this block until it ends).
        while !self.eof {
            if let Some(p) = memchr::memrchr(b'\n', &buf[..len]) {
                self.carry.extend_from_slice(&buf[p + 1..len]);
                len = p + 1;
                break;
            }
            if len == buf.len() {
                buf.resize(buf.len() + Self::BLOCK, 0);
            }
            self.eof = !self.fill(buf, &mut len)?;
        }
        if len == 0 {
            return Ok(None);
        }
        let first = self.line_no + 1;
        self.line_no += memchr::memchr_iter(b'\n', &buf[..len]).count();
        Ok(Some((first, len)))
    }
}

/// Where each spooled entry came from: its line, or the whole location
/// where it is more than a line.
#[derive(Default)]
pub(super) struct Places {
    lines: Vec<u32>,
    /// (entry index, location), in index order.
    other: Vec<(usize, Location)>,
}

impl Places {
    /// The location of the `i`th entry of `source`.
    pub(super) fn get(&self, source: &Arc<str>, i: usize) -> Location {
        match self.lines.get(i) {
            Some(&ELSEWHERE) => match self.other.binary_search_by_key(&i, |(j, _)| *j) {
                Ok(k) => self.other[k].1.clone(),
                Err(_) => Location::nth_entry(i + 1),
            },
            Some(l) => Location::line(source.clone(), *l as usize),
            None => Location::nth_entry(i + 1),
        }
    }
}

/// The blocks of one input, cut by the main thread.
enum Blocks<'a, R> {
    Lines(LineBlocks<'a, R>),
    Yaml(Box<EntryReader<R>>),
}

impl<R: BufRead> Blocks<'_, R> {
    /// YAML text per block: about the size of a block of JSON Lines.
    const YAML_BLOCK: usize = 128 << 10;

    /// Fills `w` with the next block; false at the end of the input.
    fn next_into(&mut self, w: &mut Work) -> Result<bool, SdkError> {
        match self {
            Blocks::Lines(b) => match b
                .next_block(&mut w.text)
                .map_err(|e| SdkError::read(&*b.name, e))?
            {
                Some((first, len)) => {
                    (w.first_line, w.len) = (first, len);
                    Ok(true)
                }
                None => Ok(false),
            },
            Blocks::Yaml(reader) => {
                let mut size = 0;
                while size < Self::YAML_BLOCK {
                    let Some(u) = reader.next_unparsed() else {
                        break;
                    };
                    size += match &u {
                        Unparsed::Yaml { text, .. } => text.len(),
                        Unparsed::Entry(_) => 64,
                    };
                    w.units.push(u);
                }
                Ok(!w.units.is_empty())
            }
        }
    }
}

impl MapHandle {
    /// Parses and encodes JSON Lines on [`ApplyOptions::parse_threads`]
    /// workers, a block of lines per job; blocks are spooled in input
    /// order. Returns the spool and where each entry came from.
    pub(super) fn spool_json_lines<R: BufRead>(
        &self,
        mut reader: R,
        name: &str,
        lines_before: usize,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(Spool, Places), SdkError> {
        let blocks = Blocks::Lines(LineBlocks::new(&mut reader, name, lines_before));
        self.spool_parallel(blocks, name, opts, on)
    }

    /// [`MapHandle::spool_json_lines`] for YAML documents and lists (any
    /// input [`EntryReader`] reads), a block of documents or list items
    /// per job.
    pub(super) fn spool_yaml<R: BufRead>(
        &self,
        reader: EntryReader<R>,
        name: &str,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(Spool, Places), SdkError> {
        let blocks = Blocks::Yaml(Box::new(reader));
        self.spool_parallel(blocks, name, opts, on)
    }

    fn spool_parallel<R: BufRead>(
        &self,
        mut blocks: Blocks<'_, R>,
        name: &str,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(Spool, Places), SdkError> {
        let threads = opts.parse_threads.max(1);
        let mut spool = Spool::new(self.codec.key_len(), self.codec.value_len());
        let mut places = Places::default();
        let stopped = || SdkError::Internal {
            detail: format!("{name}: a parser thread stopped"),
        };
        let hasher = spool.hasher().clone();
        let cx = BlockCx {
            codec: &self.codec,
            map: &self.schema.name,
            source: name.into(),
            hasher: &hasher,
        };
        std::thread::scope(|scope| -> Result<(Spool, Places), SdkError> {
            let (job_tx, job_rx) = mpsc::sync_channel::<Work>(threads * 2);
            let job_rx = Arc::new(Mutex::new(job_rx));
            let (res_tx, res_rx) = mpsc::channel::<(u64, Result<Work, SdkError>)>();
            let cx = &cx;
            for _ in 0..threads {
                let job_rx = job_rx.clone();
                let res_tx = res_tx.clone();
                scope.spawn(move || loop {
                    let job = job_rx.lock().map(|r| r.recv());
                    let Ok(Ok(mut w)) = job else {
                        return;
                    };
                    let r = if w.units.is_empty() {
                        encode_block(cx, &w.text[..w.len], w.first_line, &mut w.out)
                    } else {
                        encode_units(cx, &mut w.units, &mut w.out)
                    };
                    if res_tx.send((w.seq, r.map(|()| w))).is_err() {
                        return;
                    }
                });
            }
            drop(res_tx);
            // The records' bytes go to the spool's store on a thread of
            // their own (writing a temporary file's pages is the main
            // thread's largest cost otherwise), the blocks come back here.
            let (store_tx, store_rx) = mpsc::sync_channel::<Work>(threads * 2);
            let (back_tx, back_rx) = mpsc::channel::<Work>();
            let mut store = spool.take_store();
            let writer = scope.spawn(move || -> std::io::Result<Store> {
                for mut w in store_rx {
                    store.append(&w.out.records)?;
                    w.out.records.clear();
                    // The main thread may have stopped; the block is then dropped.
                    let _ = back_tx.send(w);
                }
                Ok(store)
            });
            let mut store_tx = Some(store_tx);
            let mut job_tx = Some(job_tx);
            let (mut sent, mut received) = (0u64, 0u64);
            let mut done: BTreeMap<u64, Result<Work, SdkError>> = BTreeMap::new();
            // Blocks back from the threads, for reuse.
            let mut spare: Vec<Work> = Vec::new();
            let mut next_progress = 65536;
            loop {
                while job_tx.is_some() && sent - received < (threads * 2) as u64 {
                    spare.extend(back_rx.try_iter());
                    let mut w = spare.pop().unwrap_or_default();
                    if !blocks.next_into(&mut w)? {
                        job_tx = None;
                        break;
                    }
                    w.seq = sent;
                    if let Some(tx) = &job_tx {
                        tx.send(w).map_err(|_| stopped())?;
                    }
                    sent += 1;
                }
                if received == sent {
                    break;
                }
                while !done.contains_key(&received) {
                    let (seq, r) = res_rx.recv().map_err(|_| stopped())?;
                    done.insert(seq, r);
                }
                let mut w = done.remove(&received).ok_or_else(stopped)??;
                received += 1;
                let block = &mut w.out;
                let first = spool.len();
                spool.push_hashes(&block.hashes);
                places.lines.extend_from_slice(&block.lines);
                // Kept whole for the first entries only, as `apply` keeps
                // locations (a million YAML documents would each hold one).
                let room = MAX_PLACES.saturating_sub(places.other.len());
                places.other.extend(
                    block
                        .places
                        .drain(..)
                        .take(room)
                        .map(|(i, at)| (first + i as usize, at)),
                );
                block.hashes.clear();
                block.lines.clear();
                block.places.clear();
                w.units.clear();
                // Its records to the store; it comes back cleared of them.
                let sent_to_store = store_tx.as_ref().is_some_and(|tx| tx.send(w).is_ok());
                if !sent_to_store {
                    // The store's thread stopped: its error is below.
                    store_tx = None;
                    break;
                }
                if spool.len() >= next_progress {
                    next_progress += 65536;
                    self.validated(&spool, opts, on)?;
                }
            }
            drop(store_tx);
            let store = writer.join().map_err(|_| stopped())?.map_err(write_err)?;
            spool.put_store(store);
            Ok((spool, places))
        })
    }
}
