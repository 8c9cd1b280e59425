//! The write side of a connection with a transport (TLS): plaintext is
//! sealed a bounded chunk at a time, and only once the transport has
//! written what it sealed before, so a connection holds at most one chunk
//! of wire bytes beside its plaintext queue, however large the file or
//! slow the reader. `sendfile` cannot reach a transport: file ranges are
//! read (`pread`) into the reactor's one seal buffer and sealed from there.

use std::io::{self, IoSlice};
use std::os::fd::OwnedFd;

use rustix::io::Errno;

use crate::buffer::BufferPool;
use crate::output::{Front, Output, MAX_GATHER};
use crate::stats::Stats;
use crate::sys::socket;
use crate::transport::Transport;

/// Plaintext sealed at a time: four full TLS records, the reactor's read
/// budget, and what rustls buffers by default (64 KiB).
pub(crate) const SEAL_CHUNK: usize = 64 * 1024;

/// The socket as the transport's `io::Write`.
struct Socket<'a>(&'a OwnedFd);

impl io::Write for Socket<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(socket::send(self.0, buf)?)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(socket::send_vectored(self.0, bufs, false)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the transport's wire bytes until none is left (`Ok(true)`) or
/// the socket is full (`Ok(false)`). Not knowing how many bytes wait (see
/// `Transport::wants_write`), it cannot stop at a short write: a full
/// socket costs one write that finds EAGAIN.
pub(crate) fn write_wire(
    fd: &OwnedFd,
    transport: &mut dyn Transport,
    stats: &mut Stats,
) -> Result<bool, Errno> {
    while transport.wants_write() {
        let result = transport.write_wire(&mut Socket(fd));
        stats.writes += 1;
        match result {
            Ok(0) => return Ok(false),
            Ok(n) => stats.bytes_out += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Errno::from_io_error(&e).unwrap_or(Errno::IO)),
        }
    }
    Ok(true)
}

/// The flush of a connection with a transport: wire bytes first, then the
/// queue sealed and written a chunk at a time, until it is empty or the
/// socket is full. Before the handshake is done the queue waits.
pub(crate) fn flush_sealed(
    fd: &OwnedFd,
    transport: &mut dyn Transport,
    output: &mut Output,
    stats: &mut Stats,
    pool: &mut BufferPool,
    file_buf: &mut Vec<u8>,
) -> Result<(), Errno> {
    loop {
        if !write_wire(fd, transport, stats)? {
            return Ok(());
        }
        if output.is_empty() || !transport.is_established() {
            return Ok(());
        }
        if seal_queued(transport, output, pool, file_buf)? == 0 {
            // The transport took nothing with no wire bytes pending: it
            // cannot seal now; trying again would spin.
            return Ok(());
        }
    }
}

/// Seals up to [`SEAL_CHUNK`] from the front of the queue; returns the
/// plaintext bytes sealed (and dropped from the queue).
fn seal_queued(
    transport: &mut dyn Transport,
    output: &mut Output,
    pool: &mut BufferPool,
    file_buf: &mut Vec<u8>,
) -> Result<usize, Errno> {
    let sealed = {
        let mut slices = [IoSlice::new(&[]); MAX_GATHER];
        match output.front(&mut slices) {
            Front::Empty => 0,
            Front::Bytes(n, _) => {
                let mut taken = 0;
                for slice in &slices[..n] {
                    let room = SEAL_CHUNK - taken;
                    let offer = &slice[..slice.len().min(room)];
                    let took = transport.seal(offer);
                    taken += took;
                    if took < slice.len() || taken >= SEAL_CHUNK {
                        break;
                    }
                }
                taken
            }
            Front::File { fd, offset, len } => {
                let want = (len as usize).min(SEAL_CHUNK);
                file_buf.resize(want, 0);
                let n = socket::read_file_at(fd, &mut file_buf[..want], offset)?;
                // The file ended before the range did: it shrank, and the
                // promised length can never be delivered.
                if n == 0 {
                    return Err(Errno::IO);
                }
                // Bytes read but not taken are read again next time.
                transport.seal(&file_buf[..n])
            }
        }
    };
    output.consume(sealed, pool);
    Ok(sealed)
}

/// `Io::send` on an established connection with nothing queued: seals
/// straight from the caller's bytes (no copy into the queue) and writes,
/// a chunk at a time, until all is written or the socket is full. Returns
/// the plaintext bytes sealed; the caller queues the rest.
pub(crate) fn send_sealed(
    fd: &OwnedFd,
    transport: &mut dyn Transport,
    data: &[u8],
    stats: &mut Stats,
) -> Result<usize, Errno> {
    let mut taken = 0;
    loop {
        if !write_wire(fd, transport, stats)? || taken == data.len() {
            return Ok(taken);
        }
        let end = data.len().min(taken + SEAL_CHUNK);
        let took = transport.seal(&data[taken..end]);
        if took == 0 {
            return Ok(taken);
        }
        taken += took;
    }
}
