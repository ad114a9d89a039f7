//! Message heads: [`Method`], [`Version`], [`RequestHead`], [`ResponseHead`] and the
//! incremental parsers that produce them.

use std::fmt;
use std::str::FromStr;

use super::error::ParseError;
use super::framing::{self, BodyKind, RequestContext};
use super::headers::Headers;
use super::limits::Limits;
use super::scan::{Kind, Scanned, Scanner};
use super::token::is_token;

/// A request method: the standard ones of RFC 9110 §9 and RFC 5789, or any other token.
///
/// Methods are case-sensitive: `get` is an extension method, not [`Method::Get`].
///
/// ```
/// use oxevent_http::proto::Method;
///
/// assert_eq!("GET".parse::<Method>(), Ok(Method::Get));
/// let propfind: Method = "PROPFIND".parse()?;
/// assert_eq!(propfind.as_str(), "PROPFIND");
/// assert!("GET /".parse::<Method>().is_err());
/// # Ok::<(), oxevent_http::proto::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `TRACE`
    Trace,
    /// `CONNECT`
    Connect,
    /// `PATCH`
    Patch,
    /// Any other token, such as WebDAV's `PROPFIND`.
    Extension(ExtensionMethod),
}

/// A method that is not one of [`Method`]'s named variants: a valid token, never the name
/// of a standard method (so that `Method` equality is name equality).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ExtensionMethod(Box<str>);

impl ExtensionMethod {
    /// The method name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Method {
    /// The method named by `token`, or [`ParseError::InvalidMethod`] if `token` is not a token.
    pub fn from_token(token: &str) -> Result<Self, ParseError> {
        Ok(match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "DELETE" => Self::Delete,
            "OPTIONS" => Self::Options,
            "TRACE" => Self::Trace,
            "CONNECT" => Self::Connect,
            "PATCH" => Self::Patch,
            _ if is_token(token.as_bytes()) => Self::Extension(ExtensionMethod(token.into())),
            _ => return Err(ParseError::InvalidMethod),
        })
    }

    /// The method name as it goes on the wire.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Connect => "CONNECT",
            Self::Patch => "PATCH",
            Self::Extension(m) => m.as_str(),
        }
    }

    /// Whether RFC 9110 §9.2.1 calls the method safe (read-only). Extension methods are not.
    #[must_use]
    pub const fn is_safe(&self) -> bool {
        matches!(self, Self::Get | Self::Head | Self::Options | Self::Trace)
    }

    /// Whether RFC 9110 §9.2.2 calls the method idempotent, so that a client may retry it.
    /// Extension methods are not.
    #[must_use]
    pub const fn is_idempotent(&self) -> bool {
        self.is_safe() || matches!(self, Self::Put | Self::Delete)
    }
}

impl FromStr for Method {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::from_token(s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HTTP versions spoken: 1.0 and 1.1. Anything else is refused with
/// [`ParseError::UnsupportedVersion`] (505).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
}

impl Version {
    /// The version as it goes on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Http10 => "HTTP/1.0",
            Self::Http11 => "HTTP/1.1",
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of feeding bytes to a head parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// The head is not complete yet: call again once more bytes have arrived.
    Partial,
    /// The head, and how many bytes of the input it took; the body (or the next message)
    /// starts there.
    Complete(T, usize),
}

/// A parsed request head, with the framing derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The request target as sent: origin form (`/path?query`), absolute form, authority form
    /// (for `CONNECT`) or `*`.
    pub target: String,
    /// The version.
    pub version: Version,
    /// The header fields, in order.
    pub headers: Headers,
    /// How the body is delimited: never [`BodyKind::CloseDelimited`] for a request.
    pub body: BodyKind,
    /// Whether the connection may carry another request after this one: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// Whether the client sent `Expect: 100-continue` (in HTTP/1.1) and waits for a
    /// `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// A parsed response head, with the framing derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResponseHead {
    /// The version.
    pub version: Version,
    /// The status code, 100 to 999. A 1xx response is followed by another head.
    pub status: u16,
    /// The reason phrase (possibly empty). Bytes that are not UTF-8 (obs-text) are replaced
    /// with U+FFFD.
    pub reason: String,
    /// The header fields, in order.
    pub headers: Headers,
    /// How the body is delimited; this depends on the request too (see [`ResponseParser`]).
    pub body: BodyKind,
    /// Whether the connection may carry another request: as for requests, and never after a
    /// [`BodyKind::CloseDelimited`] body.
    pub keep_alive: bool,
}

/// Tokenises a complete head with `httparse` into `slots`, sized to the scanner's count.
fn with_header_slots<'b, R>(count: usize, f: impl FnOnce(&mut [httparse::Header<'b>]) -> R) -> R {
    const STACK: usize = 32;
    if count <= STACK {
        f(&mut [httparse::EMPTY_HEADER; STACK][..count])
    } else {
        f(&mut vec![httparse::EMPTY_HEADER; count])
    }
}

fn collect_headers(
    parsed: &[httparse::Header<'_>],
    head_len: usize,
    reuse: Option<Headers>,
) -> Headers {
    let mut headers = match reuse {
        Some(mut h) => {
            h.clear();
            h
        }
        None => Headers::with_capacity(parsed.len(), head_len),
    };
    for h in parsed {
        headers.append(h.name, h.value);
    }
    headers
}

/// `Some(error)` unless `v` is `HTTP/1.0` or `HTTP/1.1`.
fn version_error(v: &[u8]) -> Option<ParseError> {
    match v {
        b"HTTP/1.0" | b"HTTP/1.1" => None,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Some(ParseError::UnsupportedVersion)
        }
        _ => Some(ParseError::InvalidVersion),
    }
}

/// Says which part of a request line `httparse` refused.
fn request_line_error(line: &[u8]) -> ParseError {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = parts.next().unwrap_or_default();
    if !is_token(method) {
        return ParseError::InvalidMethod;
    }
    let (Some(target), Some(version)) = (parts.next(), parts.next()) else {
        return ParseError::InvalidRequestLine;
    };
    if target.is_empty() || version.contains(&b' ') {
        return ParseError::InvalidRequestLine;
    }
    if std::str::from_utf8(target).is_err() || target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return ParseError::InvalidTarget;
    }
    version_error(version).unwrap_or(ParseError::InvalidRequestLine)
}

/// Says which part of a status line `httparse` refused.
fn status_line_error(line: &[u8]) -> ParseError {
    let version = line.split(|&b| b == b' ').next().unwrap_or_default();
    version_error(version).unwrap_or(ParseError::InvalidStatusLine)
}

fn map_header_error(e: httparse::Error) -> Option<ParseError> {
    match e {
        httparse::Error::HeaderName => Some(ParseError::InvalidHeaderName),
        httparse::Error::HeaderValue => Some(ParseError::InvalidHeaderValue),
        httparse::Error::TooManyHeaders => Some(ParseError::TooManyHeaders),
        _ => None,
    }
}

impl RequestHead {
    /// A head for [`RequestParser::parse_into`] to fill.
    pub(crate) fn empty() -> Self {
        Self {
            method: Method::Get,
            target: String::new(),
            version: Version::Http11,
            headers: Headers::new(),
            body: BodyKind::None,
            keep_alive: true,
            expect_continue: false,
        }
    }
}

/// Builds the head in `out`, reusing its allocations (target, headers); on error `out` holds
/// a mix of the old and the new head.
fn request_head_into(
    buf: &[u8],
    s: &Scanned,
    limits: &Limits,
    out: &mut RequestHead,
) -> Result<(), ParseError> {
    let head = &buf[..s.end];
    let line = &buf[s.start_line.clone()];
    with_header_slots(s.header_lines, |slots| {
        let mut req = httparse::Request::new(slots);
        match req.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            Ok(_) => return Err(request_line_error(line)),
            Err(e) => return Err(map_header_error(e).unwrap_or_else(|| request_line_error(line))),
        }
        let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
            return Err(request_line_error(line));
        };
        if target.len() > limits.max_request_target {
            return Err(ParseError::UriTooLong);
        }
        let method = Method::from_token(method)?;
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        out.target.clear();
        out.target.push_str(target);
        let headers = std::mem::take(&mut out.headers);
        out.headers = collect_headers(req.headers, head.len(), Some(headers));
        let framing = framing::request(version, &out.headers, limits)?;
        out.method = method;
        out.version = version;
        out.body = framing.body;
        out.keep_alive = framing.keep_alive;
        out.expect_continue = framing.expect_continue;
        Ok(())
    })
}

fn response_head(
    buf: &[u8],
    s: &Scanned,
    request: RequestContext,
    limits: &Limits,
) -> Result<ResponseHead, ParseError> {
    let head = &buf[..s.end];
    let line = &buf[s.start_line.clone()];
    with_header_slots(s.header_lines, |slots| {
        let mut res = httparse::Response::new(slots);
        match res.parse(head) {
            Ok(httparse::Status::Complete(n)) if n == head.len() => {}
            Ok(_) => return Err(status_line_error(line)),
            Err(e) => return Err(map_header_error(e).unwrap_or_else(|| status_line_error(line))),
        }
        let (Some(minor), Some(status)) = (res.version, res.code) else {
            return Err(status_line_error(line));
        };
        if status < 100 {
            return Err(ParseError::InvalidStatusLine);
        }
        // `httparse` hides a reason with obs-text; take it from the line ("HTTP/1.1 200 ").
        let reason = line.get(13..).unwrap_or_default();
        let reason = String::from_utf8_lossy(reason).into_owned();
        let version = if minor == 0 {
            Version::Http10
        } else {
            Version::Http11
        };
        let headers = collect_headers(res.headers, head.len(), None);
        let framing = framing::response(version, status, &headers, request, limits)?;
        Ok(ResponseHead {
            version,
            status,
            reason,
            headers,
            body: framing.body,
            keep_alive: framing.keep_alive,
        })
    })
}

/// An incremental request-head parser, for a server connection.
///
/// Call [`parse`](Self::parse) with everything received since the last head (or since the
/// connection opened); each call must pass the previous call's bytes plus whatever arrived
/// since. The parser remembers how far it checked, so feeding a head one byte at a time costs
/// linear time in total. After a `Complete` or an error it is ready for a new head, which
/// starts at the first byte after the consumed ones.
///
/// It errors out with [`ParseError::HeaderTooLarge`] as soon as more than
/// [`Limits::max_header_bytes`] arrive without the head being complete, and with
/// [`ParseError::UriTooLong`] as soon as the target passes [`Limits::max_request_target`].
///
/// ```
/// use oxevent_http::proto::{Limits, RequestParser, Status};
///
/// let mut parser = RequestParser::new(Limits::default());
/// let wire = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
/// assert_eq!(parser.parse(&wire[..10])?, Status::Partial);
/// let Status::Complete(head, used) = parser.parse(wire)? else { panic!("incomplete") };
/// assert_eq!((head.target.as_str(), used), ("/a", wire.len()));
/// # Ok::<(), oxevent_http::proto::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RequestParser {
    limits: Limits,
    scanner: Scanner,
}

impl RequestParser {
    /// A parser that enforces `limits`.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            scanner: Scanner::default(),
        }
    }

    /// The limits it enforces.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses as much of a head as `buf` holds. See [`RequestParser`].
    pub fn parse(&mut self, buf: &[u8]) -> Result<Status<RequestHead>, ParseError> {
        let mut head = RequestHead::empty();
        Ok(match self.parse_into(buf, &mut head)? {
            Some(used) => Status::Complete(head, used),
            None => Status::Partial,
        })
    }

    /// As [`parse`](Self::parse), filling `head` in place (a head done with: its
    /// allocations are reused): `Some(n)` once the head is complete, `n` being the bytes it
    /// took.
    pub(crate) fn parse_into(
        &mut self,
        buf: &[u8],
        head: &mut RequestHead,
    ) -> Result<Option<usize>, ParseError> {
        match self.scanner.scan(buf, Kind::Request, &self.limits) {
            Ok(None) => Ok(None),
            Ok(Some(s)) => {
                request_head_into(buf, &s, &self.limits, head)?;
                Ok(Some(s.end))
            }
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Forgets a partly parsed head, so that the next call starts a new one.
    pub fn reset(&mut self) {
        self.scanner = Scanner::default();
    }
}

/// Parses a request head from `buf` in one go: [`RequestParser::parse`] on a fresh parser.
///
/// With a growing buffer, prefer keeping a [`RequestParser`], which does not re-check the
/// bytes it has seen.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Status<RequestHead>, ParseError> {
    RequestParser::new(*limits).parse(buf)
}

/// An incremental response-head parser, for a client connection. It works as
/// [`RequestParser`] does.
///
/// A response's framing depends on the request it answers: a response to `HEAD` has no body
/// whatever its `Content-Length`, and a 2xx response to `CONNECT` turns the connection into a
/// tunnel. So the parser is told the request's method.
///
/// A 1xx response other than 101 is followed by the final response: parse again from the
/// byte after it.
///
/// ```
/// use oxevent_http::proto::{BodyKind, Limits, Method, ResponseParser, Status};
///
/// let mut parser = ResponseParser::new(Limits::default(), &Method::Head);
/// let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
/// let Status::Complete(head, _) = parser.parse(wire)? else { panic!("incomplete") };
/// assert_eq!((head.status, head.body), (200, BodyKind::None));
/// # Ok::<(), oxevent_http::proto::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ResponseParser {
    limits: Limits,
    request: RequestContext,
    scanner: Scanner,
}

impl ResponseParser {
    /// A parser for the response to a `request_method` request, enforcing `limits`.
    #[must_use]
    pub fn new(limits: Limits, request_method: &Method) -> Self {
        Self {
            limits,
            request: RequestContext {
                head: *request_method == Method::Head,
                connect: *request_method == Method::Connect,
            },
            scanner: Scanner::default(),
        }
    }

    /// The limits it enforces.
    #[must_use]
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses as much of a head as `buf` holds. See [`RequestParser`] for how to call it.
    pub fn parse(&mut self, buf: &[u8]) -> Result<Status<ResponseHead>, ParseError> {
        match self.scanner.scan(buf, Kind::Response, &self.limits) {
            Ok(None) => Ok(Status::Partial),
            Ok(Some(s)) => Ok(Status::Complete(
                response_head(buf, &s, self.request, &self.limits)?,
                s.end,
            )),
            Err(e) => {
                self.reset();
                Err(e)
            }
        }
    }

    /// Forgets a partly parsed head, so that the next call starts a new one.
    pub fn reset(&mut self) {
        self.scanner = Scanner::default();
    }
}

/// Parses the head of a response to a `request_method` request from `buf` in one go:
/// [`ResponseParser::parse`] on a fresh parser.
pub fn parse_response(
    buf: &[u8],
    limits: &Limits,
    request_method: &Method,
) -> Result<Status<ResponseHead>, ParseError> {
    ResponseParser::new(*limits, request_method).parse(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_line_errors_name_the_part_at_fault() {
        assert_eq!(
            request_line_error(b"G@T / HTTP/1.1"),
            ParseError::InvalidMethod
        );
        assert_eq!(
            request_line_error(b"GET  / HTTP/1.1"),
            ParseError::InvalidRequestLine
        );
        assert_eq!(request_line_error(b"GET /"), ParseError::InvalidRequestLine);
        assert_eq!(
            request_line_error(b"GET /\x7f HTTP/1.1"),
            ParseError::InvalidTarget
        );
        assert_eq!(
            request_line_error(b"GET / HTTP/2.0"),
            ParseError::UnsupportedVersion
        );
        assert_eq!(
            request_line_error(b"GET / HTTP/1.1 x"),
            ParseError::InvalidRequestLine
        );
        assert_eq!(
            request_line_error(b"GET / HTTP/1.1"),
            ParseError::InvalidRequestLine
        );
        assert_eq!(
            request_line_error(b"GET / HTTP/x"),
            ParseError::InvalidVersion
        );
        assert_eq!(
            status_line_error(b"HTTP/3.0 200 OK"),
            ParseError::UnsupportedVersion
        );
        assert_eq!(
            status_line_error(b"HTTP/1.1 2x0 OK"),
            ParseError::InvalidStatusLine
        );
        assert_eq!(status_line_error(b"ICY 200 OK"), ParseError::InvalidVersion);
    }

    #[test]
    fn method_properties() {
        assert!(Method::Get.is_safe() && Method::Get.is_idempotent());
        assert!(!Method::Post.is_safe() && !Method::Post.is_idempotent());
        assert!(!Method::Put.is_safe() && Method::Put.is_idempotent());
        let ext = Method::from_token("get").unwrap();
        assert!(matches!(ext, Method::Extension(_)));
        assert!(!ext.is_idempotent());
        assert_eq!(ext.to_string(), "get");
        assert_eq!(Method::from_token(""), Err(ParseError::InvalidMethod));
        assert_eq!(Version::Http10.to_string(), "HTTP/1.0");
    }
}
