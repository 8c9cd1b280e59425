//! Tests of [`super::BodyDecoder`] and [`super::ChunkedEncoder`]: every
//! split point of sample bodies, each refusal of chunked framing, the
//! bounds, and property tests of random encodings split at random.

use proptest::prelude::*;

use super::*;

/// What decoding `wire` in the pieces `cuts` gives: the payload, the
/// bytes of `wire` the body took, and whether it completed. A caller
/// keeps no bytes while the body runs (the decoder consumes them all),
/// so each read is decoded on its own.
fn decode_cut(
    framing: Framing,
    wire: &[u8],
    cuts: &[usize],
) -> Result<(Vec<u8>, usize, bool), Malformed> {
    let mut decoder = BodyDecoder::new(framing);
    let mut body = Vec::new();
    let mut start = 0;
    for end in cuts.iter().copied().chain([wire.len()]) {
        let read = &wire[start..end];
        let (used, done) = decoder.decode(read, &mut |piece| {
            assert!(!piece.is_empty(), "an empty piece");
            body.extend_from_slice(piece);
        })?;
        assert_eq!(done, decoder.is_done());
        if done {
            return Ok((body, start + used, true));
        }
        assert_eq!(used, read.len(), "a running body takes every byte");
        start = end;
    }
    Ok((body, wire.len(), false))
}

const NEXT: &[u8] = b"GET /next HTTP/1.1\r\n";

#[test]
fn chunked_bodies_split_at_every_point() {
    let bodies: &[(&[u8], &[u8])] = &[
        (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
        (
            b"5;name=value;q=\"a b\"\r\nhello\r\nA \t;ext\r\n0123456789\r\n0;last\r\nExpires: never\r\nX-T:\r\nX-Obs: caf\xe9 \t x\r\n\r\n",
            b"hello0123456789",
        ),
        (b"000001\r\nx\r\n00\r\n\r\n", b"x"),
        (b"0\r\n\r\n", b""),
        (b"1 \r\n!\r\n0 \t\r\n\r\n", b"!"),
    ];
    for &(encoded, payload) in bodies {
        let wire = [encoded, NEXT].concat();
        for cut in 0..=wire.len() {
            let got = decode_cut(Framing::Chunked, &wire, &[cut]);
            assert_eq!(
                got,
                Ok((payload.to_vec(), encoded.len(), true)),
                "{:?} cut at {cut}",
                String::from_utf8_lossy(encoded)
            );
        }
        // And a byte at a time.
        let every: Vec<usize> = (1..wire.len()).collect();
        assert_eq!(
            decode_cut(Framing::Chunked, &wire, &every),
            Ok((payload.to_vec(), encoded.len(), true))
        );
    }
}

#[test]
fn content_length_bodies_split_at_every_point() {
    let wire = [&b"0123456789"[..], NEXT].concat();
    for cut in 0..=wire.len() {
        assert_eq!(
            decode_cut(Framing::Length(10), &wire, &[cut]),
            Ok((b"0123456789".to_vec(), 10, true)),
            "cut at {cut}"
        );
    }
}

#[test]
fn pieces_are_borrowed_from_the_input() {
    let wire = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    let range = wire.as_ptr_range();
    let mut pieces = Vec::new();
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    decoder
        .decode(wire, &mut |piece: &[u8]| pieces.push(piece))
        .unwrap();
    assert_eq!(pieces, [&b"abc"[..], b"de"]);
    for piece in pieces {
        assert!(range.contains(&piece.as_ptr()), "a copy");
    }
}

#[test]
fn bodiless_framings_are_done_at_once() {
    for framing in [Framing::None, Framing::Length(0)] {
        let mut decoder = BodyDecoder::new(framing);
        assert!(decoder.is_done());
        assert_eq!(
            decoder.decode(NEXT, &mut |_| panic!("a piece")),
            Ok((0, true))
        );
        assert_eq!(decoder.finish_at_eof(), Ok(()));
    }
}

#[test]
fn until_close_takes_everything_and_ends_at_eof() {
    let mut decoder = BodyDecoder::new(Framing::UntilClose);
    let mut body = Vec::new();
    for read in [&b"HTTP/1.1 200 OK\r\n"[..], b"", b"0\r\n\r\n"] {
        let got = decoder.decode(read, &mut |piece| body.extend_from_slice(piece));
        assert_eq!(got, Ok((read.len(), false)));
    }
    assert_eq!(body, b"HTTP/1.1 200 OK\r\n0\r\n\r\n");
    assert!(!decoder.is_done());
    assert_eq!(decoder.finish_at_eof(), Ok(()));
}

#[test]
fn an_early_eof_cuts_a_framed_body() {
    for (framing, wire) in [
        (Framing::Length(5), &b"hel"[..]),
        (Framing::Length(5), b""),
        (Framing::Chunked, b"5\r\nhello\r\n"),
        (Framing::Chunked, b"0\r\n\r"),
        (Framing::Chunked, b"0\r\nX-T: 1\r\n"),
    ] {
        let mut decoder = BodyDecoder::new(framing);
        assert_eq!(decoder.decode(wire, &mut |_| {}), Ok((wire.len(), false)));
        assert_eq!(
            decoder.finish_at_eof(),
            Err(malformed("body cut short by close")),
            "{framing:?} {wire:?}"
        );
    }
}

#[test]
fn malformed_chunked_framing_is_refused() {
    let long_extension = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE));
    let long_trailer = format!("0\r\nX-Big: {}\r\n\r\n", "v".repeat(MAX_TRAILERS));
    let many_trailers = format!("0\r\n{}\r\n", "X-T: 1\r\n".repeat(MAX_TRAILERS / 8 + 1));
    let cases: &[(&[u8], &str)] = &[
        (b"\r\n", "chunk size missing"),
        (b";ext\r\n", "chunk size missing"),
        (b"-1\r\n", "chunk size missing"),
        (b"0x5\r\nhello\r\n", "bad chunk size"),
        (b"5 5\r\nhello\r\n", "bad chunk size"),
        (b"5\"\r\nhello\r\n", "bad chunk size"),
        (b"+5\r\nhello\r\n", "chunk size missing"),
        (b"12345678901234567\r\n", "chunk size over 16 hex digits"),
        (
            b"00000000000000001\r\nx\r\n",
            "chunk size over 16 hex digits",
        ),
        (b"8000000000000000\r\n", "chunk size too large"),
        (b"ffffffffffffffff\r\n", "chunk size too large"),
        // Line terminators, the funky-chunks material: CRLF or nothing.
        (b"5\nhello\r\n0\r\n\r\n", "bare LF in chunked framing"),
        (
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            "bare LF in chunked framing",
        ),
        (b"5\rhello\r\n", "CR without LF in chunked framing"),
        (b"5;a\rb\r\nhello\r\n", "CR without LF in chunked framing"),
        (b"5\r\nhello\n0\r\n\r\n", "chunk data not followed by CRLF"),
        (b"5\r\nhelloXX0\r\n\r\n", "chunk data not followed by CRLF"),
        (b"5\r\nhello\rX", "chunk data not followed by CRLF"),
        (
            b"3\r\nhello\r\n0\r\n\r\n",
            "chunk data not followed by CRLF",
        ),
        (b"5;\x00\r\nhello\r\n", "control byte in chunk extension"),
        (b"5;a=\x7f\r\nhello\r\n", "control byte in chunk extension"),
        (b"5;a;\x01b\r\nhello\r\n", "control byte in chunk extension"),
        (long_extension.as_bytes(), "chunk size line too long"),
        (b"0\r\n\n", "bare LF in chunked framing"),
        (b"0\r\n\r\r", "CR without LF in chunked framing"),
        (b"0\r\nX-T: 1\n\r\n", "bare LF in chunked framing"),
        (b"0\r\nX-T: 1\rX\r\n", "CR without LF in chunked framing"),
        (b"0\r\n: no name\r\n\r\n", "bad trailer field"),
        (b"0\r\nNo Colon\r\n\r\n", "bad trailer field"),
        (b"0\r\nNoColon\r\n\r\n", "bad trailer field"),
        (b"0\r\n folded: x\r\n\r\n", "bad trailer field"),
        (b"0\r\nGET / HTTP/1.1\r\n\r\n", "bad trailer field"),
        (b"0\r\nX-T: a\x00b\r\n\r\n", "control byte in trailer field"),
        (long_trailer.as_bytes(), "trailers too large"),
        (many_trailers.as_bytes(), "trailers too large"),
    ];
    for &(wire, why) in cases {
        for cut in [wire.len() / 2, wire.len()] {
            assert_eq!(
                decode_cut(Framing::Chunked, wire, &[cut]).map(|_| ()),
                Err(malformed(why)),
                "{:?} cut at {cut}",
                String::from_utf8_lossy(&wire[..wire.len().min(60)])
            );
        }
    }
}

#[test]
fn chunk_bounds_hold_right_up_to_them() {
    let extension = format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(MAX_CHUNK_LINE - 2));
    let trailer = format!("0\r\nX: {}\r\n\r\n", "v".repeat(MAX_TRAILERS - 6));
    for wire in [
        extension.as_bytes(),
        trailer.as_bytes(),
        b"0000000000000001\r\nx\r\n0\r\n\r\n",
    ] {
        assert!(
            matches!(decode_cut(Framing::Chunked, wire, &[]), Ok((_, _, true))),
            "{:?}",
            String::from_utf8_lossy(&wire[..40])
        );
    }
    // The largest size is accepted (its data would follow).
    let mut decoder = BodyDecoder::new(Framing::Chunked);
    assert_eq!(
        decoder.decode(b"7fffffffffffffff\r\nab", &mut |_| {}),
        Ok((20, false))
    );
}

#[test]
fn chunk_heads_are_lowercase_hex() {
    for (n, head) in [
        (1, &b"1\r\n"[..]),
        (10, b"a\r\n"),
        (255, b"ff\r\n"),
        (4096, b"1000\r\n"),
        (u64::MAX, b"ffffffffffffffff\r\n"),
    ] {
        assert_eq!(&ChunkedEncoder::chunk_head(n)[..], head, "{n}");
    }
}

/// A chunked encoding of `data` in chunks of the given sizes (cycled),
/// each size line with `zeros` leading zeros and maybe an extension,
/// then the trailers.
fn encode(
    data: &[u8],
    sizes: &[usize],
    zeros: usize,
    extension: bool,
    trailers: &[String],
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (chunk, after) = rest.split_at(size.clamp(1, rest.len()));
        out.extend_from_slice(&b"0".repeat(zeros));
        if extension {
            let head = ChunkedEncoder::chunk_head(chunk.len() as u64);
            out.extend_from_slice(&head[..head.len() - 2]);
            out.extend_from_slice(b" ;a=b;c=\"d e\"\r\n");
        } else {
            out.extend_from_slice(&ChunkedEncoder::chunk_head(chunk.len() as u64));
        }
        out.extend_from_slice(chunk);
        out.extend_from_slice(ChunkedEncoder::CHUNK_END);
        rest = after;
    }
    out.extend_from_slice(b"0\r\n");
    for trailer in trailers {
        out.extend_from_slice(trailer.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #[test]
    fn any_chunked_encoding_split_anywhere_decodes_to_its_data(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        sizes in proptest::collection::vec(1usize..300, 1..8),
        zeros in 0usize..4,
        extension in any::<bool>(),
        trailers in proptest::collection::vec("[A-Za-z0-9-]{1,10}: [ -~]{0,20}", 0..3),
        mut cuts in proptest::collection::vec(0usize..4000, 0..12),
    ) {
        let encoded = encode(&data, &sizes, zeros, extension, &trailers);
        let wire = [&encoded[..], NEXT].concat();
        for cut in &mut cuts {
            *cut %= wire.len() + 1;
        }
        cuts.sort_unstable();
        let got = decode_cut(Framing::Chunked, &wire, &cuts);
        prop_assert_eq!(got, Ok((data, encoded.len(), true)));
    }

    #[test]
    fn chunked_encoder_output_decodes_back(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..100), 0..10),
    ) {
        let mut wire = Vec::new();
        for piece in &pieces {
            ChunkedEncoder::encode(piece, &mut wire);
        }
        wire.extend_from_slice(ChunkedEncoder::LAST_CHUNK);
        let got = decode_cut(Framing::Chunked, &wire, &[]);
        prop_assert_eq!(got, Ok((pieces.concat(), wire.len(), true)));
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(
        wire in proptest::collection::vec(any::<u8>(), 0..200),
        cut in 0usize..200,
    ) {
        let cut = cut.min(wire.len());
        if let Ok((body, used, _)) = decode_cut(Framing::Chunked, &wire, &[cut]) {
            prop_assert!(body.len() <= used);
        }
    }
}
