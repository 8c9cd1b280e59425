//! Bodies streamed through the proxy: [`BodyDecoder`] delimits a body as
//! its bytes arrive, in whatever pieces the reads cut them into, and
//! hands on its payload without copying; [`ChunkedEncoder`] frames
//! payload pieces as chunks again.
//!
//! # Chunked framing, strictly
//! A chunked body is where parsers that disagree smuggle requests (the
//! "funky chunks" of line terminators and extensions), so the decoder
//! reads the grammar of RFC 9112 section 7.1 and refuses the rest:
//! - every line ends in CRLF: a bare LF or a CR without LF is refused,
//!   after a chunk's data as after its size;
//! - a size is 1 to 16 hex digits (leading zeros count) and below 2^63;
//! - extensions after `;` are skipped, bounded to [`MAX_CHUNK_LINE`]
//!   bytes a line, control bytes refused; whitespace between the size and
//!   the `;` or the line end is accepted (BWS), anything else is not;
//! - trailer fields are checked as `name: value` lines, bounded to
//!   [`MAX_TRAILERS`] bytes in all, and dropped.

use std::ops::Deref;

use super::{malformed, Framing, Malformed};

/// Bytes of a chunk-size line (size, extensions, whitespace), CRLF apart.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Bytes of all trailer lines of a body together.
pub const MAX_TRAILERS: usize = 8 * 1024;
/// Hex digits of a chunk size: 16 make 64 bits.
const MAX_SIZE_DIGITS: u32 = 16;

/// A streaming body decoder; see the module docs for chunked framing.
///
/// # Examples
/// ```
/// use http::proxy::{BodyDecoder, Framing};
///
/// let mut decoder = BodyDecoder::new(Framing::Chunked);
/// let mut body = Vec::new();
/// // Pieces arrive split anywhere; the decoder keeps its place.
/// for read in [&b"5\r\nhel"[..], b"lo\r\n0\r", b"\n\r\nGET / HTTP/1.1"] {
///     let (used, done) = decoder.decode(read, &mut |piece| body.extend_from_slice(piece)).unwrap();
///     if done {
///         assert_eq!(&read[used..], b"GET / HTTP/1.1", "the next message");
///     }
/// }
/// assert_eq!(body, b"hello");
/// assert!(decoder.is_done());
/// ```
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length { remaining: u64 },
    UntilClose,
    Chunked(Chunk),
    Done,
}

/// Where in chunked framing the decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a size.
    Size {
        size: u64,
        digits: u32,
    },
    /// After the digits: whitespace, extensions, up to the CR. `line`
    /// counts the line's bytes so far.
    AfterSize {
        size: u64,
        line: usize,
        in_extension: bool,
    },
    /// The LF of a size line.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    /// The CRLF after a chunk's data.
    DataCr,
    DataLf,
    /// At a trailer line's start (`len` 0: it may be the final empty
    /// line) or in its name. `total` counts every trailer byte.
    TrailerName {
        len: usize,
        total: usize,
    },
    TrailerValue {
        total: usize,
    },
    TrailerLf {
        total: usize,
    },
    /// The LF of the empty line that ends the body.
    EndLf,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`. `None` and `Length(0)`
    /// are done before a byte is read.
    pub fn new(framing: Framing) -> BodyDecoder {
        let state = match framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length { remaining: n },
            Framing::Chunked => State::Chunked(Chunk::Size { size: 0, digits: 0 }),
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder { state }
    }

    /// Decodes from `input`, calling `piece` with each payload slice in
    /// order (never an empty one). Returns the bytes of `input` consumed
    /// and whether the body is complete: the rest of `input`, if any,
    /// belongs to the next message (pipelining). Until the body is
    /// complete, all of `input` is consumed: the decoder keeps its place
    /// between calls, and the caller keeps no bytes.
    ///
    /// # Errors
    /// Chunked framing outside the grammar or the bounds of the module
    /// docs. The body cannot be delimited: the connection is done for.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        piece: &mut dyn FnMut(&'a [u8]),
    ) -> Result<(usize, bool), Malformed> {
        let mut at = 0;
        loop {
            match self.state {
                State::Done => return Ok((at, true)),
                State::UntilClose => {
                    if at < input.len() {
                        piece(&input[at..]);
                    }
                    return Ok((input.len(), false));
                }
                State::Length { remaining } => {
                    let take = take(remaining, input.len() - at);
                    if take > 0 {
                        piece(&input[at..at + take]);
                    }
                    at += take;
                    let remaining = remaining - take as u64;
                    if remaining > 0 {
                        self.state = State::Length { remaining };
                        return Ok((at, false));
                    }
                    self.state = State::Done;
                }
                State::Chunked(Chunk::Data { remaining }) => {
                    let take = take(remaining, input.len() - at);
                    if take == 0 {
                        return Ok((at, false));
                    }
                    piece(&input[at..at + take]);
                    at += take;
                    let remaining = remaining - take as u64;
                    self.state = State::Chunked(if remaining == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { remaining }
                    });
                }
                State::Chunked(chunk) => {
                    let Some(&byte) = input.get(at) else {
                        return Ok((at, false));
                    };
                    at += 1;
                    self.state = match step(chunk, byte)? {
                        Some(chunk) => State::Chunked(chunk),
                        None => State::Done,
                    };
                }
            }
        }
    }

    /// The peer closed the connection: `Ok` if that ends the body
    /// (until-close framing) or it had ended already.
    ///
    /// # Errors
    /// A Content-Length or chunked body cut short.
    pub fn finish_at_eof(&self) -> Result<(), Malformed> {
        match self.state {
            State::Done | State::UntilClose => Ok(()),
            State::Length { .. } | State::Chunked(_) => Err(malformed("body cut short by close")),
        }
    }

    /// Whether the body is complete (never for until-close framing).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }
}

/// The bytes to take of `available` for a body that has `remaining`.
fn take(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |remaining| remaining.min(available))
}

/// One byte of chunked framing outside data: the next place, or `None`
/// when the body ended with it.
fn step(chunk: Chunk, byte: u8) -> Result<Option<Chunk>, Malformed> {
    let next = match chunk {
        Chunk::Size { size, digits } => match hex_digit(byte) {
            Some(digit) => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(malformed("chunk size over 16 hex digits"));
                }
                // 16 digits fit in 64 bits; the checks keep that a fact.
                let size = size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(u64::from(digit)))
                    .filter(|&size| size <= i64::MAX as u64)
                    .ok_or(malformed("chunk size too large"))?;
                Chunk::Size {
                    size,
                    digits: digits + 1,
                }
            }
            None if digits == 0 => return Err(malformed("chunk size missing")),
            None => {
                let after = Chunk::AfterSize {
                    size,
                    line: digits as usize,
                    in_extension: false,
                };
                return step(after, byte);
            }
        },
        Chunk::AfterSize {
            size,
            line,
            in_extension,
        } => {
            if byte == b'\r' {
                return Ok(Some(Chunk::SizeLf { size }));
            }
            if line >= MAX_CHUNK_LINE {
                return Err(malformed("chunk size line too long"));
            }
            let line = line + 1;
            match byte {
                b'\n' => return Err(malformed("bare LF in chunked framing")),
                b';' if !in_extension => Chunk::AfterSize {
                    size,
                    line,
                    in_extension: true,
                },
                b' ' | b'\t' => Chunk::AfterSize {
                    size,
                    line,
                    in_extension,
                },
                _ if in_extension && is_field_byte(byte) => Chunk::AfterSize {
                    size,
                    line,
                    in_extension,
                },
                _ if in_extension => return Err(malformed("control byte in chunk extension")),
                _ => return Err(malformed("bad chunk size")),
            }
        }
        Chunk::SizeLf { size } => {
            if byte != b'\n' {
                return Err(malformed("CR without LF in chunked framing"));
            }
            if size == 0 {
                Chunk::TrailerName { len: 0, total: 0 }
            } else {
                Chunk::Data { remaining: size }
            }
        }
        // Data is taken in bulk by `decode`, never a byte at a time.
        Chunk::Data { .. } => unreachable!("chunk data is not stepped"),
        Chunk::DataCr if byte == b'\r' => Chunk::DataLf,
        Chunk::DataLf if byte == b'\n' => Chunk::Size { size: 0, digits: 0 },
        Chunk::DataCr | Chunk::DataLf => return Err(malformed("chunk data not followed by CRLF")),
        Chunk::TrailerName { len, total } => {
            let total = trailer_byte(total)?;
            match byte {
                b'\r' if len == 0 => Chunk::EndLf,
                b':' if len > 0 => Chunk::TrailerValue { total },
                b'\n' => return Err(malformed("bare LF in chunked framing")),
                _ if is_tchar(byte) => Chunk::TrailerName {
                    len: len + 1,
                    total,
                },
                _ => return Err(malformed("bad trailer field")),
            }
        }
        Chunk::TrailerValue { total } => {
            let total = trailer_byte(total)?;
            match byte {
                b'\r' => Chunk::TrailerLf { total },
                b'\n' => return Err(malformed("bare LF in chunked framing")),
                b' ' | b'\t' => Chunk::TrailerValue { total },
                _ if is_field_byte(byte) => Chunk::TrailerValue { total },
                _ => return Err(malformed("control byte in trailer field")),
            }
        }
        Chunk::TrailerLf { total } => {
            if byte != b'\n' {
                return Err(malformed("CR without LF in chunked framing"));
            }
            Chunk::TrailerName {
                len: 0,
                total: trailer_byte(total)?,
            }
        }
        Chunk::EndLf => {
            if byte != b'\n' {
                return Err(malformed("CR without LF in chunked framing"));
            }
            return Ok(None);
        }
    };
    Ok(Some(next))
}

/// Counts one more trailer byte against [`MAX_TRAILERS`].
fn trailer_byte(total: usize) -> Result<usize, Malformed> {
    if total >= MAX_TRAILERS {
        return Err(malformed("trailers too large"));
    }
    Ok(total + 1)
}

fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// A visible byte of a field value or extension: VCHAR or obs-text.
fn is_field_byte(byte: u8) -> bool {
    (0x21..=0x7e).contains(&byte) || byte >= 0x80
}

/// A byte of a token (RFC 9110 section 5.6.2), as in a field name.
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Chunked framing around payload pieces: for each piece, its
/// [`chunk_head`](ChunkedEncoder::chunk_head), the piece, then
/// [`CHUNK_END`](ChunkedEncoder::CHUNK_END); after the last,
/// [`LAST_CHUNK`](ChunkedEncoder::LAST_CHUNK). No extensions, no
/// trailers.
///
/// # Examples
/// ```
/// use http::proxy::ChunkedEncoder;
///
/// let mut out = Vec::new();
/// ChunkedEncoder::encode(b"hello world", &mut out);
/// ChunkedEncoder::encode(b"", &mut out); // nothing: an empty chunk would end the body
/// out.extend_from_slice(ChunkedEncoder::LAST_CHUNK);
/// assert_eq!(out, b"b\r\nhello world\r\n0\r\n\r\n");
/// assert_eq!(&ChunkedEncoder::chunk_head(4096)[..], b"1000\r\n");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ChunkedEncoder;

impl ChunkedEncoder {
    /// Follows each chunk's data.
    pub const CHUNK_END: &'static [u8] = b"\r\n";
    /// Ends a chunked body: the zero-size chunk and the empty trailer.
    pub const LAST_CHUNK: &'static [u8] = b"0\r\n\r\n";

    /// The size line of a chunk of `n` bytes: `{n:x}\r\n`. `n` must not
    /// be 0, which starts the last chunk (write
    /// [`LAST_CHUNK`](Self::LAST_CHUNK) instead).
    pub fn chunk_head(n: u64) -> ChunkHead {
        debug_assert!(n > 0, "a zero-size chunk ends the body");
        let mut head = ChunkHead {
            bytes: [0; 18],
            len: 0,
        };
        let digits = (64 - n.leading_zeros()).div_ceil(4).max(1) as usize;
        for i in 0..digits {
            let nibble = (n >> (4 * (digits - 1 - i))) & 0xf;
            head.bytes[i] = b"0123456789abcdef"[nibble as usize];
        }
        head.bytes[digits..digits + 2].copy_from_slice(b"\r\n");
        head.len = (digits + 2) as u8;
        head
    }

    /// Appends `piece` as one chunk; nothing for an empty piece.
    pub fn encode(piece: &[u8], out: &mut Vec<u8>) {
        if piece.is_empty() {
            return;
        }
        out.extend_from_slice(&Self::chunk_head(piece.len() as u64));
        out.extend_from_slice(piece);
        out.extend_from_slice(Self::CHUNK_END);
    }
}

/// A chunk-size line, on the stack: up to 16 hex digits and CRLF.
#[derive(Clone, Copy, Debug)]
pub struct ChunkHead {
    bytes: [u8; 18],
    len: u8,
}

impl Deref for ChunkHead {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

#[cfg(test)]
mod tests;
