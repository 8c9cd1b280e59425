//! What a node publishes for a room message: one header line, then the
//! line its members are shown, as sent.
//!
//! ```text
//! tenk2 NODE STREAM SEQ MICROS NICK\n<line>
//! ```
//!
//! `NODE` is the origin node (a node drops its own messages); `STREAM`
//! and `SEQ` number the message within its publisher's stream for the
//! room (see `sequence.rs`: a receiver counts the gaps), `-` and 0 for a
//! private message, which is not numbered; `MICROS` the publish time in
//! microseconds since the Unix epoch (for the cross-node latency;
//! comparable only between synchronised clocks), `NICK` the user the line
//! is from or about, and `<line>` the text exactly as local members got
//! it, so a receiving node fans it out without re-encoding. Names never
//! hold spaces or newlines (checked where they are chosen). I/O free.

use std::io::Write as _;

const MAGIC: &str = "tenk2";

/// The stream of messages that are not numbered (private ones).
pub const UNNUMBERED: &str = "-";

/// A decoded payload, borrowing from the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub node: &'a str,
    /// `NODE STREAM`: the stream, unique across nodes and their runs.
    pub origin: &'a str,
    /// The message's number in its stream; 0 if not numbered.
    pub seq: u64,
    pub micros: u64,
    pub nick: &'a str,
    pub line: &'a [u8],
}

/// What a payload says about its message, besides its line.
#[derive(Clone, Copy, Debug)]
pub struct Header<'a> {
    pub node: &'a str,
    pub stream: &'a str,
    pub seq: u64,
    pub micros: u64,
    pub nick: &'a str,
}

/// Encodes a payload.
pub fn encode(h: &Header<'_>, line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        MAGIC.len() + h.node.len() + h.stream.len() + h.nick.len() + line.len() + 48,
    );
    // Writing to a Vec cannot fail.
    let _ = writeln!(
        out,
        "{MAGIC} {} {} {} {} {}",
        h.node, h.stream, h.seq, h.micros, h.nick
    );
    out.extend_from_slice(line);
    out
}

/// Decodes a payload; `None` for one that is not ours (another program
/// publishing on the channel, or another format: an older tenk's).
pub fn decode(bytes: &[u8]) -> Option<Payload<'_>> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let rest = header.strip_prefix(MAGIC)?.strip_prefix(' ')?;
    let mut fields = rest.split(' ');
    let node = fields.next()?;
    let stream = fields.next()?;
    let seq = fields.next()?.parse().ok()?;
    let micros = fields.next()?.parse().ok()?;
    let nick = fields.next()?;
    if fields.next().is_some() || node.is_empty() || stream.is_empty() {
        return None;
    }
    Some(Payload {
        node,
        origin: &rest[..node.len() + 1 + stream.len()],
        seq,
        micros,
        nick,
        line: &bytes[newline + 1..],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let header = Header {
            node: "host:12",
            stream: "1700.0.3",
            seq: 42,
            micros: 1_700_000_000_000_123,
            nick: "alice",
        };
        let bytes = encode(&header, b"<alice> hi\n");
        assert_eq!(
            &bytes[..],
            b"tenk2 host:12 1700.0.3 42 1700000000000123 alice\n<alice> hi\n"
        );
        assert_eq!(
            decode(&bytes),
            Some(Payload {
                node: "host:12",
                origin: "host:12 1700.0.3",
                seq: 42,
                micros: 1_700_000_000_000_123,
                nick: "alice",
                line: b"<alice> hi\n",
            })
        );
    }

    #[test]
    fn foreign_payloads_are_refused() {
        for bytes in [
            &b"hello"[..],
            b"tenk1 n 1 a\nx",
            b"tenk2 n s x 1 a\nx",
            b"tenk2 n s 1 x a\nx",
            b"tenk2 n s 1 1\nx",
            b"tenk2 n s 1 1 a b\nx",
            b"tenk2  s 1 1 a\nx",
            b"tenk2 n  1 1 a\nx",
            b"tenk2x n s 1 1 a\nx",
        ] {
            assert_eq!(decode(bytes), None, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
