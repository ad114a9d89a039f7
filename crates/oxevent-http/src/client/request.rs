//! What a client sends and gets back: [`Request`], [`Response`], [`ClientError`] and [`Flow`].

use std::fmt;
use std::io;
use std::sync::Arc;

use oxevent_core::EventBase;

use super::RequestHandle;
use crate::proto::{EncodeError, Headers, Method, ParseError, ResponseHead, Version};

/// What a request's completion callback gets.
pub type CompleteFn = Box<dyn FnOnce(&mut EventBase, Result<Response, ClientError>)>;
/// A response-head callback (see [`Request::on_head`]).
pub type HeadFn = Box<dyn FnMut(&mut EventBase, RequestHandle, &ResponseHead)>;
/// A body-chunk callback (see [`Request::on_chunk`]).
pub type ChunkFn = Box<dyn FnMut(&mut EventBase, RequestHandle, &[u8]) -> Flow>;

/// What a chunk callback wants next: more data, or a pause until
/// [`RequestHandle::resume`] (backpressure: the connection stops reading meanwhile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep delivering data.
    Continue,
    /// Stop reading from the connection until [`RequestHandle::resume`].
    Pause,
}

/// Which timeout expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// Connecting (including the name lookup) took too long.
    Connect,
    /// No response data arrived for the read timeout.
    Read,
    /// The request could not be written within the write timeout.
    Write,
}

/// Why a request failed (libevent's `enum evhttp_request_error`, with more detail).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClientError {
    /// A timeout expired (`EVREQ_HTTP_TIMEOUT`).
    Timeout(TimeoutKind),
    /// The server closed the connection before the response was complete (`EVREQ_HTTP_EOF`).
    Eof,
    /// The response head is malformed (`EVREQ_HTTP_INVALID_HEADER`).
    InvalidHeader(ParseError),
    /// The response body's framing is malformed, such as a bad chunk size.
    InvalidBody(ParseError),
    /// The response head or body is larger than the connection's limits
    /// ([`Connection::set_max_headers_size`](super::Connection::set_max_headers_size),
    /// [`Connection::set_max_body_size`](super::Connection::set_max_body_size);
    /// `EVREQ_HTTP_DATA_TOO_LONG`).
    DataTooLong(ParseError),
    /// Reading from or writing to the connection failed (`EVREQ_HTTP_BUFFER_ERROR`).
    BufferError(Arc<io::Error>),
    /// The request was cancelled (`EVREQ_HTTP_REQUEST_CANCEL`).
    Cancelled,
    /// The connection could not be established: refused, unreachable, or the name lookup
    /// failed.
    Connect(Arc<io::Error>),
    /// The connection was freed before the request completed.
    Closed,
    /// The request cannot be encoded: a header name or value with CR, LF or NUL, or an
    /// invalid target.
    InvalidRequest(EncodeError),
    /// The connection's request queue is full
    /// ([`Connection::set_max_queue`](super::Connection::set_max_queue)).
    QueueFull,
    /// TLS failed on an HTTPS connection: the handshake (an untrusted certificate, a name
    /// that does not match), the session, or a body cut short (see
    /// [`TlsFailure`](super::TlsFailure)).
    #[cfg(feature = "openssl")]
    Tls(Arc<super::TlsFailure>),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(TimeoutKind::Connect) => f.write_str("connect timed out"),
            Self::Timeout(TimeoutKind::Read) => f.write_str("read timed out"),
            Self::Timeout(TimeoutKind::Write) => f.write_str("write timed out"),
            Self::Eof => f.write_str("connection closed before the response was complete"),
            Self::InvalidHeader(e) => write!(f, "invalid response head: {e}"),
            Self::InvalidBody(e) => write!(f, "invalid response body: {e}"),
            Self::DataTooLong(e) => write!(f, "response too large: {e}"),
            Self::BufferError(e) => write!(f, "connection I/O error: {e}"),
            Self::Cancelled => f.write_str("request cancelled"),
            Self::Connect(e) => write!(f, "could not connect: {e}"),
            Self::Closed => f.write_str("connection freed"),
            Self::InvalidRequest(e) => write!(f, "invalid request: {e}"),
            Self::QueueFull => f.write_str("request queue full"),
            #[cfg(feature = "openssl")]
            Self::Tls(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidHeader(e) | Self::InvalidBody(e) | Self::DataTooLong(e) => Some(e),
            Self::BufferError(e) | Self::Connect(e) => Some(&**e),
            Self::InvalidRequest(e) => Some(e),
            #[cfg(feature = "openssl")]
            Self::Tls(e) => Some(&**e),
            _ => None,
        }
    }
}

impl ClientError {
    /// The error a response parse error stands for.
    pub(crate) fn from_head(e: ParseError) -> Self {
        match e {
            ParseError::HeaderTooLarge | ParseError::TooManyHeaders | ParseError::BodyTooLarge => {
                Self::DataTooLong(e)
            }
            e => Self::InvalidHeader(e),
        }
    }

    /// The error a body decoding error stands for.
    pub(crate) fn from_body(e: ParseError) -> Self {
        match e {
            ParseError::BodyTooLarge | ParseError::HeaderTooLarge | ParseError::TooManyHeaders => {
                Self::DataTooLong(e)
            }
            ParseError::IncompleteBody => Self::Eof,
            e => Self::InvalidBody(e),
        }
    }
}

/// What a streamed request body's source gives each time it is asked for more (see
/// [`Request::body_stream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyChunk {
    /// The next piece of the body (an empty one is skipped).
    Data(Vec<u8>),
    /// Nothing yet: the source is asked again after
    /// [`RequestHandle::resume_body`](super::RequestHandle::resume_body).
    Wait,
    /// The body is complete.
    End,
}

/// A streamed request body's source (see [`Request::body_stream`]).
pub type BodySource = Box<dyn FnMut(&mut EventBase, RequestHandle) -> BodyChunk>;

/// A client request (`struct evhttp_request` on the sending side): method, target, headers,
/// body, and the callbacks that get the response.
///
/// The connection adds `Host` (from its host and port) unless it is set here, and owns the
/// body's framing: it adds `Content-Length` for a body (or for `POST`, `PUT` and `PATCH`);
/// with `Transfer-Encoding: chunked` set here it sends the body chunked instead. A
/// `Content-Length` set here that does not match the body, or another transfer coding, is
/// refused by [`Connection::make_request`](super::Connection::make_request).
///
/// ```
/// use oxevent_http::client::Request;
/// use oxevent_http::proto::Method;
///
/// let req = Request::new(Method::Post, "/submit", |_base, result| {
///     match result {
///         Ok(resp) => println!("{} {}", resp.code(), resp.reason()),
///         Err(e) => eprintln!("failed: {e}"),
///     }
/// })
/// .header("Content-Type", "text/plain")
/// .body(b"hello".to_vec());
/// assert_eq!(req.headers().get_str("content-type"), Some("text/plain"));
/// ```
pub struct Request {
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    /// A streamed body: its announced length (`None`: chunked) and its source.
    pub(crate) body_stream: Option<(Option<u64>, BodySource)>,
    pub(crate) on_complete: CompleteFn,
    pub(crate) on_head: Option<HeadFn>,
    pub(crate) on_chunk: Option<ChunkFn>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field(
                "body_stream",
                &self.body_stream.as_ref().map(|(len, _)| len),
            )
            .field("streaming", &self.on_chunk.is_some())
            .finish_non_exhaustive()
    }
}

impl Request {
    /// A request for `target` (an origin-form path such as `/index.html?x=1`, an absolute URI
    /// for a proxy, or `host:port` for `CONNECT`). `on_complete` runs once, from the loop,
    /// with the response or the error (it is also libevent's error callback).
    #[doc(alias = "evhttp_request_new")]
    #[doc(alias = "evhttp_request_set_error_cb")]
    #[doc(alias = "evhttp_request_set_on_complete_cb")]
    pub fn new(
        method: Method,
        target: impl Into<String>,
        on_complete: impl FnOnce(&mut EventBase, Result<Response, ClientError>) + 'static,
    ) -> Self {
        Self {
            method,
            target: target.into(),
            headers: Headers::new(),
            body: Vec::new(),
            body_stream: None,
            on_complete: Box::new(on_complete),
            on_head: None,
            on_chunk: None,
        }
    }

    /// A `GET` request: [`new`](Self::new) with [`Method::Get`].
    pub fn get(
        target: impl Into<String>,
        on_complete: impl FnOnce(&mut EventBase, Result<Response, ClientError>) + 'static,
    ) -> Self {
        Self::new(Method::Get, target, on_complete)
    }

    /// Adds a header field (kept in order; a name may repeat).
    #[doc(alias = "evhttp_add_header")]
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The header fields to send (`evhttp_request_get_output_headers`).
    #[doc(alias = "evhttp_request_get_output_headers")]
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The header fields to send, to change them.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }

    /// Removes every field named `name`; returns how many went.
    #[doc(alias = "evhttp_remove_header")]
    pub fn remove_header(&mut self, name: &str) -> usize {
        self.headers.remove(name)
    }

    /// Removes every header field.
    #[doc(alias = "evhttp_clear_headers")]
    pub fn clear_headers(&mut self) {
        self.headers.clear();
    }

    /// Sets the body (`evhttp_request_get_output_buffer`).
    #[doc(alias = "evhttp_request_get_output_buffer")]
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Streams the body instead of setting it whole: once the head has been written, the
    /// connection asks `source` for the next piece whenever less than 64 KiB waits in its
    /// output buffer, so a large or slow body is sent at the pace the server reads it
    /// (backpressure) without being held in memory. With `len` the body goes out with
    /// `Content-Length: len` and must be exactly that long; with `None` it goes out with
    /// `Transfer-Encoding: chunked`, one chunk per [`BodyChunk::Data`].
    ///
    /// A source that has nothing yet returns [`BodyChunk::Wait`] and is asked again after
    /// [`RequestHandle::resume_body`]. A body that turns out longer or shorter than `len`
    /// fails the request with
    /// [`EncodeError::BodyLengthMismatch`](crate::proto::EncodeError::BodyLengthMismatch)
    /// and closes the connection.
    ///
    /// A streamed request is never retried or pipelined (its body cannot be replayed): if
    /// the connection fails while it is in flight, it fails. If the response arrives before
    /// the body is complete (say, a 413), the source is dropped and the connection is
    /// closed after the response. [`make_request`](super::Connection::make_request) refuses
    /// a request that also has a [`body`](Self::body), or whose own framing headers
    /// contradict `len`.
    ///
    /// [`RequestHandle::resume_body`]: super::RequestHandle::resume_body
    #[must_use]
    pub fn body_stream(
        mut self,
        len: Option<u64>,
        source: impl FnMut(&mut EventBase, RequestHandle) -> BodyChunk + 'static,
    ) -> Self {
        self.body_stream = Some((len, Box::new(source)));
        self
    }

    /// The method.
    #[doc(alias = "evhttp_request_get_command")]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target.
    #[doc(alias = "evhttp_request_get_uri")]
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `cb` when the response head arrives, before any body data
    /// (`evhttp_request_set_header_cb`).
    #[doc(alias = "evhttp_request_set_header_cb")]
    #[must_use]
    pub fn on_head(
        mut self,
        cb: impl FnMut(&mut EventBase, RequestHandle, &ResponseHead) + 'static,
    ) -> Self {
        self.on_head = Some(Box::new(cb));
        self
    }

    /// Streams the response body: `cb` gets each piece as it arrives and the completed
    /// [`Response`] then has an empty body (`evhttp_request_set_chunked_cb`). Returning
    /// [`Flow::Pause`] stops reading from the connection until [`RequestHandle::resume`].
    /// The body limit still counts every byte.
    #[doc(alias = "evhttp_request_set_chunked_cb")]
    #[must_use]
    pub fn on_chunk(
        mut self,
        cb: impl FnMut(&mut EventBase, RequestHandle, &[u8]) -> Flow + 'static,
    ) -> Self {
        self.on_chunk = Some(Box::new(cb));
        self
    }
}

/// A complete response: the parsed head and, unless it was streamed, the body.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) head: ResponseHead,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The status code (`evhttp_request_get_response_code`).
    #[doc(alias = "evhttp_request_get_response_code")]
    pub fn code(&self) -> u16 {
        self.head.status
    }

    /// The reason phrase (`evhttp_request_get_response_code_line`).
    #[doc(alias = "evhttp_request_get_response_code_line")]
    pub fn reason(&self) -> &str {
        &self.head.reason
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields (`evhttp_request_get_input_headers`).
    #[doc(alias = "evhttp_request_get_input_headers")]
    pub fn headers(&self) -> &Headers {
        &self.head.headers
    }

    /// The first value of header `name` as text, if present and UTF-8.
    #[doc(alias = "evhttp_find_header")]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get_str(name)
    }

    /// The body (`evhttp_request_get_input_buffer`); empty when it was streamed through
    /// [`Request::on_chunk`].
    #[doc(alias = "evhttp_request_get_input_buffer")]
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The parsed head.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The head and the body, by value.
    pub fn into_parts(self) -> (ResponseHead, Vec<u8>) {
        (self.head, self.body)
    }
}
