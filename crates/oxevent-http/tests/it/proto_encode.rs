//! The encoders: what they write, and that they refuse header injection.

use oxevent_http::proto::{
    EncodeError, Headers, LAST_CHUNK, Method, Version, encode_chunk, encode_last_chunk,
    encode_request_head, encode_response_head,
};

fn fields(pairs: &[(&str, &[u8])]) -> Headers {
    pairs.iter().copied().collect()
}

#[test]
fn request_heads_are_written_as_given() {
    let mut out = b"previous".to_vec();
    let h = fields(&[
        ("Host", b"h"),
        ("X-Many", b"1"),
        ("x-many", b"2"),
        ("Empty", b""),
    ]);
    encode_request_head(
        &"PURGE".parse().unwrap(),
        "/p?q",
        Version::Http10,
        &h,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        b"previousPURGE /p?q HTTP/1.0\r\nHost: h\r\nX-Many: 1\r\nx-many: 2\r\nEmpty: \r\n\r\n"
    );
}

#[test]
fn response_heads_are_written_as_given() {
    let mut out = Vec::new();
    encode_response_head(Version::Http11, 200, "OK", &Headers::new(), &mut out).unwrap();
    assert_eq!(out, b"HTTP/1.1 200 OK\r\n\r\n");
    out.clear();
    let h = fields(&[("Content-Length", b"0")]);
    encode_response_head(Version::Http10, 999, "", &h, &mut out).unwrap();
    assert_eq!(out, b"HTTP/1.0 999 \r\nContent-Length: 0\r\n\r\n");
}

#[test]
fn header_injection_through_values_is_refused() {
    for value in [
        &b"a\r\nInjected: 1"[..],
        b"a\nInjected: 1",
        b"a\rInjected: 1",
        b"a\0b",
        b"a\x01b",
        b"a\x7fb",
        b"\r\n\r\nGET /smuggled HTTP/1.1",
    ] {
        let h = fields(&[("Host", b"h"), ("X", value)]);
        let mut out = b"kept".to_vec();
        let e = encode_request_head(&Method::Get, "/", Version::Http11, &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidHeaderValue), "{value:?}");
        let e = encode_response_head(Version::Http11, 200, "OK", &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidHeaderValue), "{value:?}");
        assert_eq!(
            encode_last_chunk(&h, &mut out),
            Err(EncodeError::InvalidHeaderValue)
        );
        assert_eq!(out, b"kept", "nothing written on error");
    }
    // HTAB and obs-text are field bytes.
    let h = fields(&[("X", b"a\tb\xff")]);
    let mut out = Vec::new();
    encode_response_head(Version::Http11, 200, "OK", &h, &mut out).unwrap();
}

#[test]
fn header_injection_through_names_is_refused() {
    for name in [
        "X\r\nInjected",
        "X\n",
        "X\r",
        "X\0",
        "X Y",
        "X:",
        "",
        "\u{e9}",
    ] {
        let mut h = Headers::new();
        h.append(name, "v");
        let mut out = Vec::new();
        let e = encode_request_head(&Method::Get, "/", Version::Http11, &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidHeaderName), "{name:?}");
        let e = encode_response_head(Version::Http11, 200, "OK", &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidHeaderName), "{name:?}");
        assert!(out.is_empty());
    }
}

#[test]
fn bad_targets_reasons_and_statuses_are_refused() {
    let h = Headers::new();
    let mut out = Vec::new();
    for target in ["", "/a b", "/a\r\nX: y", "/\0", "/\t", "/\x7f"] {
        let e = encode_request_head(&Method::Get, target, Version::Http11, &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidTarget), "{target:?}");
    }
    for reason in ["O\r\nK", "O\nK", "\0", "\x1b[31m"] {
        let e = encode_response_head(Version::Http11, 200, reason, &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidReason), "{reason:?}");
    }
    for status in [0, 99, 1000, u16::MAX] {
        let e = encode_response_head(Version::Http11, status, "X", &h, &mut out);
        assert_eq!(e, Err(EncodeError::InvalidStatus), "{status}");
    }
    assert!(out.is_empty());
    assert_eq!(
        EncodeError::InvalidTarget.to_string(),
        "invalid request target"
    );
}

#[test]
fn a_chunked_body_is_chunks_then_the_last_chunk() {
    let mut out = Vec::new();
    encode_chunk(b"hello", &mut out);
    encode_chunk(&[b'x'; 300], &mut out);
    out.extend_from_slice(LAST_CHUNK);
    let mut want = b"5\r\nhello\r\n12c\r\n".to_vec();
    want.extend([b'x'; 300]);
    want.extend(b"\r\n0\r\n\r\n");
    assert_eq!(out, want);
}
