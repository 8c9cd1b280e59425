//! Table tests of [`super::parse`]: what is framed, what is refused with
//! which status, and `parse_uninit` agreeing with `parse`.

use super::*;

/// Method, target, body, keep-alive and bytes used of a request.
type Framed = (Method, String, Vec<u8>, bool, usize);

fn outcome(buf: &[u8]) -> Result<Option<Framed>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    framed(parse(buf, &mut headers, &Limits::default()))
}

fn framed(parsed: Result<Parsed<'_, '_>, Refusal>) -> Result<Option<Framed>, u16> {
    match parsed {
        Ok(Parsed::Complete(r, used)) => Ok(Some((
            r.method,
            r.target.to_string(),
            r.body.to_vec(),
            r.keep_alive,
            used,
        ))),
        Ok(Parsed::Partial { .. }) => Ok(None),
        Err(refusal) => Err(refusal.status),
    }
}

#[test]
fn good_requests() {
    let get = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_eq!(
        outcome(get),
        Ok(Some((
            Method::Get,
            "/a?b=1".into(),
            vec![],
            true,
            get.len()
        )))
    );
    let post = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET";
    assert_eq!(
        outcome(post),
        Ok(Some((
            Method::Post,
            "/echo".into(),
            b"hello".to_vec(),
            true,
            post.len() - 3
        )))
    );
    let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
    assert_eq!(
        outcome(chunked),
        Ok(Some((
            Method::Post,
            "/".into(),
            b"hello world".to_vec(),
            true,
            chunked.len()
        )))
    );
    let http10 = b"GET / HTTP/1.0\r\n\r\n";
    assert!(!outcome(http10).unwrap().unwrap().3, "1.0 closes");
    let http10_ka = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    assert!(outcome(http10_ka).unwrap().unwrap().3);
    let close = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(!outcome(close).unwrap().unwrap().3);
}

#[test]
fn bad_requests_get_their_status() {
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
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\naXX", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 413),
        (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 417),
        (long_uri.as_bytes(), 414),
        (&long_uri.as_bytes()[..4500], 414),
        (big_head.as_bytes(), 431),
        (&big_head.as_bytes()[..8500], 431),
        (many.as_bytes(), 431),
        // Host is a URI host: ASCII only, IDNs as punycode.
        (b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9.example\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: caf\xe9.example\r\n\r\n", 400),
        (b"GET / HTTP/1.0\r\nHost: \xff\r\n\r\n", 400),
        // Framing headers stay strict: obs-text is no digit or token.
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\x85\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \xa05\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\xa0\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunk\xc3\xa9d\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\x85\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\xff\r\n\r\n", 400),
    ];
    for (buf, status) in cases {
        assert_eq!(
            outcome(buf).map(|_| ()),
            Err(status),
            "{:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(120)])
        );
    }
}

#[test]
fn incomplete_requests_wait() {
    for buf in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    ] {
        assert_eq!(outcome(buf), Ok(None), "{:?}", String::from_utf8_lossy(buf));
    }
}

/// Regression (issue 14, part 3): a header value with obs-text (bytes
/// 0x80-0xFF that are not UTF-8, RFC 9110 section 5.5) made the whole
/// request a 400, whatever the header's name. Values of headers that
/// do not frame the request are opaque bytes, kept as sent; names may
/// hold `-`, `_`, `.` and digits; the body beside them is framed by
/// Content-Length or chunked coding as ever.
#[test]
fn regression_obs_text_in_header_values_is_accepted() {
    const ISSUE: &[u8] = b"My-Custom-Header-0987654321: \t\t\tCustom-Value;\x60\x85\x93\xA0\r\n";
    let head = |line: &[u8], rest: &[u8]| [line, b"Host: x\r\n", ISSUE, rest].concat();
    // Request, body, keep-alive, bytes used (all of it).
    let cases: Vec<(Vec<u8>, &[u8], bool)> = vec![
        (head(b"GET / HTTP/1.1\r\n", b"\r\n"), b"", true),
        (
            head(
                b"GET / HTTP/1.1\r\n",
                b"x_trace.id-7: \xff\r\n0.9_a-b: \x80 \xfe\r\nX-Utf8: caf\xc3\xa9\r\n\r\n",
            ),
            b"",
            true,
        ),
        (
            head(b"POST /e HTTP/1.1\r\n", b"Content-Length: 5\r\n\r\nhello"),
            b"hello",
            true,
        ),
        (
            head(
                b"POST /e HTTP/1.1\r\n",
                b"Transfer-Encoding: chunked\r\nX-After: \xe9t\xe9\r\n\r\n5\r\nhello\r\n6;ext=\"v\"\r\n world\r\n0\r\nX-T: \x85\r\n\r\n",
            ),
            b"hello world",
            true,
        ),
        (
            head(b"GET / HTTP/1.0\r\n", b"Connection: keep-alive\r\n\r\n"),
            b"",
            true,
        ),
        (head(b"GET / HTTP/1.1\r\n", b"Connection: close\r\n\r\n"), b"", false),
    ];
    for (buf, body, keep_alive) in &cases {
        let what = String::from_utf8_lossy(buf);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete(request, used)) = parse(buf, &mut headers, &Limits::default())
        else {
            panic!("not framed: {what:?}");
        };
        assert_eq!(
            (&request.body[..], request.keep_alive),
            (*body, *keep_alive),
            "{what:?}"
        );
        assert_eq!(used, buf.len(), "{what:?}");
        // httparse drops the tabs before a value, nothing else.
        let value = b"Custom-Value;\x60\x85\x93\xA0";
        assert_eq!(
            request.header("my-custom-header-0987654321"),
            Some(&value[..])
        );
        assert_eq!(request.header_str("My-Custom-Header-0987654321"), None);
        assert_eq!(
            request
                .header_lossy("My-Custom-Header-0987654321")
                .as_deref(),
            Some("Custom-Value;`\u{FFFD}\u{FFFD}\u{FFFD}")
        );
        assert_eq!(outcome_uninit(buf), outcome(buf), "{what:?}");
    }
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let Ok(Parsed::Complete(request, _)) = parse(&cases[1].0, &mut headers, &Limits::default())
    else {
        panic!("not framed");
    };
    assert_eq!(request.header("X_TRACE.ID-7"), Some(&b"\xff"[..]));
    assert_eq!(request.header("0.9_a-b"), Some(&b"\x80 \xfe"[..]));
    assert_eq!(request.header_str("x-utf8"), Some("caf\u{e9}"));
    assert!(matches!(
        request.header_lossy("x-utf8"),
        Some(Cow::Borrowed("caf\u{e9}"))
    ));
    assert_eq!(request.header_str("missing"), None);
}

/// Regression: an HTTP/1.0 request with `Expect: 100-continue` was
/// sent `HTTP/1.1 100 Continue`, which RFC 9110 section 10.1.1 forbids
/// (the server must ignore the expectation); a 1.0 client can take the
/// interim response for the final one.
#[test]
fn regression_http10_expect_continue_is_ignored() {
    let head = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(matches!(
        parse(head, &mut headers, &Limits::default()),
        Ok(Parsed::Partial {
            head_complete: true,
            continue_expected: false
        })
    ));
}

/// Regression: an absolute-form target (`GET http://host/health`),
/// which servers must accept (RFC 9112 section 3.2.2), had the whole
/// URL as its path, so no route matched it.
#[test]
fn regression_absolute_form_target_has_its_path() {
    for (target, path) in [
        ("/a/b?c=d", "/a/b"),
        ("*", "*"),
        ("http://example.test/health?x=1", "/health"),
        ("HTTPS://example.test:8443/a", "/a"),
        ("http://example.test", "/"),
        ("http://example.test?q", "/"),
    ] {
        let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let Ok(Parsed::Complete(r, _)) =
            parse(request.as_bytes(), &mut headers, &Limits::default())
        else {
            panic!("{target} not framed");
        };
        assert_eq!(r.target, target);
        assert_eq!(r.path(), path, "{target}");
    }
}

fn outcome_uninit(buf: &[u8]) -> Result<Option<Framed>, u16> {
    let mut headers = [MaybeUninit::uninit(); MAX_HEADERS];
    framed(parse_uninit(buf, &mut headers, &Limits::default()))
}

/// The server's `parse_uninit` and `parse` frame alike, including the
/// corners of their shortcuts: the 414 check on a complete head (empty
/// lines before the request line), header values (opaque bytes, ASCII
/// only in Host and the framing headers).
#[test]
fn parse_uninit_frames_as_parse_does() {
    let long = "a".repeat(5000);
    let corpus: Vec<Vec<u8>> = vec![
        b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nhOsT: x\r\nX-A: caf\xc3\xa9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: \xff\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: \xff\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, CLOSE\r\n\r\n".to_vec(),
        b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n".to_vec(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET".to_vec(),
        b"POST / HTTP/1.1\r\nHost: x\r\nCONTENT-LENGTH: 1\r\ncontent-length: 2\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            .to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        b"GARBAGE\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec(),
        format!("GET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        format!("GET /{long} HTTP/1.1\r\nHost").into_bytes(),
        format!("GET /{long} HTTP/1.1\r\nBad Header\r\n\r\n").into_bytes(),
        format!("\r\nGET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
        format!("\nGET /{long} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(),
    ];
    for buf in &corpus {
        assert_eq!(
            outcome_uninit(buf),
            outcome(buf),
            "{:?}",
            String::from_utf8_lossy(&buf[..buf.len().min(80)])
        );
    }
    let status = |buf: &[u8]| outcome_uninit(buf).map(|_| ());
    assert_eq!(status(&corpus[1]), Ok(()), "UTF-8 text is accepted");
    assert_eq!(status(&corpus[2]), Err(400), "UTF-8 in Host: 400");
    assert_eq!(status(&corpus[3]), Ok(()), "obs-text is accepted");
    assert_eq!(status(&corpus[4]), Err(400), "obs-text in Host: 400");
    assert_eq!(status(&corpus[5]), Err(400), "obs-text in Connection: 400");
    assert_eq!(status(&corpus[17]), Err(414));
}

#[test]
fn continue_is_expected_only_before_the_body() {
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(matches!(
        parse(head, &mut headers, &Limits::default()),
        Ok(Parsed::Partial {
            head_complete: true,
            continue_expected: true
        })
    ));
    let mut with_body = head.to_vec();
    with_body.push(b'a');
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    assert!(matches!(
        parse(&with_body, &mut headers, &Limits::default()),
        Ok(Parsed::Partial {
            head_complete: true,
            continue_expected: false
        })
    ));
}
