//! [`ParseError`] and [`EncodeError`]: what the parsers refuse and what the encoders refuse.
//!
//! The messages are lowercase with no trailing period; their wording is not part of the API.

use std::error::Error;
use std::fmt;

/// Why a head or a body was refused.
///
/// Every variant is one rule; [`status_code`](Self::status_code) says what a server replies
/// with before it closes the connection. The parsers never return a partial result alongside
/// an error: after one, the connection's framing is lost and it must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The head (or a trailer section) grew past
    /// [`Limits::max_header_bytes`](crate::proto::Limits::max_header_bytes) (431).
    HeaderTooLarge,
    /// More header lines than [`Limits::max_headers`](crate::proto::Limits::max_headers) (431).
    TooManyHeaders,
    /// A request target longer than
    /// [`Limits::max_request_target`](crate::proto::Limits::max_request_target) (414).
    UriTooLong,
    /// A method that is empty or has characters outside RFC 9110's `tchar` (400).
    InvalidMethod,
    /// A request target with a control character, a space or invalid UTF-8, or an empty one
    /// (400).
    InvalidTarget,
    /// A request line that is not `method SP target SP version` (400): a missing or doubled
    /// space, or trailing bytes.
    InvalidRequestLine,
    /// A status line that is not `version SP 3DIGIT [SP reason]`, a status below 100, or a
    /// reason phrase with control characters (400).
    InvalidStatusLine,
    /// A version that is not `HTTP/` DIGIT `.` DIGIT (400).
    InvalidVersion,
    /// A well-formed version other than HTTP/1.0 and HTTP/1.1 (505).
    UnsupportedVersion,
    /// A header name that is empty or has characters outside `tchar`, including whitespace
    /// before the colon (400).
    InvalidHeaderName,
    /// A header value with a control character other than HTAB (400).
    InvalidHeaderValue,
    /// A NUL byte in a head or a trailer (400).
    NulInHeader,
    /// A CR not followed by LF in a head, a chunk line or a trailer (400).
    BareCr,
    /// An LF not preceded by CR in a head, a chunk line or a trailer (400).
    BareLf,
    /// A line starting with a space or tab after the start line: obsolete line folding, or
    /// whitespace between the start line and the first header (400).
    ObsoleteLineFolding,
    /// Both `Content-Length` and `Transfer-Encoding` (400).
    ContentLengthWithTransferEncoding,
    /// A `Content-Length` element that is not 1*DIGIT or overflows a `u64` (400).
    InvalidContentLength,
    /// `Content-Length` values that differ from one another (400).
    ConflictingContentLength,
    /// A request whose `Transfer-Encoding` does not end in `chunked` (400).
    TransferEncodingNotChunked,
    /// A request `Transfer-Encoding` naming a coding this server does not know (501).
    UnknownTransferCoding,
    /// A `Transfer-Encoding` with an empty element, `chunked` twice or `chunked` with
    /// parameters (400).
    InvalidTransferEncoding,
    /// A `Transfer-Encoding` in an HTTP/1.0 message, whose framing RFC 9112 §6.1 says to
    /// treat as faulty (400).
    TransferEncodingInHttp10,
    /// An HTTP/1.1 request without a `Host` (400).
    MissingHost,
    /// A request with more than one `Host` (400).
    MultipleHost,
    /// An `Expect` other than `100-continue` (417).
    ExpectationFailed,
    /// A body longer than [`Limits::max_body`](crate::proto::Limits::max_body) (413).
    BodyTooLarge,
    /// A chunk size that does not start with a hex digit (a sign, `0x`, whitespace, or
    /// nothing at all) or is followed by something other than `;`, whitespace before `;`, or
    /// CRLF (400).
    InvalidChunkSize,
    /// A chunk size with more than
    /// [`Limits::max_chunk_size_digits`](crate::proto::Limits::max_chunk_size_digits) digits,
    /// or one that overflows a `u64` (400).
    ChunkSizeTooLong,
    /// A chunk extension that does not start with `;` after optional whitespace, or holds a
    /// control character (400).
    InvalidChunkExtension,
    /// A chunk extension longer than
    /// [`Limits::max_chunk_extension`](crate::proto::Limits::max_chunk_extension) (400).
    ChunkExtensionTooLong,
    /// Chunk data not followed by CRLF (400).
    MissingChunkCrlf,
    /// The connection ended before the body did (400).
    IncompleteBody,
}

impl ParseError {
    /// The status code a server answers this error with: 400, 413, 414, 417, 431, 501 or 505.
    ///
    /// A client that gets one of these from a response treats it as an invalid response; the
    /// code then only classifies it.
    #[must_use]
    pub const fn status_code(self) -> u16 {
        match self {
            Self::HeaderTooLarge | Self::TooManyHeaders => 431,
            Self::UriTooLong => 414,
            Self::UnsupportedVersion => 505,
            Self::UnknownTransferCoding => 501,
            Self::ExpectationFailed => 417,
            Self::BodyTooLarge => 413,
            Self::InvalidMethod
            | Self::InvalidTarget
            | Self::InvalidRequestLine
            | Self::InvalidStatusLine
            | Self::InvalidVersion
            | Self::InvalidHeaderName
            | Self::InvalidHeaderValue
            | Self::NulInHeader
            | Self::BareCr
            | Self::BareLf
            | Self::ObsoleteLineFolding
            | Self::ContentLengthWithTransferEncoding
            | Self::InvalidContentLength
            | Self::ConflictingContentLength
            | Self::TransferEncodingNotChunked
            | Self::InvalidTransferEncoding
            | Self::TransferEncodingInHttp10
            | Self::MissingHost
            | Self::MultipleHost
            | Self::InvalidChunkSize
            | Self::ChunkSizeTooLong
            | Self::InvalidChunkExtension
            | Self::ChunkExtensionTooLong
            | Self::MissingChunkCrlf
            | Self::IncompleteBody => 400,
        }
    }

    /// Whether the error is a limit being hit rather than malformed input: the head, the
    /// header count, the target or the body was too large.
    #[must_use]
    pub const fn is_limit(self) -> bool {
        matches!(
            self,
            Self::HeaderTooLarge
                | Self::TooManyHeaders
                | Self::UriTooLong
                | Self::BodyTooLarge
                | Self::ChunkSizeTooLong
                | Self::ChunkExtensionTooLong
        )
    }

    const fn message(self) -> &'static str {
        match self {
            Self::HeaderTooLarge => "header section too large",
            Self::TooManyHeaders => "too many header fields",
            Self::UriTooLong => "request target too long",
            Self::InvalidMethod => "invalid method",
            Self::InvalidTarget => "invalid request target",
            Self::InvalidRequestLine => "malformed request line",
            Self::InvalidStatusLine => "malformed status line",
            Self::InvalidVersion => "malformed http version",
            Self::UnsupportedVersion => "http version not supported",
            Self::InvalidHeaderName => "invalid header name",
            Self::InvalidHeaderValue => "invalid header value",
            Self::NulInHeader => "nul byte in header section",
            Self::BareCr => "bare cr in header section",
            Self::BareLf => "bare lf in header section",
            Self::ObsoleteLineFolding => "obsolete line folding",
            Self::ContentLengthWithTransferEncoding => {
                "content-length together with transfer-encoding"
            }
            Self::InvalidContentLength => "invalid content-length",
            Self::ConflictingContentLength => "conflicting content-length values",
            Self::TransferEncodingNotChunked => "transfer-encoding does not end in chunked",
            Self::UnknownTransferCoding => "unknown transfer coding",
            Self::InvalidTransferEncoding => "invalid transfer-encoding",
            Self::TransferEncodingInHttp10 => "transfer-encoding in an http/1.0 message",
            Self::MissingHost => "missing host header",
            Self::MultipleHost => "more than one host header",
            Self::ExpectationFailed => "unsupported expectation",
            Self::BodyTooLarge => "body too large",
            Self::InvalidChunkSize => "invalid chunk size",
            Self::ChunkSizeTooLong => "chunk size too long",
            Self::InvalidChunkExtension => "invalid chunk extension",
            Self::ChunkExtensionTooLong => "chunk extension too long",
            Self::MissingChunkCrlf => "chunk data not followed by crlf",
            Self::IncompleteBody => "connection closed before the body ended",
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl Error for ParseError {}

/// Why an encoder refused to write a head or a trailer section.
///
/// The encoders check everything that would change how the peer splits the message: a CR,
/// LF or NUL in a header would let a caller's data inject header lines or a second message.
/// On error nothing is left in the output buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// A header name that is empty or not made of `tchar` (so also one with CR, LF or NUL).
    InvalidHeaderName,
    /// A header value with CR, LF, NUL or another control character other than HTAB.
    InvalidHeaderValue,
    /// A request target that is empty or has a space or a control character.
    InvalidTarget,
    /// A status code outside 100..=999.
    InvalidStatus,
    /// A reason phrase with CR, LF, NUL or another control character other than HTAB.
    InvalidReason,
    /// A streamed body whose length differs from the `Content-Length` announced for it.
    BodyLengthMismatch,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidHeaderName => "invalid header name",
            Self::InvalidHeaderValue => "invalid header value",
            Self::InvalidTarget => "invalid request target",
            Self::InvalidStatus => "invalid status code",
            Self::InvalidReason => "invalid reason phrase",
            Self::BodyLengthMismatch => "body length differs from its Content-Length",
        })
    }
}

impl Error for EncodeError {}
