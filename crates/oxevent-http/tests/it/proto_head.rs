//! What valid heads parse to: fields, framing, keep-alive, and where the next message starts.

use oxevent_http::proto::{
    BodyKind, Limits, Method, ParseError, ResponseParser, Status, Version, parse_request,
};

use crate::{request, response, response_to};

#[test]
fn a_simple_get() {
    let wire = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";
    let Status::Complete(head, used) = parse_request(wire, &Limits::default()).unwrap() else {
        panic!("incomplete");
    };
    assert_eq!(used, wire.len());
    assert_eq!(head.method, Method::Get);
    assert_eq!(head.target, "/index.html?q=1");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(head.body, BodyKind::None);
    assert!(head.keep_alive);
    assert!(!head.expect_continue);
    let fields: Vec<(&str, &[u8])> = head.headers.iter().collect();
    assert_eq!(fields, [("Host", &b"example.com"[..]), ("Accept", b"*/*")]);
}

#[test]
fn headers_keep_order_and_repeats_and_look_up_case_insensitively() {
    let wire = b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B:3\r\nX-A:   4  \r\n\r\n";
    let head = request(wire).unwrap();
    let all: Vec<&[u8]> = head.headers.get_all("X-a").collect();
    assert_eq!(all, [&b"1"[..], b"2", b"4"]);
    assert_eq!(head.headers.get("x-b"), Some(&b"3"[..]));
    assert_eq!(head.headers.get_str("HOST"), Some("h"));
    assert!(!head.headers.contains("x-c"));
    let names: Vec<&str> = head.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["Host", "X-A", "x-a", "X-B", "X-A"]);
}

#[test]
fn empty_header_values_are_kept() {
    let head = request(b"GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Blank:   \r\n\r\n").unwrap();
    assert_eq!(head.headers.get("x-empty"), Some(&b""[..]));
    assert_eq!(head.headers.get("x-blank"), Some(&b""[..]));
}

#[test]
fn keep_alive_follows_version_and_connection() {
    let cases: [(&[u8], bool); 7] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n",
            false,
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true),
        (
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nConnection: close\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
            true,
        ),
    ];
    for (wire, keep_alive) in cases {
        let head = request(wire).unwrap();
        assert_eq!(
            head.keep_alive,
            keep_alive,
            "{:?}",
            String::from_utf8_lossy(wire)
        );
    }
}

#[test]
fn leading_empty_lines_are_skipped() {
    let wire = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let Status::Complete(head, used) = parse_request(wire, &Limits::default()).unwrap() else {
        panic!("incomplete");
    };
    assert_eq!((head.target.as_str(), used), ("/", wire.len()));
}

#[test]
fn pipelined_requests_parse_one_after_the_other() {
    let wire = b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /2 HTTP/1.1\r\nHost: h\r\n\
                 Content-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: h\r\n\r\n";
    let limits = Limits::default();
    let mut rest = &wire[..];
    let mut seen = Vec::new();
    while !rest.is_empty() {
        let Status::Complete(head, used) = parse_request(rest, &limits).unwrap() else {
            panic!("incomplete");
        };
        rest = &rest[used..];
        if let BodyKind::Length(n) = head.body {
            rest = &rest[n as usize..];
        }
        seen.push(head.target);
    }
    assert_eq!(seen, ["/1", "/2", "/3"]);
}

#[test]
fn all_target_forms_and_methods_parse() {
    for (wire, method, target) in [
        (
            &b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"[..],
            Method::Options,
            "*",
        ),
        (
            b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
            Method::Connect,
            "h:443",
        ),
        (
            b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n",
            Method::Get,
            "http://h/x",
        ),
        (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Head, "/"),
        (b"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Put, "/"),
        (b"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Delete, "/"),
        (b"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Trace, "/"),
        (b"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", Method::Patch, "/"),
        (
            b"POST /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
            Method::Post,
            "/\u{e9}",
        ),
    ] {
        let head = request(wire).unwrap();
        assert_eq!((head.method, head.target.as_str()), (method, target));
    }
    let head = request(b"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
    assert_eq!(head.method, "M-SEARCH".parse().unwrap());
}

#[test]
fn response_framing_follows_rfc_9112_section_6_3() {
    let cases: [(&Method, &[u8], BodyKind, bool); 12] = [
        (
            &Method::Get,
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
            BodyKind::Length(12),
            true,
        ),
        (
            &Method::Head,
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Head,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 100 Continue\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Connect,
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            BodyKind::None,
            true,
        ),
        (
            &Method::Connect,
            b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n",
            BodyKind::Length(0),
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 200 OK\r\n\r\n",
            BodyKind::CloseDelimited,
            false,
        ),
        (
            &Method::Get,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            BodyKind::Chunked,
            true,
        ),
        (
            &Method::Get,
            b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
            BodyKind::Length(0),
            true,
        ),
    ];
    for (method, wire, body, keep_alive) in cases {
        let head = response_to(method, wire).unwrap();
        assert_eq!(
            (head.body, head.keep_alive),
            (body, keep_alive),
            "{method} {:?}",
            String::from_utf8_lossy(wire)
        );
    }
    let head = response(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert!(!head.keep_alive);
    let head = response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    assert!(!head.unwrap().keep_alive);
}

#[test]
fn status_lines_and_reasons() {
    let head = response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(
        (head.version, head.status, head.reason.as_str()),
        (Version::Http11, 404, "Not Found")
    );
    let head = response(b"HTTP/1.0 200\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(
        (head.version, head.status, head.reason.as_str()),
        (Version::Http10, 200, "")
    );
    let head = response(b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(head.reason, "");
    // Reasons with obs-text are kept (lossily), not dropped as httparse does.
    let head = response(b"HTTP/1.1 200 Tr\xe8s bien\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!(head.reason, "Tr\u{fffd}s bien");
    let head = response(b"HTTP/1.1 599 Custom\tReason\r\nContent-Length: 0\r\n\r\n").unwrap();
    assert_eq!((head.status, head.reason.as_str()), (599, "Custom\tReason"));
}

#[test]
fn interim_responses_are_followed_by_the_final_one() {
    let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut parser = ResponseParser::new(Limits::default(), &Method::Post);
    let Status::Complete(interim, used) = parser.parse(wire).unwrap() else {
        panic!("incomplete");
    };
    assert_eq!((interim.status, interim.body), (100, BodyKind::None));
    let Status::Complete(last, used2) = parser.parse(&wire[used..]).unwrap() else {
        panic!("incomplete");
    };
    assert_eq!((last.status, last.body), (200, BodyKind::Length(2)));
    assert_eq!(&wire[used + used2..], b"ok");
}

#[test]
fn a_parser_restarts_after_a_complete_head_or_an_error() {
    let limits = Limits::default();
    let mut parser = oxevent_http::proto::RequestParser::new(limits);
    assert_eq!(
        parser.parse(b"GET / HTTP/1.1\r\nX: \x01\r\n"),
        Ok(Status::Partial)
    );
    assert_eq!(
        parser.parse(b"GET / HTTP/1.1\r\nX: \x01\r\nHost: h\r\n\r\n"),
        Err(ParseError::InvalidHeaderValue)
    );
    assert!(matches!(
        parser.parse(b"GET /again HTTP/1.1\r\nHost: h\r\n\r\n"),
        Ok(Status::Complete(head, _)) if head.target == "/again"
    ));
    // A shorter buffer than last time starts over too.
    assert_eq!(
        parser.parse(b"GET /a-target-longer-than-the-next-request-is"),
        Ok(Status::Partial)
    );
    assert!(matches!(
        parser.parse(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
        Ok(Status::Complete(head, _)) if head.target == "/b"
    ));
    assert_eq!(parser.limits(), &limits);
}
