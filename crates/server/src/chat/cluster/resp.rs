//! RESP2 through the `redis-protocol` crate: commands encoded as arrays
//! of bulk strings, and the replies the chat needs decoded from the
//! connection's input in place (`decode_range`: frames are ranges into
//! the reactor's buffer, so a message's bytes are copied once, into the
//! `Arc` that is fanned out). I/O free.

use std::sync::Arc;

use redis_protocol::resp2::decode::decode_range;
use redis_protocol::resp2::encode::encode_borrowed;
use redis_protocol::resp2::types::{BorrowedFrame, RangeFrame};

/// `args` as one RESP command, ready to queue on a connection.
pub fn command(args: &[&[u8]]) -> Arc<[u8]> {
    let parts: Vec<BorrowedFrame<'_>> = args.iter().map(|a| BorrowedFrame::BulkString(a)).collect();
    let frame = BorrowedFrame::Array(&parts);
    let mut out = vec![0; frame.encode_len(false)];
    // The buffer is exactly `encode_len` long: encoding cannot run short.
    let n = encode_borrowed(&mut out, &frame, false).expect("buffer sized by encode_len");
    out.truncate(n);
    Arc::from(out)
}

/// A reply from Redis, borrowing from the input buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// `+OK` and other status replies; integers (PUBLISH's receiver count).
    Fine,
    /// `-ERR …`.
    Error(&'a str),
    /// A pub/sub message: channel and payload.
    Message {
        channel: &'a [u8],
        payload: &'a [u8],
    },
    /// A SUBSCRIBE acknowledged, for one channel.
    Subscribed(&'a [u8]),
    /// An UNSUBSCRIBE acknowledged, for one channel.
    Unsubscribed(&'a [u8]),
    /// A PING answered on a subscribed connection: RESP2 answers it in
    /// the pub/sub shape, `["pong", ""]`, not `+PONG`.
    Pong,
    /// Anything else (a reply the chat never asks for).
    Other,
}

/// The reply at the start of `buf` and the bytes it takes, `Ok(None)` if
/// it is not all there yet.
///
/// # Errors
/// A message when the bytes are not RESP2: the connection is out of step
/// and must be closed.
pub fn next_reply(buf: &[u8]) -> Result<Option<(Reply<'_>, usize)>, String> {
    let (frame, used) = match decode_range(buf) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let bytes = |f: &RangeFrame| match f {
        RangeFrame::BulkString((start, end)) | RangeFrame::SimpleString((start, end)) => {
            Some(&buf[*start..*end])
        }
        _ => None,
    };
    let reply = match &frame {
        RangeFrame::SimpleString(_) | RangeFrame::Integer(_) => Reply::Fine,
        RangeFrame::Error((start, end)) => {
            Reply::Error(std::str::from_utf8(&buf[*start..*end]).unwrap_or("(not UTF-8)"))
        }
        RangeFrame::Array(items) => match items.as_slice() {
            [kind, channel, payload] => match (bytes(kind), bytes(channel)) {
                (Some(b"message"), Some(channel)) => match bytes(payload) {
                    Some(payload) => Reply::Message { channel, payload },
                    None => Reply::Other,
                },
                (Some(b"subscribe"), Some(channel)) => Reply::Subscribed(channel),
                (Some(b"unsubscribe"), Some(channel)) => Reply::Unsubscribed(channel),
                _ => Reply::Other,
            },
            [kind, _] if bytes(kind) == Some(b"pong") => Reply::Pong,
            _ => Reply::Other,
        },
        _ => Reply::Other,
    };
    Ok(Some((reply, used)))
}

/// A reply to a command on the publisher, borrowing from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Value<'a> {
    /// A status (`+OK`).
    Status,
    /// `-ERR …`.
    Error(&'a str),
    /// A nil bulk string or array (`SET … NX` refused, a script's `false`).
    Nil,
    Int(i64),
    Bulk(&'a [u8]),
    /// An array; its items that are strings (the scripts answer only
    /// those).
    Strings(Vec<&'a [u8]>),
}

/// The publisher's reply at the start of `buf` and the bytes it takes,
/// `Ok(None)` if it is not all there yet.
///
/// # Errors
/// As [`next_reply`].
pub fn next_value(buf: &[u8]) -> Result<Option<(Value<'_>, usize)>, String> {
    let (frame, used) = match decode_range(buf) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let value = match &frame {
        RangeFrame::SimpleString(_) => Value::Status,
        RangeFrame::Error((start, end)) => {
            Value::Error(std::str::from_utf8(&buf[*start..*end]).unwrap_or("(not UTF-8)"))
        }
        RangeFrame::Null => Value::Nil,
        RangeFrame::Integer(n) => Value::Int(*n),
        RangeFrame::BulkString((start, end)) => Value::Bulk(&buf[*start..*end]),
        RangeFrame::Array(items) => Value::Strings(
            items
                .iter()
                .filter_map(|item| match item {
                    RangeFrame::BulkString((start, end))
                    | RangeFrame::SimpleString((start, end)) => Some(&buf[*start..*end]),
                    _ => None,
                })
                .collect(),
        ),
    };
    Ok(Some((value, used)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(
            &*command(&[b"PUBLISH", b"tenk:room:a", b"x\r\ny"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$11\r\ntenk:room:a\r\n$4\r\nx\r\ny\r\n"
        );
    }

    #[test]
    fn replies() {
        // (bytes, reply, bytes of trailing input not part of the reply)
        let cases: &[(&[u8], Reply<'_>, usize)] = &[
            (b"+OK\r\n", Reply::Fine, 0),
            (b":3\r\nrest", Reply::Fine, 4),
            (
                b"-NOAUTH Authentication required.\r\n",
                Reply::Error("NOAUTH Authentication required."),
                0,
            ),
            (
                b"*3\r\n$9\r\nsubscribe\r\n$3\r\nabc\r\n:1\r\n",
                Reply::Subscribed(b"abc"),
                0,
            ),
            (
                b"*3\r\n$11\r\nunsubscribe\r\n$3\r\nabc\r\n:0\r\n",
                Reply::Unsubscribed(b"abc"),
                0,
            ),
            (
                b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n*1",
                Reply::Message {
                    channel: b"c",
                    payload: b"hi",
                },
                2,
            ),
            (b"*2\r\n$4\r\npong\r\n$0\r\n\r\n", Reply::Pong, 0),
            (b"*2\r\n$4\r\nping\r\n$0\r\n\r\n", Reply::Other, 0),
        ];
        for (bytes, expected, trailing) in cases {
            let (reply, n) = next_reply(bytes).unwrap().unwrap();
            assert_eq!(&reply, expected, "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(
                n,
                bytes.len() - trailing,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn a_reply_split_anywhere_waits_for_the_rest() {
        let whole = b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n";
        for cut in 0..whole.len() {
            assert_eq!(next_reply(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
    }

    #[test]
    fn values() {
        let cases: &[(&[u8], Value<'_>)] = &[
            (b"+OK\r\n", Value::Status),
            (b"$-1\r\n", Value::Nil),
            (b":7\r\n", Value::Int(7)),
            (b"$6\r\nguest3\r\n", Value::Bulk(b"guest3")),
            (
                b"*3\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n",
                Value::Strings(vec![b"a", b"b"]),
            ),
            (b"-ERR x\r\n", Value::Error("ERR x")),
        ];
        for (bytes, expected) in cases {
            let (value, n) = next_value(bytes).unwrap().unwrap();
            assert_eq!(&value, expected, "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(n, bytes.len());
        }
        assert_eq!(next_value(b"$6\r\ngue").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(next_reply(b"hello\r\n").is_err());
    }
}
