//! Property tests of request framing: a stream of valid requests (every
//! method, varied targets and headers, Content-Length and chunked bodies
//! with random chunk sizes, extensions and trailers, header values with
//! obs-text), cut at arbitrary
//! points and fed piece by piece as a connection would receive it, frames
//! into exactly the requests parsing the whole stream gives, which are
//! exactly the requests generated; and no input, however hostile, makes
//! [`parse`] panic.

use http::parse::{parse, Limits, Parsed, MAX_HEADERS};
use proptest::collection::vec;
use proptest::prelude::*;

/// What a framed request is judged by.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Framed {
    method: String,
    target: String,
    version: u8,
    body: Vec<u8>,
    keep_alive: bool,
}

#[derive(Clone, Debug)]
enum Body {
    None,
    Length(Vec<u8>),
    /// The body, the chunk sizes it is cut into (cycled, never 0), and
    /// whether to add a chunk extension and a trailer.
    Chunked(Vec<u8>, Vec<usize>, bool),
}

#[derive(Clone, Debug)]
struct Generated {
    method: &'static str,
    target: String,
    version: u8,
    /// `Connection` header value, if any.
    connection: Option<&'static str>,
    headers: Vec<(String, Vec<u8>)>,
    body: Body,
    /// Spell framing header names in lower case.
    lower: bool,
}

impl Generated {
    fn encode(&self, out: &mut Vec<u8>) {
        let name = |n: &str| {
            if self.lower {
                n.to_ascii_lowercase()
            } else {
                n.to_string()
            }
        };
        out.extend_from_slice(
            format!(
                "{} {} HTTP/1.{}\r\n",
                self.method, self.target, self.version
            )
            .as_bytes(),
        );
        if self.version == 1 {
            out.extend_from_slice(format!("{}: example.test\r\n", name("Host")).as_bytes());
        }
        for (n, v) in &self.headers {
            out.extend_from_slice(format!("{n}: ").as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(c) = self.connection {
            out.extend_from_slice(format!("{}: {c}\r\n", name("Connection")).as_bytes());
        }
        match &self.body {
            Body::None => out.extend_from_slice(b"\r\n"),
            Body::Length(body) => {
                out.extend_from_slice(
                    format!("{}: {}\r\n\r\n", name("Content-Length"), body.len()).as_bytes(),
                );
                out.extend_from_slice(body);
            }
            Body::Chunked(body, sizes, extras) => {
                out.extend_from_slice(
                    format!("{}: chunked\r\n\r\n", name("Transfer-Encoding")).as_bytes(),
                );
                let mut rest = &body[..];
                for &size in sizes.iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (chunk, after) = rest.split_at(size.min(rest.len()));
                    let ext = if *extras { ";ext=\"v\"" } else { "" };
                    out.extend_from_slice(format!("{:X}{ext}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                    rest = after;
                }
                out.extend_from_slice(b"0\r\n");
                if *extras {
                    out.extend_from_slice(b"X-Checksum: 1234\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn expected(&self) -> Framed {
        let body = match &self.body {
            Body::None => Vec::new(),
            Body::Length(b) | Body::Chunked(b, _, _) => b.clone(),
        };
        let keep_alive = match (self.version, self.connection) {
            (_, Some("close")) => false,
            (1, _) => true,
            (_, c) => c == Some("keep-alive"),
        };
        Framed {
            method: self.method.to_string(),
            target: self.target.clone(),
            version: self.version,
            body,
            keep_alive,
        }
    }
}

/// Header names that do not change framing.
fn plain_header_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,15}".prop_filter("framing headers are generated apart", |n| {
        ![
            "host",
            "content-length",
            "transfer-encoding",
            "connection",
            "expect",
        ]
        .contains(&n.to_ascii_lowercase().as_str())
    })
}

/// A header value: visible ASCII and obs-text (bytes 0x80-0xFF, mostly
/// not UTF-8), with spaces and tabs inside but not at the ends, which
/// httparse trims.
fn header_value() -> impl Strategy<Value = Vec<u8>> {
    let visible = || prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff];
    let inner = prop_oneof![visible(), Just(b' '), Just(b'\t')];
    (visible(), vec(inner, 0..30), prop::option::of(visible())).prop_map(
        |(first, mut middle, last)| {
            middle.insert(0, first);
            match last {
                Some(last) => middle.push(last),
                None => middle.truncate(1),
            }
            middle
        },
    )
}

fn request() -> impl Strategy<Value = Generated> {
    let method = prop::sample::select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
    ]);
    let target = "/[a-zA-Z0-9/._~-]{0,40}(\\?[a-z0-9=&%]{0,20})?";
    let headers = vec((plain_header_name(), header_value()), 0..6);
    let connection = prop::option::of(prop::sample::select(vec!["close", "keep-alive"]));
    let bytes = vec(any::<u8>(), 0..300);
    let body = prop_oneof![
        Just(Body::None),
        bytes.clone().prop_map(Body::Length),
        (bytes, vec(1usize..80, 1..6), any::<bool>())
            .prop_map(|(b, sizes, extras)| Body::Chunked(b, sizes, extras)),
    ];
    (
        method,
        target,
        0u8..=1,
        connection,
        headers,
        body,
        any::<bool>(),
    )
        .prop_map(
            |(method, target, version, connection, headers, body, lower)| {
                // Chunked framing is HTTP/1.1's.
                let version = if matches!(body, Body::Chunked(..)) {
                    1
                } else {
                    version
                };
                Generated {
                    method,
                    target,
                    version,
                    connection,
                    headers,
                    body,
                    lower,
                }
            },
        )
}

/// A stream of requests, what it should frame into, and cut points.
fn stream() -> impl Strategy<Value = (Vec<u8>, Vec<Framed>, Vec<usize>)> {
    vec(request(), 1..8).prop_flat_map(|requests| {
        let mut bytes = Vec::new();
        for r in &requests {
            r.encode(&mut bytes);
        }
        let expected: Vec<Framed> = requests.iter().map(Generated::expected).collect();
        let len = bytes.len();
        (
            Just(bytes),
            Just(expected),
            vec(0..=len, 0..24).prop_map(|mut cuts| {
                cuts.sort_unstable();
                cuts
            }),
        )
    })
}

/// Frames every complete request at the front of `buf` and drains it, as
/// a connection does with its input. A refusal fails the property.
fn drain(buf: &mut Vec<u8>, out: &mut Vec<Framed>) -> Result<(), TestCaseError> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let used = match parse(buf, &mut headers, &Limits::default()) {
            Ok(Parsed::Complete(r, used)) => {
                prop_assert!(
                    used > 0 && used <= buf.len(),
                    "used {used} of {}",
                    buf.len()
                );
                out.push(Framed {
                    method: r.method.as_str().to_string(),
                    target: r.target.to_string(),
                    version: r.version,
                    body: r.body.to_vec(),
                    keep_alive: r.keep_alive,
                });
                used
            }
            Ok(Parsed::Partial { .. }) => return Ok(()),
            Err(refusal) => {
                return Err(TestCaseError::fail(format!(
                    "refused {refusal:?} at {:?}",
                    String::from_utf8_lossy(&buf[..buf.len().min(200)])
                )))
            }
        };
        buf.drain(..used);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whole or in arbitrary pieces, the stream frames into the generated
    /// requests, in order, with nothing left over.
    #[test]
    fn arbitrary_splits_frame_the_same_requests((bytes, expected, cuts) in stream()) {
        let mut whole = Vec::new();
        let mut buf = bytes.clone();
        drain(&mut buf, &mut whole)?;
        prop_assert!(buf.is_empty(), "{} bytes left whole", buf.len());
        prop_assert_eq!(&whole, &expected);

        let mut pieces = Vec::new();
        let mut buf = Vec::new();
        let mut from = 0;
        for &cut in cuts.iter().chain([bytes.len()].iter()) {
            buf.extend_from_slice(&bytes[from..cut]);
            from = cut;
            drain(&mut buf, &mut pieces)?;
        }
        prop_assert!(buf.is_empty(), "{} bytes left in pieces", buf.len());
        prop_assert_eq!(&pieces, &expected);
    }

    /// Fed one byte at a time, the worst split of all, the stream still
    /// frames the same.
    #[test]
    fn byte_by_byte_frames_the_same_requests((bytes, expected, _) in stream()) {
        let mut framed = Vec::new();
        let mut buf = Vec::new();
        for &b in &bytes {
            buf.push(b);
            drain(&mut buf, &mut framed)?;
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(framed, expected);
    }

    /// Arbitrary bytes are framed, waited on or refused; never a panic,
    /// never more bytes used than given.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..4096)) {
        check_no_panic(&bytes)?;
    }

    /// Valid streams with a few bytes changed reach deeper (heads that
    /// almost parse, chunk sizes off by a digit): still no panic.
    #[test]
    fn mutated_requests_never_panic(
        (bytes, _, _) in stream(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut bytes = bytes;
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        check_no_panic(&bytes)?;
    }
}

/// Parses `bytes` the way a connection would, request after request, with
/// small limits too, so every refusal path is reachable.
fn check_no_panic(bytes: &[u8]) -> Result<(), TestCaseError> {
    let small = Limits {
        max_head: 200,
        max_uri: 20,
        max_body: 50,
    };
    for limits in [Limits::default(), small] {
        let mut at = 0;
        while at < bytes.len() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            match parse(&bytes[at..], &mut headers, &limits) {
                Ok(Parsed::Complete(_, used)) => {
                    prop_assert!(used > 0 && used <= bytes.len() - at);
                    at += used;
                }
                Ok(Parsed::Partial { .. }) => break,
                Err(refusal) => {
                    prop_assert!((400..600).contains(&refusal.status));
                    break;
                }
            }
        }
    }
    Ok(())
}
