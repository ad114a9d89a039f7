//! [`Request`] (what a handler gets), [`Responder`] (the handle that streams a reply and
//! reads a streamed body) and [`Body`] (what a reply carries).

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::net::SocketAddr;

use bytes::Bytes;
use oxevent_bufferevent::{Buffer, BufferError, BufferEvent, FileSegment};
use oxevent_core::EventBase;

use super::ServerError;
use super::conn;
use super::route;
use crate::proto::{Headers, Method, ParseError, RequestHead, Version};
use oxevent_bufferevent::slab::Key;

/// Bodies up to this size are copied next to the reply head (one segment, one `writev`
/// slice); larger ones go to the socket by reference.
const COPY_BELOW: usize = 2048;

/// The body of a reply.
///
/// `Bytes`, [`Buffer`] and [`FileSegment`] bodies are handed to the connection's output
/// buffer by reference: nothing is copied, so one `Bytes` of 1 MiB can answer any number of
/// requests, and a file goes out with `sendfile`. Small bodies (under 2 KiB) are copied next
/// to the head, which saves a `writev` slice.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Bytes, shared.
    Bytes(Bytes),
    /// The contents of a buffer (moved, not copied).
    Buffer(Buffer),
    /// A range of a file, sent with `sendfile`.
    File(FileSegment),
}

impl Body {
    /// The body's length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Empty => 0,
            Self::Bytes(b) => b.len(),
            Self::Buffer(b) => b.len(),
            Self::File(f) => f.len(),
        }
    }

    /// Whether the body is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the body to `out`; small `Bytes` bodies are instead appended to `small`.
    pub(crate) fn append_to(self, out: &mut Buffer) -> Result<(), BufferError> {
        match self {
            Self::Empty => Ok(()),
            Self::Bytes(b) if b.len() < COPY_BELOW => out.add(&b),
            Self::Bytes(b) => out.add_bytes(b),
            Self::Buffer(mut b) => out.add_buffer(&mut b),
            Self::File(f) => out.add_file_segment(&f),
        }
    }

    /// The bytes of a small in-memory body, to be copied next to the head.
    pub(crate) fn small(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) if b.len() < COPY_BELOW => Some(b),
            _ => None,
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Self::Bytes(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Self {
        Self::Bytes(Bytes::from_static(s))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Self {
        Self::Bytes(Bytes::from(s))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Self::Bytes(Bytes::from(v))
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        Self::Bytes(b)
    }
}

impl From<Buffer> for Body {
    fn from(b: Buffer) -> Self {
        Self::Buffer(b)
    }
}

impl From<FileSegment> for Body {
    fn from(f: FileSegment) -> Self {
        Self::File(f)
    }
}

impl From<()> for Body {
    fn from((): ()) -> Self {
        Self::Empty
    }
}

/// What a streaming handler's body callback ([`Responder::set_body_cb`]) hears.
#[derive(Debug)]
#[non_exhaustive]
pub enum BodyEvent<'a> {
    /// More of the body. Drain what you consume; what is left stays for the next call, and
    /// reading from the socket pauses while too much is left (backpressure). Call
    /// [`Responder::resume_body`] after draining it outside the callback.
    Data(&'a mut Buffer),
    /// The body is complete (trailers, if any, were read and discarded).
    End,
    /// The body was cut short or malformed; the connection is closing.
    Error(ParseError),
}

/// An HTTP request received by a server (`struct evhttp_request *`), handed to a handler by
/// value. Keep it to reply later; reply exactly once.
///
/// Dropping it without a reply leaves the client waiting (as in libevent) until it gives up
/// or the connection is closed.
pub struct Request {
    head: Box<RequestHead>,
    body: Buffer,
    out: Headers,
    responder: Responder,
    peer: Option<SocketAddr>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.head.method)
            .field("target", &self.head.target)
            .field("version", &self.head.version)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn new(
        head: Box<RequestHead>,
        body: Buffer,
        responder: Responder,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self {
            head,
            body,
            out: Headers::new(),
            responder,
            peer,
        }
    }

    /// The method (`evhttp_request_get_command`).
    #[doc(alias = "evhttp_request_get_command")]
    #[must_use]
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The request target as sent (`evhttp_request_get_uri`).
    #[doc(alias = "evhttp_request_get_uri")]
    #[must_use]
    pub fn uri(&self) -> &str {
        &self.head.target
    }

    /// The request target parsed as a URI (`evhttp_request_get_evhttp_uri`): an origin-form
    /// target gives a relative reference (path and query), an absolute-form one all its
    /// parts.
    ///
    /// # Errors
    ///
    /// The parse error of a target that is not a URI reference (`*`, or an authority-form
    /// `CONNECT` target such as `example.com:443`, which is not one).
    #[doc(alias = "evhttp_request_get_evhttp_uri")]
    pub fn parsed_uri(&self) -> Result<crate::uri::Uri, crate::uri::UriError> {
        crate::uri::Uri::parse(&self.head.target)
    }

    /// The path, percent-decoded, without the query: what routes match.
    #[must_use]
    pub fn path(&self) -> Cow<'_, str> {
        route::route_path(&self.head.target)
    }

    /// The query string (after `?`, before any `#`), not decoded.
    #[must_use]
    pub fn query(&self) -> Option<&str> {
        let q = self.head.target.split_once('?')?.1;
        Some(q.split('#').next().unwrap_or(q))
    }

    /// The HTTP version.
    #[must_use]
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The whole parsed head.
    #[must_use]
    pub fn head(&self) -> &RequestHead {
        &self.head
    }

    /// The request's header fields (`evhttp_request_get_input_headers`).
    #[doc(alias = "evhttp_request_get_input_headers")]
    #[must_use]
    pub fn input_headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The header fields of the reply to come (`evhttp_request_get_output_headers`).
    #[doc(alias = "evhttp_request_get_output_headers")]
    #[must_use]
    pub fn output_headers(&self) -> &Headers {
        &self.out
    }

    /// The header fields of the reply to come, to add to. `Content-Length`,
    /// `Transfer-Encoding` and `Connection` are the server's and are replaced; `Date` and
    /// `Content-Type` are kept if set.
    pub fn output_headers_mut(&mut self) -> &mut Headers {
        &mut self.out
    }

    /// The body, complete (empty for a streaming route, see [`Responder::set_body_cb`])
    /// (`evhttp_request_get_input_buffer`).
    #[doc(alias = "evhttp_request_get_input_buffer")]
    #[must_use]
    pub fn body(&self) -> &Buffer {
        &self.body
    }

    /// The body, to drain.
    pub fn body_mut(&mut self) -> &mut Buffer {
        &mut self.body
    }

    /// Takes the body out, leaving an empty buffer.
    pub fn take_body(&mut self) -> Buffer {
        std::mem::take(&mut self.body)
    }

    /// The host the request is for, lowercased and without the port: the authority of an
    /// absolute-form target, else the `Host` header (`evhttp_request_get_host`).
    #[doc(alias = "evhttp_request_get_host")]
    #[must_use]
    pub fn host(&self) -> Option<String> {
        route::request_host(&self.head)
    }

    /// The client's address (`evhttp_connection_get_peer`); `None` on a Unix-domain socket.
    #[doc(alias = "evhttp_connection_get_peer")]
    #[must_use]
    pub fn peer(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The handle for streaming replies and bodies (`evhttp_request_get_connection`).
    #[doc(alias = "evhttp_request_get_connection")]
    #[must_use]
    pub fn responder(&self) -> Responder {
        self.responder
    }

    /// Sends a complete reply (`evhttp_send_reply`) with the standard reason phrase.
    /// `Content-Length`, `Date` and `Connection` are set, and the server's default
    /// `Content-Type` unless the handler set one; a `HEAD` request gets the head only.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone (the client left, or a timeout closed it);
    /// `InvalidInput` for a status outside 100..=999 or an output header with CR, LF or NUL.
    #[doc(alias = "evhttp_send_reply")]
    pub fn send_reply(
        self,
        base: &mut EventBase,
        status: u16,
        body: impl Into<Body>,
    ) -> io::Result<()> {
        conn::reply_full(
            base,
            self.responder,
            status,
            None,
            &self.out,
            body.into(),
            conn::Close::No,
            Some(self.head),
        )
    }

    /// As [`send_reply`](Self::send_reply), with a reason phrase of your own.
    ///
    /// # Errors
    ///
    /// As for [`send_reply`](Self::send_reply); `InvalidInput` for a reason with control
    /// characters.
    pub fn send_reply_with_reason(
        self,
        base: &mut EventBase,
        status: u16,
        reason: &str,
        body: impl Into<Body>,
    ) -> io::Result<()> {
        conn::reply_full(
            base,
            self.responder,
            status,
            Some(reason),
            &self.out,
            body.into(),
            conn::Close::No,
            Some(self.head),
        )
    }

    /// Sends an error page for `status` (`evhttp_send_error`), built by the server's error
    /// callback if it has one, else a short HTML page with `reason` (HTML-escaped) or the
    /// standard phrase.
    ///
    /// # Errors
    ///
    /// As for [`send_reply`](Self::send_reply).
    #[doc(alias = "evhttp_send_error")]
    pub fn send_error(
        self,
        base: &mut EventBase,
        status: u16,
        reason: Option<&str>,
    ) -> io::Result<()> {
        conn::reply_error(
            base,
            self.responder,
            &ServerError::Handler(status),
            reason,
            self.out,
        )
    }

    /// Starts a streaming reply (`evhttp_send_reply_start`): the head goes out now, chunked
    /// for HTTP/1.1 and close-delimited for HTTP/1.0; send the body with
    /// [`Responder::send_chunk`] and finish with [`Responder::send_end`].
    ///
    /// # Errors
    ///
    /// As for [`send_reply`](Self::send_reply).
    #[doc(alias = "evhttp_send_reply_start")]
    pub fn send_reply_start(self, base: &mut EventBase, status: u16) -> io::Result<Responder> {
        conn::reply_start(base, self.responder, status, &self.out)?;
        Ok(self.responder)
    }
}

/// A handle to the connection a request came on, valid until its reply is complete
/// (`struct evhttp_connection *`, as far as a server handler needs one). It is `Copy`: keep
/// it in timers and callbacks to stream a reply or read a streamed body.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "evhttp_connection")]
pub struct Responder {
    pub(crate) conn: Key,
    pub(crate) seq: u32,
}

impl fmt::Debug for Responder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Responder({}#{})", self.conn, self.seq)
    }
}

impl Responder {
    /// Whether the request is still waiting for (the rest of) its reply.
    #[must_use]
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        conn::live(base, self).is_ok()
    }

    /// Sends one chunk of a streaming reply (`evhttp_send_reply_chunk`). An empty body sends
    /// nothing.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone; `InvalidInput` if no streaming reply was
    /// started.
    #[doc(alias = "evhttp_send_reply_chunk")]
    pub fn send_chunk(self, base: &mut EventBase, body: impl Into<Body>) -> io::Result<()> {
        conn::reply_chunk(base, self, body.into(), None)
    }

    /// Sends a chunk, and calls `cb` once the connection's output buffer has drained to the
    /// socket: the moment to send the next one (`evhttp_send_reply_chunk_with_cb`).
    ///
    /// # Errors
    ///
    /// As for [`send_chunk`](Self::send_chunk).
    #[doc(alias = "evhttp_send_reply_chunk_with_cb")]
    pub fn send_chunk_with_cb(
        self,
        base: &mut EventBase,
        body: impl Into<Body>,
        cb: impl FnOnce(&mut EventBase, Responder) + 'static,
    ) -> io::Result<()> {
        conn::reply_chunk(base, self, body.into(), Some(Box::new(cb)))
    }

    /// Ends a streaming reply (`evhttp_send_reply_end`): the last chunk for HTTP/1.1, or
    /// closing the connection for HTTP/1.0.
    ///
    /// # Errors
    ///
    /// As for [`send_chunk`](Self::send_chunk).
    #[doc(alias = "evhttp_send_reply_end")]
    pub fn send_end(self, base: &mut EventBase) -> io::Result<()> {
        conn::reply_end(base, self)
    }

    /// Sets the callback that receives the body of a request routed with
    /// [`Server::set_streaming_cb`](super::Server::set_streaming_cb)
    /// (`evhttp_request_set_chunked_cb`). Data that arrived before is delivered at once.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone; `InvalidInput` if the request has no streamed
    /// body.
    #[doc(alias = "evhttp_request_set_chunked_cb")]
    pub fn set_body_cb(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, Responder, BodyEvent<'_>) + 'static,
    ) -> io::Result<()> {
        conn::set_body_cb(base, self, Box::new(cb))
    }

    /// Takes the streamed body received so far and not yet consumed, and resumes reading.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    pub fn take_body(self, base: &mut EventBase) -> io::Result<Buffer> {
        conn::take_body(base, self)
    }

    /// Hands what is left of the streamed body to the body callback again and resumes
    /// reading if the backlog is now small enough.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    pub fn resume_body(self, base: &mut EventBase) -> io::Result<()> {
        conn::resume_body(base, self)
    }

    /// Sets the callback that runs once the reply to this request has been completely
    /// written to the socket (`evhttp_request_set_on_complete_cb`), for example to log it
    /// or to free what the reply referred to. It runs from the loop; it does not run if
    /// the connection fails or is freed before the reply is all out. Setting it again
    /// replaces it.
    ///
    /// # Errors
    ///
    /// `NotFound` if the request has been replied to or its connection is gone.
    #[doc(alias = "evhttp_request_set_on_complete_cb")]
    pub fn set_on_complete(
        self,
        base: &mut EventBase,
        cb: impl FnOnce(&mut EventBase) + 'static,
    ) -> io::Result<()> {
        conn::set_on_complete(base, self, Box::new(cb))
    }

    /// The bytes waiting in the connection's output buffer.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    pub fn pending_output(self, base: &mut EventBase) -> io::Result<usize> {
        let bev = conn::live(base, self)?.bev;
        Ok(bev.output(base)?.len())
    }

    /// The client's address (`evhttp_connection_get_peer`).
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    #[doc(alias = "evhttp_connection_get_peer")]
    pub fn peer(self, base: &mut EventBase) -> io::Result<Option<SocketAddr>> {
        Ok(conn::live(base, self)?.peer)
    }

    /// The server the request came to (`evhttp_connection_get_server`): the one bound to
    /// the socket, also when a virtual host's callback handles the request.
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    #[doc(alias = "evhttp_connection_get_server")]
    pub fn server(self, base: &mut EventBase) -> io::Result<super::Server> {
        Ok(super::Server {
            key: conn::live(base, self)?.server,
        })
    }

    /// The connection's bufferevent (`evhttp_connection_get_bufferevent`).
    ///
    /// # Errors
    ///
    /// `NotFound` if the connection is gone.
    #[doc(alias = "evhttp_connection_get_bufferevent")]
    pub fn bufferevent(self, base: &mut EventBase) -> io::Result<BufferEvent> {
        Ok(conn::live(base, self)?.bev)
    }
}
