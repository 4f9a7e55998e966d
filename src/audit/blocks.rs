//! JSON Lines parsed on every core, handed back in file order.
//!
//! Parsing is what an audit of a million-line gateway log spends its time on (a LiteLLM spend
//! log line is ~380 bytes of JSON, most of it fields the audit skips), and a responder's
//! machine has more than one core. The file is cut into blocks that end at a line break;
//! worker threads parse whole blocks; the calling thread reads ahead, puts parsed blocks back in
//! order and hands every line to the caller exactly as a sequential read would (same line
//! numbers, same first error). Memory stays flat: at most `2 x workers` blocks are in flight.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use super::event::Event;
/// The longest line a log may have (1 MiB): a longer one is not a request record.
pub const MAX_LINE: usize = 1 << 20;

/// Bytes read into one block before it is cut at its last line break: larger than
/// [`MAX_LINE`], so a block without a line break holds a line that is too long.
const BLOCK: usize = 2 * MAX_LINE;

/// A line's key field as the worker found it.
#[derive(Debug)]
pub(super) enum KeyText {
    Absent,
    /// Borrowed from the block (no escapes): the byte range of the text.
    At(usize, usize),
    /// Unescaped by the parser.
    Owned(String),
}

/// What a worker made of one non-blank line.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Not a request record (the reason, without values).
    Bad(String),
    /// The key field and the event (or why the line is no event). The event is worked out for
    /// every line because only the caller knows which keys it wants; an error for a line the
    /// caller skips is dropped there, as in a sequential read.
    Line {
        key: KeyText,
        event: Result<Event, String>,
    },
}

/// One parsed line: its number within the block (0-based) and what it holds.
#[derive(Debug)]
pub(super) struct Parsed {
    pub(super) index: u64,
    pub(super) outcome: Outcome,
}

/// A block of whole lines and, once parsed, its lines.
#[derive(Debug, Default)]
pub(super) struct Block {
    bytes: Vec<u8>,
    /// Line breaks in the block (the lines it advances the count by).
    lines: u64,
    /// The block is one line that was too long, skipped without being held.
    overlong: bool,
    parsed: Vec<Parsed>,
}

impl Block {
    /// The text of a key the worker borrowed from this block.
    pub(super) fn key<'a>(&'a self, key: &'a KeyText) -> Option<&'a str> {
        match key {
            KeyText::Absent => None,
            KeyText::At(start, end) => self
                .bytes
                .get(*start..*end)
                .and_then(|b| std::str::from_utf8(b).ok()),
            KeyText::Owned(s) => Some(s),
        }
    }
}

/// Splits one line into its key and event; `Err` is a line that is no request record.
pub(super) type ParseLine = fn(&[u8]) -> Result<(KeyText, Result<Event, String>), String>;

/// Read `input` to the end, parse its lines with `parse` on up to `workers` threads, and call
/// `each(line_number, outcome, block)` for every non-blank line in file order. `each` may stop
/// the read by returning an error.
pub(super) fn for_each_line<E>(
    input: &mut impl Read,
    workers: usize,
    parse: ParseLine,
    mut each: impl FnMut(u64, Outcome, &Block) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut reader = Reader::default();
    let mut next_line: u64 = 1;
    let mut deliver = |block: &mut Block| -> Result<(), E> {
        for p in std::mem::take(&mut block.parsed) {
            each(next_line.saturating_add(p.index), p.outcome, block)?;
        }
        next_line = next_line.saturating_add(block.lines);
        Ok(())
    };
    if workers <= 1 {
        while let Some(mut block) = reader.next(input).map_err(&io_error)? {
            parse_block(&mut block, parse);
            deliver(&mut block)?;
            reader.recycle(block);
        }
        return Ok(());
    }
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = sync_channel::<(u64, Block)>(2 * workers);
        let (done_tx, done_rx) = sync_channel::<(u64, Block)>(2 * workers);
        let work_rx = Arc::new(Mutex::new(work_rx));
        for _ in 0..workers {
            let work_rx = Arc::clone(&work_rx);
            let done_tx = done_tx.clone();
            scope.spawn(move || work(&work_rx, &done_tx, parse));
        }
        drop(done_tx);
        // Returning drops both channel ends, so every worker stops (blocked on either side).
        in_order(
            input,
            &mut reader,
            2 * workers,
            work_tx,
            done_rx,
            &mut deliver,
            &io_error,
        )
    })
}

/// The reading and ordering side: keeps up to `depth` blocks in flight (never more than either
/// channel holds, so no send can block forever) and delivers them in sequence.
fn in_order<E>(
    input: &mut impl Read,
    reader: &mut Reader,
    depth: usize,
    work_tx: SyncSender<(u64, Block)>,
    done_rx: Receiver<(u64, Block)>,
    deliver: &mut impl FnMut(&mut Block) -> Result<(), E>,
    io_error: &impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut sent: u64 = 0;
    let mut delivered: u64 = 0;
    let mut waiting: BTreeMap<u64, Block> = BTreeMap::new();
    let mut eof = false;
    loop {
        while !eof && sent - delivered < depth as u64 {
            match reader.next(input).map_err(io_error)? {
                Some(block) => {
                    if work_tx.send((sent, block)).is_err() {
                        // A worker panicked: nothing can parse the rest.
                        return Err(io_error(worker_gone()));
                    }
                    sent += 1;
                }
                None => eof = true,
            }
        }
        if delivered == sent {
            return Ok(());
        }
        let Ok((seq, block)) = done_rx.recv() else {
            return Err(io_error(worker_gone()));
        };
        waiting.insert(seq, block);
        while let Some(mut block) = waiting.remove(&delivered) {
            deliver(&mut block)?;
            delivered += 1;
            reader.recycle(block);
        }
    }
}

fn worker_gone() -> std::io::Error {
    std::io::Error::other("a log parsing thread stopped")
}

fn work(
    work_rx: &Mutex<Receiver<(u64, Block)>>,
    done_tx: &SyncSender<(u64, Block)>,
    parse: ParseLine,
) {
    loop {
        let job = match work_rx.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok((seq, mut block)) = job else { return };
        parse_block(&mut block, parse);
        if done_tx.send((seq, block)).is_err() {
            return;
        }
    }
}

/// Parse every non-blank line of a block (a line longer than [`MAX_LINE`] is an error).
fn parse_block(block: &mut Block, parse: ParseLine) {
    block.parsed.clear();
    if block.overlong {
        block.parsed.push(Parsed {
            index: 0,
            outcome: Outcome::Bad(too_long()),
        });
        return;
    }
    let bytes = &block.bytes;
    let mut start = 0;
    let mut index = 0;
    while start < bytes.len() {
        let end = memchr::memchr(b'\n', &bytes[start..]).map_or(bytes.len(), |i| start + i);
        let raw = &bytes[start..end];
        let text = raw.trim_ascii();
        if !text.is_empty() {
            let outcome = if raw.len() > MAX_LINE {
                Outcome::Bad(too_long())
            } else {
                match parse(text) {
                    Ok((key, event)) => Outcome::Line {
                        key: rebase(key, text, bytes),
                        event,
                    },
                    Err(why) => Outcome::Bad(why),
                }
            };
            block.parsed.push(Parsed { index, outcome });
        }
        index += 1;
        start = end + 1;
    }
}

/// `parse` sees one line; a borrowed key's range is made relative to the whole block.
fn rebase(key: KeyText, line: &[u8], block: &[u8]) -> KeyText {
    match key {
        KeyText::At(s, e) => {
            let offset = line.as_ptr() as usize - block.as_ptr() as usize;
            KeyText::At(offset + s, offset + e)
        }
        other => other,
    }
}

fn too_long() -> String {
    format!("line is longer than {} bytes", MAX_LINE)
}

/// Cuts the input into blocks of whole lines, keeping the tail of a cut line for the next.
#[derive(Default)]
struct Reader {
    carry: Vec<u8>,
    spare: Vec<Vec<u8>>,
}

impl Reader {
    fn recycle(&mut self, block: Block) {
        if self.spare.len() < 4 {
            let mut bytes = block.bytes;
            bytes.clear();
            self.spare.push(bytes);
        }
    }

    /// The next block: what was carried over, then as much of `input` as fits, read straight
    /// into the block's own buffer (a `BufReader` in between would copy every byte once more).
    fn next(&mut self, input: &mut impl Read) -> std::io::Result<Option<Block>> {
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.append(&mut self.carry);
        let want = BLOCK - bytes.len();
        bytes.reserve_exact(want);
        let got = read_up_to(input, &mut bytes, want)?;
        let eof = got < want;
        if bytes.is_empty() {
            return Ok(None);
        }
        if eof {
            let lines = count_lines(&bytes);
            return Ok(Some(Block {
                bytes,
                lines,
                ..Block::default()
            }));
        }
        match memchr::memrchr(b'\n', &bytes) {
            Some(last) => {
                self.carry.extend_from_slice(&bytes[last + 1..]);
                bytes.truncate(last + 1);
                let lines = count_lines(&bytes);
                Ok(Some(Block {
                    bytes,
                    lines,
                    ..Block::default()
                }))
            }
            None => {
                // A whole block without a line break: skip the rest of that line unread.
                bytes.clear();
                self.skip_line(input, &mut bytes)?;
                self.spare.push(bytes);
                Ok(Some(Block {
                    lines: 1,
                    overlong: true,
                    ..Block::default()
                }))
            }
        }
    }

    /// Read and drop `input` up to and including the next line break, carrying what follows
    /// it into the next block (`scratch` is an empty buffer to read through).
    fn skip_line(&mut self, input: &mut impl Read, scratch: &mut Vec<u8>) -> std::io::Result<()> {
        loop {
            scratch.clear();
            if read_up_to(input, scratch, 1 << 16)? == 0 {
                return Ok(());
            }
            if let Some(at) = memchr::memchr(b'\n', scratch) {
                self.carry.extend_from_slice(&scratch[at + 1..]);
                scratch.clear();
                return Ok(());
            }
        }
    }
}

/// Append up to `limit` bytes of `input` to `buf`, fewer only at the end of the input; how
/// many were read. `read_to_end` fills the vector's spare capacity without zeroing it first.
fn read_up_to(input: &mut impl Read, buf: &mut Vec<u8>, limit: usize) -> std::io::Result<usize> {
    let before = buf.len();
    input.by_ref().take(limit as u64).read_to_end(buf)?;
    Ok(buf.len() - before)
}

fn count_lines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// Threads for parsing: the machine's cores, at most eight (more only add contention for the
/// one thread that reads and delivers).
pub(super) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> Result<(KeyText, Result<Event, String>), String> {
        match line.first() {
            Some(b'!') => Err("bad".into()),
            _ => Ok((KeyText::At(0, line.len()), Err("no event".into()))),
        }
    }

    fn lines_of(input: &[u8], workers: usize) -> Vec<(u64, String)> {
        let mut got = Vec::new();
        let mut r = std::io::BufReader::with_capacity(64, input);
        for_each_line(
            &mut r,
            workers,
            parse,
            |n, o, b| {
                let s = match o {
                    Outcome::Bad(why) => format!("bad:{why}"),
                    Outcome::Line { key, .. } => b.key(&key).unwrap_or("").to_string(),
                };
                got.push((n, s));
                Ok::<(), ()>(())
            },
            |_| (),
        )
        .unwrap();
        got
    }

    #[test]
    fn lines_come_back_in_order_with_their_numbers_on_any_number_of_threads() {
        let mut input = Vec::new();
        let mut want = Vec::new();
        let mut n = 0u64;
        // Enough lines for several blocks, with blank lines and a bad one in between.
        for i in 0..60_000u64 {
            n += 1;
            if i % 997 == 0 {
                input.extend_from_slice(b"\n");
                continue;
            }
            let line = if i == 31_337 {
                "!oops".to_string()
            } else {
                format!("line-{i}-{}", "x".repeat((i % 200) as usize))
            };
            input.extend_from_slice(line.as_bytes());
            input.push(b'\n');
            want.push((
                n,
                if line.starts_with('!') {
                    "bad:bad".into()
                } else {
                    line
                },
            ));
        }
        // The last line without a break still counts.
        input.extend_from_slice(b"tail");
        want.push((n + 1, "tail".into()));
        for workers in [1, 2, 3] {
            assert_eq!(lines_of(&input, workers), want, "{workers} workers");
        }
    }

    #[test]
    fn a_line_longer_than_the_limit_is_one_error_and_the_next_line_keeps_its_number() {
        for size in [MAX_LINE + 1, BLOCK + 10, 3 * BLOCK] {
            let mut input = b"first\n".to_vec();
            input.extend(std::iter::repeat_n(b'a', size));
            input.extend_from_slice(b"\nlast\n");
            for workers in [1, 2] {
                let got = lines_of(&input, workers);
                assert_eq!(
                    got,
                    vec![
                        (1, "first".to_string()),
                        (2, format!("bad:{}", too_long())),
                        (3, "last".to_string())
                    ],
                    "line of {size} bytes, {workers} workers"
                );
            }
        }
    }

    #[test]
    fn an_error_from_the_caller_stops_the_read_and_every_thread() {
        let input = "a\n".repeat(3 * BLOCK);
        let mut seen = 0;
        let mut r = std::io::BufReader::new(input.as_bytes());
        let out = for_each_line(
            &mut r,
            2,
            parse,
            |n, _, _| {
                seen += 1;
                if n == 10 { Err(n) } else { Ok(()) }
            },
            |_| 0,
        );
        assert_eq!(out, Err(10));
        assert_eq!(seen, 10);
    }
}
