//! One test per strictness rule of the head parsers (RFC 9110, RFC 9112). What `httparse`
//! alone says about each rule is pinned by the unit tests in `src/proto/lenience.rs`.

use oxevent_http::proto::{BodyKind, Limits, Method, ParseError, Status, parse_request};

use crate::{request, request_bytewise, request_error, request_with, response, response_to};

/// `GET / HTTP/1.1`, a Host, then `extra` header lines and the empty line.
fn get_with(extra: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: h\r\n{extra}\r\n").into_bytes()
}

/// `POST / HTTP/1.1`, a Host, then `extra` header lines and the empty line.
fn post_with(extra: &str) -> Vec<u8> {
    format!("POST / HTTP/1.1\r\nHost: h\r\n{extra}\r\n").into_bytes()
}

#[test]
fn content_length_with_transfer_encoding_is_refused() {
    let wire = post_with("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n");
    assert_eq!(
        request_error(&wire),
        ParseError::ContentLengthWithTransferEncoding
    );
    let wire = post_with("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n");
    assert_eq!(
        request_error(&wire),
        ParseError::ContentLengthWithTransferEncoding
    );
    assert_eq!(
        ParseError::ContentLengthWithTransferEncoding.status_code(),
        400
    );
    let res = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        response(res),
        Err(ParseError::ContentLengthWithTransferEncoding)
    );
}

#[test]
fn differing_content_lengths_are_refused() {
    for extra in [
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 5, 6\r\n",
        "Content-Length: 5,5,6\r\n",
        "Content-Length: 5\r\nContent-Length: 5, 7\r\n",
    ] {
        let wire = post_with(extra);
        assert_eq!(
            request_error(&wire),
            ParseError::ConflictingContentLength,
            "{extra}"
        );
    }
    let res = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::ConflictingContentLength));
}

#[test]
fn identical_content_lengths_are_one_length() {
    for extra in [
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5,5\r\nContent-Length: 5\r\n",
        "Content-Length: 005\r\n",
        "Content-Length: 5 \r\n",
    ] {
        assert_eq!(
            request(&post_with(extra)).unwrap().body,
            BodyKind::Length(5),
            "{extra}"
        );
    }
}

#[test]
fn malformed_content_lengths_are_refused() {
    for value in [
        "+5",
        "-5",
        "5 5",
        "0x5",
        "5a",
        "five",
        "",
        "5,",
        ",5",
        "5,,5",
        "1.0",
        "18446744073709551616",
        "99999999999999999999999",
    ] {
        let wire = post_with(&format!("Content-Length: {value}\r\n"));
        assert_eq!(
            request_error(&wire),
            ParseError::InvalidContentLength,
            "{value:?}"
        );
    }
    let res = b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::InvalidContentLength));
    // The largest u64 is a valid length, refused only by the body limit.
    let wire = post_with("Content-Length: 18446744073709551615\r\n");
    assert_eq!(request_error(&wire), ParseError::BodyTooLarge);
    let unlimited = Limits::default().with_max_body(u64::MAX);
    assert_eq!(
        request_with(&wire, &unlimited).unwrap().body,
        BodyKind::Length(u64::MAX)
    );
}

#[test]
fn declared_body_over_the_limit_is_413() {
    let limits = Limits::default().with_max_body(10);
    let ok = post_with("Content-Length: 10\r\n");
    assert_eq!(
        request_with(&ok, &limits).unwrap().body,
        BodyKind::Length(10)
    );
    let wire = post_with("Content-Length: 11\r\n");
    let e = request_with(&wire, &limits).unwrap_err();
    assert_eq!(
        (e, e.status_code(), e.is_limit()),
        (ParseError::BodyTooLarge, 413, true)
    );
}

#[test]
fn request_transfer_encoding_must_end_in_chunked() {
    for value in ["gzip", "chunked, gzip", "deflate", "gzip;q=1"] {
        let wire = post_with(&format!("Transfer-Encoding: {value}\r\n"));
        let e = request_error(&wire);
        assert_eq!(e, ParseError::TransferEncodingNotChunked, "{value}");
        assert_eq!(e.status_code(), 400);
    }
    // Over two lines, the last coding of the last line counts.
    let wire = post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n");
    assert_eq!(request_error(&wire), ParseError::TransferEncodingNotChunked);
    for value in ["chunked", "CHUNKED", "gzip, chunked", "x-gzip , Chunked"] {
        let wire = post_with(&format!("Transfer-Encoding: {value}\r\n"));
        assert_eq!(request(&wire).unwrap().body, BodyKind::Chunked, "{value}");
    }
    let wire = post_with("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n");
    assert_eq!(request(&wire).unwrap().body, BodyKind::Chunked);
}

#[test]
fn unknown_transfer_codings_are_501() {
    for value in ["foo", "foo, chunked", "identity", "br, chunked"] {
        let wire = post_with(&format!("Transfer-Encoding: {value}\r\n"));
        let e = request_error(&wire);
        assert_eq!(
            (e, e.status_code()),
            (ParseError::UnknownTransferCoding, 501),
            "{value}"
        );
    }
}

#[test]
fn malformed_transfer_encodings_are_refused() {
    for value in [
        "",
        "chunked, chunked",
        "chunked,,",
        ", chunked",
        "chunked;ext=1",
        "gz(ip), chunked",
    ] {
        let wire = post_with(&format!("Transfer-Encoding: {value}\r\n"));
        assert_eq!(
            request_error(&wire),
            ParseError::InvalidTransferEncoding,
            "{value:?}"
        );
    }
    let wire = post_with("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n");
    assert_eq!(request_error(&wire), ParseError::InvalidTransferEncoding);
}

#[test]
fn transfer_encoding_in_http10_is_refused() {
    let wire = b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(request_error(wire), ParseError::TransferEncodingInHttp10);
    let res = b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::TransferEncodingInHttp10));
}

#[test]
fn response_transfer_encoding_not_ending_in_chunked_reads_to_close() {
    for value in ["gzip", "chunked, gzip", "foo"] {
        let wire = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {value}\r\n\r\n");
        let head = response(wire.as_bytes()).unwrap();
        assert_eq!(
            (head.body, head.keep_alive),
            (BodyKind::CloseDelimited, false),
            "{value}"
        );
    }
    let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    assert_eq!(response(wire).unwrap().body, BodyKind::Chunked);
}

#[test]
fn obsolete_line_folding_is_refused() {
    let wire = get_with("X-Folded: a\r\n b\r\n");
    let e = request_error(&wire);
    assert_eq!((e, e.status_code()), (ParseError::ObsoleteLineFolding, 400));
    assert_eq!(
        request_error(&get_with("X-Folded: a\r\n\tb\r\n")),
        ParseError::ObsoleteLineFolding
    );
    // Whitespace between the start line and the first header (RFC 9112 §2.2).
    let wire = b"GET / HTTP/1.1\r\n Host: h\r\n\r\n";
    assert_eq!(request_error(wire), ParseError::ObsoleteLineFolding);
    let res = b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::ObsoleteLineFolding));
}

#[test]
fn nul_in_a_head_is_refused() {
    for wire in [
        &get_with("X: a\0b\r\n")[..],
        &get_with("X\0: ab\r\n"),
        b"GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"\0GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let e = parse_request(wire, &Limits::default()).unwrap_err();
        assert_eq!(
            e,
            ParseError::NulInHeader,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    assert_eq!(
        response(b"HTTP/1.1 200 O\0K\r\n\r\n"),
        Err(ParseError::NulInHeader)
    );
    // Before the head is complete, too.
    assert_eq!(
        parse_request(b"GET / HTTP/1.1\r\nX: \0", &Limits::default()),
        Err(ParseError::NulInHeader)
    );
}

#[test]
fn bare_cr_is_refused() {
    let wire = get_with("X: a\rb\r\n");
    assert_eq!(request_error(&wire), ParseError::BareCr);
    assert_eq!(
        request_error(b"GET / HTTP/1.1\rHost: h\r\n\r\n"),
        ParseError::BareCr
    );
    assert_eq!(
        request_error(b"GET / HTTP/1.1\r\nHost: h\r\n\r\r\n"),
        ParseError::BareCr
    );
    assert_eq!(
        response(b"HTTP/1.1 200 OK\r\nX: \r\r\n\r\n"),
        Err(ParseError::BareCr)
    );
}

#[test]
fn bare_lf_is_refused() {
    for wire in [
        &b"GET / HTTP/1.1\r\nHost: h\nX: b\r\n\r\n"[..],
        b"GET / HTTP/1.1\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\n",
        b"GET / HTTP/1.1\nHost: h\n\n",
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let e = request_error(wire);
        assert_eq!((e, e.status_code()), (ParseError::BareLf, 400));
    }
    assert_eq!(
        response(b"HTTP/1.1 200 OK\nContent-Length: 0\n\n"),
        Err(ParseError::BareLf)
    );
}

#[test]
fn control_characters_in_header_values_are_refused() {
    for c in (1u8..0x20)
        .filter(|&c| c != b'\t' && c != b'\r' && c != b'\n')
        .chain([0x7f])
    {
        let mut wire = b"GET / HTTP/1.1\r\nHost: h\r\nX: a".to_vec();
        wire.extend([c, b'b']);
        wire.extend(b"\r\n\r\n");
        assert_eq!(
            request_error(&wire),
            ParseError::InvalidHeaderValue,
            "byte {c:#04x}"
        );
    }
    // HTAB and obs-text are allowed.
    let head = request(&get_with("X: a\tb \u{e9}\r\n")).unwrap();
    assert_eq!(head.headers.get("x"), Some("a\tb \u{e9}".as_bytes()));
}

#[test]
fn invalid_header_names_are_refused() {
    for name in [
        "X Y", "X(", "X@", "X/", "[X]", "X\"", "\u{e9}", "X\t", "Host ",
    ] {
        let wire = get_with(&format!("{name}: v\r\n"));
        let e = request_error(&wire);
        assert_eq!(
            (e, e.status_code()),
            (ParseError::InvalidHeaderName, 400),
            "{name:?}"
        );
    }
    for line in [": v", "NoColon", "X;: v"] {
        let wire = get_with(&format!("{line}\r\n"));
        assert_eq!(
            request_error(&wire),
            ParseError::InvalidHeaderName,
            "{line:?}"
        );
    }
    // Whitespace before the colon is refused in responses too (RFC 9112 §5.1).
    let res = b"HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::InvalidHeaderName));
}

#[test]
fn invalid_methods_are_refused() {
    for method in ["G(T", "GE\"T", "G@T", "GÉT", "{GET}"] {
        let wire = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
        let e = request_error(wire.as_bytes());
        assert_eq!(
            (e, e.status_code()),
            (ParseError::InvalidMethod, 400),
            "{method}"
        );
    }
    assert_eq!(
        request_error(b" / HTTP/1.1\r\nHost: h\r\n\r\n"),
        ParseError::InvalidMethod
    );
    // Any token is a method.
    let head = request(b"PURGE / HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(head.method.as_str(), "PURGE");
}

#[test]
fn malformed_request_lines_are_refused() {
    for wire in [
        &b"GET  / HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /  HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET\r\n\r\n",
    ] {
        let e = request_error(wire);
        assert_eq!(
            e,
            ParseError::InvalidRequestLine,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
    for wire in [
        &b"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: h\r\n\r\n",
    ] {
        let e = request_error(wire);
        assert_eq!(
            e,
            ParseError::InvalidTarget,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn request_target_over_the_limit_is_414() {
    let limits = Limits::default().with_max_request_target(16);
    let ok = b"GET /123456789012345 HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_eq!(request_with(ok, &limits).unwrap().target.len(), 16);
    let long = b"GET /1234567890123456 HTTP/1.1\r\nHost: h\r\n\r\n";
    let e = request_with(long, &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::UriTooLong, 414));
    // Refused as soon as the 17th target byte arrives, before the line ends.
    assert_eq!(
        parse_request(&long[..21], &limits),
        Err(ParseError::UriTooLong)
    );
    assert_eq!(parse_request(&long[..20], &limits), Ok(Status::Partial));
    // The default limit: 8000 bytes.
    let target = format!("/{}", "a".repeat(8000));
    let wire = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(request_error(wire.as_bytes()), ParseError::UriTooLong);
}

#[test]
fn too_many_headers_is_431() {
    let limits = Limits::default().with_max_headers(3);
    let ok = get_with("A: 1\r\nB: 2\r\n");
    assert_eq!(request_with(&ok, &limits).unwrap().headers.len(), 3);
    let wire = get_with("A: 1\r\nB: 2\r\nC: 3\r\n");
    let e = request_with(&wire, &limits).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::TooManyHeaders, 431));
    // Refused as soon as the extra line ends, before the head does.
    let partial = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
    assert_eq!(
        parse_request(partial, &limits),
        Err(ParseError::TooManyHeaders)
    );
    // The default limit: 100.
    let many: String = (0..100).map(|i| format!("X-{i}: v\r\n")).collect();
    assert_eq!(request_error(&get_with(&many)), ParseError::TooManyHeaders);
    let res = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    let res_limits = Limits::default().with_max_headers(3);
    assert_eq!(
        crate::response_bytewise(res, &res_limits, &Method::Get),
        Err(ParseError::TooManyHeaders)
    );
}

#[test]
fn header_section_over_the_limit_is_431() {
    let wire = get_with(&format!("X: {}\r\n", "v".repeat(100)));
    let exact = Limits::default().with_max_header_bytes(wire.len());
    assert!(request_with(&wire, &exact).is_ok());
    let short = Limits::default().with_max_header_bytes(wire.len() - 1);
    let e = parse_request(&wire, &short).unwrap_err();
    assert_eq!((e, e.status_code()), (ParseError::HeaderTooLarge, 431));
    // An endless head is refused once it passes the limit, not when it ends.
    let limits = Limits::default().with_max_header_bytes(64);
    let mut slow = b"GET / HTTP/1.1\r\nX: ".to_vec();
    slow.resize(64, b'v');
    assert_eq!(parse_request(&slow, &limits), Ok(Status::Partial));
    slow.push(b'v');
    assert_eq!(
        parse_request(&slow, &limits),
        Err(ParseError::HeaderTooLarge)
    );
    assert_eq!(
        request_bytewise(&slow, &limits),
        Err(ParseError::HeaderTooLarge)
    );
    // The default limit: 16 KiB.
    let huge = get_with(&format!("X: {}\r\n", "v".repeat(16 * 1024)));
    assert_eq!(request_error(&huge), ParseError::HeaderTooLarge);
}

#[test]
fn versions_other_than_1_0_and_1_1_are_505() {
    for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
        let wire = format!("GET / {version}\r\nHost: h\r\n\r\n");
        let e = request_error(wire.as_bytes());
        assert_eq!(
            (e, e.status_code()),
            (ParseError::UnsupportedVersion, 505),
            "{version}"
        );
    }
    let res = b"HTTP/2.0 200 OK\r\n\r\n";
    assert_eq!(response(res), Err(ParseError::UnsupportedVersion));
}

#[test]
fn malformed_versions_are_400() {
    for version in [
        "http/1.1",
        "HTTP/1",
        "HTTP/1.10",
        "HTTP/11",
        "HTTPS/1.1",
        "HTTP/a.b",
    ] {
        let wire = format!("GET / {version}\r\nHost: h\r\n\r\n");
        let e = request_error(wire.as_bytes());
        assert_eq!(
            (e, e.status_code()),
            (ParseError::InvalidVersion, 400),
            "{version}"
        );
    }
    assert_eq!(
        response(b"ICY 200 OK\r\n\r\n"),
        Err(ParseError::InvalidVersion)
    );
}

#[test]
fn http11_requests_need_exactly_one_host() {
    let e = request_error(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!((e, e.status_code()), (ParseError::MissingHost, 400));
    assert_eq!(
        request_error(b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"),
        ParseError::MultipleHost
    );
    assert_eq!(
        request_error(b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"),
        ParseError::MultipleHost
    );
    assert!(request(b"GET / HTTP/1.0\r\n\r\n").is_ok());
}

#[test]
fn expectations_other_than_100_continue_are_417() {
    let e = request_error(&post_with(
        "Expect: the-unexpected\r\nContent-Length: 1\r\n",
    ));
    assert_eq!((e, e.status_code()), (ParseError::ExpectationFailed, 417));
    let head = request(&post_with("Expect: 100-Continue\r\nContent-Length: 1\r\n")).unwrap();
    assert!(head.expect_continue);
    // RFC 9110 §10.1.1: ignored in HTTP/1.0.
    let wire = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n";
    assert!(!request(wire).unwrap().expect_continue);
}

#[test]
fn malformed_status_lines_are_refused() {
    for wire in [
        &b"HTTP/1.1 099 Low\r\n\r\n"[..],
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1  200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x01K\r\n\r\n",
    ] {
        let e = response(wire).unwrap_err();
        assert_eq!(
            e,
            ParseError::InvalidStatusLine,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn each_error_has_its_status_and_message() {
    let all = [
        (ParseError::HeaderTooLarge, 431),
        (ParseError::TooManyHeaders, 431),
        (ParseError::UriTooLong, 414),
        (ParseError::InvalidMethod, 400),
        (ParseError::InvalidTarget, 400),
        (ParseError::InvalidRequestLine, 400),
        (ParseError::InvalidStatusLine, 400),
        (ParseError::InvalidVersion, 400),
        (ParseError::UnsupportedVersion, 505),
        (ParseError::InvalidHeaderName, 400),
        (ParseError::InvalidHeaderValue, 400),
        (ParseError::NulInHeader, 400),
        (ParseError::BareCr, 400),
        (ParseError::BareLf, 400),
        (ParseError::ObsoleteLineFolding, 400),
        (ParseError::ContentLengthWithTransferEncoding, 400),
        (ParseError::InvalidContentLength, 400),
        (ParseError::ConflictingContentLength, 400),
        (ParseError::TransferEncodingNotChunked, 400),
        (ParseError::UnknownTransferCoding, 501),
        (ParseError::InvalidTransferEncoding, 400),
        (ParseError::TransferEncodingInHttp10, 400),
        (ParseError::MissingHost, 400),
        (ParseError::MultipleHost, 400),
        (ParseError::ExpectationFailed, 417),
        (ParseError::BodyTooLarge, 413),
        (ParseError::InvalidChunkSize, 400),
        (ParseError::ChunkSizeTooLong, 400),
        (ParseError::InvalidChunkExtension, 400),
        (ParseError::ChunkExtensionTooLong, 400),
        (ParseError::MissingChunkCrlf, 400),
        (ParseError::IncompleteBody, 400),
    ];
    let mut messages = std::collections::HashSet::new();
    for (e, code) in all {
        assert_eq!(e.status_code(), code, "{e:?}");
        let msg = e.to_string();
        assert!(
            !msg.is_empty() && msg == msg.to_lowercase() && !msg.ends_with('.'),
            "{msg}"
        );
        assert!(messages.insert(msg), "{e:?} shares its message");
    }
}

#[test]
fn response_to_head_ignores_malformed_framing_only_where_it_may() {
    // A HEAD response's Content-Length is not a body length, but it still must be valid.
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n";
    assert_eq!(
        response_to(&Method::Head, wire).unwrap().body,
        BodyKind::None
    );
    let wire = b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n";
    assert_eq!(
        response_to(&Method::Head, wire),
        Err(ParseError::InvalidContentLength)
    );
}
