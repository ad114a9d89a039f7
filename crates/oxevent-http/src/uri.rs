//! URIs (RFC 3986) and the encoding helpers of libevent's `evhttp_uri_*`, `evhttp_encode_uri`,
//! `evhttp_decode_uri`, `evhttp_parse_query_str` and `evhttp_htmlescape`.
//!
//! # The `Uri` type
//!
//! [`Uri::parse`] splits a URI reference into its components as RFC 3986 §3 names them:
//! scheme, authority (userinfo, host, port), path, query and fragment. Each component is kept
//! as written (percent escapes are not decoded; use [`decode`] for that), and each is checked
//! against the RFC's grammar unless [`UriFlags::NONCONFORMANT`] is given. [`Uri`] prints back
//! to the same string (its [`Display`](fmt::Display) is libevent's `evhttp_uri_join`), so that
//! `Uri::parse(&uri.to_string()) == Ok(uri)`.
//!
//! [`Uri::join`] resolves a reference against a base URI (RFC 3986 §5.2), as a browser does
//! with a link: `http://a/b/c/d;p?q` joined with `../g` gives `http://a/b/g`.
//!
//! # Flags
//!
//! - [`UriFlags::NONCONFORMANT`] (libevent's `EVHTTP_URI_NONCONFORMANT`) lets the path, query
//!   and fragment hold characters that RFC 3986 does not allow there (spaces, `"`, `<`, ...),
//!   as some clients send them. `?` and `#` still end the path and `#` the query; NUL and
//!   other control characters are refused even then.
//! - [`UriFlags::UNIX_SOCKET`] (libevent's `EVHTTP_URI_UNIX_SOCKET`) reads the nginx-style
//!   authority `unix:/path/to/socket:` as a Unix-socket path ([`Uri::unix_socket`]):
//!   `http://unix:/run/app.sock:/index.html`.
//! - [`UriFlags::HOST_STRIP_BRACKETS`] (libevent's `EVHTTP_URI_HOST_STRIP_BRACKETS`) stores an
//!   IPv6 literal host without its brackets (`::1` rather than `[::1]`), ready for
//!   [`std::net::Ipv6Addr::from_str`](std::str::FromStr). Printing puts the brackets back.
//!
//! # Limits
//!
//! Every function here refuses input longer than [`MAX_LEN`] bytes with
//! [`UriError::TooLong`], so nothing from the network makes them allocate without bound.
//!
//! # Example
//!
//! ```
//! use oxevent_http::uri::{self, Uri};
//!
//! let base = Uri::parse("http://user@[::1]:8080/a/b?x=1#top")?;
//! assert_eq!(base.scheme(), Some("http"));
//! assert_eq!(base.userinfo(), Some("user"));
//! assert_eq!(base.host(), Some("[::1]"));
//! assert_eq!(base.port(), Some(8080));
//! assert_eq!(base.path(), "/a/b");
//! assert_eq!(base.query(), Some("x=1"));
//! assert_eq!(base.fragment(), Some("top"));
//! assert_eq!(base.join("../c?y=2")?.to_string(), "http://user@[::1]:8080/c?y=2");
//!
//! assert_eq!(uri::encode(b"a b/c", true), "a+b%2Fc");
//! assert_eq!(uri::decode("a+b%2Fc", true)?, b"a b/c");
//! assert_eq!(
//!     uri::parse_query("q=rust+event&lang=en")?,
//!     vec![("q".into(), "rust event".into()), ("lang".into(), "en".into())]
//! );
//! assert_eq!(uri::html_escape("<a href='x'>"), "&lt;a href=&#039;x&#039;&gt;");
//! # Ok::<(), oxevent_http::uri::UriError>(())
//! ```

use std::fmt;
use std::net::Ipv6Addr;

/// The longest input, in bytes, that the functions of this module accept (64 KiB).
pub const MAX_LEN: usize = 64 * 1024;

/// Flags that change how [`Uri::parse_with`] reads a URI.
///
/// Combine them with `|`: `UriFlags::NONCONFORMANT | UriFlags::UNIX_SOCKET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UriFlags(u8);

impl UriFlags {
    /// No flags: strict RFC 3986.
    pub const NONE: Self = Self(0);
    /// Tolerate characters RFC 3986 does not allow in the path, query and fragment.
    #[doc(alias = "EVHTTP_URI_NONCONFORMANT")]
    pub const NONCONFORMANT: Self = Self(1);
    /// Store IPv6 literal hosts without their brackets.
    #[doc(alias = "EVHTTP_URI_HOST_STRIP_BRACKETS")]
    pub const HOST_STRIP_BRACKETS: Self = Self(2);
    /// Read an authority `unix:/path:` as a Unix-socket path.
    #[doc(alias = "EVHTTP_URI_UNIX_SOCKET")]
    pub const UNIX_SOCKET: Self = Self(4);

    /// Whether every flag in `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for UriFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for UriFlags {
    fn bitor_assign(&mut self, rhs: Self) {
        self.0 |= rhs.0;
    }
}

/// Why a URI, an escape sequence or a query string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    /// The input is longer than [`MAX_LEN`].
    TooLong,
    /// The scheme is empty, does not start with a letter or holds a character other than
    /// letters, digits, `+`, `-` and `.`.
    InvalidScheme,
    /// The userinfo holds a character RFC 3986 does not allow there.
    InvalidUserinfo,
    /// The host is neither a valid registered name, nor an IPv4 address, nor a bracketed
    /// IPv6 (or IPvFuture) literal.
    InvalidHost,
    /// The port is not a decimal number from 0 to 65535.
    InvalidPort,
    /// The Unix-socket path is empty or holds `:`, `?`, `#` or a control character.
    InvalidUnixSocket,
    /// The path holds a character not allowed there, or cannot be printed back unambiguously
    /// (a path starting with `//` without an authority, a relative path whose first segment
    /// holds `:` without a scheme, or a relative path after an authority).
    InvalidPath,
    /// The query holds a character not allowed there.
    InvalidQuery,
    /// The fragment holds a character not allowed there.
    InvalidFragment,
    /// A `%` not followed by two hexadecimal digits.
    InvalidPercentEncoding,
    /// A decoded query key or value is not UTF-8.
    InvalidUtf8,
    /// A query-string element has no `=` (strict query parsing only).
    MissingEquals,
    /// A query-string element has an empty key (strict query parsing only).
    EmptyKey,
    /// A userinfo or port was set on a URI without a host.
    NoHost,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::TooLong => "URI too long",
            Self::InvalidScheme => "invalid URI scheme",
            Self::InvalidUserinfo => "invalid URI userinfo",
            Self::InvalidHost => "invalid URI host",
            Self::InvalidPort => "invalid URI port",
            Self::InvalidUnixSocket => "invalid Unix-socket path in URI",
            Self::InvalidPath => "invalid URI path",
            Self::InvalidQuery => "invalid URI query",
            Self::InvalidFragment => "invalid URI fragment",
            Self::InvalidPercentEncoding => "invalid percent-encoding",
            Self::InvalidUtf8 => "decoded query string is not UTF-8",
            Self::MissingEquals => "query element without '='",
            Self::EmptyKey => "query element with an empty key",
            Self::NoHost => "URI has no host",
        };
        f.write_str(s)
    }
}

impl std::error::Error for UriError {}

/// A URI reference (RFC 3986): an absolute URI such as `http://host/path?q#f`, or a relative
/// reference such as `/path`, `../x` or `?q`.
///
/// Components are stored as written, with their percent escapes. A missing component is
/// `None`; the path is always present, possibly empty. See the [module docs](self).
#[doc(alias = "evhttp_uri")]
#[doc(alias = "evhttp_uri_new")]
#[doc(alias = "evhttp_uri_free")]
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Uri {
    flags: UriFlags,
    scheme: Option<String>,
    userinfo: Option<String>,
    host: Option<String>,
    unix_socket: Option<String>,
    port: Option<u16>,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

// ---- character classes (RFC 3986 §2) ----

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn is_sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

fn is_pchar(b: u8) -> bool {
    is_unreserved(b) || is_sub_delim(b) || b == b':' || b == b'@'
}

/// Checks that `s` holds only bytes for which `allowed` holds, or valid `%XX` escapes.
fn check_chars(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() {
                return false;
            }
            if !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// The tolerant check of [`UriFlags::NONCONFORMANT`]: anything but control characters and
/// the delimiters in `stop`.
fn check_lenient(s: &str, stop: &[u8]) -> bool {
    s.bytes()
        .all(|b| !b.is_ascii_control() && !stop.contains(&b))
}

fn valid_scheme(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
}

fn valid_userinfo(s: &str) -> bool {
    check_chars(s, |b| is_unreserved(b) || is_sub_delim(b) || b == b':')
}

fn valid_reg_name(s: &str) -> bool {
    check_chars(s, |b| is_unreserved(b) || is_sub_delim(b))
}

/// Validates the inside of an IP literal (between the brackets): IPv6 or IPvFuture.
fn valid_ip_literal(inner: &str) -> bool {
    let b = inner.as_bytes();
    if matches!(b.first(), Some(b'v' | b'V')) {
        let Some(dot) = inner.find('.') else {
            return false;
        };
        let ver = &inner[1..dot];
        let rest = &inner[dot + 1..];
        return !ver.is_empty()
            && ver.bytes().all(|c| c.is_ascii_hexdigit())
            && !rest.is_empty()
            && rest
                .bytes()
                .all(|c| is_unreserved(c) || is_sub_delim(c) || c == b':');
    }
    inner.parse::<Ipv6Addr>().is_ok()
}

fn valid_unix_socket(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| !b.is_ascii_control() && !matches!(b, b':' | b'?' | b'#'))
}

impl Uri {
    /// Parses a URI reference strictly (RFC 3986), with no flags.
    #[doc(alias = "evhttp_uri_parse")]
    pub fn parse(s: &str) -> Result<Self, UriError> {
        Self::parse_with(s, UriFlags::NONE)
    }

    /// Parses a URI reference with `flags` (see [`UriFlags`]).
    #[doc(alias = "evhttp_uri_parse_with_flags")]
    pub fn parse_with(s: &str, flags: UriFlags) -> Result<Self, UriError> {
        if s.len() > MAX_LEN {
            return Err(UriError::TooLong);
        }
        let mut uri = Uri {
            flags,
            ..Uri::default()
        };
        let mut rest = s;

        // Fragment and query first: `#` ends everything, `?` ends the path.
        if let Some(i) = rest.find('#') {
            uri.fragment = Some(rest[i + 1..].to_owned());
            rest = &rest[..i];
        }
        if let Some(i) = rest.find('?') {
            uri.query = Some(rest[i + 1..].to_owned());
            rest = &rest[..i];
        }

        // Scheme: a valid scheme before the first ':', if that ':' comes before any '/'.
        if let Some(i) = rest.find(':') {
            let candidate = &rest[..i];
            if !candidate.contains('/') && valid_scheme(candidate) {
                uri.scheme = Some(candidate.to_owned());
                rest = &rest[i + 1..];
            } else if i == 0
                || (!candidate.contains('/') && !flags.contains(UriFlags::NONCONFORMANT))
            {
                // "1abc:..." or ":x": the first segment of a scheme-less relative path may
                // not hold a colon (RFC 3986 §4.2).
                return Err(UriError::InvalidScheme);
            }
        }

        if let Some(after) = rest.strip_prefix("//") {
            let unix = flags.contains(UriFlags::UNIX_SOCKET) && after.starts_with("unix:");
            let end = if unix {
                // `unix:/path/to/sock:` runs to the colon after the socket path.
                match after[5..].find(':') {
                    Some(j) => 5 + j + 1,
                    None => return Err(UriError::InvalidUnixSocket),
                }
            } else {
                after.find('/').unwrap_or(after.len())
            };
            uri.parse_authority(&after[..end], unix)?;
            rest = &after[end..];
            uri.path = rest.to_owned();
        } else {
            uri.path = rest.to_owned();
        }

        uri.check_path(&uri.path)?;
        if let Some(q) = &uri.query {
            uri.check_query(q)?;
        }
        if let Some(f) = &uri.fragment {
            uri.check_fragment(f)?;
        }
        Ok(uri)
    }

    fn parse_authority(&mut self, auth: &str, unix: bool) -> Result<(), UriError> {
        let mut hostport = auth;
        if !unix {
            if let Some(at) = auth.rfind('@') {
                let ui = &auth[..at];
                if !valid_userinfo(ui) {
                    return Err(UriError::InvalidUserinfo);
                }
                self.userinfo = Some(ui.to_owned());
                hostport = &auth[at + 1..];
            }
        } else {
            // `unix:` plus the path, plus the closing ':'.
            let sock = &auth[5..auth.len() - 1];
            if !valid_unix_socket(sock) {
                return Err(UriError::InvalidUnixSocket);
            }
            self.unix_socket = Some(sock.to_owned());
            return Ok(());
        }
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']').ok_or(UriError::InvalidHost)?;
            let after = &hostport[close + 1..];
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(UriError::InvalidHost)?),
            };
            (&hostport[..=close], port)
        } else {
            match hostport.rfind(':') {
                Some(i) => (&hostport[..i], Some(&hostport[i + 1..])),
                None => (hostport, None),
            }
        };
        self.set_host_inner(host)?;
        self.port = match port {
            None | Some("") => None,
            Some(p) => Some(parse_port(p)?),
        };
        Ok(())
    }

    fn set_host_inner(&mut self, host: &str) -> Result<(), UriError> {
        if let Some(inner) = host.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError::InvalidHost)?;
            if !valid_ip_literal(inner) {
                return Err(UriError::InvalidHost);
            }
            self.host = Some(if self.flags.contains(UriFlags::HOST_STRIP_BRACKETS) {
                inner.to_owned()
            } else {
                host.to_owned()
            });
        } else if host.contains(':') {
            // A bare IPv6 address (as `set_host` may get with HOST_STRIP_BRACKETS).
            if !self.flags.contains(UriFlags::HOST_STRIP_BRACKETS) || !valid_ip_literal(host) {
                return Err(UriError::InvalidHost);
            }
            self.host = Some(host.to_owned());
        } else {
            if !valid_reg_name(host) {
                return Err(UriError::InvalidHost);
            }
            self.host = Some(host.to_owned());
        }
        Ok(())
    }

    fn has_authority(&self) -> bool {
        self.host.is_some() || self.unix_socket.is_some()
    }

    fn check_path(&self, p: &str) -> Result<(), UriError> {
        let ok = if self.flags.contains(UriFlags::NONCONFORMANT) {
            check_lenient(p, b"?#")
        } else {
            check_chars(p, |b| is_pchar(b) || b == b'/')
        };
        if !ok {
            return Err(UriError::InvalidPath);
        }
        if self.has_authority() {
            // path-abempty: empty or starting with '/'.
            if !p.is_empty() && !p.starts_with('/') {
                return Err(UriError::InvalidPath);
            }
        } else {
            if p.starts_with("//") {
                return Err(UriError::InvalidPath);
            }
            if self.scheme.is_none() {
                let first = p.split('/').next().unwrap_or("");
                if first.contains(':') {
                    return Err(UriError::InvalidPath);
                }
            }
        }
        Ok(())
    }

    fn check_query(&self, q: &str) -> Result<(), UriError> {
        let ok = if self.flags.contains(UriFlags::NONCONFORMANT) {
            check_lenient(q, b"#")
        } else {
            check_chars(q, |b| is_pchar(b) || b == b'/' || b == b'?')
        };
        if ok {
            Ok(())
        } else {
            Err(UriError::InvalidQuery)
        }
    }

    fn check_fragment(&self, f: &str) -> Result<(), UriError> {
        let ok = if self.flags.contains(UriFlags::NONCONFORMANT) {
            check_lenient(f, b"")
        } else {
            check_chars(f, |b| is_pchar(b) || b == b'/' || b == b'?')
        };
        if ok {
            Ok(())
        } else {
            Err(UriError::InvalidFragment)
        }
    }

    /// The flags this URI was parsed with; they also govern the setters.
    pub fn flags(&self) -> UriFlags {
        self.flags
    }

    /// Changes the flags used by later setter calls.
    #[doc(alias = "evhttp_uri_set_flags")]
    pub fn set_flags(&mut self, flags: UriFlags) {
        self.flags = flags;
    }

    /// The scheme (`http`), without the colon.
    #[doc(alias = "evhttp_uri_get_scheme")]
    pub fn scheme(&self) -> Option<&str> {
        self.scheme.as_deref()
    }

    /// The userinfo (`user:pass`), without the `@`.
    #[doc(alias = "evhttp_uri_get_userinfo")]
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The host as written: a name, an IPv4 address or a bracketed IPv6 literal (`[::1]`;
    /// without brackets under [`UriFlags::HOST_STRIP_BRACKETS`]). `Some("")` for an empty
    /// authority as in `file:///etc`.
    #[doc(alias = "evhttp_uri_get_host")]
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The host with any IPv6 brackets removed, as a resolver wants it.
    pub fn host_unbracketed(&self) -> Option<&str> {
        self.host.as_deref().map(|h| {
            h.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(h)
        })
    }

    /// The Unix-socket path of an authority `unix:/path:` (only with
    /// [`UriFlags::UNIX_SOCKET`]).
    #[doc(alias = "evhttp_uri_get_unixsocket")]
    pub fn unix_socket(&self) -> Option<&str> {
        self.unix_socket.as_deref()
    }

    /// The port, if the URI names one.
    #[doc(alias = "evhttp_uri_get_port")]
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// The path, possibly empty.
    #[doc(alias = "evhttp_uri_get_path")]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query, without the `?`.
    #[doc(alias = "evhttp_uri_get_query")]
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }

    /// The fragment, without the `#`.
    #[doc(alias = "evhttp_uri_get_fragment")]
    pub fn fragment(&self) -> Option<&str> {
        self.fragment.as_deref()
    }

    /// The path and query as an HTTP request target (`/a/b?x=1`); `/` for an empty path.
    pub fn request_target(&self) -> String {
        let mut s = if self.path.is_empty() {
            "/".to_owned()
        } else {
            self.path.clone()
        };
        if let Some(q) = &self.query {
            s.push('?');
            s.push_str(q);
        }
        s
    }

    /// Sets or removes the scheme.
    #[doc(alias = "evhttp_uri_set_scheme")]
    pub fn set_scheme(&mut self, scheme: Option<&str>) -> Result<(), UriError> {
        if let Some(s) = scheme {
            if !valid_scheme(s) {
                return Err(UriError::InvalidScheme);
            }
        }
        let old = std::mem::replace(&mut self.scheme, scheme.map(str::to_owned));
        if let Err(e) = self.check_path(&self.path) {
            self.scheme = old;
            return Err(e);
        }
        Ok(())
    }

    /// Sets or removes the userinfo; the URI must have a host.
    #[doc(alias = "evhttp_uri_set_userinfo")]
    pub fn set_userinfo(&mut self, userinfo: Option<&str>) -> Result<(), UriError> {
        if let Some(u) = userinfo {
            if !valid_userinfo(u) {
                return Err(UriError::InvalidUserinfo);
            }
            if self.host.is_none() {
                return Err(UriError::NoHost);
            }
        }
        self.userinfo = userinfo.map(str::to_owned);
        Ok(())
    }

    /// Sets or removes the host. Removing it also removes the userinfo and the port (there is
    /// no authority left for them). A host replaces any Unix-socket path.
    #[doc(alias = "evhttp_uri_set_host")]
    pub fn set_host(&mut self, host: Option<&str>) -> Result<(), UriError> {
        let saved = self.clone();
        match host {
            Some(h) => {
                self.set_host_inner(h)?;
                self.unix_socket = None;
            }
            None => {
                self.host = None;
                self.userinfo = None;
                self.port = None;
            }
        }
        if let Err(e) = self.check_path(&self.path) {
            *self = saved;
            return Err(e);
        }
        Ok(())
    }

    /// Sets or removes the Unix-socket path; setting one removes the host, userinfo and port.
    #[doc(alias = "evhttp_uri_set_unixsocket")]
    pub fn set_unix_socket(&mut self, path: Option<&str>) -> Result<(), UriError> {
        let saved = self.clone();
        match path {
            Some(p) => {
                if !valid_unix_socket(p) {
                    return Err(UriError::InvalidUnixSocket);
                }
                self.unix_socket = Some(p.to_owned());
                self.host = None;
                self.userinfo = None;
                self.port = None;
            }
            None => self.unix_socket = None,
        }
        if let Err(e) = self.check_path(&self.path) {
            *self = saved;
            return Err(e);
        }
        Ok(())
    }

    /// Sets or removes the port; the URI must have a host.
    #[doc(alias = "evhttp_uri_set_port")]
    pub fn set_port(&mut self, port: Option<u16>) -> Result<(), UriError> {
        if port.is_some() && self.host.is_none() {
            return Err(UriError::NoHost);
        }
        self.port = port;
        Ok(())
    }

    /// Sets the path (empty for none).
    #[doc(alias = "evhttp_uri_set_path")]
    pub fn set_path(&mut self, path: &str) -> Result<(), UriError> {
        if path.len() > MAX_LEN {
            return Err(UriError::TooLong);
        }
        self.check_path(path)?;
        self.path = path.to_owned();
        Ok(())
    }

    /// Sets or removes the query.
    #[doc(alias = "evhttp_uri_set_query")]
    pub fn set_query(&mut self, query: Option<&str>) -> Result<(), UriError> {
        if let Some(q) = query {
            if q.len() > MAX_LEN {
                return Err(UriError::TooLong);
            }
            self.check_query(q)?;
        }
        self.query = query.map(str::to_owned);
        Ok(())
    }

    /// Sets or removes the fragment.
    #[doc(alias = "evhttp_uri_set_fragment")]
    pub fn set_fragment(&mut self, fragment: Option<&str>) -> Result<(), UriError> {
        if let Some(f) = fragment {
            if f.len() > MAX_LEN {
                return Err(UriError::TooLong);
            }
            self.check_fragment(f)?;
        }
        self.fragment = fragment.map(str::to_owned);
        Ok(())
    }

    /// The URI as a string (the same as its [`Display`](fmt::Display)).
    #[doc(alias = "evhttp_uri_join")]
    pub fn to_uri_string(&self) -> String {
        self.to_string()
    }

    /// Resolves `reference` against this URI as a base (RFC 3986 §5.2), with this URI's flags.
    ///
    /// The base should be absolute (have a scheme); a relative base is used as is, which is
    /// what RFC 3986 §5.2.1 leaves to the application.
    pub fn join(&self, reference: &str) -> Result<Uri, UriError> {
        let r = Uri::parse_with(reference, self.flags)?;
        Ok(self.resolve(&r))
    }

    /// Resolves the parsed reference `r` against this URI as a base (RFC 3986 §5.2.2, strict:
    /// a reference with a scheme is taken whole).
    pub fn resolve(&self, r: &Uri) -> Uri {
        let mut t = Uri {
            flags: self.flags,
            ..Uri::default()
        };
        if r.scheme.is_some() {
            t.scheme.clone_from(&r.scheme);
            t.copy_authority(r);
            t.path = remove_dot_segments(&r.path);
            t.query.clone_from(&r.query);
        } else {
            if r.has_authority() {
                t.copy_authority(r);
                t.path = remove_dot_segments(&r.path);
                t.query.clone_from(&r.query);
            } else {
                if r.path.is_empty() {
                    t.path.clone_from(&self.path);
                    t.query = if r.query.is_some() {
                        r.query.clone()
                    } else {
                        self.query.clone()
                    };
                } else {
                    if r.path.starts_with('/') {
                        t.path = remove_dot_segments(&r.path);
                    } else {
                        t.path = remove_dot_segments(&self.merge(&r.path));
                    }
                    t.query.clone_from(&r.query);
                }
                t.copy_authority(self);
            }
            t.scheme.clone_from(&self.scheme);
        }
        t.fragment.clone_from(&r.fragment);
        // A path that would print as an authority ("//x" with none) gets a "/." guard
        // (RFC 3986 §5.2.4 note); so does a scheme-less first segment with a colon.
        if !t.has_authority() && t.path.starts_with("//") {
            t.path.insert_str(0, "/.");
        }
        if t.scheme.is_none() && !t.has_authority() {
            let first = t.path.split('/').next().unwrap_or("");
            if first.contains(':') {
                t.path.insert_str(0, "./");
            }
        }
        t
    }

    fn copy_authority(&mut self, from: &Uri) {
        self.userinfo.clone_from(&from.userinfo);
        self.host.clone_from(&from.host);
        self.unix_socket.clone_from(&from.unix_socket);
        self.port = from.port;
    }

    /// RFC 3986 §5.2.3.
    fn merge(&self, rpath: &str) -> String {
        if self.has_authority() && self.path.is_empty() {
            format!("/{rpath}")
        } else {
            match self.path.rfind('/') {
                Some(i) => format!("{}{}", &self.path[..=i], rpath),
                None => rpath.to_owned(),
            }
        }
    }
}

/// RFC 3986 §5.2.4.
fn remove_dot_segments(input: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let mut inp = input;
    // The output is built as a list of "/seg" (or a first bare "seg") pieces.
    while !inp.is_empty() {
        if let Some(r) = inp.strip_prefix("../") {
            inp = r;
        } else if let Some(r) = inp.strip_prefix("./") {
            inp = r;
        } else if inp.starts_with("/./") {
            inp = &inp[2..];
        } else if inp == "/." {
            inp = "/";
        } else if inp.starts_with("/../") {
            inp = &inp[3..];
            out.pop();
        } else if inp == "/.." {
            inp = "/";
            out.pop();
        } else if inp == "." || inp == ".." {
            inp = "";
        } else {
            let start = usize::from(inp.starts_with('/'));
            let end = inp[start..].find('/').map_or(inp.len(), |i| i + start);
            out.push(&inp[..end]);
            inp = &inp[end..];
        }
    }
    out.concat()
}

fn parse_port(p: &str) -> Result<u16, UriError> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UriError::InvalidPort);
    }
    p.parse::<u16>().map_err(|_| UriError::InvalidPort)
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.scheme {
            write!(f, "{s}:")?;
        }
        if let Some(sock) = &self.unix_socket {
            f.write_str("//")?;
            if let Some(u) = &self.userinfo {
                write!(f, "{u}@")?;
            }
            write!(f, "unix:{sock}:")?;
        } else if let Some(h) = &self.host {
            f.write_str("//")?;
            if let Some(u) = &self.userinfo {
                write!(f, "{u}@")?;
            }
            if h.contains(':') && !h.starts_with('[') {
                write!(f, "[{h}]")?;
            } else {
                f.write_str(h)?;
            }
            if let Some(p) = self.port {
                write!(f, ":{p}")?;
            }
        }
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        if let Some(fr) = &self.fragment {
            write!(f, "#{fr}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, UriError> {
        Uri::parse(s)
    }
}

// ---- encoding helpers ----

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Percent-encodes `data`: every byte except the unreserved characters (letters, digits,
/// `-`, `.`, `_`, `~`) becomes `%XX` (upper-case hex); with `plus_for_space`, a space becomes
/// `+` instead of `%20` (the `application/x-www-form-urlencoded` style).
///
/// ```
/// assert_eq!(oxevent_http::uri::encode(b"a b&c=d/e", false), "a%20b%26c%3Dd%2Fe");
/// assert_eq!(oxevent_http::uri::encode(b"a b", true), "a+b");
/// ```
#[doc(alias = "evhttp_encode_uri")]
#[doc(alias = "evhttp_uriencode")]
pub fn encode(data: &[u8], plus_for_space: bool) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if is_unreserved(b) {
            out.push(char::from(b));
        } else if b == b' ' && plus_for_space {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s`; with `plus_as_space`, `+` decodes to a space.
///
/// Unlike libevent, which copies a malformed escape through as is, a `%` not followed by two
/// hex digits is an error ([`UriError::InvalidPercentEncoding`]). The result is bytes: an
/// escape may stand for any byte, so it need not be UTF-8.
///
/// ```
/// assert_eq!(oxevent_http::uri::decode("caf%C3%A9+au+lait", true)?, "café au lait".as_bytes());
/// assert!(oxevent_http::uri::decode("100%", false).is_err());
/// # Ok::<(), oxevent_http::uri::UriError>(())
/// ```
#[doc(alias = "evhttp_decode_uri")]
#[doc(alias = "evhttp_uridecode")]
pub fn decode(s: &str, plus_as_space: bool) -> Result<Vec<u8>, UriError> {
    if s.len() > MAX_LEN {
        return Err(UriError::TooLong);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = b.get(i + 1).copied().and_then(hex_val);
                let lo = b.get(i + 2).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(UriError::InvalidPercentEncoding),
                }
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Flags for [`parse_query_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct QueryFlags(u8);

impl QueryFlags {
    /// Strict: every element is `key=value` with a non-empty key.
    pub const NONE: Self = Self(0);
    /// Tolerate elements without `=` (value `""`) and skip elements with an empty key.
    #[doc(alias = "EVHTTP_URI_QUERY_NONCONFORMANT")]
    pub const NONCONFORMANT: Self = Self(1);
    /// Keep only the last value of a repeated key.
    #[doc(alias = "EVHTTP_URI_QUERY_LAST_VAL")]
    pub const LAST_VAL: Self = Self(2);

    /// Whether every flag in `other` is set in `self`.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for QueryFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Parses a query string (`a=1&b=two+words`) into ordered `(key, value)` pairs, decoding
/// percent escapes and `+` in both keys and values. Strict: an element without `=` or with
/// an empty key is an error. A trailing `&` is allowed.
///
/// libevent decodes only the values; this decodes keys too, so that `a%5B%5D=1` gives `a[]`.
#[doc(alias = "evhttp_parse_query_str")]
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, UriError> {
    parse_query_with(query, QueryFlags::NONE)
}

/// [`parse_query`] with [`QueryFlags`].
#[doc(alias = "evhttp_parse_query_str_flags")]
pub fn parse_query_with(query: &str, flags: QueryFlags) -> Result<Vec<(String, String)>, UriError> {
    if query.len() > MAX_LEN {
        return Err(UriError::TooLong);
    }
    let mut out: Vec<(String, String)> = Vec::new();
    if query.is_empty() {
        return Ok(out);
    }
    let body = query.strip_suffix('&').unwrap_or(query);
    for element in body.split('&') {
        let (key, value) = match element.split_once('=') {
            Some((k, v)) => (k, v),
            None if flags.contains(QueryFlags::NONCONFORMANT) => (element, ""),
            None => return Err(UriError::MissingEquals),
        };
        if key.is_empty() {
            if flags.contains(QueryFlags::NONCONFORMANT) {
                continue;
            }
            return Err(UriError::EmptyKey);
        }
        let key = String::from_utf8(decode(key, true)?).map_err(|_| UriError::InvalidUtf8)?;
        let value = String::from_utf8(decode(value, true)?).map_err(|_| UriError::InvalidUtf8)?;
        if flags.contains(QueryFlags::LAST_VAL) {
            out.retain(|(k, _)| *k != key);
        }
        out.push((key, value));
    }
    Ok(out)
}

/// Parses the query of a URI (`/search?q=x&n=2`) into pairs as [`parse_query`] does; a URI
/// without a query gives no pairs.
#[doc(alias = "evhttp_parse_query")]
pub fn parse_query_of_uri(uri: &str) -> Result<Vec<(String, String)>, UriError> {
    let parsed = Uri::parse_with(uri, UriFlags::NONCONFORMANT)?;
    match parsed.query() {
        Some(q) => parse_query(q),
        None => Ok(Vec::new()),
    }
}

/// Escapes `<`, `>`, `"`, `'` and `&` for HTML text and attribute values.
#[doc(alias = "evhttp_htmlescape")]
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#039;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out
}
