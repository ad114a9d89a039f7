//! Encoders: message heads and chunked framing, refusing anything that would let a caller's
//! data change how the peer splits the message.

use super::error::EncodeError;
use super::head::{Method, Version};
use super::headers::Headers;
use super::token::{is_field_byte, is_token};

/// The last chunk of a chunked body with no trailers: `0\r\n\r\n`.
pub const LAST_CHUNK: &[u8] = b"0\r\n\r\n";

/// What follows each chunk's data: `\r\n`.
pub const CHUNK_END: &[u8] = b"\r\n";

/// The line that starts a chunk: its size in hex and CRLF, on the stack, so that a
/// connection can write `header, data, CHUNK_END` as three slices without copying the data.
///
/// ```
/// use oxevent_http::proto::ChunkHeader;
///
/// assert_eq!(ChunkHeader::new(255).unwrap().as_bytes(), b"ff\r\n");
/// assert!(ChunkHeader::new(0).is_none()); // that would be the last chunk
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkHeader {
    /// INVARIANT: `buf[..len]` is the header.
    buf: [u8; 18],
    len: u8,
}

impl ChunkHeader {
    /// The header of a chunk of `len` bytes, or `None` for 0, which would end the body (use
    /// [`LAST_CHUNK`] or [`encode_last_chunk`] for that).
    #[must_use]
    pub fn new(len: u64) -> Option<Self> {
        if len == 0 {
            return None;
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digits = (64 - len.leading_zeros()).div_ceil(4) as usize;
        let mut buf = [0; 18];
        for (i, slot) in buf[..digits].iter_mut().enumerate() {
            let shift = 4 * (digits - 1 - i);
            *slot = HEX[((len >> shift) & 0xf) as usize];
        }
        buf[digits..digits + 2].copy_from_slice(b"\r\n");
        Some(Self {
            buf,
            len: (digits + 2) as u8,
        })
    }

    /// The header bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for ChunkHeader {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Appends `data` to `out` as one chunk (header, data, CRLF). Empty data writes nothing,
/// since an empty chunk would end the body.
pub fn encode_chunk(data: &[u8], out: &mut Vec<u8>) {
    if let Some(header) = ChunkHeader::new(data.len() as u64) {
        out.reserve(header.as_bytes().len() + data.len() + CHUNK_END.len());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(CHUNK_END);
    }
}

/// Appends the last chunk, the `trailers` and the empty line that end a chunked body.
pub fn encode_last_chunk(trailers: &Headers, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    check_headers(trailers)?;
    out.extend_from_slice(b"0\r\n");
    write_headers(trailers, out);
    Ok(())
}

fn check_headers(headers: &Headers) -> Result<(), EncodeError> {
    for (name, value) in headers {
        if !is_token(name.as_bytes()) {
            return Err(EncodeError::InvalidHeaderName);
        }
        if !value.iter().all(|&b| is_field_byte(b)) {
            return Err(EncodeError::InvalidHeaderValue);
        }
    }
    Ok(())
}

/// Writes the fields and the empty line that ends them.
fn write_headers(headers: &Headers, out: &mut Vec<u8>) {
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn head_len(headers: &Headers) -> usize {
    headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 4)
        .sum::<usize>()
        + 2
}

/// Appends a request head (request line, `headers`, empty line) to `out`.
///
/// Writes the fields as given: framing fields (`Host`, `Content-Length`, ...) are the
/// caller's. Refuses, writing nothing, a target that is empty or holds a space or a control
/// character, and header names or values that would not parse back
/// ([`EncodeError::InvalidHeaderName`], [`EncodeError::InvalidHeaderValue`]): CR, LF and NUL
/// above all.
///
/// ```
/// use oxevent_http::proto::{encode_request_head, Headers, Method, Version};
///
/// let mut out = Vec::new();
/// let headers: Headers = [("Host", "example.com")].into_iter().collect();
/// encode_request_head(&Method::Get, "/", Version::Http11, &headers, &mut out)?;
/// assert_eq!(out, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
///
/// let evil: Headers = [("X", "a\r\nInjected: 1")].into_iter().collect();
/// assert!(encode_request_head(&Method::Get, "/", Version::Http11, &evil, &mut out).is_err());
/// # Ok::<(), oxevent_http::proto::EncodeError>(())
/// ```
pub fn encode_request_head(
    method: &Method,
    target: &str,
    version: Version,
    headers: &Headers,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    // The bytes `httparse` takes in a target: VCHAR and obs-text.
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(EncodeError::InvalidTarget);
    }
    check_headers(headers)?;
    let method = method.as_str();
    out.reserve(method.len() + target.len() + 12 + head_len(headers));
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.push(b' ');
    out.extend_from_slice(version.as_str().as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(headers, out);
    Ok(())
}

/// Appends a response head (status line, `headers`, empty line) to `out`.
///
/// Writes the fields as given. Refuses, writing nothing, a status outside 100..=999, a
/// reason with a control character other than HTAB, and header names or values that would
/// not parse back: CR, LF and NUL above all.
///
/// ```
/// use oxevent_http::proto::{encode_response_head, Headers, Version};
///
/// let mut out = Vec::new();
/// let headers: Headers = [("Content-Length", "0")].into_iter().collect();
/// encode_response_head(Version::Http11, 204, "No Content", &headers, &mut out)?;
/// assert_eq!(out, b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
/// # Ok::<(), oxevent_http::proto::EncodeError>(())
/// ```
pub fn encode_response_head(
    version: Version,
    status: u16,
    reason: &str,
    headers: &Headers,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if !(100..=999).contains(&status) {
        return Err(EncodeError::InvalidStatus);
    }
    if !reason.bytes().all(is_field_byte) {
        return Err(EncodeError::InvalidReason);
    }
    check_headers(headers)?;
    out.reserve(15 + reason.len() + head_len(headers));
    out.extend_from_slice(version.as_str().as_bytes());
    let digits = [
        b'0' + (status / 100) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
    ];
    out.push(b' ');
    out.extend_from_slice(&digits);
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    write_headers(headers, out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_headers_are_minimal_lowercase_hex() {
        for (len, want) in [
            (1u64, &b"1\r\n"[..]),
            (0xf, b"f\r\n"),
            (0x10, b"10\r\n"),
            (0xabc, b"abc\r\n"),
            (u64::MAX, b"ffffffffffffffff\r\n"),
        ] {
            assert_eq!(ChunkHeader::new(len).unwrap().as_ref(), want);
        }
        let mut out = Vec::new();
        encode_chunk(b"", &mut out);
        assert!(out.is_empty());
        encode_chunk(b"hi", &mut out);
        assert_eq!(out, b"2\r\nhi\r\n");
    }

    #[test]
    fn last_chunk_with_trailers() {
        let mut out = Vec::new();
        encode_last_chunk(&Headers::new(), &mut out).unwrap();
        assert_eq!(out, LAST_CHUNK);
        out.clear();
        let trailers: Headers = [("Checksum", "abc")].into_iter().collect();
        encode_last_chunk(&trailers, &mut out).unwrap();
        assert_eq!(out, b"0\r\nChecksum: abc\r\n\r\n");
        let evil: Headers = [("Checksum", "a\nb")].into_iter().collect();
        out.clear();
        assert_eq!(
            encode_last_chunk(&evil, &mut out),
            Err(EncodeError::InvalidHeaderValue)
        );
        assert!(out.is_empty());
    }
}
