//! Per-connection byte buffers and the pool they come from.
//!
//! An idle connection holds no buffer: reads land in the reactor's scratch
//! buffer, and a connection takes a buffer from the pool only for bytes the
//! protocol has not consumed yet (input) or the kernel has not accepted yet
//! (output). It gives the buffer back as soon as it is empty.

/// A FIFO of bytes: appended at the back, consumed from the front.
#[derive(Default, Debug)]
pub struct Buffer {
    bytes: Vec<u8>,
    start: usize,
}

impl Buffer {
    /// The unconsumed bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// How many unconsumed bytes there are.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.start
    }

    /// True when nothing is left to consume.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `data`. Consumed space at the front is reclaimed first when it
    /// is at least half of the buffer, so a buffer that is written and
    /// drained steadily does not grow.
    pub fn extend(&mut self, data: &[u8]) {
        if self.start > 0 && self.start >= self.bytes.len() / 2 {
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    /// Drops `n` bytes from the front.
    ///
    /// # Panics
    /// If `n` exceeds [`Buffer::len`]: consuming bytes that were never there
    /// is a protocol bug.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.len(), "consumed {n} of {} bytes", self.len());
        self.start += n;
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
        }
    }

    /// Bytes of heap this buffer holds.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

/// Empty buffers kept for reuse, so a busy connection does not allocate per
/// read. Bounded twice: at most `max_free` buffers are kept, and a buffer
/// that grew beyond `max_kept_capacity` (one large burst) is freed rather
/// than pinning its memory for good.
pub(crate) struct BufferPool {
    free: Vec<Vec<u8>>,
    initial_capacity: usize,
    max_free: usize,
    max_kept_capacity: usize,
}

impl BufferPool {
    pub(crate) fn new(initial_capacity: usize, max_free: usize) -> BufferPool {
        BufferPool {
            free: Vec::new(),
            initial_capacity,
            max_free,
            max_kept_capacity: initial_capacity * 4,
        }
    }

    pub(crate) fn take(&mut self) -> Buffer {
        let bytes = self
            .free
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.initial_capacity));
        Buffer { bytes, start: 0 }
    }

    pub(crate) fn give(&mut self, buffer: Buffer) {
        let mut bytes = buffer.bytes;
        if self.free.len() < self.max_free && bytes.capacity() <= self.max_kept_capacity {
            bytes.clear();
            self.free.push(bytes);
        }
    }

    #[cfg(test)]
    fn free_count(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_order_across_partial_consumes() {
        let mut buf = Buffer::default();
        buf.extend(b"hello ");
        buf.extend(b"world");
        buf.consume(3);
        assert_eq!(buf.as_slice(), b"lo world");
        buf.consume(8);
        assert!(buf.is_empty());
        buf.extend(b"again");
        assert_eq!(buf.as_slice(), b"again");
    }

    #[test]
    fn partial_consumes_keep_order_across_reclaims() {
        // A framing protocol consumes whole frames and leaves a partial one;
        // the reclaim in `extend` moves bytes and must not reorder them.
        let stream: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut buf = Buffer::default();
        let mut taken = Vec::new();
        for chunk in stream.chunks(97) {
            buf.extend(chunk);
            let whole = buf.len() - buf.len() % 13;
            taken.extend_from_slice(&buf.as_slice()[..whole]);
            buf.consume(whole);
        }
        taken.extend_from_slice(buf.as_slice());
        assert_eq!(taken, stream);
    }

    #[test]
    fn consume_nothing_changes_nothing() {
        let mut buf = Buffer::default();
        buf.extend(b"abc");
        buf.consume(0);
        assert_eq!(buf.as_slice(), b"abc");
    }

    #[test]
    fn steady_write_and_drain_does_not_grow() {
        let mut buf = Buffer::default();
        let chunk = [7u8; 1000];
        for _ in 0..10_000 {
            buf.extend(&chunk);
            buf.consume(600);
        }
        // The invariant: consumed space at the front is at most half the
        // bytes held (plus one append), and a Vec at most doubles what it
        // holds, so capacity stays within 4x of what is pending.
        assert_eq!(buf.len(), 4_000_000);
        assert!(
            buf.capacity() <= 4 * (buf.len() + chunk.len()),
            "capacity {} for {} pending",
            buf.capacity(),
            buf.len()
        );
        buf.consume(buf.len());
        for _ in 0..10_000 {
            buf.extend(&chunk);
            buf.consume(1000);
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn front_space_is_reclaimed() {
        let mut buf = Buffer::default();
        buf.extend(&[1u8; 100]);
        let cap = buf.capacity();
        for _ in 0..1000 {
            buf.consume(60);
            buf.extend(&[2u8; 60]);
        }
        assert_eq!(buf.len(), 100);
        assert!(
            buf.capacity() <= cap.max(256),
            "capacity {}",
            buf.capacity()
        );
    }

    #[test]
    #[should_panic(expected = "consumed 5 of 4 bytes")]
    fn over_consume_panics() {
        let mut buf = Buffer::default();
        buf.extend(b"abcd");
        buf.consume(5);
    }

    #[test]
    fn pool_reuses_and_bounds_what_it_keeps() {
        let mut pool = BufferPool::new(16, 2);
        let mut a = pool.take();
        a.extend(b"abc");
        pool.give(a);
        assert_eq!(pool.free_count(), 1);
        let b = pool.take();
        assert!(b.is_empty(), "a reused buffer comes back empty");
        assert_eq!(pool.free_count(), 0);

        pool.give(pool_buffer(16));
        pool.give(pool_buffer(16));
        pool.give(pool_buffer(16));
        assert_eq!(pool.free_count(), 2, "at most max_free are kept");

        let mut pool = BufferPool::new(16, 8);
        pool.give(pool_buffer(16 * 64));
        assert_eq!(pool.free_count(), 0, "an oversized buffer is freed");
    }

    fn pool_buffer(capacity: usize) -> Buffer {
        Buffer {
            bytes: Vec::with_capacity(capacity),
            start: 0,
        }
    }
}
