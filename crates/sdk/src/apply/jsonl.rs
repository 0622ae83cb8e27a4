//! JSON Lines into the spool on several threads: the input is cut into
//! blocks of whole lines, worker threads parse and encode each block
//! straight from the text into bytes (hashing the keys for the spool's
//! index), and the blocks are spooled in input order.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::io::BufRead;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use ebpf_sdk_codec::Value;

use super::{ApplyEvent, ApplyOptions};
use crate::entry_codec::EntryCodec;
use crate::error::{InputError, InputErrorKind, Location};
use crate::handle::MapHandle;
use crate::spool::{write_err, Spool};
use crate::SdkError;

/// Encoded records of a block of JSON Lines.
#[derive(Default)]
struct EncodedBlock {
    /// Key then value, back to back.
    records: Vec<u8>,
    /// Each record's key hashed with the spool's hasher.
    hashes: Vec<u64>,
    /// Each record's line number.
    lines: Vec<u32>,
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

/// A block of JSON Lines on its way through a parser thread, with the
/// buffers it is encoded into. Blocks are recycled: neither the text buffer
/// nor the record buffers are allocated (or zeroed) again for every block.
struct Work {
    /// Input order.
    seq: u64,
    /// Line number of the first line.
    first_line: usize,
    /// `text[..len]` holds whole lines; the rest is spare room.
    text: Vec<u8>,
    len: usize,
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
    let records = &mut out.records;
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
        let line32 = u32::try_from(this_line).unwrap_or(u32::MAX);
        // The plain form straight into the records; else the general path.
        let at = records.len();
        records.resize(at + ks + vs, 0);
        let (k, v) = records[at..].split_at_mut(ks);
        if codec.encode_json_entry(t, k, v) {
            out.hashes.push(cx.hasher.hash_one(&*k));
            out.lines.push(line32);
            continue;
        }
        records.truncate(at);
        let loc = Location::line(cx.source.clone(), this_line);
        let text = std::str::from_utf8(t)
            .map_err(|_| InputError::new(loc.clone(), InputErrorKind::NotUtf8))?;
        let v = ebpf_sdk_codec::parse_json(text)
            .map_err(|e| InputError::new(loc.clone(), InputErrorKind::Syntax(e)))?;
        entries.clear();
        crate::entries::entries_from_value(v, &loc, None, &mut entries)?;
        for e in entries.drain(..) {
            if e.map.as_deref().is_some_and(|m| m != cx.map) {
                continue;
            }
            codec.encode_key_into(&e.key, e.byte_order, &e.location, &mut kbuf)?;
            let value = e.value.as_ref().unwrap_or(&Value::Null);
            codec.encode_value_into(value, e.byte_order, &e.location, &mut vbuf)?;
            records.extend_from_slice(&kbuf);
            records.extend_from_slice(&vbuf);
            out.hashes.push(cx.hasher.hash_one(&kbuf));
            out.lines.push(line32);
        }
    }
    Ok(())
}

/// Cuts a reader into blocks of whole lines of about [`LineBlocks::BLOCK`]
/// bytes, read in large pieces straight into the block.
struct LineBlocks<'r, R> {
    reader: &'r mut R,
    /// The start of a line the last block cut off.
    carry: Vec<u8>,
    /// Lines before the next block.
    line_no: usize,
    eof: bool,
}

impl<'r, R: std::io::Read> LineBlocks<'r, R> {
    const BLOCK: usize = 256 << 10;

    fn new(reader: &'r mut R, lines_before: usize) -> Self {
        LineBlocks {
            reader,
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

impl MapHandle {
    /// Parses and encodes JSON Lines on [`ApplyOptions::parse_threads`]
    /// workers, a block of lines per job; blocks are spooled in input
    /// order. Returns the spool and each entry's line number.
    pub(super) fn spool_json_lines<R: BufRead>(
        &self,
        mut reader: R,
        name: &str,
        lines_before: usize,
        opts: &ApplyOptions,
        on: &mut dyn FnMut(ApplyEvent<'_>),
    ) -> Result<(Spool, Vec<u32>), SdkError> {
        let threads = opts.parse_threads.max(1);
        let mut spool = Spool::new(self.codec.key_len(), self.codec.value_len());
        let mut lines: Vec<u32> = Vec::new();
        let read_err = |e: std::io::Error| SdkError::read(name, e);
        let stopped = || SdkError::Internal {
            detail: format!("{name}: a JSON Lines parser thread stopped"),
        };
        let hasher = spool.hasher().clone();
        let cx = BlockCx {
            codec: &self.codec,
            map: &self.schema.name,
            source: name.into(),
            hasher: &hasher,
        };
        std::thread::scope(|scope| -> Result<(Spool, Vec<u32>), SdkError> {
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
                    let r = encode_block(cx, &w.text[..w.len], w.first_line, &mut w.out);
                    if res_tx.send((w.seq, r.map(|()| w))).is_err() {
                        return;
                    }
                });
            }
            drop(res_tx);
            let mut blocks = LineBlocks::new(&mut reader, lines_before);
            let mut job_tx = Some(job_tx);
            let (mut sent, mut received) = (0u64, 0u64);
            let mut done: BTreeMap<u64, Result<Work, SdkError>> = BTreeMap::new();
            // Blocks back from the threads, for reuse.
            let mut spare: Vec<Work> = Vec::new();
            let mut next_progress = 65536;
            loop {
                while job_tx.is_some() && sent - received < (threads * 2) as u64 {
                    let mut w = spare.pop().unwrap_or_else(|| Work {
                        seq: 0,
                        first_line: 0,
                        text: Vec::new(),
                        len: 0,
                        out: EncodedBlock::default(),
                    });
                    let Some((first, len)) = blocks.next_block(&mut w.text).map_err(read_err)?
                    else {
                        job_tx = None;
                        break;
                    };
                    (w.seq, w.first_line, w.len) = (sent, first, len);
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
                spool
                    .push_records(&block.records, &block.hashes)
                    .map_err(write_err)?;
                lines.extend_from_slice(&block.lines);
                block.records.clear();
                block.hashes.clear();
                block.lines.clear();
                spare.push(w);
                if spool.len() >= next_progress {
                    next_progress += 65536;
                    self.validated(&spool, opts, on)?;
                }
            }
            Ok((spool, lines))
        })
    }
}
