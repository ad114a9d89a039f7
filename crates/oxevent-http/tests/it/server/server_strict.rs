//! Every strict-parsing rule of the issue, through a real socket: the server answers with
//! the error status and closes the connection.

use std::time::Duration;

use oxevent_test_support::Watchdog;

use super::harness::{TestServer, exchange_to_close, header, status};

fn server() -> TestServer {
    TestServer::start(|base, server| {
        server
            .set_gencb(base, |base, mut req| {
                let n = req.take_body().len();
                req.send_reply(base, 200, format!("got {n}")).unwrap();
            })
            .unwrap();
    })
}

/// Sends `wire`, expects `code` and a closed connection.
fn refused(server: &TestServer, wire: &[u8], code: u16) {
    let text = exchange_to_close(server, wire);
    assert_eq!(
        status(&text),
        code,
        "{:?} got {text:?}",
        String::from_utf8_lossy(wire)
    );
    assert_eq!(header(&text, "connection"), Some("close"), "{text}");
}

#[test]
fn framing_rules() {
    let _w = Watchdog::new("strict framing", Duration::from_secs(60));
    let s = server();
    let cases: &[(&str, &[u8], u16)] = &[
        (
            "content-length with transfer-encoding",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "differing content-lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
        ),
        (
            "differing content-lengths in a list",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
            400,
        ),
        (
            "signed content-length",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
            400,
        ),
        (
            "content-length with inner space",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\nhello",
            400,
        ),
        (
            "non-numeric content-length",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
            400,
        ),
        (
            "transfer-encoding not ending in chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
            400,
        ),
        (
            "transfer-encoding identity",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
            501,
        ),
        (
            "chunked twice",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "transfer-encoding in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            "missing host",
            b"GET / HTTP/1.1\r\n\r\n",
            400,
        ),
        (
            "two hosts",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
    ];
    for (name, wire, code) in cases {
        eprintln!("rule: {name}");
        refused(&s, wire, *code);
    }
}

#[test]
fn chunk_size_rules() {
    let _w = Watchdog::new("strict chunks", Duration::from_secs(60));
    let s = server();
    let head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (name, chunk) in [
        ("plus sign", &b"+5\r\nhello\r\n0\r\n\r\n"[..]),
        ("minus sign", b"-5\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("17 hex digits", b"00000000000000005\r\nhello\r\n0\r\n\r\n"),
        ("no crlf after data", b"5\r\nhelloXX0\r\n\r\n"),
        ("bare lf in chunk line", b"5\nhello\r\n0\r\n\r\n"),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n"),
    ] {
        eprintln!("rule: {name}");
        let mut wire = head.to_vec();
        wire.extend_from_slice(chunk);
        refused(&s, &wire, 400);
    }
    // Trailers are read and discarded, and the connection goes on.
    let mut c = s.connect();
    std::io::Write::write_all(
        &mut c,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let (h1, b1) = super::harness::read_response(&mut c);
    let (h2, b2) = super::harness::read_response(&mut c);
    assert_eq!((status(&h1), &b1[..]), (200, &b"got 5"[..]));
    assert_eq!((status(&h2), &b2[..]), (200, &b"got 0"[..]));
}

#[test]
fn header_syntax_rules() {
    let _w = Watchdog::new("strict headers", Duration::from_secs(60));
    let s = server();
    let cases: &[(&str, &[u8], u16)] = &[
        (
            "obsolete line folding",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n",
            400,
        ),
        (
            "whitespace line before the headers",
            b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
            400,
        ),
        (
            "nul in a value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
            400,
        ),
        (
            "bare cr in a value",
            b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
            400,
        ),
        (
            "bare lf line end",
            b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
            400,
        ),
        (
            "space in a header name",
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
            400,
        ),
        (
            "space before the colon",
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            400,
        ),
        (
            "invalid name character",
            b"GET / HTTP/1.1\r\nHost: x\r\nNa(me: v\r\n\r\n",
            400,
        ),
        (
            "empty header name",
            b"GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
            400,
        ),
        (
            "invalid method token",
            b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (
            "control character in the target",
            b"GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (
            "malformed version",
            b"GET / HTTX/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
        (
            "unsupported version",
            b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
            505,
        ),
        (
            "double space in the request line",
            b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
        ),
    ];
    for (name, wire, code) in cases {
        eprintln!("rule: {name}");
        refused(&s, wire, *code);
    }
}

#[test]
fn request_target_over_the_limit() {
    let _w = Watchdog::new("strict target", Duration::from_secs(60));
    let s = server();
    let long = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    refused(&s, long.as_bytes(), 414);
}
