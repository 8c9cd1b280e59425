use proptest::prelude::*;

use super::*;

fn addr(text: &str) -> Option<SocketAddr> {
    Some(text.parse().unwrap())
}

/// A v2 header: signature, `0x2_` with `command`, `family_transport`, the
/// payload's length, the payload.
fn v2_header(command: u8, family_transport: u8, payload: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family_transport);
    h.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// 192.0.2.1:56324 -> 198.51.100.2:443.
fn v4_block() -> Vec<u8> {
    let mut b = vec![192, 0, 2, 1, 198, 51, 100, 2];
    b.extend_from_slice(&56324u16.to_be_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    b
}

/// [2001:db8::1]:56324 -> [2001:db8::2]:443.
fn v6_block() -> Vec<u8> {
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let mut b = src.octets().to_vec();
    b.extend_from_slice(&dst.octets());
    b.extend_from_slice(&56324u16.to_be_bytes());
    b.extend_from_slice(&443u16.to_be_bytes());
    b
}

fn tlv(kind: u8, value: &[u8]) -> Vec<u8> {
    let mut t = vec![kind];
    t.extend_from_slice(&u16::try_from(value.len()).unwrap().to_be_bytes());
    t.extend_from_slice(value);
    t
}

fn with(mut a: Vec<u8>, b: &[u8]) -> Vec<u8> {
    a.extend_from_slice(b);
    a
}

/// Every valid header of the suite and the source it names.
fn valid() -> Vec<(&'static str, Vec<u8>, Option<SocketAddr>)> {
    let longest_v6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    vec![
        (
            "v1 TCP4",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n".to_vec(),
            addr("192.0.2.1:56324"),
        ),
        (
            "v1 TCP6",
            b"PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n".to_vec(),
            addr("[2001:db8::1]:56324"),
        ),
        (
            "v1 TCP6 longest",
            format!("PROXY TCP6 {longest_v6} {longest_v6} 65535 65535\r\n").into_bytes(),
            addr(&format!("[{longest_v6}]:65535")),
        ),
        (
            // The spec's worst case: 107 bytes.
            "v1 UNKNOWN longest",
            format!("PROXY UNKNOWN {longest_v6} {longest_v6} 65535 65535\r\n").into_bytes(),
            None,
        ),
        ("v1 UNKNOWN", b"PROXY UNKNOWN\r\n".to_vec(), None),
        (
            // What follows UNKNOWN is ignored (spec 2.1).
            "v1 UNKNOWN with addresses",
            b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n".to_vec(),
            None,
        ),
        (
            "v2 PROXY TCP4",
            v2_header(CMD_PROXY, 0x11, &v4_block()),
            addr("192.0.2.1:56324"),
        ),
        (
            "v2 PROXY TCP6",
            v2_header(CMD_PROXY, 0x21, &v6_block()),
            addr("[2001:db8::1]:56324"),
        ),
        (
            // As HAProxy's health checks send it.
            "v2 LOCAL",
            v2_header(CMD_LOCAL, 0x00, &[]),
            None,
        ),
        (
            // LOCAL discards its block whatever it holds.
            "v2 LOCAL with a block",
            v2_header(CMD_LOCAL, 0x11, &v4_block()),
            None,
        ),
        (
            "v2 PROXY TCP4 with TLVs",
            v2_header(
                CMD_PROXY,
                0x11,
                &[
                    v4_block(),
                    tlv(0x01, b"h2"),     // ALPN
                    tlv(0x05, b"id-42"),  // UNIQUE_ID
                    tlv(0x04, &[]),       // NOOP, empty
                    tlv(0x20, &[0; 300]), // SSL, a large one
                ]
                .concat(),
            ),
            addr("192.0.2.1:56324"),
        ),
        (
            "v2 PROXY TCP6 with a TLV",
            v2_header(CMD_PROXY, 0x21, &with(v6_block(), &tlv(0x04, b"pad"))),
            addr("[2001:db8::1]:56324"),
        ),
        ("v2 PROXY UNSPEC", v2_header(CMD_PROXY, 0x00, &[]), None),
        (
            "v2 PROXY UDP4 keeps the socket's address",
            v2_header(CMD_PROXY, 0x12, &v4_block()),
            None,
        ),
        (
            "v2 PROXY UNIX keeps the socket's address",
            v2_header(CMD_PROXY, 0x31, &[b'/'; 216]),
            None,
        ),
        (
            "v2 at the payload cap",
            v2_header(
                CMD_PROXY,
                0x11,
                &with(v4_block(), &tlv(0x04, &vec![0; V2_MAX_PAYLOAD - 12 - 3])),
            ),
            addr("192.0.2.1:56324"),
        ),
    ]
}

#[test]
fn valid_headers_give_their_length_and_source() {
    for (name, header, source) in valid() {
        let len = header.len();
        assert_eq!(parse(&header), Parsed::Header { len, source }, "{name}");
        // The connection's bytes after it are not the header's.
        let followed = with(header, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&followed), Parsed::Header { len, source }, "{name}");
    }
}

#[test]
fn the_longest_v1_line_is_107_bytes() {
    let valid = valid();
    let (_, longest, _) = valid
        .iter()
        .find(|(name, ..)| *name == "v1 UNKNOWN longest")
        .unwrap();
    assert_eq!(longest.len(), V1_MAX);
    // One byte more is refused, CRLF or not.
    let mut longer = longest.clone();
    longer.insert(20, b'f');
    assert_eq!(
        parse(&longer),
        Parsed::Invalid("v1 line longer than 107 bytes")
    );
}

/// Split at every byte boundary: every proper prefix is incomplete (never
/// invalid, never a header), as a balancer's header may arrive a byte at
/// a time.
#[test]
fn every_prefix_of_a_valid_header_is_incomplete() {
    for (name, header, _) in valid() {
        for k in 0..header.len() {
            assert_eq!(parse(&header[..k]), Parsed::Incomplete, "{name}, {k} bytes");
        }
    }
}

#[test]
fn malformed_headers_are_refused_with_a_reason() {
    let long = format!("PROXY TCP4 {} 1.2.3.4 1 2\r\n", "1".repeat(V1_MAX));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("http", b"GET / HTTP/1.1\r\n".to_vec(), "not a PROXY"),
        ("tls", vec![0x16, 0x03, 0x01, 0x00], "not a PROXY"),
        ("lower case", b"proxy TCP4".to_vec(), "not a PROXY"),
        ("no space", b"PROXYTCP4".to_vec(), "not a PROXY"),
        ("v1 too long", long.into_bytes(), "longer than 107"),
        (
            "v1 LF without CR",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".to_vec(),
            "CRLF",
        ),
        (
            "v1 CR inside",
            b"PROXY TCP4\r 1.2.3.4".to_vec(),
            "printable",
        ),
        ("v1 NUL", b"PROXY TCP4 1.2.3.4\0".to_vec(), "printable"),
        ("v1 tab", b"PROXY TCP4\t1.2.3.4".to_vec(), "printable"),
        ("v1 empty", b"PROXY \r\n".to_vec(), "5 fields"),
        (
            "v1 TCP5",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            "TCP4",
        ),
        (
            "v1 UDP4",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            "TCP4",
        ),
        ("v1 UNKNOWNX", b"PROXY UNKNOWNX\r\n".to_vec(), "5 fields"),
        (
            "v1 four fields",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n".to_vec(),
            "5 fields",
        ),
        (
            "v1 six fields",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n".to_vec(),
            "5 fields",
        ),
        (
            "v1 double space",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            "5 fields",
        ),
        (
            "v1 trailing space",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n".to_vec(),
            "5 fields",
        ),
        (
            "v1 TCP4 with v6",
            b"PROXY TCP4 ::1 ::2 1 2\r\n".to_vec(),
            "IPv4",
        ),
        (
            "v1 TCP6 with v4",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            "IPv6",
        ),
        (
            "v1 bad source",
            b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n".to_vec(),
            "source is not",
        ),
        (
            "v1 bad destination",
            b"PROXY TCP4 1.2.3.4 5.6.7.256 1 2\r\n".to_vec(),
            "destination is not",
        ),
        (
            "v1 hostname",
            b"PROXY TCP4 example.com 5.6.7.8 1 2\r\n".to_vec(),
            "source is not",
        ),
        (
            "v1 port too big",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n".to_vec(),
            "source port",
        ),
        (
            "v1 port signed",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n".to_vec(),
            "source port",
        ),
        (
            "v1 port negative",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n".to_vec(),
            "destination port",
        ),
        (
            "v1 port six digits",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 000080 2\r\n".to_vec(),
            "source port",
        ),
        (
            "v1 port hex",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x50\r\n".to_vec(),
            "destination port",
        ),
        (
            "v2 bad signature",
            b"\r\n\r\n\0\r\nQUIZ\n".to_vec(),
            "not a PROXY",
        ),
        (
            "v2 version 1",
            with(V2_SIGNATURE.to_vec(), &[0x11]),
            "version",
        ),
        (
            "v2 version 3",
            with(V2_SIGNATURE.to_vec(), &[0x31]),
            "version",
        ),
        (
            "v2 command 2",
            with(V2_SIGNATURE.to_vec(), &[0x22]),
            "command",
        ),
        (
            "v2 family 4",
            with(V2_SIGNATURE.to_vec(), &[0x21, 0x41]),
            "family",
        ),
        (
            "v2 transport 3",
            with(V2_SIGNATURE.to_vec(), &[0x21, 0x13]),
            "transport",
        ),
        (
            "v2 over the cap",
            with(V2_SIGNATURE.to_vec(), &[0x21, 0x11, 0x10, 0x01]),
            "longer than 4096",
        ),
        (
            "v2 length field at its maximum",
            with(V2_SIGNATURE.to_vec(), &[0x20, 0x00, 0xff, 0xff]),
            "longer than 4096",
        ),
        (
            "v2 TCP4 short",
            v2_header(CMD_PROXY, 0x11, &[0; 11]),
            "shorter than its addresses",
        ),
        (
            "v2 TCP6 short",
            v2_header(CMD_PROXY, 0x21, &v4_block()),
            "shorter than its addresses",
        ),
        (
            "v2 UNIX short",
            v2_header(CMD_PROXY, 0x31, &[0; 215]),
            "shorter than its addresses",
        ),
        (
            "v2 TLV head cut",
            v2_header(CMD_PROXY, 0x11, &with(v4_block(), &[0x04, 0x00])),
            "TLV cut short",
        ),
        (
            "v2 TLV value overruns",
            v2_header(
                CMD_PROXY,
                0x11,
                &with(v4_block(), &[0x04, 0x00, 0x05, 1, 2]),
            ),
            "TLV longer",
        ),
    ];
    for (name, bytes, why) in cases {
        match parse(&bytes) {
            Parsed::Invalid(reason) => assert!(reason.contains(why), "{name}: {reason:?}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}

/// A v2 header is refused as soon as its fixed part is wrong, without
/// waiting for the payload it announces.
#[test]
fn v2_is_refused_before_its_payload_arrives() {
    let header = v2_header(CMD_PROXY, 0x21, &v4_block());
    assert!(matches!(parse(&header[..16]), Parsed::Invalid(_)));
}

#[test]
fn an_empty_buffer_is_incomplete() {
    assert_eq!(parse(b""), Parsed::Incomplete);
}

proptest! {
    /// Whatever the bytes, the parser answers (no panic), a header never
    /// claims more bytes than it was given, and one that is complete stays
    /// so, with the same answer, when more bytes follow.
    #[test]
    fn any_bytes_get_a_bounded_answer(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                                      more in proptest::collection::vec(any::<u8>(), 0..20)) {
        match parse(&bytes) {
            Parsed::Header { len, .. } => {
                prop_assert!(len <= bytes.len());
                prop_assert_eq!(parse(&with(bytes.clone(), &more)), parse(&bytes));
            }
            Parsed::Incomplete => prop_assert!(bytes.len() < V1_MAX || bytes[0] == b'\r'),
            Parsed::Invalid(_) => {
                prop_assert!(matches!(parse(&with(bytes.clone(), &more)), Parsed::Invalid(_)));
            }
        }
    }

    /// Mostly-valid input, to reach past the first checks: a valid header
    /// with one byte changed gets an answer that never claims more bytes
    /// than there are.
    #[test]
    fn one_changed_byte_gets_a_bounded_answer(which in 0usize..16, at in any::<usize>(), to in any::<u8>()) {
        let (_, mut header, _) = valid().swap_remove(which);
        let at = at % header.len();
        header[at] = to;
        if let Parsed::Header { len, .. } = parse(&header) {
            prop_assert!(len <= header.len());
        }
    }
}
