//! A client that floods an echo server without reading, so the server's
//! output to it piles up: what backpressure, output limits and a drain
//! that cannot finish are tested with.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{connect, wait_until, PROMPTLY};

const KIB: usize = 1024;

/// The reactor's default high watermark: above this much pending output a
/// connection stops being read.
pub const HIGH_WATERMARK: u64 = 256 * KIB as u64;

/// Byte `i` of every flood is `i % 251`: a prime period, so a lost or
/// repeated 64 KiB chunk shows up.
pub fn flood_pattern() -> Vec<u8> {
    pattern(251 + 64 * KIB)
}

/// The first `len` bytes of the flood pattern.
pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A client that writes `total` bytes from a thread and reads nothing until
/// told to: the server's output to it piles up until backpressure stops the
/// server reading, and then the writer blocks.
pub struct Flooder {
    pub stream: TcpStream,
    written: Arc<AtomicU64>,
    writer: Option<thread::JoinHandle<()>>,
    total: u64,
}

impl Flooder {
    pub fn start(addr: SocketAddr, total: usize) -> Flooder {
        Flooder::on(connect(addr), total)
    }

    /// Floods `stream`, a connection the caller opened (e.g. one it knows
    /// the worker of).
    pub fn on(stream: TcpStream, total: usize) -> Flooder {
        let mut sink = stream.try_clone().expect("clone flooder");
        let written = Arc::new(AtomicU64::new(0));
        let counter = written.clone();
        let writer = thread::spawn(move || {
            let pattern = flood_pattern();
            let mut offset = 0;
            while offset < total {
                let n = (64 * KIB).min(total - offset);
                let start = offset % 251;
                // Fails once the server is gone or the test shut the
                // socket down: the flood just ends there.
                if sink.write_all(&pattern[start..start + n]).is_err() {
                    return;
                }
                offset += n;
                counter.store(offset as u64, Ordering::SeqCst);
            }
        });
        Flooder {
            stream,
            written,
            writer: Some(writer),
            total: total as u64,
        }
    }

    /// Waits until the writer has stopped making progress (for 300 ms, after
    /// more than the high watermark): the server has stopped reading.
    pub fn wait_stalled(&self, what: &str) -> u64 {
        let mut last = (u64::MAX, Instant::now());
        let stalled = wait_until(PROMPTLY, || {
            let now = self.written.load(Ordering::SeqCst);
            if now != last.0 {
                last = (now, Instant::now());
                return false;
            }
            now > HIGH_WATERMARK && last.1.elapsed() >= Duration::from_millis(300)
        });
        let written = self.written.load(Ordering::SeqCst);
        assert!(stalled, "{what}: flood never stalled ({written} B written)");
        written
    }

    /// Reads the whole echo, checking every byte, while the writer goes on.
    pub fn read_all_echo(&mut self, what: &str) {
        let pattern = flood_pattern();
        let mut buf = vec![0; 64 * KIB];
        let mut received = 0u64;
        while received < self.total {
            let n = match self.stream.read(&mut buf) {
                Ok(0) => panic!("{what}: EOF after {received} of {} B", self.total),
                Ok(n) => n,
                Err(e) => panic!("{what}: read after {received} B: {e}"),
            };
            let start = (received % 251) as usize;
            assert!(
                buf[..n] == pattern[start..start + n],
                "{what}: echo differs in the {n} B at offset {received}"
            );
            received += n as u64;
        }
        self.join();
        assert_eq!(self.written.load(Ordering::SeqCst), self.total, "{what}");
    }

    /// Ends the flood: a writer blocked in `write` fails with EPIPE.
    pub fn stop(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Both);
        self.join();
    }

    pub fn join(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.join().expect("flood writer");
        }
    }
}

impl Drop for Flooder {
    fn drop(&mut self) {
        // Not joined when a test fails: the server's death or this
        // shutdown unblocks the writer soon enough.
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
