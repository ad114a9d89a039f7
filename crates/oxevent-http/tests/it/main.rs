//! Integration tests of `oxevent-http`: one binary, one module per topic.
//!
//! - `proto_head`: what a valid head parses to (framing, keep-alive, lookups);
//! - `proto_strict`: one test per strictness rule of the head parsers;
//! - `proto_chunked`: the chunked decoder's rules, and the other body decoders;
//! - `proto_encode`: the encoders, header injection above all;
//! - `proto_model`: properties (incremental equals whole, encode then parse is identity).

mod client;
#[cfg(feature = "openssl")]
mod client_https;
mod proto_chunked;
mod proto_encode;
mod proto_head;
mod proto_model;
mod proto_strict;
mod server;
mod uri;

use oxevent_http::proto::{
    BodyDecoder, BodyKind, Decoded, Limits, Method, ParseError, RequestHead, RequestParser,
    ResponseHead, ResponseParser, Status, parse_request, parse_response,
};

/// Parses a complete request head with `limits`; panics if it is incomplete.
pub(crate) fn request_with(wire: &[u8], limits: &Limits) -> Result<RequestHead, ParseError> {
    match parse_request(wire, limits)? {
        Status::Complete(head, _) => Ok(head),
        Status::Partial => panic!("incomplete head: {:?}", String::from_utf8_lossy(wire)),
    }
}

/// Parses a complete request head with the default limits.
pub(crate) fn request(wire: &[u8]) -> Result<RequestHead, ParseError> {
    request_with(wire, &Limits::default())
}

/// The error a request head gets with the default limits; panics if it parses.
pub(crate) fn request_error(wire: &[u8]) -> ParseError {
    match request(wire) {
        Err(e) => e,
        Ok(head) => panic!("accepted {:?}: {head:?}", String::from_utf8_lossy(wire)),
    }
}

/// Parses a complete response head to a `method` request with the default limits.
pub(crate) fn response_to(method: &Method, wire: &[u8]) -> Result<ResponseHead, ParseError> {
    match parse_response(wire, &Limits::default(), method)? {
        Status::Complete(head, _) => Ok(head),
        Status::Partial => panic!("incomplete head: {:?}", String::from_utf8_lossy(wire)),
    }
}

/// Parses a complete response head to a GET with the default limits.
pub(crate) fn response(wire: &[u8]) -> Result<ResponseHead, ParseError> {
    response_to(&Method::Get, wire)
}

/// Feeds `wire` to one `RequestParser` one byte more at a time, as a connection would;
/// returns the first non-partial result, or `Partial` if the bytes run out.
pub(crate) fn request_bytewise(
    wire: &[u8],
    limits: &Limits,
) -> Result<Status<RequestHead>, ParseError> {
    let mut parser = RequestParser::new(*limits);
    for end in 1..=wire.len() {
        match parser.parse(&wire[..end])? {
            Status::Partial => {}
            done => return Ok(done),
        }
    }
    Ok(Status::Partial)
}

/// As [`request_bytewise`], for responses to `method`.
pub(crate) fn response_bytewise(
    wire: &[u8],
    limits: &Limits,
    method: &Method,
) -> Result<Status<ResponseHead>, ParseError> {
    let mut parser = ResponseParser::new(*limits, method);
    for end in 1..=wire.len() {
        match parser.parse(&wire[..end])? {
            Status::Partial => {}
            done => return Ok(done),
        }
    }
    Ok(Status::Partial)
}

/// Decodes a body of `kind` from `pieces` fed in turn (each piece only once, as from a
/// socket, with any unconsumed bytes carried over to the next piece); returns the body, the
/// total consumed and whether it ended.
pub(crate) fn decode_pieces(
    kind: BodyKind,
    limits: &Limits,
    pieces: &[&[u8]],
) -> Result<(Vec<u8>, Decoded), ParseError> {
    let mut decoder = BodyDecoder::new(kind, limits);
    let mut body = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let d = decoder.decode(piece, &mut |data| body.extend_from_slice(data))?;
        consumed += d.consumed;
        if d.done {
            return Ok((
                body,
                Decoded {
                    consumed,
                    done: true,
                },
            ));
        }
        assert_eq!(
            d.consumed,
            piece.len(),
            "an unfinished body takes all its input"
        );
    }
    Ok((
        body,
        Decoded {
            consumed,
            done: false,
        },
    ))
}

/// Decodes a chunked body from `wire` in one piece.
pub(crate) fn chunked(wire: &[u8], limits: &Limits) -> Result<(Vec<u8>, Decoded), ParseError> {
    decode_pieces(BodyKind::Chunked, limits, &[wire])
}

/// Decodes a chunked body from `wire` one byte at a time.
pub(crate) fn chunked_bytewise(
    wire: &[u8],
    limits: &Limits,
) -> Result<(Vec<u8>, Decoded), ParseError> {
    let pieces: Vec<&[u8]> = wire.chunks(1).collect();
    decode_pieces(BodyKind::Chunked, limits, &pieces)
}
