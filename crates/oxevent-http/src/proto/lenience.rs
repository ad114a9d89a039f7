//! What `httparse` alone says about each strictness rule, pinned so that an `httparse`
//! upgrade that changes it shows up here. Where it accepts, the rule is ours (the scanner in
//! `scan.rs` or the framing in `framing.rs`); where it refuses, we still classify the error
//! ourselves, so that each rule gets its own [`ParseError`](super::ParseError) variant.

use httparse::{EMPTY_HEADER, Error, Request, Response, Status};

/// `Ok(true)` for a complete head, `Ok(false)` for a partial one.
fn request(wire: &[u8]) -> Result<bool, Error> {
    let mut headers = [EMPTY_HEADER; 8];
    Request::new(&mut headers)
        .parse(wire)
        .map(|s| s.is_complete())
}

fn response(wire: &[u8]) -> Result<bool, Error> {
    let mut headers = [EMPTY_HEADER; 8];
    Response::new(&mut headers)
        .parse(wire)
        .map(|s| s.is_complete())
}

#[test]
fn httparse_leaves_framing_to_us() {
    // Content-Length with Transfer-Encoding, conflicting or malformed lengths, codings.
    for extra in [
        &b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"[..],
        b"Content-Length: 5\r\nContent-Length: 6\r\n",
        b"Content-Length: +5\r\n",
        b"Content-Length: 5 5\r\n",
        b"Transfer-Encoding: gzip\r\n",
        b"Transfer-Encoding: chunked, chunked\r\n",
        b"Host: a\r\nHost: b\r\n",
        b"Expect: the-unexpected\r\n",
    ] {
        let wire = [&b"POST / HTTP/1.1\r\n"[..], extra, b"\r\n"].concat();
        assert_eq!(
            request(&wire),
            Ok(true),
            "{:?}",
            String::from_utf8_lossy(extra)
        );
    }
}

#[test]
fn httparse_takes_bare_lf_as_a_line_end() {
    assert_eq!(request(b"GET / HTTP/1.1\nHost: h\nX: y\n\n"), Ok(true));
    assert_eq!(request(b"GET / HTTP/1.1\r\nHost: h\r\n\n"), Ok(true));
    assert_eq!(request(b"\nGET / HTTP/1.1\r\n\r\n"), Ok(true));
    assert_eq!(response(b"HTTP/1.1 200 OK\nX: y\n\n"), Ok(true));
}

#[test]
fn httparse_has_no_size_or_target_limits() {
    let target = "/".repeat(100_000);
    let wire = format!("GET {target} HTTP/1.1\r\nX: {target}\r\n\r\n");
    assert_eq!(request(wire.as_bytes()), Ok(true));
    // Its header limit is only the slots it is given.
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(9));
    assert_eq!(request(many.as_bytes()), Err(Error::TooManyHeaders));
}

#[test]
fn httparse_refuses_but_without_saying_which_rule() {
    // Obsolete folding and whitespace before the first header look like bad names.
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n"),
        Err(Error::HeaderName)
    );
    assert_eq!(
        request(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n"),
        Err(Error::HeaderName)
    );
    // NUL and bare CR look like bad values.
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nX: a\0b\r\n\r\n"),
        Err(Error::HeaderValue)
    );
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"),
        Err(Error::HeaderValue)
    );
    // A wrong version and a malformed one are the same error (we answer 505 and 400).
    assert_eq!(request(b"GET / HTTP/2.0\r\n\r\n"), Err(Error::Version));
    assert_eq!(request(b"GET / http/1.1\r\n\r\n"), Err(Error::Version));
    // A bad method, a bad target and a doubled space are all `Token`.
    assert_eq!(request(b"G(T / HTTP/1.1\r\n\r\n"), Err(Error::Token));
    assert_eq!(request(b"GET /\x7f HTTP/1.1\r\n\r\n"), Err(Error::Token));
    assert_eq!(request(b"GET  / HTTP/1.1\r\n\r\n"), Err(Error::Token));
}

#[test]
fn httparse_refuses_what_we_refuse_for_the_same_reason() {
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nX Y: v\r\n\r\n"),
        Err(Error::HeaderName)
    );
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"),
        Err(Error::HeaderName)
    );
    assert_eq!(
        request(b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"),
        Err(Error::HeaderValue)
    );
    assert_eq!(response(b"HTTP/1.1 2x0 OK\r\n\r\n"), Err(Error::Status));
}

#[test]
fn httparse_hides_reasons_with_obs_text() {
    let mut headers = [EMPTY_HEADER; 1];
    let mut res = Response::new(&mut headers);
    assert_eq!(
        res.parse(b"HTTP/1.1 200 Tr\xe8s bien\r\n\r\n"),
        Ok(Status::Complete(26))
    );
    assert_eq!(res.reason, Some(""));
}
