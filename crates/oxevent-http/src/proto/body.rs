//! Body decoders: [`LengthDecoder`], [`ChunkedDecoder`], [`CloseDelimitedDecoder`], and
//! [`BodyDecoder`] to pick one from a [`BodyKind`].
//!
//! They all stream. Input may be split at any byte; body data comes out as sub-slices of the
//! input (never copied, never buffered), either through a callback
//! (`decode(input, &mut |piece| ...)`) or as ranges ([`step`](BodyDecoder::step)) so that a
//! caller holding `bytes::Bytes` can slice it without a copy. Framing bytes (chunk lines,
//! CRLFs, trailers) are consumed and checked as they pass, whatever the split.

use std::convert::Infallible;
use std::ops::Range;

use super::error::ParseError;
use super::framing::BodyKind;
use super::limits::Limits;
use super::token::{is_field_byte, is_tchar};

/// The result of a [`decode`](BodyDecoder::decode) call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// How many input bytes were used. Short of the input only when `done`: the rest
    /// belongs to the next message.
    pub consumed: usize,
    /// Whether the body is complete.
    pub done: bool,
}

/// The result of one [`step`](BodyDecoder::step): at most one piece of body data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// How many input bytes this step used (framing and data).
    pub consumed: usize,
    /// The body data found, as a range of the input within `..consumed`; may be empty.
    pub data: Range<usize>,
    /// Whether the body is complete.
    pub done: bool,
}

impl Step {
    const fn framing(consumed: usize, done: bool) -> Self {
        Self {
            consumed,
            data: consumed..consumed,
            done,
        }
    }
}

/// Runs `step` over `input` until it is used up or the body is done, handing each piece of
/// data to `out`.
fn drive<E>(
    input: &[u8],
    out: &mut impl FnMut(&[u8]),
    mut step: impl FnMut(&[u8]) -> Result<Step, E>,
) -> Result<Decoded, E> {
    let mut offset = 0;
    loop {
        let s = step(&input[offset..])?;
        if !s.data.is_empty() {
            out(&input[offset + s.data.start..offset + s.data.end]);
        }
        offset += s.consumed;
        if s.done || offset == input.len() || s.consumed == 0 {
            return Ok(Decoded {
                consumed: offset,
                done: s.done,
            });
        }
    }
}

/// A `Content-Length` body: exactly so many bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LengthDecoder {
    remaining: u64,
}

impl LengthDecoder {
    /// A decoder for a body of `len` bytes.
    #[must_use]
    pub const fn new(len: u64) -> Self {
        Self { remaining: len }
    }

    /// The bytes still expected.
    #[must_use]
    pub const fn remaining(&self) -> u64 {
        self.remaining
    }

    /// Whether the whole body has passed.
    #[must_use]
    pub const fn is_done(&self) -> bool {
        self.remaining == 0
    }

    /// Takes the body bytes at the start of `input`.
    pub fn step(&mut self, input: &[u8]) -> Step {
        let n = usize::try_from(self.remaining).map_or(input.len(), |r| r.min(input.len()));
        self.remaining -= n as u64;
        Step {
            consumed: n,
            data: 0..n,
            done: self.remaining == 0,
        }
    }

    /// Hands the body bytes at the start of `input` to `out`.
    pub fn decode(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Decoded {
        match drive(input, out, |i| Ok::<_, Infallible>(self.step(i))) {
            Ok(decoded) => decoded,
            Err(never) => match never {},
        }
    }
}

/// A response body that runs until the connection closes, bounded by
/// [`Limits::max_body`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseDelimitedDecoder {
    received: u64,
    max_body: u64,
    done: bool,
}

impl CloseDelimitedDecoder {
    /// A decoder refusing more than `limits.max_body` bytes.
    #[must_use]
    pub const fn new(limits: &Limits) -> Self {
        Self {
            received: 0,
            max_body: limits.max_body,
            done: false,
        }
    }

    /// The bytes received so far.
    #[must_use]
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Whether [`finish`](Self::finish) was called.
    #[must_use]
    pub const fn is_done(&self) -> bool {
        self.done
    }

    /// Takes all of `input` as body, or fails with [`ParseError::BodyTooLarge`] if it would
    /// pass the limit.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ParseError> {
        if self.done {
            return Ok(Step::framing(0, true));
        }
        let total = self.received.saturating_add(input.len() as u64);
        if total > self.max_body {
            return Err(ParseError::BodyTooLarge);
        }
        self.received = total;
        Ok(Step {
            consumed: input.len(),
            data: 0..input.len(),
            done: false,
        })
    }

    /// Hands all of `input` to `out`, within the limit.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<Decoded, ParseError> {
        drive(input, out, |i| self.step(i))
    }

    /// The connection closed: the body is complete.
    pub fn finish(&mut self) {
        self.done = true;
    }
}

/// Where a [`ChunkedDecoder`] is in the chunked grammar (RFC 9112 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    SizeStart,
    /// After at least one hex digit.
    Size,
    /// After whitespace following the size: only more whitespace or `;` may come.
    SizeWs,
    /// Inside a chunk extension, until CR.
    Ext,
    /// After the CR ending a chunk line.
    SizeLf,
    /// Inside chunk data.
    Data,
    /// After chunk data: CR, then LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// After the CR of the final empty line.
    EndLf,
    Done,
    Failed(ParseError),
}

const fn hex_value(b: u8) -> Option<u64> {
    match b {
        b'0'..=b'9' => Some((b - b'0') as u64),
        b'a'..=b'f' => Some((b - b'a' + 10) as u64),
        b'A'..=b'F' => Some((b - b'A' + 10) as u64),
        _ => None,
    }
}

/// A chunked body (RFC 9112 §7.1), decoded as it streams in.
///
/// It refuses chunk sizes that do not start with a hex digit (signs, `0x`, whitespace) or
/// have more than [`Limits::max_chunk_size_digits`] digits, extensions longer than
/// [`Limits::max_chunk_extension`] or holding control characters, anything but CRLF after
/// chunk data, and bodies past [`Limits::max_body`] (checked when a chunk's size is read,
/// before its data arrives). Extensions are skipped. Trailer fields are checked as header
/// fields are (token names, no NUL, bare CR or LF, no folding), bounded by
/// [`Limits::max_header_bytes`] and [`Limits::max_headers`], and discarded.
///
/// After an error the decoder keeps returning it.
///
/// ```
/// use oxevent_http::proto::{ChunkedDecoder, Limits};
///
/// let mut d = ChunkedDecoder::new(&Limits::default());
/// let mut body = Vec::new();
/// let mut out = |piece: &[u8]| body.extend_from_slice(piece);
/// let first = d.decode(b"4\r\nWi", &mut out)?;
/// let rest = d.decode(b"ki\r\n0\r\nX-Trailer: t\r\n\r\nNEXT", &mut out)?;
/// assert!(!first.done && rest.done);
/// assert_eq!(rest.consumed, 23); // "NEXT" is the next message's
/// assert_eq!(body, b"Wiki");
/// # Ok::<(), oxevent_http::proto::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size of the chunk being read, then the data bytes left in it.
    size: u64,
    digits: usize,
    ext_len: usize,
    body: u64,
    trailer_bytes: usize,
    trailer_lines: usize,
    limits: Limits,
}

impl ChunkedDecoder {
    /// A decoder enforcing `limits`.
    #[must_use]
    pub const fn new(limits: &Limits) -> Self {
        Self {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            ext_len: 0,
            body: 0,
            trailer_bytes: 0,
            trailer_lines: 0,
            limits: *limits,
        }
    }

    /// Whether the last chunk and the trailer section have passed.
    #[must_use]
    pub const fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The body bytes decoded so far (chunk data only).
    #[must_use]
    pub const fn body_len(&self) -> u64 {
        self.body
            - if matches!(self.state, State::Data) {
                self.size
            } else {
                0
            }
    }

    /// Consumes framing from the start of `input` up to the next piece of data, and returns
    /// that piece (all of it that `input` holds). Call again with the rest of the input.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ParseError> {
        let mut i = 0;
        loop {
            match self.state {
                State::Done => return Ok(Step::framing(i, true)),
                State::Failed(e) => return Err(e),
                State::Data if i < input.len() => {
                    let n = usize::try_from(self.size)
                        .map_or(input.len() - i, |s| s.min(input.len() - i));
                    self.size -= n as u64;
                    if self.size == 0 {
                        self.state = State::DataCr;
                    }
                    return Ok(Step {
                        consumed: i + n,
                        data: i..i + n,
                        done: false,
                    });
                }
                _ if i < input.len() => {
                    if let Err(e) = self.framing_byte(input[i]) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                    i += 1;
                }
                _ => return Ok(Step::framing(i, false)),
            }
        }
    }

    /// Hands the body data in `input` to `out`, piece by piece, until `input` is used up or
    /// the body ends.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<Decoded, ParseError> {
        drive(input, out, |i| self.step(i))
    }

    fn extension_byte(&mut self) -> Result<(), ParseError> {
        self.ext_len += 1;
        if self.ext_len > self.limits.max_chunk_extension {
            return Err(ParseError::ChunkExtensionTooLong);
        }
        Ok(())
    }

    fn framing_byte(&mut self, b: u8) -> Result<(), ParseError> {
        if matches!(
            self.state,
            State::TrailerStart
                | State::TrailerName
                | State::TrailerValue
                | State::TrailerLf
                | State::EndLf
        ) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.limits.max_header_bytes {
                return Err(ParseError::HeaderTooLarge);
            }
        }
        self.state = match (self.state, b) {
            (State::SizeStart, _) => {
                self.size = hex_value(b).ok_or(ParseError::InvalidChunkSize)?;
                self.digits = 1;
                self.ext_len = 0;
                State::Size
            }
            (State::Size, b';') => {
                self.extension_byte()?;
                State::Ext
            }
            (State::Size, b' ' | b'\t') => {
                self.extension_byte()?;
                State::SizeWs
            }
            (State::Size | State::SizeWs | State::Ext, b'\n') => return Err(ParseError::BareLf),
            (State::Size | State::Ext, b'\r') => State::SizeLf,
            (State::Size, _) => {
                let d = hex_value(b).ok_or(ParseError::InvalidChunkSize)?;
                self.digits += 1;
                if self.digits > self.limits.max_chunk_size_digits {
                    return Err(ParseError::ChunkSizeTooLong);
                }
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(d))
                    .ok_or(ParseError::ChunkSizeTooLong)?;
                State::Size
            }
            (State::SizeWs, b' ' | b'\t') => {
                self.extension_byte()?;
                State::SizeWs
            }
            (State::SizeWs, b';') => {
                self.extension_byte()?;
                State::Ext
            }
            (State::SizeWs, _) => return Err(ParseError::InvalidChunkExtension),
            (State::Ext, _) if is_field_byte(b) => {
                self.extension_byte()?;
                State::Ext
            }
            (State::Ext, _) => return Err(ParseError::InvalidChunkExtension),
            (State::SizeLf, b'\n') if self.size == 0 => State::TrailerStart,
            (State::SizeLf, b'\n') => {
                self.body = self
                    .body
                    .checked_add(self.size)
                    .filter(|&total| total <= self.limits.max_body)
                    .ok_or(ParseError::BodyTooLarge)?;
                State::Data
            }
            (State::SizeLf, _) => return Err(ParseError::BareCr),
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => State::SizeStart,
            (State::DataCr | State::DataLf, _) => return Err(ParseError::MissingChunkCrlf),
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::TrailerValue, b'\n') => {
                return Err(ParseError::BareLf);
            }
            (State::TrailerStart, b' ' | b'\t') => return Err(ParseError::ObsoleteLineFolding),
            (State::TrailerStart | State::TrailerName | State::TrailerValue, 0) => {
                return Err(ParseError::NulInHeader);
            }
            (State::TrailerStart | State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerStart | State::TrailerName, _) => {
                return Err(ParseError::InvalidHeaderName);
            }
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_field_byte(b) => State::TrailerValue,
            (State::TrailerValue, _) => return Err(ParseError::InvalidHeaderValue),
            (State::TrailerLf, b'\n') => {
                self.trailer_lines += 1;
                if self.trailer_lines > self.limits.max_headers {
                    return Err(ParseError::TooManyHeaders);
                }
                State::TrailerStart
            }
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(ParseError::BareCr),
            (State::Data | State::Done | State::Failed(_), _) => return Ok(()),
        };
        Ok(())
    }
}

/// Any body, as its [`BodyKind`] says: the one decoder a connection needs.
///
/// ```
/// use oxevent_http::proto::{BodyDecoder, BodyKind, Limits};
///
/// let mut d = BodyDecoder::new(BodyKind::Length(3), &Limits::default());
/// let step = d.step(b"abcGET / ...")?;
/// assert_eq!((step.data, step.done), (0..3, true));
/// # Ok::<(), oxevent_http::proto::ParseError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BodyDecoder {
    /// [`BodyKind::None`]: done from the start.
    Empty,
    /// [`BodyKind::Length`].
    Length(LengthDecoder),
    /// [`BodyKind::Chunked`].
    Chunked(ChunkedDecoder),
    /// [`BodyKind::CloseDelimited`].
    CloseDelimited(CloseDelimitedDecoder),
}

impl BodyDecoder {
    /// The decoder for a body of `kind`, enforcing `limits`.
    #[must_use]
    pub const fn new(kind: BodyKind, limits: &Limits) -> Self {
        match kind {
            BodyKind::None => Self::Empty,
            BodyKind::Length(n) => Self::Length(LengthDecoder::new(n)),
            BodyKind::Chunked => Self::Chunked(ChunkedDecoder::new(limits)),
            BodyKind::CloseDelimited => Self::CloseDelimited(CloseDelimitedDecoder::new(limits)),
        }
    }

    /// Whether the body is complete.
    #[must_use]
    pub const fn is_done(&self) -> bool {
        match self {
            Self::Empty => true,
            Self::Length(d) => d.is_done(),
            Self::Chunked(d) => d.is_done(),
            Self::CloseDelimited(d) => d.is_done(),
        }
    }

    /// One step: framing up to the next piece of data, and that piece, as a range of `input`.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, ParseError> {
        match self {
            Self::Empty => Ok(Step::framing(0, true)),
            Self::Length(d) => Ok(d.step(input)),
            Self::Chunked(d) => d.step(input),
            Self::CloseDelimited(d) => d.step(input),
        }
    }

    /// Hands the body data in `input` to `out` until `input` is used up or the body ends.
    pub fn decode(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<Decoded, ParseError> {
        drive(input, out, |i| self.step(i))
    }

    /// The connection closed. That completes a close-delimited body; any other body that is
    /// not complete yet was cut short: [`ParseError::IncompleteBody`].
    pub fn finish(&mut self) -> Result<(), ParseError> {
        match self {
            Self::CloseDelimited(d) => {
                d.finish();
                Ok(())
            }
            _ if self.is_done() => Ok(()),
            _ => Err(ParseError::IncompleteBody),
        }
    }
}
