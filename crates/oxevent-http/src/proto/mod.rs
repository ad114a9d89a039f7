//! The HTTP/1.1 wire protocol: message heads, body framing and encoders, as pure logic over
//! byte slices.
//!
//! Nothing here does I/O. The connection layer feeds bytes in as they arrive and gets back
//! either "need more" ([`Status::Partial`]), a parsed head and how many bytes it used, body
//! pieces, or a typed [`ParseError`] that carries the status code to reply with
//! ([`ParseError::status_code`]).
//!
//! # Pieces
//!
//! - Heads: [`RequestParser`] / [`parse_request`] for servers, [`ResponseParser`] /
//!   [`parse_response`] for clients. A head carries its [`Method`], target or status,
//!   [`Version`], ordered [`Headers`] and the framing derived from them: [`BodyKind`],
//!   keep-alive and `Expect: 100-continue`.
//! - Bodies: [`LengthDecoder`], [`ChunkedDecoder`] and [`CloseDelimitedDecoder`], or
//!   [`BodyDecoder`] to pick one from a [`BodyKind`]. They stream: input may be split at any
//!   byte, and data comes out as sub-slices of the input, never copied or buffered.
//! - Encoders: [`encode_request_head`], [`encode_response_head`], [`ChunkHeader`],
//!   [`encode_chunk`] and [`encode_last_chunk`]. They refuse CR, LF and NUL where they would
//!   let a caller inject header lines ([`EncodeError`]).
//!
//! # Strictness
//!
//! The parsers follow RFC 9112 where it allows a choice, and always pick the choice that
//! closes a request-smuggling or response-splitting door. Each rule below is a distinct
//! [`ParseError`] variant, and each has a test:
//!
//! - `Content-Length` together with `Transfer-Encoding`; `Content-Length` values that differ
//!   (repeated identical values, also as a comma list, are accepted, RFC 9110 §8.6) or are
//!   malformed (signs, inner spaces, non-digits, overflow, empty list elements);
//! - a `Transfer-Encoding` in an HTTP/1.0 message; one whose final coding is not `chunked`
//!   (400 for requests; responses fall back to close-delimited bodies as RFC 9112 §6.3
//!   says), one that names a coding we do not know (501 for requests), or `chunked` twice;
//! - obsolete line folding, and whitespace lines between the start line and the headers;
//! - NUL, a bare CR or a bare LF anywhere in a head (only CRLF ends a line);
//! - invalid token characters in header names and methods, whitespace before a colon;
//! - a request target over [`Limits::max_request_target`] (414), more headers than
//!   [`Limits::max_headers`] (431), a head over [`Limits::max_header_bytes`] (431);
//! - an HTTP version other than 1.0 and 1.1 (505) or a malformed one (400);
//! - an HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2), an `Expect` other than
//!   `100-continue` (417, as libevent answers);
//! - in chunked bodies: sizes with signs, `0x`, whitespace before them or more than
//!   [`Limits::max_chunk_size_digits`] digits, extensions over
//!   [`Limits::max_chunk_extension`], anything but CRLF after chunk data, and malformed
//!   trailers (trailers are read and discarded under the head limits);
//! - bodies over [`Limits::max_body`] (413), refused at the head when the length is declared.
//!
//! The heads are tokenised by `httparse`, and this module is the only place in the workspace
//! that uses it. `httparse` is lenient where RFC 9112 allows leniency (bare LF line endings,
//! any bytes in targets), so a line scanner runs first and the framing rules run after.

mod body;
mod date;
mod encode;
mod error;
mod framing;
mod head;
mod headers;
#[cfg(test)]
mod lenience;
mod limits;
mod scan;
mod status;
mod token;

pub use body::{BodyDecoder, ChunkedDecoder, CloseDelimitedDecoder, Decoded, LengthDecoder, Step};
pub use date::HttpDate;
pub use encode::{
    CHUNK_END, ChunkHeader, LAST_CHUNK, encode_chunk, encode_last_chunk, encode_request_head,
    encode_response_head,
};
pub use error::{EncodeError, ParseError};
pub use framing::BodyKind;
pub use head::{
    ExtensionMethod, Method, RequestHead, RequestParser, ResponseHead, ResponseParser, Status,
    Version, parse_request, parse_response,
};
pub use headers::{Headers, Iter};
pub use limits::Limits;
pub use status::reason_phrase;
pub(crate) use token::{is_field_byte, list_elements};
