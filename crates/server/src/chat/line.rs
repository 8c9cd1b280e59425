//! Line framing for the chat protocol. I/O free.
//!
//! Lines end with `\n` (a preceding `\r` is dropped, so telnet works). A
//! line longer than the limit is reported once and then discarded up to
//! its newline, so an endless line costs the server at most the limit in
//! memory, never an unbounded buffer.

/// What the next bytes hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its line ending, and the bytes it took.
    Line(&'a [u8], usize),
    /// A line went over the limit: `consumed` bytes of it were dropped.
    /// Reported once per over-long line.
    TooLong { consumed: usize },
    /// Bytes of an over-long line being skipped (already reported).
    Skipped { consumed: usize },
    /// No complete line yet; nothing consumed.
    Incomplete,
}

/// Splits a byte stream into lines of at most `max_line` bytes.
#[derive(Debug)]
pub struct LineFramer {
    max_line: usize,
    /// Inside an over-long line: dropping bytes until its newline.
    discarding: bool,
}

impl LineFramer {
    pub fn new(max_line: usize) -> LineFramer {
        LineFramer {
            max_line: max_line.max(1),
            discarding: false,
        }
    }

    /// The next frame at the start of `buf`.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> Frame<'a> {
        if buf.is_empty() {
            return Frame::Incomplete;
        }
        let newline = buf.iter().position(|&b| b == b'\n');
        if self.discarding {
            return match newline {
                Some(i) => {
                    self.discarding = false;
                    Frame::Skipped { consumed: i + 1 }
                }
                None => Frame::Skipped {
                    consumed: buf.len(),
                },
            };
        }
        match newline {
            // `\r\n` line endings count one byte towards the limit at most.
            Some(i) if i <= self.max_line + 1 => {
                let mut line = &buf[..i];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                if line.len() > self.max_line {
                    return Frame::TooLong { consumed: i + 1 };
                }
                Frame::Line(line, i + 1)
            }
            Some(i) => Frame::TooLong { consumed: i + 1 },
            None if buf.len() > self.max_line + 1 => {
                self.discarding = true;
                Frame::TooLong {
                    consumed: buf.len(),
                }
            }
            None => Frame::Incomplete,
        }
    }
}

/// Text safe to show other users: invalid UTF-8 and control characters
/// (other than tab) become U+FFFD, so nobody can inject terminal escape
/// sequences or fake line breaks into another user's screen.
pub fn sanitize(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frames(framer: &mut LineFramer, mut buf: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match framer.next(buf) {
                Frame::Line(line, n) => {
                    out.push(String::from_utf8_lossy(line).into_owned());
                    buf = &buf[n..];
                }
                Frame::TooLong { consumed } => {
                    out.push("<too long>".into());
                    buf = &buf[consumed..];
                }
                Frame::Skipped { consumed } => buf = &buf[consumed..],
                Frame::Incomplete => return out,
            }
        }
    }

    #[test]
    fn lines_crlf_and_partial() {
        let mut f = LineFramer::new(10);
        assert_eq!(frames(&mut f, b"a\nbc\r\n\nrest"), ["a", "bc", ""]);
        assert_eq!(f.next(b"rest"), Frame::Incomplete);
    }

    #[test]
    fn over_long_lines_are_reported_once_and_skipped() {
        let mut f = LineFramer::new(4);
        assert_eq!(frames(&mut f, b"12345678\nok\n"), ["<too long>", "ok"]);
        // Without a newline yet: reported, then the rest skipped.
        assert_eq!(f.next(b"0123456789"), Frame::TooLong { consumed: 10 });
        assert_eq!(f.next(b"more"), Frame::Skipped { consumed: 4 });
        assert_eq!(f.next(b"end\nnext\n"), Frame::Skipped { consumed: 4 });
        assert_eq!(frames(&mut f, b"next\n"), ["next"]);
        assert_eq!(frames(&mut f, b"1234\r\n"), ["1234"], "CR not counted");
    }

    #[test]
    fn sanitize_replaces_controls_and_bad_utf8() {
        assert_eq!(sanitize(b"hi\x1b[2Jthere"), "hi\u{FFFD}[2Jthere");
        assert_eq!(sanitize(b"tab\tok"), "tab\tok");
        assert_eq!(sanitize(b"bad\xff\xfe"), "bad\u{FFFD}\u{FFFD}");
        assert_eq!(sanitize("héllo ✓".as_bytes()), "héllo ✓");
    }

    proptest! {
        /// However the stream is split, the same lines come out, and the
        /// framer never holds more than the limit.
        #[test]
        fn splits_do_not_change_lines(
            lines in proptest::collection::vec("[a-z ]{0,12}", 0..20),
            cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            let stream: Vec<u8> = lines.iter().flat_map(|l| format!("{l}\n").into_bytes()).collect();
            let whole = frames(&mut LineFramer::new(8), &stream);
            let mut framer = LineFramer::new(8);
            let mut pending = Vec::new();
            let mut pieces = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut last = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                pending.extend_from_slice(&stream[last..cut]);
                last = cut;
                loop {
                    match framer.next(&pending) {
                        Frame::Line(line, n) => {
                            pieces.push(String::from_utf8_lossy(line).into_owned());
                            pending.drain(..n);
                        }
                        Frame::TooLong { consumed } => {
                            pieces.push("<too long>".into());
                            pending.drain(..consumed);
                        }
                        Frame::Skipped { consumed } => { pending.drain(..consumed); }
                        Frame::Incomplete => break,
                    }
                }
                prop_assert!(pending.len() <= 8 + 1);
            }
            prop_assert_eq!(pieces, whole);
        }
    }
}
