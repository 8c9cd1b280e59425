//! Tests of [`super::parse_request`] (every refusal of the server holds,
//! bodies of any size) and [`super::write_upstream_request`] (each
//! rewriting rule).

use proptest::prelude::*;

use super::*;
use crate::parse::{parse, Parsed};

fn head(wire: &[u8]) -> RequestHead {
    match parse_request(wire, &Limits::default()) {
        Ok(Some(head)) => head,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(wire)),
    }
}

/// The upstream head for `wire` from a client at 192.0.2.7 over http.
fn upstream(wire: &[u8]) -> String {
    upstream_from(wire, "192.0.2.7")
}

fn upstream_from(wire: &[u8], client: &str) -> String {
    let head = head(wire);
    let fwd = Forwarded {
        client: client.parse().unwrap(),
        proto: "http",
    };
    let mut out = Vec::new();
    write_upstream_request(wire, &head, &fwd, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// What the proxy appends to every request from 192.0.2.7.
const ADDED: &str = "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nVia: 1.1 tenk\r\n";

#[test]
fn heads_are_framed() {
    let get = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        head(get),
        RequestHead {
            head_len: get.len(),
            method: "GET".into(),
            target: "/a?b=1".into(),
            version: 1,
            body: Framing::None,
            keep_alive: true,
            expect_continue: false,
            idempotent: true,
            is_head: false,
            upgrade: false,
        }
    );
    let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    let post = head(post);
    assert_eq!(
        (post.body, post.expect_continue, post.idempotent),
        (Framing::Length(5), true, false)
    );
    let zero = head(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(zero.body, Framing::Length(0));
    assert!(!zero.body.has_body());
    let chunked = head(b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!((chunked.body, chunked.idempotent), (Framing::Chunked, true));
    let head_request = head(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(head_request.is_head && head_request.idempotent && !head_request.keep_alive);
    let http10 = head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nExpect: 100-continue\r\n\r\n");
    assert_eq!(
        (http10.version, http10.keep_alive, http10.expect_continue),
        (0, true, false)
    );
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    let upgrade =
        head(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert!(upgrade.upgrade);
    for method in ["OPTIONS", "TRACE", "DELETE"] {
        let wire = format!("{method} / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(head(wire.as_bytes()).idempotent, "{method}");
    }
    // Any method is forwarded: the upstream judges it.
    let brew = head(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((brew.method.as_str(), brew.idempotent), ("BREW", false));
}

#[test]
fn bodies_of_any_size_are_the_decoders() {
    // Over the server's max_body (1 MiB) and with no byte of it here.
    let big = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10737418240\r\n\r\n";
    assert_eq!(head(big).body, Framing::Length(10 << 30));
    let with_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET";
    assert_eq!(head(with_body).head_len, with_body.len() - 6);
}

#[test]
fn incomplete_heads_wait() {
    for wire in [
        &b""[..],
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n\r",
    ] {
        assert_eq!(parse_request(wire, &Limits::default()), Ok(None));
    }
}

/// Regression guard for issue 17: the refusals of `tenk serve http`,
/// smuggling ones first, hold before a byte reaches an upstream, with
/// the server's status.
#[test]
fn ambiguous_and_bad_requests_are_refused() {
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(5000));
    let big_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    let many = format!(
        "GET / HTTP/1.1\r\nHost: x\r\n{}\r\n",
        "X-A: 1\r\n".repeat(MAX_HEADERS + 1)
    );
    let cases: Vec<(&[u8], u16)> = vec![
        // CL.TE and TE.CL.
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        // Content-Length: differing, a list, signed, hex, spaced, obs-text.
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5 5\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \xa05\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\x0b5\r\n\r\n", 400),
        // Transfer-Encoding: unknown, listed, repeated, obfuscated.
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\xc3\xa9d\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0bchunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\x0cchunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nX: y\r\n\tchunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\n Transfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\rX: y\r\n\r\n", 400),
        // Host: none in 1.1, two, not ASCII.
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: \xff\r\n\r\n", 400),
        // The other framing headers: ASCII tokens.
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\x85\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\xff\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417),
        // Lines and sizes.
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\nHost: x\r\n\rX\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (long_uri.as_bytes(), 414),
        (&long_uri.as_bytes()[..4500], 414),
        (big_head.as_bytes(), 431),
        (&big_head.as_bytes()[..8500], 431),
        (many.as_bytes(), 431),
        // A reverse proxy is no tunnel.
        (b"CONNECT example.test:443 HTTP/1.1\r\nHost: example.test:443\r\n\r\n", 501),
    ];
    for (wire, status) in cases {
        let what = String::from_utf8_lossy(&wire[..wire.len().min(100)]);
        assert_eq!(
            parse_request(wire, &Limits::default())
                .map_err(|r| r.status)
                .map(|_| ()),
            Err(status),
            "{what:?}"
        );
        // One implementation: the server refuses it alike (but for the
        // method it has no 501 for).
        if !wire.starts_with(b"CONNECT") {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let server = parse(wire, &mut headers, &Limits::default());
            assert_eq!(
                server.map(|_| ()).map_err(|r| r.status),
                Err(status),
                "{what:?}"
            );
        }
    }
}

/// Whitespace a parser may read two ways is refused above; this one is
/// OWS by RFC 9110 section 5.6.3, read alike by every parser, and the
/// body is re-framed anyway: chunked, as the server takes it.
#[test]
fn a_tab_before_chunked_is_ows() {
    let wire = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \tchunked\t\r\n\r\n";
    assert_eq!(head(wire).body, Framing::Chunked);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let server = parse(wire, &mut headers, &Limits::default());
    assert!(matches!(
        server,
        Ok(Parsed::Partial {
            head_complete: true,
            ..
        })
    ));
}

#[test]
fn http10_chunked_closes_after() {
    let wire = b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n";
    let head = head(wire);
    assert_eq!((head.body, head.keep_alive), (Framing::Chunked, false));
}

#[test]
fn the_request_line_is_kept_as_http11() {
    assert_eq!(
        upstream(b"GET http://app.test/a?b=%20 HTTP/1.1\r\nHost: app.test\r\n\r\n"),
        format!("GET http://app.test/a?b=%20 HTTP/1.1\r\nHost: app.test\r\n{ADDED}\r\n")
    );
    assert_eq!(
        upstream(b"\r\nOPTIONS * HTTP/1.0\r\nHost: app\r\n\r\n"),
        "OPTIONS * HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 192.0.2.7\r\n\
         X-Forwarded-Proto: http\r\nVia: 1.0 tenk\r\n\r\n"
    );
}

#[test]
fn host_and_other_headers_pass_unchanged_in_order() {
    let wire = b"GET / HTTP/1.1\r\nuser-agent: t\r\nhOsT: App.Test:8080\r\nX-Obs: caf\xe9 \x80\xff\r\nX-Utf8: caf\xc3\xa9\r\nAccept: */*\r\n\r\n";
    let out = upstream(wire);
    let head = head(wire);
    let fwd = Forwarded {
        client: "192.0.2.7".parse().unwrap(),
        proto: "http",
    };
    let mut bytes = Vec::new();
    write_upstream_request(wire, &head, &fwd, &mut bytes);
    assert_eq!(
        bytes,
        [
            &b"GET / HTTP/1.1\r\nuser-agent: t\r\nhOsT: App.Test:8080\r\nX-Obs: caf\xe9 \x80\xff\r\nX-Utf8: caf\xc3\xa9\r\nAccept: */*\r\n"[..],
            ADDED.as_bytes(),
            b"\r\n"
        ]
        .concat(),
        "{out:?}"
    );
}

#[test]
fn an_http10_request_without_host_gets_an_empty_one() {
    assert_eq!(
        upstream(b"GET / HTTP/1.0\r\n\r\n"),
        "GET / HTTP/1.1\r\nHost: \r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nVia: 1.0 tenk\r\n\r\n"
    );
}

#[test]
fn fixed_hop_by_hop_headers_are_dropped() {
    for name in super::super::hop_by_hop::FIXED {
        // Transfer-Encoding frames the body: it is re-stated.
        let (framing, restated) = if name == "transfer-encoding" {
            ("chunked", "Transfer-Encoding: chunked\r\n")
        } else {
            ("x", "")
        };
        let value = if name == "connection" {
            "close"
        } else {
            framing
        };
        let wire = format!("POST / HTTP/1.1\r\nHost: x\r\n{name}: {value}\r\nX-Kept: 1\r\n\r\n");
        let expected = format!("POST / HTTP/1.1\r\nHost: x\r\nX-Kept: 1\r\n{ADDED}{restated}\r\n");
        assert_eq!(upstream(wire.as_bytes()), expected, "{name}");
        let shouted = wire.replace(name, &name.to_ascii_uppercase());
        assert_eq!(upstream(shouted.as_bytes()), expected, "{name} in capitals");
    }
}

#[test]
fn headers_named_by_connection_are_dropped() {
    let wire = b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\nConnection: keep-alive , X-A,\tx-b\r\nX-B: 2\r\nConnection: X-C\r\nX-C: 3\r\nX-D: 4\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!("GET / HTTP/1.1\r\nHost: x\r\nX-D: 4\r\n{ADDED}\r\n")
    );
    // Not Host: it passes unchanged whatever Connection says.
    let wire = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: host\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{ADDED}\r\n")
    );
    // Nor what the proxy adds itself.
    let wire = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: via, x-forwarded-for, x-forwarded-proto\r\nVia: 1.1 a\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{ADDED}\r\n")
    );
}

#[test]
fn x_forwarded_for_is_appended_to() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"X-Forwarded-For: 203.0.113.1\r\n",
            "203.0.113.1, 192.0.2.7",
        ),
        (
            b"X-Forwarded-For: 203.0.113.1, 198.51.100.2\r\n",
            "203.0.113.1, 198.51.100.2, 192.0.2.7",
        ),
        // Several headers are one list (RFC 9110 section 5.3), in order.
        (
            b"x-forwarded-for: 203.0.113.1\r\nX-Other: o\r\nX-FORWARDED-FOR: 198.51.100.2\r\n",
            "203.0.113.1, 198.51.100.2, 192.0.2.7",
        ),
        (b"X-Forwarded-For:\r\n", "192.0.2.7"),
        (
            b"X-Forwarded-For: unknown, \xff\r\n",
            "unknown, \u{fffd}, 192.0.2.7",
        ),
    ];
    for &(headers, chain) in cases {
        let wire = [&b"GET / HTTP/1.1\r\nHost: x\r\n"[..], headers, b"\r\n"].concat();
        let out = upstream(&wire);
        let other = if headers.windows(7).any(|w| w == b"X-Other") {
            "X-Other: o\r\n"
        } else {
            ""
        };
        assert_eq!(
            out,
            format!("GET / HTTP/1.1\r\nHost: x\r\n{other}X-Forwarded-For: {chain}\r\nX-Forwarded-Proto: http\r\nVia: 1.1 tenk\r\n\r\n"),
        );
    }
}

#[test]
fn the_client_address_is_written_plainly() {
    for (client, written) in [
        ("2001:db8::1", "2001:db8::1"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("127.0.0.1", "127.0.0.1"),
    ] {
        let out = upstream_from(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", client);
        assert!(
            out.contains(&format!("\r\nX-Forwarded-For: {written}\r\n")),
            "{out:?}"
        );
    }
}

#[test]
fn x_forwarded_proto_is_the_proxys() {
    let wire = b"GET / HTTP/1.1\r\nX-Forwarded-Proto: https\r\nHost: x\r\nx-forwarded-proto: https\r\n\r\n";
    let head = head(wire);
    let mut out = Vec::new();
    let fwd = Forwarded {
        client: "192.0.2.7".parse().unwrap(),
        proto: "https",
    };
    write_upstream_request(wire, &head, &fwd, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: https\r\nVia: 1.1 tenk\r\n\r\n"
    );
    let http = upstream(b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n");
    assert!(
        http.contains("\r\nX-Forwarded-Proto: http\r\n") && !http.contains("https"),
        "{http:?}"
    );
}

#[test]
fn via_is_appended_after_the_clients() {
    let wire = b"GET / HTTP/1.1\r\nVia: 1.1 edge\r\nHost: x\r\nvia: 1.0 old\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!("GET / HTTP/1.1\r\nVia: 1.1 edge\r\nHost: x\r\nvia: 1.0 old\r\n{ADDED}\r\n")
    );
}

#[test]
fn framing_is_restated() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"POST / HTTP/1.1\r\nHost: x\r\ncontent-length:  7 \r\n\r\n",
            "Content-Length: 7\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n",
            "Content-Length: 7\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n",
            "Content-Length: 7\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "Content-Length: 0\r\n",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\ntransfer-encoding: Chunked\r\n\r\n",
            "Transfer-Encoding: chunked\r\n",
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", ""),
    ];
    for &(wire, framing) in cases {
        assert_eq!(
            upstream(wire),
            format!("POST / HTTP/1.1\r\nHost: x\r\n{ADDED}{framing}\r\n"),
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn expect_100_continue_passes_only_when_honoured() {
    let wire = b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!(
            "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n{ADDED}Content-Length: 1\r\n\r\n"
        )
    );
    // An HTTP/1.0 client's is ignored: the upstream must not answer 100.
    let wire = b"PUT / HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
    assert_eq!(
        upstream(wire),
        "PUT / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nVia: 1.0 tenk\r\nContent-Length: 1\r\n\r\n"
    );
}

#[test]
fn a_head_from_other_bytes_writes_nothing_in_release() {
    let head = head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let result = std::panic::catch_unwind(|| {
        let mut out = Vec::new();
        let fwd = Forwarded {
            client: "192.0.2.7".parse().unwrap(),
            proto: "http",
        };
        write_upstream_request(b"GET / HTTP/1.1\r\n", &head, &fwd, &mut out);
        out
    });
    // Debug builds assert; release ones write nothing.
    assert_eq!(result.is_err(), cfg!(debug_assertions));
    if let Ok(out) = result {
        assert!(out.is_empty(), "{out:?}");
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_parse_request(wire in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_request(&wire, &Limits::default());
    }

    /// Random heads made of plausible pieces: whatever is framed can be
    /// written upstream, and what is written frames again, as HTTP/1.1
    /// with the same body framing.
    #[test]
    fn framed_heads_write_heads_that_frame(
        method in "(GET|POST|PUT|BREW)",
        lines in proptest::collection::vec(
            "(Host: x|Content-Length: [0-9]{1,3}|Transfer-Encoding: chunked|Connection: (close|keep-alive|x-a)|X-A: [ -~]{0,8}|X-Forwarded-For: [0-9.]{1,15}|Via: 1.1 [a-z]{1,5}|Expect: 100-continue)",
            0..6,
        ),
        version in 0u8..2,
    ) {
        let wire = format!("{method} / HTTP/1.{version}\r\n{}\r\n", lines.iter().map(|l| format!("{l}\r\n")).collect::<String>());
        if let Ok(Some(first)) = parse_request(wire.as_bytes(), &Limits::default()) {
            let fwd = Forwarded { client: "192.0.2.7".parse().unwrap(), proto: "http" };
            let mut out = Vec::new();
            write_upstream_request(wire.as_bytes(), &first, &fwd, &mut out);
            let again = parse_request(&out, &Limits::default());
            let Ok(Some(again)) = again else {
                return Err(TestCaseError::fail(format!("{:?} -> {again:?}", String::from_utf8_lossy(&out))));
            };
            prop_assert_eq!(again.head_len, out.len());
            prop_assert_eq!(again.version, 1);
            prop_assert_eq!(again.body, first.body);
            prop_assert!(again.keep_alive);
        }
    }
}

#[test]
fn only_a_connection_upgrade_get_asks_to_upgrade() {
    // (request, tunnelled)
    let cases: [(&[u8], bool); 10] = [
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, upgrade\r\nUpgrade: websocket\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: UPGRADE\r\n\r\n", true),
        // Upgrade without the Connection token was not meant for this hop.
        (b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n\r\n", false),
        // h2c, alone, listed or versioned: never tunnelled.
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket, H2C\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c/1\r\n\r\n", false),
        // HTTP/1.0 ignores Upgrade; a request with a body is no handshake.
        (b"GET / HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n", false),
        (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\nContent-Length: 2\r\n\r\n", false),
    ];
    for (wire, want) in cases {
        assert_eq!(
            head(wire).upgrade,
            want,
            "{}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn an_upgrade_keeps_upgrade_and_connection_upgrade_upstream() {
    let wire = b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade, X-Hop\r\nUpgrade: websocket\r\nX-Hop: 1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    assert_eq!(
        upstream(wire),
        format!(
            "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{ADDED}Connection: upgrade\r\n\r\n"
        )
    );
    // Not tunnelled: Upgrade is dropped as hop-by-hop, and so is what
    // Connection names (HTTP2-Settings).
    let h2c = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    assert_eq!(
        upstream(h2c),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{ADDED}\r\n")
    );
    let bare = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
    assert_eq!(
        upstream(bare),
        format!("GET / HTTP/1.1\r\nHost: x\r\n{ADDED}\r\n")
    );
}
