//! A connection's pending output: a queue of owned bytes and shared,
//! reference-counted messages, written with one `sendmsg` (gather) call.
//!
//! Shared segments let a protocol that fans one message out to thousands
//! of connections (a chat room) encode it once: each recipient's queue
//! holds a reference, never a copy.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::sync::Arc;

use crate::buffer::{Buffer, BufferPool};

/// Segments gathered into one write; Linux's `UIO_MAXIOV` is 1024, and a
/// write rarely takes more than a socket buffer's worth anyway.
pub(crate) const MAX_GATHER: usize = 64;

enum Segment {
    /// Bytes copied in by `send`.
    Owned(Buffer),
    /// A shared message and how much of it was already written.
    Shared(Arc<[u8]>, usize),
}

impl Segment {
    fn remaining(&self) -> &[u8] {
        match self {
            Segment::Owned(buffer) => buffer.as_slice(),
            Segment::Shared(data, start) => &data[*start..],
        }
    }
}

/// Pending output, oldest first. Holds no heap memory when empty.
#[derive(Default)]
pub(crate) struct Output {
    segments: VecDeque<Segment>,
    len: usize,
}

impl Output {
    /// Bytes pending.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
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

    /// The first segments as slices for one gather write; returns how many
    /// were filled in.
    pub(crate) fn slices<'a>(&'a self, out: &mut [IoSlice<'a>; MAX_GATHER]) -> usize {
        let mut n = 0;
        for segment in self.segments.iter().take(MAX_GATHER) {
            out[n] = IoSlice::new(segment.remaining());
            n += 1;
        }
        n
    }

    /// Drops `n` written bytes from the front; emptied copy buffers go back
    /// to the pool.
    pub(crate) fn consume(&mut self, mut n: usize, pool: &mut BufferPool) {
        self.len -= n;
        while n > 0 {
            let Some(front) = self.segments.front_mut() else {
                return;
            };
            let available = front.remaining().len();
            if n < available {
                match front {
                    Segment::Owned(buffer) => buffer.consume(n),
                    Segment::Shared(_, start) => *start += n,
                }
                return;
            }
            n -= available;
            if let Some(Segment::Owned(buffer)) = self.segments.pop_front() {
                pool.give(buffer);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gathered(output: &Output) -> Vec<u8> {
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        let n = output.slices(&mut slices);
        slices[..n].iter().flat_map(|s| s.iter().copied()).collect()
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
        assert_eq!(out.slices(&mut slices), MAX_GATHER);
    }
}
