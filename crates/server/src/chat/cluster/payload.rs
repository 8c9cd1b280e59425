//! What a node publishes for a room message: one header line, then the
//! line its members are shown, as sent.
//!
//! ```text
//! tenk1 NODE MICROS NICK\n<line>
//! ```
//!
//! `NODE` is the origin node (a node drops its own messages), `MICROS`
//! the publish time in microseconds since the Unix epoch (for the
//! cross-node latency; comparable only between synchronised clocks),
//! `NICK` the user the line is from or about, and `<line>` the text
//! exactly as local members got it, so a receiving node fans it out
//! without re-encoding. Names never hold spaces or newlines (checked
//! where they are chosen). I/O free.

use std::io::Write as _;

const MAGIC: &str = "tenk1";

/// A decoded payload, borrowing from the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Payload<'a> {
    pub node: &'a str,
    pub micros: u64,
    pub nick: &'a str,
    pub line: &'a [u8],
}

/// Encodes a payload.
pub fn encode(node: &str, micros: u64, nick: &str, line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + node.len() + nick.len() + line.len() + 24);
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, "{MAGIC} {node} {micros} {nick}");
    out.extend_from_slice(line);
    out
}

/// Decodes a payload; `None` for one that is not ours (another program
/// publishing on the channel, or a future format).
pub fn decode(bytes: &[u8]) -> Option<Payload<'_>> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    let mut fields = header.split(' ');
    if fields.next()? != MAGIC {
        return None;
    }
    let node = fields.next()?;
    let micros = fields.next()?.parse().ok()?;
    let nick = fields.next()?;
    if fields.next().is_some() || node.is_empty() {
        return None;
    }
    Some(Payload {
        node,
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
        let bytes = encode("host:12", 1_700_000_000_000_123, "alice", b"<alice> hi\n");
        assert_eq!(
            &bytes[..],
            b"tenk1 host:12 1700000000000123 alice\n<alice> hi\n"
        );
        assert_eq!(
            decode(&bytes),
            Some(Payload {
                node: "host:12",
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
            b"tenk2 n 1 a\nx",
            b"tenk1 n x a\nx",
            b"tenk1 n 1\nx",
            b"tenk1 n 1 a b\nx",
            b"tenk1  1 a\nx",
        ] {
            assert_eq!(decode(bytes), None, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
