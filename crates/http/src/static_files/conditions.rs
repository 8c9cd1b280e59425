//! The conditional and range request headers of a static file: which of
//! 304, 416, 206 or 200 they ask for (RFC 9110 sections 13.1 and 13.2.2).

use super::range::{parse_range, Range};
use super::unix_seconds;
use crate::ows;
use crate::parse::Request;

/// What the request's validators and `Range` ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 304: the client's copy is current.
    NotModified,
    /// 200 with the whole file.
    Full,
    /// 206 with bytes `first..=last`.
    Partial { first: u64, last: u64 },
    /// 416: the range starts past the end.
    Unsatisfiable,
}

/// The request headers that decide the [`Answer`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    pub if_none_match: Option<&'a [u8]>,
    pub if_modified_since: Option<&'a [u8]>,
    pub range: Option<&'a [u8]>,
    pub if_range: Option<&'a [u8]>,
}

impl<'a> Conditions<'a> {
    /// The conditional and range headers of `request`.
    pub fn of(request: &'a Request<'_, '_>) -> Conditions<'a> {
        Conditions {
            if_none_match: request.header("if-none-match"),
            if_modified_since: request.header("if-modified-since"),
            range: request.header("range"),
            if_range: request.header("if-range"),
        }
    }

    /// The answer for a GET or HEAD of a file with entity tag `etag`,
    /// modified at `modified` (seconds since the epoch) and `size` bytes
    /// long, in the order of RFC 9110 section 13.2.2: `If-None-Match`
    /// (weak comparison, `*` matches) and, only without it,
    /// `If-Modified-Since` (at or after the modification, to the second)
    /// give 304; then a single `Range`, honoured if `If-Range` (when sent)
    /// still matches.
    pub fn answer(&self, etag: &str, modified: u64, size: u64) -> Answer {
        let not_modified = match (self.if_none_match, self.if_modified_since) {
            (Some(tags), _) => etag_list_matches(tags, etag),
            (None, Some(since)) => http_date(since).is_some_and(|since| modified <= since),
            (None, None) => false,
        };
        if not_modified {
            return Answer::NotModified;
        }
        let Some(range) = self.range else {
            return Answer::Full;
        };
        if let Some(if_range) = self.if_range {
            if !if_range_matches(if_range, etag, modified) {
                return Answer::Full;
            }
        }
        match parse_range(range, size) {
            Range::Ignored => Answer::Full,
            Range::Satisfiable { first, last } => Answer::Partial { first, last },
            Range::Unsatisfiable => Answer::Unsatisfiable,
        }
    }
}

/// An HTTP date as seconds since the epoch.
fn http_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(text.trim())
        .ok()
        .map(unix_seconds)
}

/// Whether an `If-None-Match` list holds `*` or a tag equal to `etag` by
/// weak comparison (opaque tags equal, `W/` ignored). A malformed list
/// matches nothing (the file is then sent, which is always safe).
fn etag_list_matches(list: &[u8], etag: &str) -> bool {
    let ours = opaque(etag.as_bytes());
    let mut rest = ows::trim(list);
    if rest == b"*" {
        return true;
    }
    loop {
        rest = ows::trim_start(rest);
        while let [b',', tail @ ..] = rest {
            rest = ows::trim_start(tail);
        }
        if rest.is_empty() {
            return false;
        }
        let tag = rest.strip_prefix(b"W/").unwrap_or(rest);
        let Some(tag) = tag.strip_prefix(b"\"") else {
            return false;
        };
        let Some(end) = tag.iter().position(|&b| b == b'"') else {
            return false;
        };
        if Some(&tag[..end]) == ours {
            return true;
        }
        rest = &tag[end + 1..];
    }
}

/// The opaque part of a strong or weak entity tag (between the quotes).
fn opaque(tag: &[u8]) -> Option<&[u8]> {
    let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
    tag.strip_prefix(b"\"")?.strip_suffix(b"\"")
}

/// `If-Range`: an entity tag must equal ours by strong comparison (a weak
/// tag never does); a date must equal the modification time exactly
/// (RFC 9110 section 13.1.5).
fn if_range_matches(value: &[u8], etag: &str, modified: u64) -> bool {
    let value = ows::trim(value);
    if value.starts_with(b"W/") {
        false
    } else if value.starts_with(b"\"") {
        value == etag.as_bytes()
    } else {
        http_date(value) == Some(modified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"64-abc\"";
    /// Sun, 06 Nov 1994 08:49:37 GMT
    const MODIFIED: u64 = 784_111_777;

    #[test]
    fn conditionals() {
        use Answer::*;
        let full_range = Partial { first: 0, last: 9 };
        type Row = (
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Answer,
        );
        // (If-None-Match, If-Modified-Since, Range, If-Range, answer)
        let table: &[Row] = &[
            (None, None, None, None, Full),
            (Some("\"64-abc\""), None, None, None, NotModified),
            (Some("W/\"64-abc\""), None, None, None, NotModified),
            (Some("*"), None, None, None, NotModified),
            (Some(" \"x\", \"64-abc\" "), None, None, None, NotModified),
            (
                Some("\"x\",W/\"y\" ,  \"64-abc\""),
                None,
                None,
                None,
                NotModified,
            ),
            (Some("\"a,b\", \"64-abc\""), None, None, None, NotModified),
            (Some("\"64-abd\""), None, None, None, Full),
            (Some("\"64-abc"), None, None, None, Full),
            (Some("64-abc"), None, None, None, Full),
            (Some(""), None, None, None, Full),
            // If-None-Match wins over If-Modified-Since, either way.
            (
                Some("\"x\""),
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                None,
                None,
                Full,
            ),
            (
                Some("\"64-abc\""),
                Some("Sun, 06 Nov 1994 08:49:36 GMT"),
                None,
                None,
                NotModified,
            ),
            (
                None,
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                None,
                None,
                NotModified,
            ),
            (
                None,
                Some("Mon, 07 Nov 1994 00:00:00 GMT"),
                None,
                None,
                NotModified,
            ),
            (
                None,
                Some("Sunday, 06-Nov-94 08:49:37 GMT"),
                None,
                None,
                NotModified,
            ),
            (
                None,
                Some("Sun, 06 Nov 1994 08:49:36 GMT"),
                None,
                None,
                Full,
            ),
            (None, Some("yesterday"), None, None, Full),
            // Range, with and without If-Range.
            (None, None, Some("bytes=0-9"), None, full_range),
            (None, None, Some("bytes=500-"), None, Unsatisfiable),
            (None, None, Some("bytes=0-1,5-6"), None, Full),
            (
                None,
                None,
                Some("bytes=0-9"),
                Some("\"64-abc\""),
                full_range,
            ),
            (None, None, Some("bytes=0-9"), Some("\"old\""), Full),
            (None, None, Some("bytes=0-9"), Some("W/\"64-abc\""), Full),
            (
                None,
                None,
                Some("bytes=0-9"),
                Some("Sun, 06 Nov 1994 08:49:37 GMT"),
                full_range,
            ),
            (
                None,
                None,
                Some("bytes=0-9"),
                Some("Sun, 06 Nov 1994 08:49:38 GMT"),
                Full,
            ),
            (None, None, Some("bytes=500-"), Some("\"old\""), Full),
            // 304 comes before the range.
            (
                Some("\"64-abc\""),
                None,
                Some("bytes=0-9"),
                None,
                NotModified,
            ),
            (Some("\"x\""), None, Some("bytes=0-9"), None, full_range),
        ];
        for &(inm, ims, range, if_range, want) in table {
            let conditions = Conditions {
                if_none_match: inm.map(str::as_bytes),
                if_modified_since: ims.map(str::as_bytes),
                range: range.map(str::as_bytes),
                if_range: if_range.map(str::as_bytes),
            };
            assert_eq!(
                conditions.answer(ETAG, MODIFIED, 100),
                want,
                "If-None-Match {inm:?}, If-Modified-Since {ims:?}, Range {range:?}, If-Range {if_range:?}"
            );
        }
    }
}
