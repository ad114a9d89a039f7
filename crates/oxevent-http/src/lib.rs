//! HTTP/1.1 for oxevent: libevent's `evhttp`, rebuilt strict and streaming.
//!
//! # Where it sits
//!
//! ```text
//! oxevent-core  <-  oxevent-ratelim  <-  oxevent-bufferevent  <-  oxevent-http
//! ```
//!
//! The server and the client sit above `oxevent-bufferevent`: each connection is a
//! `BufferEvent` (a socket, or a TLS bufferevent for HTTPS), and this crate turns the bytes in
//! its buffers into requests and responses.
//!
//! # Modules
//!
//! - [`server`]: `evhttp`. Routes, virtual hosts, full and streaming (chunked) replies, streamed
//!   request bodies with backpressure, pipelining, limits and timeouts on everything, graceful
//!   drain, one server per thread with `SO_REUSEPORT`.
//! - [`client`]: `evhttp_connection` and `evhttp_make_request`. Keep-alive, opt-in pipelining,
//!   retries with backoff, timeouts, cancel, whole or streamed responses, typed errors; HTTPS
//!   with the `openssl` feature.
//! - [`uri`]: `evhttp_uri_*` (RFC 3986 parse and join), percent encoding, query strings, HTML
//!   escaping.
//! - [`proto`]: the HTTP/1.1 message-head parser, the body framing (decoders for
//!   `Content-Length`, chunked and close-delimited bodies) and the encoders, as pure logic over
//!   byte slices. It is strict in the ways RFC 9110 and RFC 9112 allow (and request smuggling
//!   demands), and every parser in it has limits ([`proto::Limits`]). It is the only module
//!   that touches `httparse`.
//!
//! # Example
//!
//! ```
//! use oxevent_http::proto::{BodyDecoder, BodyKind, Limits, RequestParser, Status};
//!
//! let wire = b"POST /echo HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n\
//!              5\r\nhello\r\n0\r\n\r\n";
//! let limits = Limits::default();
//! let mut parser = RequestParser::new(limits);
//! let Status::Complete(head, used) = parser.parse(wire)? else { unreachable!() };
//! assert_eq!(head.target, "/echo");
//! assert_eq!(head.body, BodyKind::Chunked);
//!
//! let mut body = Vec::new();
//! let mut decoder = BodyDecoder::new(head.body, &limits);
//! let step = decoder.decode(&wire[used..], &mut |piece| body.extend_from_slice(piece))?;
//! assert!(step.done);
//! assert_eq!(body, b"hello");
//! # Ok::<(), oxevent_http::proto::ParseError>(())
//! ```
//!
//! # Feature flags
//!
//! - `openssl`: HTTPS for the client (through `oxevent-openssl`, verification on by default).
//!   The server speaks HTTPS through its bufferevent factory ([`server::Server::set_bevcb`]).

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

pub mod client;
pub mod proto;
pub mod server;
pub mod uri;
