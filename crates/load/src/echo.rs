//! Checking one echo connection: what it sent, what came back, and whether
//! every returned byte is the one sent at that position. I/O free.

use crate::pattern::Pattern;

/// Why an echo reply failed verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EchoError {
    /// The byte at stream offset `offset` is not the one sent there
    /// (flipped, dropped, duplicated, or from another connection).
    Mismatch { offset: u64 },
    /// More bytes came back than were sent.
    Unexpected { offset: u64 },
}

/// The stream of one echo connection: fixed-size messages cut from the
/// connection's [`Pattern`].
#[derive(Debug)]
pub struct EchoStream {
    pattern: Pattern,
    size: u64,
    sent: u64,
    received: u64,
}

impl EchoStream {
    /// A stream of `size`-byte messages (`size` ≥ 1) for the connection
    /// with `seed`.
    pub fn new(seed: u64, size: usize) -> EchoStream {
        EchoStream {
            pattern: Pattern::new(seed),
            size: size.max(1) as u64,
            sent: 0,
            received: 0,
        }
    }

    /// Writes the next message into `out` (replacing its contents) and
    /// counts it as sent.
    pub fn next_message(&mut self, out: &mut Vec<u8>) {
        out.resize(self.size as usize, 0);
        self.pattern.fill(self.sent, out);
        self.sent += self.size;
    }

    /// Appends the next message to `out` and counts it as sent.
    pub fn append_message(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        out.resize(start + self.size as usize, 0);
        self.pattern.fill(self.sent, &mut out[start..]);
        self.sent += self.size;
    }

    /// Verifies returned bytes and returns how many messages they complete.
    ///
    /// # Errors
    /// The first wrong byte, or bytes beyond what was sent.
    pub fn receive(&mut self, data: &[u8]) -> Result<u64, EchoError> {
        let end = self.received + data.len() as u64;
        if end > self.sent {
            let sent_part = (self.sent - self.received) as usize;
            if let Some(i) = self
                .pattern
                .first_mismatch(self.received, &data[..sent_part])
            {
                return Err(EchoError::Mismatch {
                    offset: self.received + i as u64,
                });
            }
            return Err(EchoError::Unexpected { offset: self.sent });
        }
        if let Some(i) = self.pattern.first_mismatch(self.received, data) {
            return Err(EchoError::Mismatch {
                offset: self.received + i as u64,
            });
        }
        let before = self.received / self.size;
        self.received = end;
        Ok(self.received / self.size - before)
    }

    /// Bytes sent and not yet returned.
    pub fn outstanding(&self) -> u64 {
        self.sent - self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(stream: &mut EchoStream, n: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut msg = Vec::new();
        for _ in 0..n {
            stream.next_message(&mut msg);
            all.extend_from_slice(&msg);
        }
        all
    }

    #[test]
    fn replies_split_anywhere_complete_whole_messages() {
        let mut s = EchoStream::new(3, 10);
        let wire = send(&mut s, 3);
        assert_eq!(s.receive(&wire[..7]), Ok(0));
        assert_eq!(s.receive(&wire[7..25]), Ok(2));
        assert_eq!(s.outstanding(), 5);
        assert_eq!(s.receive(&wire[25..]), Ok(1));
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn a_flipped_byte_is_a_mismatch_at_its_offset() {
        let mut s = EchoStream::new(1, 64);
        let mut wire = send(&mut s, 2);
        wire[70] ^= 0x20;
        assert_eq!(s.receive(&wire), Err(EchoError::Mismatch { offset: 70 }));
    }

    #[test]
    fn a_dropped_byte_is_a_mismatch() {
        let mut s = EchoStream::new(1, 64);
        let mut wire = send(&mut s, 2);
        wire.remove(3);
        assert!(matches!(s.receive(&wire), Err(EchoError::Mismatch { .. })));
    }

    #[test]
    fn a_duplicated_byte_is_caught() {
        let mut s = EchoStream::new(1, 64);
        let mut wire = send(&mut s, 1);
        wire.insert(5, wire[5]);
        assert!(s.receive(&wire).is_err());
    }

    #[test]
    fn bytes_beyond_what_was_sent_are_unexpected() {
        let mut s = EchoStream::new(1, 8);
        let mut wire = send(&mut s, 1);
        let mut extra = send(&mut EchoStream::new(1, 8), 2);
        wire.push(extra.remove(8));
        assert_eq!(s.receive(&wire), Err(EchoError::Unexpected { offset: 8 }));
    }

    #[test]
    fn another_connections_bytes_are_a_mismatch() {
        let mut mine = EchoStream::new(1, 32);
        send(&mut mine, 1);
        let theirs = send(&mut EchoStream::new(2, 32), 1);
        assert!(matches!(
            mine.receive(&theirs),
            Err(EchoError::Mismatch { .. })
        ));
    }
}
