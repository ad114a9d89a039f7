//! `http_request_head`: arbitrary bytes into `RequestParser`. Nothing may panic; parsing in
//! two calls (split where the first byte says) must agree with parsing in one; a parsed head
//! must re-encode and parse back to itself; and its body, if any, goes through the body
//! decoder.

#![no_main]

use libfuzzer_sys::fuzz_target;
use oxevent_http::proto::{
    BodyDecoder, Limits, RequestParser, Status, encode_request_head, parse_request,
};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, wire)) = data.split_first() else {
        return;
    };
    // Small limits half of the time, so that every limit is reachable.
    let limits = if ctl & 1 == 0 {
        Limits::default()
    } else {
        Limits::default()
            .with_max_header_bytes(256)
            .with_max_headers(4)
            .with_max_request_target(32)
            .with_max_body(64)
            .with_max_chunk_extension(8)
    };
    let whole = parse_request(wire, &limits);

    let split = usize::from(ctl >> 1) * wire.len() / 127;
    let mut parser = RequestParser::new(limits);
    let incremental = match parser.parse(&wire[..split]) {
        Ok(Status::Partial) => parser.parse(wire),
        done => done,
    };
    assert_eq!(incremental, whole);

    let Ok(Status::Complete(head, used)) = whole else {
        return;
    };
    assert!(used <= wire.len() && used <= limits.max_header_bytes);

    let mut encoded = Vec::new();
    encode_request_head(
        &head.method,
        &head.target,
        head.version,
        &head.headers,
        &mut encoded,
    )
    .expect("a parsed head encodes");
    // Re-encoding may lengthen the head ("X:v" becomes "X: v").
    let roomy = limits.with_max_header_bytes(usize::MAX / 2);
    match parse_request(&encoded, &roomy) {
        Ok(Status::Complete(again, n)) => {
            assert_eq!(n, encoded.len());
            assert_eq!(again, head);
        }
        other => panic!("re-encoded head did not parse back: {other:?}"),
    }

    let mut decoder = BodyDecoder::new(head.body, &limits);
    let mut received = 0usize;
    if let Ok(d) = decoder.decode(&wire[used..], &mut |piece| received += piece.len()) {
        assert!(d.consumed <= wire.len() - used);
        assert!(received <= d.consumed);
        assert!(received as u64 <= limits.max_body);
    }
});
