//! The `Range` request header: a single byte range against a file's size
//! (RFC 9110 section 14.2).

use crate::ows;

/// A `Range` header against a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// Malformed, not in bytes, or several ranges: served whole (a server
    /// may ignore `Range`, RFC 9110 section 14.2).
    Ignored,
    /// Bytes `first..=last`, clipped to the file.
    Satisfiable { first: u64, last: u64 },
    /// A valid range wholly past the end (or any range of an empty file).
    Unsatisfiable,
}

/// Parses a single `bytes=first-last`, `bytes=first-` or `bytes=-suffix`.
pub fn parse_range(value: &[u8], size: u64) -> Range {
    let value = ows::trim(value);
    let Some(eq) = value.iter().position(|&b| b == b'=') else {
        return Range::Ignored;
    };
    if !ows::trim(&value[..eq]).eq_ignore_ascii_case(b"bytes") {
        return Range::Ignored;
    }
    let spec = ows::trim(&value[eq + 1..]);
    if spec.contains(&b',') {
        return Range::Ignored;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return Range::Ignored;
    };
    let (first, last) = (ows::trim(&spec[..dash]), ows::trim(&spec[dash + 1..]));
    if first.is_empty() {
        // A suffix: the last `n` bytes, the whole file if it is shorter.
        let Some(n) = number(last) else {
            return Range::Ignored;
        };
        return match n {
            Number::Value(0) => Range::Unsatisfiable,
            _ if size == 0 => Range::Unsatisfiable,
            Number::Value(n) => Range::Satisfiable {
                first: size.saturating_sub(n),
                last: size - 1,
            },
            Number::TooLarge => Range::Satisfiable {
                first: 0,
                last: size - 1,
            },
        };
    }
    let Some(first) = number(first) else {
        return Range::Ignored;
    };
    let last = if last.is_empty() {
        None
    } else {
        match number(last) {
            Some(last) => Some(last),
            None => return Range::Ignored,
        }
    };
    let Number::Value(first) = first else {
        // Syntactically fine, and past the end of any file.
        return Range::Unsatisfiable;
    };
    let last = match last {
        None | Some(Number::TooLarge) => u64::MAX,
        Some(Number::Value(last)) if last < first => return Range::Ignored,
        Some(Number::Value(last)) => last,
    };
    if first >= size {
        return Range::Unsatisfiable;
    }
    Range::Satisfiable {
        first,
        last: last.min(size - 1),
    }
}

enum Number {
    Value(u64),
    /// All digits, beyond `u64`.
    TooLarge,
}

/// A run of ASCII digits.
fn number(digits: &[u8]) -> Option<Number> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
        {
            Some(next) => n = next,
            None => return Some(Number::TooLarge),
        }
    }
    Some(Number::Value(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use Range::*;
        let size = 100;
        let table: &[(&str, Range)] = &[
            ("bytes=0-9", Satisfiable { first: 0, last: 9 }),
            (
                "bytes=10-",
                Satisfiable {
                    first: 10,
                    last: 99,
                },
            ),
            (
                "bytes=-5",
                Satisfiable {
                    first: 95,
                    last: 99,
                },
            ),
            ("bytes=-500", Satisfiable { first: 0, last: 99 }),
            (
                "bytes=-99999999999999999999999",
                Satisfiable { first: 0, last: 99 },
            ),
            (
                "bytes=90-200",
                Satisfiable {
                    first: 90,
                    last: 99,
                },
            ),
            (
                "bytes=99-99",
                Satisfiable {
                    first: 99,
                    last: 99,
                },
            ),
            (
                "bytes=0-99999999999999999999999",
                Satisfiable { first: 0, last: 99 },
            ),
            ("BYTES = 5 - 6 ", Satisfiable { first: 5, last: 6 }),
            ("bytes=100-", Unsatisfiable),
            ("bytes=999999-", Unsatisfiable),
            ("bytes=100-200", Unsatisfiable),
            ("bytes=99999999999999999999999-", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            // Ignored: served whole with 200.
            ("bytes=0-9,20-29", Ignored),
            ("bytes=0-9,", Ignored),
            ("bytes=9-0", Ignored),
            ("bytes=-", Ignored),
            ("bytes=", Ignored),
            ("bytes=a-b", Ignored),
            ("bytes=1-2-3", Ignored),
            ("bytes=+1-2", Ignored),
            ("bytes 0-9", Ignored),
            ("items=0-9", Ignored),
            ("", Ignored),
        ];
        for (header, want) in table {
            assert_eq!(parse_range(header.as_bytes(), size), *want, "{header:?}");
        }
    }

    #[test]
    fn ranges_of_an_empty_file_are_unsatisfiable() {
        for header in ["bytes=0-", "bytes=0-0", "bytes=-1"] {
            assert_eq!(
                parse_range(header.as_bytes(), 0),
                Range::Unsatisfiable,
                "{header}"
            );
        }
        assert_eq!(parse_range(b"bytes=0-1,2-3", 0), Range::Ignored);
    }
}
