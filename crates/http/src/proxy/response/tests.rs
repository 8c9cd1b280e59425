//! Tests of [`super::parse_response`] (framing by RFC 9112 section 6.3,
//! what is malformed) and [`super::write_client_response`].

use proptest::prelude::*;

use super::*;

fn framed(wire: &[u8], request_is_head: bool) -> ResponseHead {
    match parse_response(wire, request_is_head) {
        Ok(Some(head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
    }
}

/// Body framing, keep-alive and interim of a response.
type Framed = (Framing, bool, bool);

/// [`Framed`] of the response to a GET (or a HEAD).
fn framing(wire: &[u8], request_is_head: bool) -> Framed {
    let head = framed(wire, request_is_head);
    (head.body, head.keep_alive, head.interim)
}

#[test]
fn responses_are_framed_by_rfc9112_6_3() {
    use Framing::*;
    let cases: &[(&[u8], bool, Framed)] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            false,
            (Length(5), true, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            (Length(0), true, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            (Chunked, true, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked \r\n\r\n",
            false,
            (Chunked, true, false),
        ),
        // Neither: until close, and the connection is done after.
        (
            b"HTTP/1.1 200 OK\r\n\r\nbody",
            false,
            (UntilClose, false, false),
        ),
        (
            b"HTTP/1.1 500 Oops\r\nConnection: keep-alive\r\n\r\n",
            false,
            (UntilClose, false, false),
        ),
        // HEAD, 1xx, 204, 304: no body, whatever the headers say.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
            true,
            (None, true, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            (None, true, false),
        ),
        (b"HTTP/1.1 200 OK\r\n\r\n", true, (None, true, false)),
        (
            b"HTTP/1.1 204 No Content\r\n\r\n",
            false,
            (None, true, false),
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n",
            false,
            (None, true, false),
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n",
            false,
            (None, true, false),
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            (None, true, false),
        ),
        (b"HTTP/1.1 100 Continue\r\n\r\n", false, (None, true, true)),
        (
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n",
            false,
            (None, true, true),
        ),
        (b"HTTP/1.1 199 Misc\r\n\r\n", true, (None, true, true)),
        // CL and TE: TE wins, and the connection is not reused.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            (Chunked, false, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
            (Chunked, false, false),
        ),
        (
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
            false,
            (None, false, false),
        ),
        // Persistence: Connection tokens, HTTP/1.0.
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            false,
            (Length(0), false, false),
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: x-a, CLOSE\r\nContent-Length: 0\r\n\r\n",
            false,
            (Length(0), false, false),
        ),
        (
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            (Length(0), false, false),
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
            false,
            (Length(0), true, false),
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n",
            false,
            (UntilClose, false, false),
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
            false,
            (Chunked, false, false),
        ),
        // Identical Content-Lengths are one.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n",
            false,
            (Length(2), true, false),
        ),
        // Other headers are opaque: obs-text passes.
        (
            b"HTTP/1.1 200 \xc4\x9eOK\r\nX-Obs: \xe9\xff\r\nContent-Length: 1\r\n\r\n",
            false,
            (Length(1), true, false),
        ),
    ];
    for &(wire, request_is_head, expected) in cases {
        assert_eq!(
            framing(wire, request_is_head),
            expected,
            "{:?} (HEAD: {request_is_head})",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn head_len_status_and_version() {
    let wire = b"\r\nHTTP/1.0 404 Not Found\r\nContent-Length: 3\r\n\r\nnop";
    let head = framed(wire, false);
    assert_eq!(
        (head.head_len, head.status, head.version),
        (wire.len() - 3, 404, 0)
    );
}

#[test]
fn incomplete_heads_wait() {
    for wire in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r",
    ] {
        assert_eq!(parse_response(wire, false), Ok(Option::None));
    }
}

#[test]
fn malformed_responses_are_refused() {
    let big = format!(
        "HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n",
        "a".repeat(MAX_RESPONSE_HEAD)
    );
    let many = format!(
        "HTTP/1.1 200 OK\r\n{}\r\n",
        "X-A: 1\r\n".repeat(MAX_RESPONSE_HEADERS + 1)
    );
    let cases: Vec<(&[u8], &str)> = vec![
        (b"NOT HTTP\r\n\r\n", "malformed response head"),
        (b"HTTP/2 200 OK\r\n\r\n", "malformed response head"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed response head"),
        (
            b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
            "malformed response head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
            "malformed response head",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
            "malformed response head",
        ),
        (b"HTTP/1.1 099 Low\r\n\r\n", "status below 100"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
            "101 Switching Protocols without an Upgrade",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n",
            "invalid Content-Length",
        ),
        // Invalid even where no body follows: the length is passed on.
        (
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1x\r\n\r\n",
            "invalid Content-Length",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "differing Content-Lengths",
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\xa0\r\n\r\n",
            "framing header value is not ASCII",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunk\xe9d\r\n\r\n",
            "framing header value is not ASCII",
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: close\xff\r\n\r\n",
            "framing header value is not ASCII",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            "unsupported Transfer-Encoding",
        ),
        (big.as_bytes(), "response head too large"),
        (
            &big.as_bytes()[..MAX_RESPONSE_HEAD + 1],
            "response head too large",
        ),
        (many.as_bytes(), "too many response headers"),
    ];
    for (wire, why) in cases {
        assert_eq!(
            parse_response(wire, false),
            Err(malformed(why)),
            "{:?}",
            String::from_utf8_lossy(&wire[..wire.len().min(100)])
        );
    }
}

/// The client's head for `wire` sent as `client_framing`.
fn client_head(
    wire: &[u8],
    request_is_head: bool,
    client_framing: Framing,
    client_version: u8,
    keep_alive: bool,
) -> String {
    let head = framed(wire, request_is_head);
    let mut out = Vec::new();
    write_client_response(
        wire,
        &head,
        client_framing,
        client_version,
        keep_alive,
        &mut out,
    );
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn hop_by_hop_headers_are_dropped_and_framing_restated() {
    let wire = b"HTTP/1.1 200 OK\r\nDate: d\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\nProxy-Authenticate: Basic\r\nUpgrade: h2c\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";
    assert_eq!(
        client_head(wire, false, Framing::Chunked, 1, true),
        "HTTP/1.1 200 OK\r\nDate: d\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVia: 1.1 tenk\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    // The same body to an HTTP/1.0 client: until close.
    assert_eq!(
        client_head(wire, false, Framing::UntilClose, 0, true),
        "HTTP/1.0 200 OK\r\nDate: d\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVia: 1.1 tenk\r\nConnection: close\r\n\r\n"
    );
    // Known in full (buffered, say): a length.
    assert_eq!(
        client_head(wire, false, Framing::Length(12), 1, true),
        "HTTP/1.1 200 OK\r\nDate: d\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nVia: 1.1 tenk\r\nContent-Length: 12\r\n\r\n"
    );
}

#[test]
fn via_is_appended_with_the_upstreams_version() {
    let wire = b"HTTP/1.0 200 OK\r\nVia: 1.1 inner\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(
        client_head(wire, false, Framing::Length(2), 1, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 inner\r\nVia: 1.0 tenk\r\nContent-Length: 2\r\n\r\n"
    );
}

#[test]
fn bodiless_responses_keep_their_length() {
    // HEAD and 304: the upstream's length tells the size not sent.
    let head_wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"e\"\r\n\r\n";
    assert_eq!(
        client_head(head_wire, true, Framing::None, 1, true),
        "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: \"e\"\r\nVia: 1.1 tenk\r\n\r\n"
    );
    let not_modified = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n";
    assert_eq!(
        client_head(not_modified, false, Framing::None, 1, false),
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\nVia: 1.1 tenk\r\nConnection: close\r\n\r\n"
    );
    // A 204 must not have one.
    let no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n";
    assert_eq!(
        client_head(no_content, false, Framing::None, 1, true),
        "HTTP/1.1 204 No Content\r\nVia: 1.1 tenk\r\n\r\n"
    );
}

#[test]
fn interim_responses_are_passed_bare() {
    let wire = b"HTTP/1.1 100 Continue\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        client_head(wire, false, Framing::None, 1, false),
        "HTTP/1.1 100 Continue\r\nVia: 1.1 tenk\r\n\r\n"
    );
    let hints = b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n";
    assert_eq!(
        client_head(hints, false, Framing::None, 1, true),
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nVia: 1.1 tenk\r\n\r\n"
    );
}

#[test]
fn persistence_is_stated_for_the_client() {
    let wire = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
    // The upstream's Connection is its own: the client's is the proxy's.
    assert_eq!(
        client_head(wire, false, Framing::Length(1), 1, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 tenk\r\nContent-Length: 1\r\n\r\n"
    );
    assert_eq!(
        client_head(wire, false, Framing::Length(1), 1, false),
        "HTTP/1.1 200 OK\r\nVia: 1.1 tenk\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"
    );
    assert_eq!(
        client_head(wire, false, Framing::Length(1), 0, true),
        "HTTP/1.0 200 OK\r\nVia: 1.1 tenk\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n"
    );
    assert_eq!(
        client_head(wire, false, Framing::Length(1), 0, false),
        "HTTP/1.0 200 OK\r\nVia: 1.1 tenk\r\nContent-Length: 1\r\nConnection: close\r\n\r\n"
    );
    let until_close = b"HTTP/1.1 200 OK\r\n\r\nbody";
    assert_eq!(
        client_head(until_close, false, Framing::UntilClose, 1, true),
        "HTTP/1.1 200 OK\r\nVia: 1.1 tenk\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn the_status_line_keeps_its_reason_as_sent() {
    let cases: &[(&[u8], &[u8])] = &[
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n",
        ),
        (
            b"HTTP/1.1 200 \xe9t\xe9 \tfine\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 200 \xe9t\xe9 \tfine\r\n",
        ),
        (
            b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 404\r\n",
        ),
        (
            b"HTTP/1.1 404 \r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 404\r\n",
        ),
        (
            b"\r\n\nHTTP/1.1 418 I'm a teapot\nContent-Length: 0\n\n",
            b"HTTP/1.1 418 I'm a teapot\r\n",
        ),
    ];
    for &(wire, line) in cases {
        let head = framed(wire, false);
        let mut out = Vec::new();
        write_client_response(wire, &head, Framing::Length(0), 1, true, &mut out);
        assert!(out.starts_with(line), "{:?}", String::from_utf8_lossy(&out));
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_parse_response(
        wire in proptest::collection::vec(any::<u8>(), 0..300),
        request_is_head in any::<bool>(),
    ) {
        if let Ok(Some(head)) = parse_response(&wire, request_is_head) {
            let mut out = Vec::new();
            write_client_response(&wire, &head, Framing::UntilClose, 1, true, &mut out);
            prop_assert!(out.ends_with(b"\r\n\r\n"));
        }
    }
}

#[test]
fn a_101_is_taken_only_as_the_answer_to_an_upgrade() {
    let wire = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\nframes";
    let head = parse_upgrade_response(wire).unwrap().unwrap();
    assert_eq!(
        (head.status, head.body, head.keep_alive, head.interim),
        (101, Framing::None, false, false)
    );
    assert_eq!(head.head_len, wire.len() - b"frames".len());
    let mut out = Vec::new();
    write_client_response(wire, &head, Framing::None, 1, true, &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nVia: 1.1 tenk\r\nConnection: upgrade\r\n\r\n"
    );
    // Unasked, it stays malformed; asked, it must name its protocol.
    assert!(parse_response(wire, false).is_err());
    assert_eq!(
        parse_upgrade_response(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        Err(Malformed {
            why: "101 Switching Protocols names no Upgrade"
        })
    );
    // Any other answer to an upgrade is an ordinary response.
    let refused = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
    assert_eq!(
        parse_upgrade_response(refused),
        parse_response(refused, false)
    );
    assert_eq!(
        framed(b"HTTP/1.1 100 Continue\r\n\r\n", false),
        parse_upgrade_response(b"HTTP/1.1 100 Continue\r\n\r\n")
            .unwrap()
            .unwrap()
    );
}
