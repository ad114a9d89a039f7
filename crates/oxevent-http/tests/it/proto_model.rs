//! Properties, each against an oracle: the encoders (encode then parse is the identity), and
//! the parsers themselves (fed one byte at a time, or split anywhere, they agree with one
//! call over the whole input).

use oxevent_http::proto::{
    BodyKind, Headers, Limits, Method, Status, Version, encode_chunk, encode_last_chunk,
    encode_request_head, encode_response_head, parse_request, parse_response,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{chunked, chunked_bytewise, decode_pieces, request_bytewise, response_bytewise};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}"
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Get),
        Just(Method::Head),
        Just(Method::Post),
        Just(Method::Put),
        Just(Method::Delete),
        Just(Method::Options),
        Just(Method::Trace),
        Just(Method::Connect),
        Just(Method::Patch),
        token().prop_map(|t| Method::from_token(&t).expect("a token is a method")),
    ]
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::Http10), Just(Version::Http11)]
}

/// A field value as a parser returns it: field bytes, no whitespace at either end.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        1 => 0x80u8..=0xff,
        1 => Just(b' '),
        1 => Just(b'\t'),
    ];
    vec(byte, 0..40).prop_map(|v| {
        let start = v
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .unwrap_or(v.len());
        let end = v
            .iter()
            .rposition(|&b| b != b' ' && b != b'\t')
            .map_or(start, |p| p + 1);
        v[start..end].to_vec()
    })
}

/// Fields that do not touch framing (every name starts with `x-`), after a `Host`.
fn headers() -> impl Strategy<Value = Headers> {
    vec((token(), value()), 0..20).prop_map(|fields| {
        let mut h = Headers::new();
        h.append("Host", "example.com");
        for (name, value) in fields {
            h.append(&format!("x-{name}"), value);
        }
        h
    })
}

/// Splits `wire` at the given points and feeds the pieces to a chunked decoder.
fn decode_split(
    wire: &[u8],
    limits: &Limits,
    cuts: &[Index],
) -> Result<(Vec<u8>, usize, bool), oxevent_http::proto::ParseError> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(wire.len() + 1)).collect();
    points.push(0);
    points.push(wire.len());
    points.sort_unstable();
    points.dedup();
    let pieces: Vec<&[u8]> = points.windows(2).map(|w| &wire[w[0]..w[1]]).collect();
    // An unfinished body takes all its input, so the pieces can go in as they are, up to
    // the one where it ends.
    let (body, decoded) = decode_pieces(BodyKind::Chunked, limits, &pieces)?;
    Ok((body, decoded.consumed, decoded.done))
}

/// Bytes that look like HTTP often enough to reach every parser state.
fn http_ish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop::sample::select(vec![
        &b"GET"[..],
        b"POST",
        b"X",
        b" ",
        b"  ",
        b"/",
        b"/a?b",
        b"*",
        b"HTTP/1.1",
        b"HTTP/1.0",
        b"HTTP/2.0",
        b"\r\n",
        b"\r\n\r\n",
        b"\r",
        b"\n",
        b"\0",
        b"\t",
        b":",
        b": ",
        b"Host: h",
        b"Content-Length: 5",
        b"Content-Length: 5, 6",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: gzip",
        b"Connection: close",
        b"Expect: 100-continue",
        b"\xe9",
        b"\x7f",
        b"(",
        b"200 OK",
        b"HTTP/1.1 200 OK",
    ]);
    vec(fragment, 0..40).prop_map(|f| f.concat())
}

/// Bytes that look like chunked framing often enough to reach every decoder state.
fn chunked_ish() -> impl Strategy<Value = Vec<u8>> {
    let fragment = prop::sample::select(vec![
        &b"0"[..],
        b"1",
        b"5",
        b"a",
        b"F",
        b"ff",
        b"+",
        b"-",
        b"x",
        b";",
        b";ext=1",
        b"=",
        b" ",
        b"\t",
        b"\r\n",
        b"\r",
        b"\n",
        b"\0",
        b"hello",
        b"0\r\n\r\n",
        b"X: v\r\n",
        b":",
        b"1\r\nz\r\n",
    ]);
    vec(fragment, 0..40).prop_map(|f| f.concat())
}

proptest! {
    #[test]
    fn request_heads_round_trip(
        method in method(),
        target in "/[!-~\u{e9}\u{4e2d}]{0,40}",
        version in version(),
        headers in headers(),
        next in "[A-Z]{0,5}",
    ) {
        let mut wire = Vec::new();
        encode_request_head(&method, &target, version, &headers, &mut wire).unwrap();
        let len = wire.len();
        wire.extend(next.as_bytes());
        let Status::Complete(head, used) = parse_request(&wire, &Limits::default()).unwrap()
        else {
            panic!("incomplete");
        };
        prop_assert_eq!(used, len);
        prop_assert_eq!(&head.method, &method);
        prop_assert_eq!(&head.target, &target);
        prop_assert_eq!(head.version, version);
        prop_assert_eq!(&head.headers, &headers);
        prop_assert_eq!(head.body, BodyKind::None);
        prop_assert_eq!(head.keep_alive, version == Version::Http11);
        // One byte at a time, the parser gives the same head at the same place.
        let bytewise = request_bytewise(&wire, &Limits::default()).unwrap();
        prop_assert_eq!(bytewise, Status::Complete(head, used));
    }

    #[test]
    fn response_heads_round_trip(
        version in version(),
        status in 100u16..=999,
        reason in "[ -~\t\u{e9}]{0,30}",
        mut headers in headers(),
        method in method(),
    ) {
        headers.append("Content-Length", "0");
        let mut wire = Vec::new();
        encode_response_head(version, status, &reason, &headers, &mut wire).unwrap();
        let Status::Complete(head, used) =
            parse_response(&wire, &Limits::default(), &method).unwrap()
        else {
            panic!("incomplete");
        };
        prop_assert_eq!(used, wire.len());
        prop_assert_eq!(head.version, version);
        prop_assert_eq!(head.status, status);
        prop_assert_eq!(&head.reason, &reason);
        prop_assert_eq!(&head.headers, &headers);
        let no_body = method == Method::Head
            || (100..200).contains(&status)
            || status == 204
            || status == 304
            || (method == Method::Connect && (200..300).contains(&status));
        prop_assert_eq!(head.body, if no_body { BodyKind::None } else { BodyKind::Length(0) });
        let bytewise = response_bytewise(&wire, &Limits::default(), &method).unwrap();
        prop_assert_eq!(bytewise, Status::Complete(head, used));
    }

    #[test]
    fn chunked_bodies_round_trip_whatever_the_splits(
        body in vec(any::<u8>(), 0..3000),
        sizes in vec(1usize..400, 1..20),
        extensions in vec(proptest::option::of("[a-z]{1,5}(=[a-z0-9]{1,5})?"), 1..20),
        trailers in vec((token(), value()), 0..4),
        cuts in vec(any::<Index>(), 0..12),
    ) {
        let mut wire = Vec::new();
        let mut rest = &body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            match &extensions[i % extensions.len()] {
                None => encode_chunk(&rest[..n], &mut wire),
                Some(ext) => {
                    wire.extend(format!("{n:X} ;{ext}\r\n").as_bytes());
                    wire.extend(&rest[..n]);
                    wire.extend(b"\r\n");
                }
            }
            rest = &rest[n..];
            i += 1;
        }
        let trailers: Headers =
            trailers.into_iter().map(|(n, v)| (format!("x-{n}"), v)).collect();
        encode_last_chunk(&trailers, &mut wire).unwrap();
        let len = wire.len();
        wire.extend(b"GET / HTTP/1.1\r\n");
        let limits = Limits::default();
        let (decoded, consumed, done) = decode_split(&wire, &limits, &cuts).unwrap();
        prop_assert!(done);
        prop_assert_eq!(consumed, len);
        prop_assert_eq!(&decoded, &body);
        let (bytewise, d) = chunked_bytewise(&wire, &limits).unwrap();
        prop_assert_eq!((bytewise, d.consumed, d.done), (body, len, true));
    }

    #[test]
    fn request_parsing_bytewise_agrees_with_whole(wire in http_ish()) {
        let limits = Limits::default()
            .with_max_header_bytes(200)
            .with_max_headers(8)
            .with_max_request_target(12);
        let whole = parse_request(&wire, &limits);
        prop_assert_eq!(request_bytewise(&wire, &limits), whole);
    }

    #[test]
    fn response_parsing_bytewise_agrees_with_whole(wire in http_ish(), method in method()) {
        let limits = Limits::default().with_max_header_bytes(200).with_max_headers(8);
        let whole = parse_response(&wire, &limits, &method);
        prop_assert_eq!(response_bytewise(&wire, &limits, &method), whole);
    }

    #[test]
    fn chunked_decoding_agrees_whatever_the_splits(
        wire in chunked_ish(),
        cuts in vec(any::<Index>(), 0..8),
    ) {
        let limits = Limits::default().with_max_header_bytes(64).with_max_chunk_extension(16);
        let whole = chunked(&wire, &limits);
        let bytewise = chunked_bytewise(&wire, &limits);
        prop_assert_eq!(&bytewise, &whole);
        let split = decode_split(&wire, &limits, &cuts);
        let whole = whole.map(|(body, d)| (body, d.consumed, d.done));
        prop_assert_eq!(split, whole);
    }
}
