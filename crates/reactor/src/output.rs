//! A connection's pending output: a queue of owned bytes, shared,
//! reference-counted messages, and file ranges. Bytes are written with one
//! `sendmsg` (gather) call; file ranges with `sendfile`, never read into
//! memory.
//!
//! Shared segments let a protocol that fans one message out to thousands
//! of connections (a chat room) encode it once: each recipient's queue
//! holds a reference, never a copy.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::buffer::{Buffer, BufferPool};

/// Segments gathered into one write; Linux's `UIO_MAXIOV` is 1024, and a
/// write rarely takes more than a socket buffer's worth anyway.
pub(crate) const MAX_GATHER: usize = 64;

/// The longest file range whose head is held back (`MSG_MORE`) to share
/// packets with the file's first bytes. A small file then goes out as one
/// packet, and one wake-up of the peer, instead of two; a large one is
/// better served by sending the head at once, as nginx does. Measured on
/// loopback (BBR, 100 connections, one request in flight each): up to
/// 64 KiB corking saves a packet and 12-30 % of the server's CPU per
/// response; from 128 KiB up it makes that CPU erratic, runs alternating
/// between the uncorked cost and up to 2.5 times it (1 MiB: 78-277 µs per
/// response over six runs, against 103-140 µs uncorked and 110-142 µs for
/// nginx), and the costly runs are those where the server itself sends
/// most of the file's packets (17-26 per MiB, against about 5).
pub(crate) const CORK_MAX: u64 = 64 * 1024;

enum Segment {
    /// Bytes copied in by `send`.
    Owned(Buffer),
    /// A shared message and how much of it was already written.
    Shared(Arc<[u8]>, usize),
    /// A range of a file, sent with `sendfile`: `offset` is the next byte,
    /// `end` one past the last.
    File { fd: OwnedFd, offset: u64, end: u64 },
}

/// What the front of the queue needs next.
pub(crate) enum Front<'a> {
    Empty,
    /// Gather-write these slices; `more` is set when a file of at most
    /// [`CORK_MAX`] bytes follows, so the kernel may hold them back to fill
    /// a packet with file data (`MSG_MORE`).
    Bytes(usize, bool),
    /// `sendfile` this much of the file from its offset.
    File {
        fd: &'a OwnedFd,
        offset: u64,
        len: u64,
    },
}

impl Segment {
    fn remaining(&self) -> &[u8] {
        match self {
            Segment::Owned(buffer) => buffer.as_slice(),
            Segment::Shared(data, start) => &data[*start..],
            Segment::File { .. } => &[],
        }
    }

    fn len(&self) -> u64 {
        match self {
            Segment::File { offset, end, .. } => end - offset,
            other => other.remaining().len() as u64,
        }
    }
}

/// Pending output, oldest first. Holds no heap memory when empty.
#[derive(Default)]
pub(crate) struct Output {
    segments: VecDeque<Segment>,
    /// Bytes pending in memory (copied and shared segments).
    len: usize,
    /// Bytes pending in file ranges.
    file_len: u64,
}

impl Output {
    /// Bytes pending, in memory and in file ranges.
    pub(crate) fn len(&self) -> usize {
        self.len + self.file_len as usize
    }

    /// Bytes pending in memory: what output limits apply to (file ranges
    /// cost a descriptor, not memory).
    pub(crate) fn memory(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0 && self.file_len == 0
    }

    /// Queues `len` bytes of `file` from `offset`.
    pub(crate) fn push_file(&mut self, fd: OwnedFd, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        self.segments.push_back(Segment::File {
            fd,
            offset,
            end: offset + len,
        });
        self.file_len += len;
    }

    /// What to write next: the in-memory segments before the first file
    /// (as slices, filled into `out`), or the file range at the front.
    pub(crate) fn front<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_GATHER]) -> Front<'a> {
        if let Some(Segment::File { fd, offset, end }) = self.segments.front() {
            return Front::File {
                fd,
                offset: *offset,
                len: end - offset,
            };
        }
        let mut n = 0;
        let mut more = false;
        for segment in self.segments.iter().take(MAX_GATHER) {
            if let Segment::File { offset, end, .. } = segment {
                more = end - offset <= CORK_MAX;
                break;
            }
            out[n] = IoSlice::new(segment.remaining());
            n += 1;
        }
        if n == 0 {
            Front::Empty
        } else {
            Front::Bytes(n, more)
        }
    }

    /// Queues a copy of `data`, appended to the last segment when that one
    /// holds copied bytes too.
    pub(crate) fn push_bytes(&mut self, data: &[u8], pool: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        if let Some(Segment::Owned(buffer)) = self.segments.back_mut() {
            buffer.extend(data);
        } else {
            let mut buffer = pool.take();
            buffer.extend(data);
            self.segments.push_back(Segment::Owned(buffer));
        }
        self.len += data.len();
    }

    /// Queues a shared message from byte `start` on, without copying it.
    pub(crate) fn push_shared(&mut self, data: Arc<[u8]>, start: usize) {
        let n = data.len().saturating_sub(start);
        if n == 0 {
            return;
        }
        self.segments.push_back(Segment::Shared(data, start));
        self.len += n;
    }

    /// Drops `n` written bytes from the front; emptied copy buffers go back
    /// to the pool, finished files are closed.
    pub(crate) fn consume(&mut self, mut n: usize, pool: &mut BufferPool) {
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            let available = front.len() as usize;
            let take = n.min(available);
            match front {
                Segment::File { offset, .. } => {
                    *offset += take as u64;
                    self.file_len -= take as u64;
                }
                Segment::Owned(buffer) => {
                    buffer.consume(take);
                    self.len -= take;
                }
                Segment::Shared(_, start) => {
                    *start += take;
                    self.len -= take;
                }
            }
            n -= take;
            if take == available {
                if let Some(Segment::Owned(buffer)) = self.segments.pop_front() {
                    pool.give(buffer);
                }
            }
        }
    }

    /// Gives every copy buffer back to the pool (the connection closed).
    pub(crate) fn release(&mut self, pool: &mut BufferPool) {
        for segment in self.segments.drain(..) {
            if let Segment::Owned(buffer) = segment {
                pool.give(buffer);
            }
        }
        self.segments = VecDeque::new();
        self.len = 0;
        self.file_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(output: &Output) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        match output.front(&mut slices) {
            Front::Bytes(n, _) => slices[..n].iter().flat_map(|s| s.iter().copied()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn keeps_order_across_copied_and_shared_segments() {
        let mut pool = BufferPool::new(16, 4);
        let mut out = Output::default();
        let shared: Arc<[u8]> = Arc::from(&b"<msg>"[..]);
        out.push_bytes(b"ab", &mut pool);
        out.push_bytes(b"cd", &mut pool);
        out.push_shared(shared.clone(), 0);
        out.push_shared(shared.clone(), 2);
        out.push_bytes(b"ef", &mut pool);
        assert_eq!(out.len(), 4 + 5 + 3 + 2);
        assert_eq!(gathered(&out), b"abcd<msg>sg>ef");
        out.consume(6, &mut pool);
        assert_eq!(gathered(&out), b"sg>sg>ef");
        out.consume(8, &mut pool);
        assert!(out.is_empty());
        assert_eq!(gathered(&out), b"");
    }

    #[test]
    fn shared_messages_are_not_copied() {
        let mut out = Output::default();
        let shared: Arc<[u8]> = Arc::from(vec![7u8; 1000]);
        for _ in 0..100 {
            out.push_shared(shared.clone(), 0);
        }
        assert_eq!(Arc::strong_count(&shared), 101);
        assert_eq!(out.len(), 100_000);
        let mut pool = BufferPool::new(16, 4);
        out.release(&mut pool);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    #[test]
    fn gathers_at_most_max_gather_segments() {
        let mut out = Output::default();
        let shared: Arc<[u8]> = Arc::from(&b"x"[..]);
        for _ in 0..MAX_GATHER + 10 {
            out.push_shared(shared.clone(), 0);
        }
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        assert!(matches!(
            out.front(&mut slices),
            Front::Bytes(MAX_GATHER, false)
        ));
    }

    fn describe(output: &Output) -> String {
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        match output.front(&mut slices) {
            Front::Empty => "empty".into(),
            Front::Bytes(n, more) => format!("bytes {n}{}", if more { " more" } else { "" }),
            Front::File { offset, len, .. } => format!("file {offset}+{len}"),
        }
    }

    #[test]
    fn file_ranges_stop_the_gather_and_count_apart_from_memory() {
        let mut pool = BufferPool::new(16, 4);
        let mut out = Output::default();
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        out.push_bytes(b"head", &mut pool);
        out.push_file(file, 10, 100);
        out.push_bytes(b"tail", &mut pool);
        assert_eq!((out.len(), out.memory()), (108, 8));
        assert_eq!(
            describe(&out),
            "bytes 1 more",
            "MSG_MORE before a small file"
        );
        out.consume(4, &mut pool);
        assert_eq!(describe(&out), "file 10+100");
        out.consume(60, &mut pool);
        assert_eq!(describe(&out), "file 70+40");
        out.consume(40, &mut pool);
        assert_eq!(gathered(&out), b"tail");
        assert_eq!((out.len(), out.memory()), (4, 4));
    }

    #[test]
    fn the_head_of_a_large_file_is_not_held_back() {
        let mut pool = BufferPool::new(16, 4);
        let mut out = Output::default();
        let file: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
        out.push_bytes(b"head", &mut pool);
        out.push_file(file, 0, CORK_MAX + 1);
        assert_eq!(describe(&out), "bytes 1", "no MSG_MORE before a large file");
    }
}
