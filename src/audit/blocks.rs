//! JSON Lines parsed on every core, handed back in file order.
//!
//! Parsing is what an audit of a million-line gateway log spends its time on (a LiteLLM spend
//! log line is ~380 bytes of JSON, most of it fields the audit skips), and a responder's
//! machine has more than one core. The file is cut into blocks that end at a line break;
//! worker threads parse whole blocks; the calling thread reads ahead, puts parsed blocks back in
//! order and hands every line to the caller exactly as a sequential read would (same line
//! numbers, same first error). Memory stays flat: at most `2 x workers` blocks are in flight.
//!
//! A worker hands back only what the caller asked `parse` to make of each line, never the
//! line's text: the calling thread would otherwise read bytes another core just had in its
//! cache, and that miss cost more than the parse (200 ns a line).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// The longest line a log may have (1 MiB): a longer one is not a request record.
pub const MAX_LINE: usize = 1 << 20;

/// Bytes read into one block before it is cut at its last line break: larger than
/// [`MAX_LINE`], so a block without a line break holds a line that is too long.
const BLOCK: usize = 2 * MAX_LINE;

/// What a worker made of one non-blank line: `Err` is a line that is no record (the reason,
/// without values).
pub(super) type LineResult<T> = Result<T, String>;

/// A block of whole lines and, once parsed, its lines: the number within the block (0-based)
/// and what `parse` made of it. Blocks are recycled with their buffers' capacity.
#[derive(Debug)]
struct Block<T> {
    bytes: Vec<u8>,
    /// Line breaks in the block (the lines it advances the count by), counted by the parse.
    lines: u64,
    /// The block is one line that was too long, skipped without being held.
    overlong: bool,
    parsed: Vec<(u64, LineResult<T>)>,
}

impl<T> Default for Block<T> {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            lines: 0,
            overlong: false,
            parsed: Vec::new(),
        }
    }
}

/// Read `input` to the end, make each non-blank line into a `T` with `parse` on up to
/// `workers` threads, and call `each(line_number, result)` for every non-blank line in file
/// order. `each` may stop the read by returning an error.
pub(super) fn for_each_line<T: Send, E>(
    input: &mut impl Read,
    workers: usize,
    parse: &(impl Fn(&[u8]) -> LineResult<T> + Sync),
    mut each: impl FnMut(u64, LineResult<T>) -> Result<(), E>,
    io_error: impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut reader = Reader::default();
    let mut next_line: u64 = 1;
    let mut deliver = |block: &mut Block<T>| -> Result<(), E> {
        for (index, result) in block.parsed.drain(..) {
            each(next_line.saturating_add(index), result)?;
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
        let (work_tx, work_rx) = sync_channel::<(u64, Block<T>)>(2 * workers);
        let (done_tx, done_rx) = sync_channel::<(u64, Block<T>)>(2 * workers);
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
fn in_order<T, E>(
    input: &mut impl Read,
    reader: &mut Reader<T>,
    depth: usize,
    work_tx: SyncSender<(u64, Block<T>)>,
    done_rx: Receiver<(u64, Block<T>)>,
    deliver: &mut impl FnMut(&mut Block<T>) -> Result<(), E>,
    io_error: &impl Fn(std::io::Error) -> E,
) -> Result<(), E> {
    let mut sent: u64 = 0;
    let mut delivered: u64 = 0;
    let mut waiting: BTreeMap<u64, Block<T>> = BTreeMap::new();
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

fn work<T>(
    work_rx: &Mutex<Receiver<(u64, Block<T>)>>,
    done_tx: &SyncSender<(u64, Block<T>)>,
    parse: &impl Fn(&[u8]) -> LineResult<T>,
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
fn parse_block<T>(block: &mut Block<T>, parse: &impl Fn(&[u8]) -> LineResult<T>) {
    block.parsed.clear();
    if block.overlong {
        block.parsed.push((0, Err(too_long())));
        return;
    }
    let bytes = &block.bytes;
    let mut start = 0;
    let mut index = 0;
    let mut breaks = 0;
    while start < bytes.len() {
        let end = match memchr::memchr(b'\n', &bytes[start..]) {
            Some(i) => {
                breaks += 1;
                start + i
            }
            None => bytes.len(),
        };
        let raw = &bytes[start..end];
        let text = raw.trim_ascii();
        if !text.is_empty() {
            let result = if raw.len() > MAX_LINE {
                Err(too_long())
            } else {
                parse(text)
            };
            block.parsed.push((index, result));
        }
        index += 1;
        start = end + 1;
    }
    // Counted here rather than on the reading thread, which has the rest of the work.
    block.lines = breaks;
}

fn too_long() -> String {
    format!("line is longer than {} bytes", MAX_LINE)
}

/// Cuts the input into blocks of whole lines, keeping the tail of a cut line for the next.
struct Reader<T> {
    carry: Vec<u8>,
    /// Delivered blocks, kept for their buffers.
    spare: Vec<Block<T>>,
}

impl<T> Default for Reader<T> {
    fn default() -> Self {
        Self {
            carry: Vec::new(),
            spare: Vec::new(),
        }
    }
}

impl<T> Reader<T> {
    fn recycle(&mut self, mut block: Block<T>) {
        if self.spare.len() < 4 {
            block.bytes.clear();
            block.parsed.clear();
            self.spare.push(block);
        }
    }

    /// The next block: what was carried over, then as much of `input` as fits, read straight
    /// into the block's own buffer (a `BufReader` in between would copy every byte once more).
    fn next(&mut self, input: &mut impl Read) -> std::io::Result<Option<Block<T>>> {
        let mut block = self.spare.pop().unwrap_or_default();
        block.lines = 0;
        block.overlong = false;
        let bytes = &mut block.bytes;
        bytes.clear();
        bytes.append(&mut self.carry);
        let want = BLOCK - bytes.len();
        bytes.reserve_exact(want);
        let got = read_up_to(input, bytes, want)?;
        let eof = got < want;
        if bytes.is_empty() {
            return Ok(None);
        }
        if eof {
            return Ok(Some(block));
        }
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.carry.extend_from_slice(&bytes[last + 1..]);
                bytes.truncate(last + 1);
                Ok(Some(block))
            }
            None => {
                // A whole block without a line break: skip the rest of that line unread.
                bytes.clear();
                self.skip_line(input, bytes)?;
                block.lines = 1;
                block.overlong = true;
                Ok(Some(block))
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

/// Threads for parsing: the machine's cores, at most eight (more only add contention for the
/// one thread that reads and delivers).
pub(super) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &[u8]) -> LineResult<String> {
        match line.first() {
            Some(b'!') => Err("bad".into()),
            _ => Ok(String::from_utf8_lossy(line).into_owned()),
        }
    }

    fn lines_of(input: &[u8], workers: usize) -> Vec<(u64, String)> {
        let mut got = Vec::new();
        let mut r = std::io::BufReader::with_capacity(64, input);
        for_each_line(
            &mut r,
            workers,
            &parse,
            |n, o| {
                let s = match o {
                    Err(why) => format!("bad:{why}"),
                    Ok(line) => line,
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
            &parse,
            |n, _| {
                seen += 1;
                if n == 10 { Err(n) } else { Ok(()) }
            },
            |_| 0,
        );
        assert_eq!(out, Err(10));
        assert_eq!(seen, 10);
    }
}
