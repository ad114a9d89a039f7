//! [`Limits`]: the bounds every parser in [`proto`](crate::proto) enforces.

/// The bounds on what a peer may make us parse and hold (BRIEF invariant 7).
///
/// libevent's `evhttp` leaves header and body sizes unlimited unless the user calls
/// `evhttp_set_max_headers_size` and `evhttp_set_max_body_size`; here every limit has a
/// finite default, taken from the RFCs' recommendations and from what common servers ship:
///
/// | limit | default | anchor |
/// | --- | --- | --- |
/// | [`max_header_bytes`](Self::max_header_bytes) | 16 KiB | Node.js's `--max-http-header-size`; room for the 8000-octet request line below |
/// | [`max_headers`](Self::max_headers) | 100 | Apache's `LimitRequestFields` |
/// | [`max_body`](Self::max_body) | 1 MiB | nginx's `client_max_body_size` |
/// | [`max_chunk_size_digits`](Self::max_chunk_size_digits) | 16 | a `u64` in hex |
/// | [`max_chunk_extension`](Self::max_chunk_extension) | 1 KiB | nobody sends long ones |
/// | [`max_request_target`](Self::max_request_target) | 8000 | RFC 9112 §3's minimum request line |
///
/// Build a different set with the `with_*` methods:
///
/// ```
/// use oxevent_http::proto::Limits;
///
/// let limits = Limits::default().with_max_body(64 << 20).with_max_headers(50);
/// assert_eq!(limits.max_body, 64 << 20);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The most bytes a head may take, from its first byte to the end of the empty line that
    /// closes it (leading empty lines included). Past it: [`ParseError::HeaderTooLarge`]
    /// (431), as soon as that many bytes arrive without the head being complete. Trailers of
    /// chunked bodies get the same budget.
    ///
    /// [`ParseError::HeaderTooLarge`]: crate::proto::ParseError::HeaderTooLarge
    pub max_header_bytes: usize,
    /// The most header lines a head (or a trailer section) may have. Past it:
    /// [`ParseError::TooManyHeaders`](crate::proto::ParseError::TooManyHeaders) (431).
    pub max_headers: usize,
    /// The most body bytes a message may have. A declared `Content-Length` over it is refused
    /// with the head; chunked and close-delimited bodies are refused once they grow past it.
    /// Either way: [`ParseError::BodyTooLarge`](crate::proto::ParseError::BodyTooLarge) (413).
    pub max_body: u64,
    /// The most hex digits a chunk size may have, leading zeros included. Past it:
    /// [`ParseError::ChunkSizeTooLong`](crate::proto::ParseError::ChunkSizeTooLong).
    pub max_chunk_size_digits: usize,
    /// The most bytes of chunk extension (everything between the size and the CRLF) one chunk
    /// line may carry. Past it:
    /// [`ParseError::ChunkExtensionTooLong`](crate::proto::ParseError::ChunkExtensionTooLong).
    pub max_chunk_extension: usize,
    /// The longest request target accepted, in bytes. Past it:
    /// [`ParseError::UriTooLong`](crate::proto::ParseError::UriTooLong) (414), as soon as
    /// that many target bytes arrive.
    pub max_request_target: usize,
}

impl Limits {
    /// The defaults listed on [`Limits`].
    pub const DEFAULT: Self = Self {
        max_header_bytes: 16 * 1024,
        max_headers: 100,
        max_body: 1024 * 1024,
        max_chunk_size_digits: 16,
        max_chunk_extension: 1024,
        max_request_target: 8000,
    };

    /// Sets [`max_header_bytes`](Self::max_header_bytes).
    #[must_use]
    pub const fn with_max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n;
        self
    }

    /// Sets [`max_headers`](Self::max_headers).
    #[must_use]
    pub const fn with_max_headers(mut self, n: usize) -> Self {
        self.max_headers = n;
        self
    }

    /// Sets [`max_body`](Self::max_body).
    #[must_use]
    pub const fn with_max_body(mut self, n: u64) -> Self {
        self.max_body = n;
        self
    }

    /// Sets [`max_chunk_size_digits`](Self::max_chunk_size_digits).
    #[must_use]
    pub const fn with_max_chunk_size_digits(mut self, n: usize) -> Self {
        self.max_chunk_size_digits = n;
        self
    }

    /// Sets [`max_chunk_extension`](Self::max_chunk_extension).
    #[must_use]
    pub const fn with_max_chunk_extension(mut self, n: usize) -> Self {
        self.max_chunk_extension = n;
        self
    }

    /// Sets [`max_request_target`](Self::max_request_target).
    #[must_use]
    pub const fn with_max_request_target(mut self, n: usize) -> Self {
        self.max_request_target = n;
        self
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}
