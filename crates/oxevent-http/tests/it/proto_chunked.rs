//! The chunked decoder, one test per rule, and the other body decoders.

use oxevent_http::proto::{
    BodyDecoder, BodyKind, ChunkedDecoder, CloseDelimitedDecoder, LengthDecoder, Limits, ParseError,
};

use crate::{chunked, chunked_bytewise, decode_pieces};

/// Decodes `wire` whole and byte by byte, checks both agree, and returns the result.
fn both_ways(wire: &[u8], limits: &Limits) -> Result<(Vec<u8>, usize), ParseError> {
    let whole = chunked(wire, limits);
    let bytewise = chunked_bytewise(wire, limits);
    assert_eq!(whole, bytewise, "{:?}", String::from_utf8_lossy(wire));
    let (body, decoded) = whole?;
    assert!(
        decoded.done,
        "unfinished: {:?}",
        String::from_utf8_lossy(wire)
    );
    Ok((body, decoded.consumed))
}

fn error(wire: &[u8]) -> ParseError {
    both_ways(wire, &Limits::default()).unwrap_err()
}

#[test]
fn a_chunked_body_decodes_and_stops_at_its_end() {
    let wire = b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nGET / HTTP/1.1";
    let (body, consumed) = both_ways(wire, &Limits::default()).unwrap();
    assert_eq!(body, b"Wikipedia in\r\n\r\nchunks.");
    assert_eq!(&wire[consumed..], b"GET / HTTP/1.1");
}

#[test]
fn hex_digits_of_either_case_and_leading_zeros_are_sizes() {
    let wire = b"a\r\n0123456789\r\nA\r\n0123456789\r\n000f\r\n0123456789abcde\r\n00\r\n\r\n";
    let (body, _) = both_ways(wire, &Limits::default()).unwrap();
    assert_eq!(body.len(), 35);
}

#[test]
fn chunk_extensions_are_allowed_and_skipped() {
    let wire = b"3;name=value\r\nabc\r\n2;a;b=\"quoted; \\\"x\\\"\"\r\nde\r\n\
                 1 ; spaced = yes\r\nf\r\n0;last\r\n\r\n";
    let (body, consumed) = both_ways(wire, &Limits::default()).unwrap();
    assert_eq!((body.as_slice(), consumed), (&b"abcdef"[..], wire.len()));
}

#[test]
fn chunk_sizes_with_signs_are_refused() {
    for wire in [
        &b"+5\r\nhello\r\n0\r\n\r\n"[..],
        b"-5\r\nhello\r\n0\r\n\r\n",
    ] {
        let e = error(wire);
        assert_eq!((e, e.status_code()), (ParseError::InvalidChunkSize, 400));
    }
}

#[test]
fn chunk_sizes_with_0x_are_refused() {
    assert_eq!(
        error(b"0x5\r\nhello\r\n0\r\n\r\n"),
        ParseError::InvalidChunkSize
    );
    assert_eq!(
        error(b"0X5\r\nhello\r\n0\r\n\r\n"),
        ParseError::InvalidChunkSize
    );
}

#[test]
fn whitespace_before_a_chunk_size_is_refused() {
    for wire in [
        &b" 5\r\nhello\r\n0\r\n\r\n"[..],
        b"\t5\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n 0\r\n\r\n",
        b"\r\n5\r\nhello\r\n0\r\n\r\n",
    ] {
        assert_eq!(
            error(wire),
            ParseError::InvalidChunkSize,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn other_bytes_in_chunk_sizes_are_refused() {
    for wire in [
        &b"5g\r\nhello\r\n0\r\n\r\n"[..],
        b"\r\n",
        b"g\r\n",
        b";x\r\n",
    ] {
        assert_eq!(
            error(wire),
            ParseError::InvalidChunkSize,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    // Whitespace after the size must lead to an extension, not to the line end.
    assert_eq!(
        error(b"5 \r\nhello\r\n0\r\n\r\n"),
        ParseError::InvalidChunkExtension
    );
    assert_eq!(
        error(b"5 x\r\nhello\r\n0\r\n\r\n"),
        ParseError::InvalidChunkExtension
    );
}

#[test]
fn chunk_sizes_over_the_digit_limit_are_refused() {
    let unlimited = Limits::default().with_max_body(u64::MAX);
    // Sixteen digits are fine (and a u64 at most).
    let mut d = ChunkedDecoder::new(&unlimited);
    let step = d.step(b"ffffffffffffffff\r\nab").unwrap();
    assert_eq!((step.data, step.done), (18..20, false));
    for wire in [&b"10000000000000000\r\n"[..], b"00000000000000001\r\n"] {
        let e = both_ways(wire, &unlimited).unwrap_err();
        assert_eq!((e, e.status_code()), (ParseError::ChunkSizeTooLong, 400));
        assert!(e.is_limit());
    }
    let short = Limits::default().with_max_chunk_size_digits(2);
    assert!(chunked(b"ff\r\n", &short).is_ok());
    assert_eq!(
        chunked(b"0ff\r\n", &short),
        Err(ParseError::ChunkSizeTooLong)
    );
}

#[test]
fn chunk_extensions_over_the_limit_are_refused() {
    let limits = Limits::default().with_max_chunk_extension(8);
    assert!(both_ways(b"1;abcdefg\r\nx\r\n0\r\n\r\n", &limits).is_ok());
    let e = both_ways(b"1;abcdefgh\r\nx\r\n0\r\n\r\n", &limits).unwrap_err();
    assert_eq!(
        (e, e.status_code()),
        (ParseError::ChunkExtensionTooLong, 400)
    );
    // Whitespace before the `;` counts.
    let e = both_ways(b"1        ;\r\nx\r\n0\r\n\r\n", &limits).unwrap_err();
    assert_eq!(e, ParseError::ChunkExtensionTooLong);
    // The budget is per chunk line.
    let wire = b"1;abcdefg\r\nx\r\n1;abcdefg\r\ny\r\n0;abcdefg\r\n\r\n";
    assert_eq!(both_ways(wire, &limits).unwrap().0, b"xy");
    // The default: 1 KiB.
    let mut long = b"1;".to_vec();
    long.extend(std::iter::repeat_n(b'e', 1024));
    assert_eq!(error(&long), ParseError::ChunkExtensionTooLong);
}

#[test]
fn control_characters_in_chunk_extensions_are_refused() {
    for c in [0u8, 1, 0x7f, 0x1b] {
        let mut wire = b"1;a".to_vec();
        wire.push(c);
        wire.extend(b"\r\nx\r\n0\r\n\r\n");
        assert_eq!(
            error(&wire),
            ParseError::InvalidChunkExtension,
            "byte {c:#04x}"
        );
    }
}

#[test]
fn chunk_data_must_be_followed_by_crlf() {
    for wire in [
        &b"3\r\nabcd\r\n0\r\n\r\n"[..],
        b"3\r\nabc\n0\r\n\r\n",
        b"3\r\nabc\r0\r\n\r\n",
        b"3\r\nabc0\r\n\r\n",
    ] {
        let e = error(wire);
        assert_eq!((e, e.status_code()), (ParseError::MissingChunkCrlf, 400));
    }
}

#[test]
fn chunk_lines_need_crlf() {
    assert_eq!(error(b"3\nabc\r\n0\r\n\r\n"), ParseError::BareLf);
    assert_eq!(error(b"3;x\nabc\r\n0\r\n\r\n"), ParseError::BareLf);
    assert_eq!(error(b"3\rabc\r\n0\r\n\r\n"), ParseError::BareCr);
    assert_eq!(error(b"0\r\n\n"), ParseError::BareLf);
    assert_eq!(error(b"0\r\n\rx"), ParseError::BareCr);
}

#[test]
fn trailers_are_read_and_discarded() {
    let wire = b"2\r\nok\r\n0\r\nChecksum: abc\r\nX-Empty:\r\nX-Tab:\ta\tb\r\n\r\nNEXT";
    let (body, consumed) = both_ways(wire, &Limits::default()).unwrap();
    assert_eq!(
        (body.as_slice(), &wire[consumed..]),
        (&b"ok"[..], &b"NEXT"[..])
    );
}

#[test]
fn malformed_trailers_are_refused() {
    for (trailer, want) in [
        (&b"Bad Name: v\r\n"[..], ParseError::InvalidHeaderName),
        (b"NoColon\r\n", ParseError::InvalidHeaderName),
        (b": v\r\n", ParseError::InvalidHeaderName),
        (b"X: a\r\n folded\r\n", ParseError::ObsoleteLineFolding),
        (b"X: a\0b\r\n", ParseError::NulInHeader),
        (b"X\0: ab\r\n", ParseError::NulInHeader),
        (b"X: a\x01b\r\n", ParseError::InvalidHeaderValue),
        (b"X: a\nY: b\r\n", ParseError::BareLf),
        (b"X: a\rb\r\n", ParseError::BareCr),
    ] {
        let mut wire = b"0\r\n".to_vec();
        wire.extend(trailer);
        wire.extend(b"\r\n");
        assert_eq!(error(&wire), want, "{:?}", String::from_utf8_lossy(trailer));
    }
}

#[test]
fn trailers_have_the_header_limits() {
    let limits = Limits::default()
        .with_max_headers(2)
        .with_max_header_bytes(32);
    assert!(both_ways(b"0\r\nA: 1\r\nB: 2\r\n\r\n", &limits).is_ok());
    let e = both_ways(b"0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::TooManyHeaders, 431));
    // 32 bytes of trailer section, final CRLF included, pass; 33 do not.
    let ok = format!("0\r\nX: {}\r\n\r\n", "v".repeat(25));
    assert!(both_ways(ok.as_bytes(), &limits).is_ok());
    let big = format!("0\r\nX: {}\r\n\r\n", "v".repeat(26));
    let e = both_ways(big.as_bytes(), &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::HeaderTooLarge, 431));
}

#[test]
fn bodies_over_the_limit_are_413() {
    let limits = Limits::default().with_max_body(10);
    assert!(both_ways(b"5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", &limits).is_ok());
    let wire = b"5\r\nhello\r\n5\r\nworld\r\n1\r\n!\r\n0\r\n\r\n";
    let e = both_ways(wire, &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::BodyTooLarge, 413));
    // Refused at the size line, before any of the chunk's data arrives.
    let mut d = ChunkedDecoder::new(&limits);
    assert_eq!(d.step(b"b\r\n"), Err(ParseError::BodyTooLarge));
    // No overflow past u64::MAX either.
    let unlimited = Limits::default().with_max_body(u64::MAX);
    let mut d = ChunkedDecoder::new(&unlimited);
    let mut out = |_: &[u8]| {};
    d.decode(b"1\r\nx\r\n", &mut out).unwrap();
    assert_eq!(d.body_len(), 1);
    assert_eq!(
        d.decode(b"ffffffffffffffff\r\n", &mut out),
        Err(ParseError::BodyTooLarge)
    );
}

#[test]
fn errors_are_sticky() {
    let mut d = ChunkedDecoder::new(&Limits::default());
    let mut out = |_: &[u8]| {};
    assert_eq!(d.decode(b"z", &mut out), Err(ParseError::InvalidChunkSize));
    assert_eq!(
        d.decode(b"1\r\nx\r\n0\r\n\r\n", &mut out),
        Err(ParseError::InvalidChunkSize)
    );
    assert!(!d.is_done());
}

#[test]
fn step_returns_data_as_ranges_of_the_input() {
    let wire = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nrest";
    let mut d = ChunkedDecoder::new(&Limits::default());
    let mut offset = 0;
    let mut pieces = Vec::new();
    loop {
        let s = d.step(&wire[offset..]).unwrap();
        if !s.data.is_empty() {
            pieces.push(&wire[offset + s.data.start..offset + s.data.end]);
        }
        offset += s.consumed;
        if s.done {
            break;
        }
    }
    assert_eq!(pieces, [&b"abc"[..], b"de"]);
    assert_eq!(&wire[offset..], b"rest");
    assert!(d.is_done());
    // Once done, nothing more is taken.
    assert_eq!(d.step(b"more").unwrap().consumed, 0);
}

#[test]
fn length_bodies_take_exactly_their_length() {
    let mut d = LengthDecoder::new(5);
    let mut body = Vec::new();
    let first = d.decode(b"he", &mut |p| body.extend_from_slice(p));
    assert_eq!((first.consumed, first.done, d.remaining()), (2, false, 3));
    let rest = d.decode(b"lloGET", &mut |p| body.extend_from_slice(p));
    assert_eq!(
        (rest.consumed, rest.done, body.as_slice()),
        (3, true, &b"hello"[..])
    );
    assert!(d.is_done());
    let (body, decoded) =
        decode_pieces(BodyKind::Length(0), &Limits::default(), &[b"GET"]).unwrap();
    assert_eq!((body.len(), decoded.consumed, decoded.done), (0, 0, true));
}

#[test]
fn close_delimited_bodies_are_bounded_and_end_at_eof() {
    let limits = Limits::default().with_max_body(8);
    let mut d = BodyDecoder::new(BodyKind::CloseDelimited, &limits);
    let mut body = Vec::new();
    let step = d
        .decode(b"12345", &mut |p| body.extend_from_slice(p))
        .unwrap();
    assert_eq!((step.consumed, step.done), (5, false));
    assert_eq!(
        d.decode(b"6789", &mut |_| {}),
        Err(ParseError::BodyTooLarge)
    );
    assert!(!d.is_done());
    assert_eq!(d.finish(), Ok(()));
    assert!(d.is_done());
    assert_eq!(body, b"12345");
    let mut c = CloseDelimitedDecoder::new(&limits);
    c.step(b"abc").unwrap();
    assert_eq!(c.received(), 3);
}

#[test]
fn eof_before_the_end_of_a_body_is_an_error() {
    let limits = Limits::default();
    let mut d = BodyDecoder::new(BodyKind::Length(3), &limits);
    d.decode(b"ab", &mut |_| {}).unwrap();
    let e = d.finish().unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::IncompleteBody, 400));
    let mut d = BodyDecoder::new(BodyKind::Chunked, &limits);
    d.decode(b"1\r\na\r\n", &mut |_| {}).unwrap();
    assert_eq!(d.finish(), Err(ParseError::IncompleteBody));
    d.decode(b"0\r\n\r\n", &mut |_| {}).unwrap();
    assert_eq!(d.finish(), Ok(()));
    let mut d = BodyDecoder::new(BodyKind::None, &limits);
    assert!(d.is_done());
    assert_eq!(d.finish(), Ok(()));
}
