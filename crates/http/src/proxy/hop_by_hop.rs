//! Which headers are hop-by-hop (RFC 9110 section 7.6.1): meant for the
//! one connection they arrived on, so a proxy drops them instead of
//! passing them on. They are the fixed [`FIXED`] list and every header a
//! `Connection` header names (`Connection: close, X-Trace` makes
//! `X-Trace` hop-by-hop), names compared case-insensitively.

use crate::ows;

/// Headers that are hop-by-hop whatever `Connection` says, lowercase:
/// those of RFC 9110 section 7.6.1 and the ones it names as obsolete or
/// connection-bound (`Proxy-Connection`, `Keep-Alive`, `TE`, `Upgrade`,
/// `Transfer-Encoding`, the proxy authentication pair), and `Trailer`,
/// since the proxy drops trailers: announcing ones that never come
/// would mislead.
pub const FIXED: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
];

/// The most headers [`HopByHop::of`] can mark; the proxy's heads hold
/// fewer ([`crate::parse::MAX_HEADERS`] and
/// [`MAX_RESPONSE_HEADERS`](super::MAX_RESPONSE_HEADERS)).
pub const MAX_MARKED: usize = 128;

/// Whether `name` is one of the [`FIXED`] hop-by-hop headers.
pub fn is_fixed(name: &str) -> bool {
    FIXED.iter().any(|fixed| name.eq_ignore_ascii_case(fixed))
}

/// The elements of a `Connection` value: comma separated, with optional
/// whitespace around them, empty ones skipped (RFC 9110 section 5.6.1).
pub fn connection_tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(ows::trim)
        .filter(|token| !token.is_empty())
}

/// The hop-by-hop headers of one head, by their index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopByHop(u128);

impl HopByHop {
    /// Marks the hop-by-hop headers among `headers`: the fixed ones and
    /// those a `Connection` header names, except `Host`: a proxy promises
    /// to pass it unchanged, and an upstream needs it, so
    /// `Connection: Host` cannot take it away. Headers past
    /// [`MAX_MARKED`] are never marked (the callers' heads are smaller).
    pub fn of(headers: &[httparse::Header<'_>]) -> HopByHop {
        debug_assert!(headers.len() <= MAX_MARKED);
        let mut marked = 0u128;
        for (i, header) in headers.iter().enumerate().take(MAX_MARKED) {
            if is_fixed(header.name) {
                marked |= 1 << i;
            }
            if !header.name.eq_ignore_ascii_case("connection") {
                continue;
            }
            for token in connection_tokens(header.value) {
                for (j, named) in headers.iter().enumerate().take(MAX_MARKED) {
                    if named.name.as_bytes().eq_ignore_ascii_case(token)
                        && !named.name.eq_ignore_ascii_case("host")
                    {
                        marked |= 1 << j;
                    }
                }
            }
        }
        HopByHop(marked)
    }

    /// Whether the header at `index` is hop-by-hop.
    pub fn contains(self, index: usize) -> bool {
        index < MAX_MARKED && self.0 & (1 << index) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(name: &'a str, value: &'a [u8]) -> httparse::Header<'a> {
        httparse::Header { name, value }
    }

    /// The names of `headers` that are hop-by-hop.
    fn marked<'a>(headers: &[httparse::Header<'a>]) -> Vec<&'a str> {
        let hop = HopByHop::of(headers);
        (0..headers.len())
            .filter(|&i| hop.contains(i))
            .map(|i| headers[i].name)
            .collect()
    }

    #[test]
    fn fixed_names_are_hop_by_hop_in_any_case() {
        for name in FIXED {
            let upper = name.to_ascii_uppercase();
            for name in [name, upper.as_str()] {
                assert!(is_fixed(name), "{name}");
                let headers = [header("Host", b"x"), header(name, b"v")];
                assert_eq!(marked(&headers), [name], "{name}");
            }
        }
        for end_to_end in [
            "host",
            "content-length",
            "x-forwarded-for",
            "via",
            "te-x",
            "t",
        ] {
            assert!(!is_fixed(end_to_end), "{end_to_end}");
        }
    }

    #[test]
    fn headers_named_by_connection_are_hop_by_hop() {
        let headers = [
            header("Host", b"x"),
            header("X-Trace", b"1"),
            header("Connection", b"close, x-trace"),
            header("X-Keep", b"2"),
            header("x-trace", b"3"),
        ];
        assert_eq!(marked(&headers), ["X-Trace", "Connection", "x-trace"]);
    }

    #[test]
    fn connection_lists_with_ows_and_empty_elements() {
        let headers = [
            header("Connection", b" ,\tA-One ,, \tB-Two\t, "),
            header("connection", b"C-Three"),
            header("a-one", b""),
            header("B-TWO", b""),
            header("c-three", b""),
            header("D-Four", b""),
        ];
        assert_eq!(
            marked(&headers),
            ["Connection", "connection", "a-one", "B-TWO", "c-three"]
        );
        let tokens: Vec<&[u8]> = connection_tokens(b" ,\tA-One ,, \tB-Two\t, ").collect();
        assert_eq!(tokens, [&b"A-One"[..], b"B-Two"]);
    }

    #[test]
    fn a_token_names_a_whole_name_only() {
        let headers = [
            header("Connection", b"x-a"),
            header("X-A-B", b""),
            header("X-", b""),
            header("X-A", b""),
        ];
        assert_eq!(marked(&headers), ["Connection", "X-A"]);
    }

    #[test]
    fn connection_cannot_name_host_away() {
        let headers = [header("Host", b"app"), header("Connection", b"host, HOST")];
        assert_eq!(marked(&headers), ["Connection"]);
    }

    #[test]
    fn no_connection_header_marks_only_fixed_ones() {
        let headers = [
            header("Host", b"x"),
            header("Keep-Alive", b"timeout=5"),
            header("X-A", b"1"),
        ];
        assert_eq!(marked(&headers), ["Keep-Alive"]);
        assert!(!HopByHop::of(&headers).contains(MAX_MARKED + 5));
    }
}
