//! Message framing (RFC 9112 §6): how long the body is, whether the connection stays open,
//! and the request-only rules on `Host` and `Expect`, derived from the header fields.

use super::error::ParseError;
use super::head::Version;
use super::headers::Headers;
use super::limits::Limits;
use super::token::{is_token, list_elements, trim_ows};

/// How a message's body is delimited, derived from its head (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// No body: a request with neither `Content-Length` nor `Transfer-Encoding`, a response to
    /// `HEAD`, a 1xx, 204 or 304 response, or a 2xx response to `CONNECT` (after which the
    /// connection is a tunnel).
    None,
    /// Exactly this many bytes, from `Content-Length`.
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
    /// Everything until the connection closes. Responses only: a response with neither
    /// `Content-Length` nor `Transfer-Encoding`, or whose transfer coding does not end in
    /// `chunked`. Such a response never keeps the connection alive.
    CloseDelimited,
}

/// What the head says about framing and the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framing {
    pub(crate) body: BodyKind,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

/// The `Transfer-Encoding` codings, as far as framing cares.
#[derive(Debug, Clone, Copy, Default)]
struct Codings {
    chunked_seen: bool,
    last_is_chunked: bool,
    unknown: bool,
}

/// The framing-relevant fields, checked for syntax.
#[derive(Debug, Default)]
struct Fields {
    content_length: Option<u64>,
    codings: Option<Codings>,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
    expect_other: bool,
    hosts: usize,
}

/// The codings of RFC 9110 §18.6's registry that a peer may name before `chunked`. We decode
/// none of them, but a server may pass such a body on as it is.
const KNOWN_CODINGS: [&[u8]; 5] = [b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"];

fn content_length(value: &[u8], seen: &mut Option<u64>) -> Result<(), ParseError> {
    for element in list_elements(value) {
        if element.is_empty() || !element.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::InvalidContentLength);
        }
        let n = element.iter().try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        });
        let n = n.ok_or(ParseError::InvalidContentLength)?;
        match *seen {
            Some(m) if m != n => return Err(ParseError::ConflictingContentLength),
            _ => *seen = Some(n),
        }
    }
    Ok(())
}

fn transfer_codings(value: &[u8], codings: &mut Codings) -> Result<(), ParseError> {
    for element in list_elements(value) {
        let (name, params) = match element.iter().position(|&b| b == b';') {
            Some(p) => (trim_ows(&element[..p]), Some(&element[p..])),
            None => (element, None),
        };
        if !is_token(name) {
            return Err(ParseError::InvalidTransferEncoding);
        }
        if name.eq_ignore_ascii_case(b"chunked") {
            if codings.chunked_seen || params.is_some() {
                return Err(ParseError::InvalidTransferEncoding);
            }
            codings.chunked_seen = true;
            codings.last_is_chunked = true;
        } else {
            codings.last_is_chunked = false;
            if !KNOWN_CODINGS.iter().any(|k| name.eq_ignore_ascii_case(k)) {
                codings.unknown = true;
            }
        }
    }
    Ok(())
}

fn fields(headers: &Headers) -> Result<Fields, ParseError> {
    let mut f = Fields::default();
    for (name, value) in headers {
        let name = name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            content_length(value, &mut f.content_length)?;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_codings(value, f.codings.get_or_insert_with(Codings::default))?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in list_elements(value) {
                f.close |= option.eq_ignore_ascii_case(b"close");
                f.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if trim_ows(value).eq_ignore_ascii_case(b"100-continue") {
                f.expect_continue = true;
            } else {
                f.expect_other = true;
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            f.hosts += 1;
        }
    }
    Ok(f)
}

fn keep_alive(f: &Fields, version: Version) -> bool {
    !f.close && (version == Version::Http11 || f.keep_alive)
}

/// The framing of a request, or why it is refused.
pub(crate) fn request(
    version: Version,
    headers: &Headers,
    limits: &Limits,
) -> Result<Framing, ParseError> {
    let f = fields(headers)?;
    let body = match (f.codings, f.content_length) {
        (Some(_), _) if version == Version::Http10 => {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        (Some(_), Some(_)) => return Err(ParseError::ContentLengthWithTransferEncoding),
        (Some(c), None) if c.unknown => return Err(ParseError::UnknownTransferCoding),
        (Some(c), None) if !c.last_is_chunked => {
            return Err(ParseError::TransferEncodingNotChunked);
        }
        (Some(_), None) => BodyKind::Chunked,
        (None, Some(n)) if n > limits.max_body => return Err(ParseError::BodyTooLarge),
        (None, Some(n)) => BodyKind::Length(n),
        (None, None) => BodyKind::None,
    };
    match f.hosts {
        0 if version == Version::Http11 => return Err(ParseError::MissingHost),
        0 | 1 => {}
        _ => return Err(ParseError::MultipleHost),
    }
    if f.expect_other {
        return Err(ParseError::ExpectationFailed);
    }
    Ok(Framing {
        body,
        keep_alive: keep_alive(&f, version),
        // RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request is ignored.
        expect_continue: f.expect_continue && version == Version::Http11,
    })
}

/// What the request a response answers says about its framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestContext {
    pub(crate) head: bool,
    pub(crate) connect: bool,
}

/// The framing of a response, or why it is refused.
pub(crate) fn response(
    version: Version,
    status: u16,
    headers: &Headers,
    request: RequestContext,
    limits: &Limits,
) -> Result<Framing, ParseError> {
    let f = fields(headers)?;
    if f.codings.is_some() {
        if version == Version::Http10 {
            return Err(ParseError::TransferEncodingInHttp10);
        }
        if f.content_length.is_some() {
            return Err(ParseError::ContentLengthWithTransferEncoding);
        }
    }
    let no_body = request.head
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (request.connect && (200..300).contains(&status));
    let body = match (f.codings, f.content_length) {
        _ if no_body => BodyKind::None,
        (Some(c), _) if c.last_is_chunked => BodyKind::Chunked,
        (Some(_), _) => BodyKind::CloseDelimited,
        (None, Some(n)) if n > limits.max_body => return Err(ParseError::BodyTooLarge),
        (None, Some(n)) => BodyKind::Length(n),
        (None, None) => BodyKind::CloseDelimited,
    };
    Ok(Framing {
        body,
        keep_alive: body != BodyKind::CloseDelimited && keep_alive(&f, version),
        expect_continue: false,
    })
}
