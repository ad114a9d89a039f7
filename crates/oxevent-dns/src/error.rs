//! The crate's error type, with libevent's `DNS_ERR_*` and `EVUTIL_EAI_*`
//! codes and messages.

use std::fmt;
use std::io;

use crate::wire::WireError;

/// A DNS or getaddrinfo failure. The wording of the messages is not
/// stable.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The server could not parse the query (FORMERR, `DNS_ERR_FORMAT`).
    Format,
    /// The server failed (SERVFAIL, `DNS_ERR_SERVERFAILED`). An answer,
    /// not a timeout.
    ServerFailed,
    /// The name does not exist (NXDOMAIN, `DNS_ERR_NOTEXIST`).
    NotExist,
    /// The server does not implement the query (`DNS_ERR_NOTIMPL`).
    NotImpl,
    /// The server refused (`DNS_ERR_REFUSED`).
    Refused,
    /// Another response code.
    Rcode(u8),
    /// The answer was truncated and could not be fetched over TCP
    /// (`DNS_ERR_TRUNCATED`).
    Truncated,
    /// No answer after every attempt (`DNS_ERR_TIMEOUT`).
    Timeout,
    /// The resolver was freed with the request pending (`DNS_ERR_SHUTDOWN`).
    Shutdown,
    /// The request was cancelled (`DNS_ERR_CANCEL`).
    Cancelled,
    /// The name exists but has no record of the type asked
    /// (`DNS_ERR_NODATA`).
    NoData,
    /// No nameserver is configured.
    NoServers,
    /// An invalid name (too long, an empty label, ...).
    InvalidName(String),
    /// A malformed message from the network.
    Malformed(WireError),
    /// getaddrinfo: an unknown service (`EVUTIL_EAI_SERVICE`).
    Service(String),
    /// getaddrinfo: the address family is not supported (`EVUTIL_EAI_FAMILY`).
    Family,
    /// getaddrinfo: a numeric host was required but not given
    /// (`EVUTIL_EAI_NONAME`).
    NoName,
    /// An OS error.
    Io(io::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// libevent's `DNS_ERR_*` code for this error (0 is none; 66-70 are
    /// libevent's own: unknown, timeout, shutdown, cancel, nodata).
    #[must_use]
    pub fn code(&self) -> i32 {
        match self {
            Self::Format => 1,
            Self::ServerFailed => 2,
            Self::NotExist | Self::NoName => 3,
            Self::NotImpl => 4,
            Self::Refused => 5,
            Self::Truncated => 65,
            Self::Timeout => 67,
            Self::Shutdown => 68,
            Self::Cancelled => 69,
            Self::NoData => 70,
            _ => 66,
        }
    }

    /// libevent's `EVUTIL_EAI_*` code for this error, as returned by
    /// `evdns_getaddrinfo`.
    #[must_use]
    pub fn gai_code(&self) -> i32 {
        match self {
            Self::NotExist | Self::NoName | Self::InvalidName(_) => -908, // EAI_NONAME
            Self::NoData => -907,                                         // EAI_NODATA
            Self::Service(_) => -909,                                     // EAI_SERVICE
            Self::Family => -905,                                         // EAI_FAMILY
            Self::Cancelled => -90001,                                    // EAI_CANCEL
            Self::Io(_) => -911,                                          // EAI_SYSTEM
            Self::Timeout | Self::ServerFailed => -902,                   // EAI_AGAIN
            _ => -904,                                                    // EAI_FAIL
        }
    }

    /// Whether the name does not exist (NXDOMAIN).
    #[must_use]
    pub fn is_not_exist(&self) -> bool {
        matches!(self, Self::NotExist)
    }

    /// Whether every attempt timed out.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout)
    }

    /// Whether the request was cancelled.
    #[must_use]
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// Whether the server answered SERVFAIL.
    #[must_use]
    pub fn is_server_failed(&self) -> bool {
        matches!(self, Self::ServerFailed)
    }

    /// Whether a message from the network was malformed.
    #[must_use]
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }

    pub(crate) fn from_rcode(rcode: u8) -> Option<Self> {
        Some(match rcode {
            0 => return None,
            1 => Self::Format,
            2 => Self::ServerFailed,
            3 => Self::NotExist,
            4 => Self::NotImpl,
            5 => Self::Refused,
            n => Self::Rcode(n),
        })
    }

    /// A copy (io errors keep their kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            Self::Format => Self::Format,
            Self::ServerFailed => Self::ServerFailed,
            Self::NotExist => Self::NotExist,
            Self::NotImpl => Self::NotImpl,
            Self::Refused => Self::Refused,
            Self::Rcode(n) => Self::Rcode(*n),
            Self::Truncated => Self::Truncated,
            Self::Timeout => Self::Timeout,
            Self::Shutdown => Self::Shutdown,
            Self::Cancelled => Self::Cancelled,
            Self::NoData => Self::NoData,
            Self::NoServers => Self::NoServers,
            Self::InvalidName(s) => Self::InvalidName(s.clone()),
            Self::Malformed(w) => Self::Malformed(*w),
            Self::Service(s) => Self::Service(s.clone()),
            Self::Family => Self::Family,
            Self::NoName => Self::NoName,
            Self::Io(e) => Self::Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// The message for a libevent `DNS_ERR_*` code (`evdns_err_to_string`).
#[doc(alias = "evdns_err_to_string")]
#[must_use]
pub fn err_to_string(code: i32) -> &'static str {
    match code {
        0 => "no error",
        1 => "misformatted query",
        2 => "server failed",
        3 => "name does not exist",
        4 => "query not implemented",
        5 => "refused",
        65 => "reply truncated or ill-formed",
        66 => "unknown",
        67 => "request timed out",
        68 => "dns subsystem shut down",
        69 => "dns request canceled",
        70 => "no records in the reply",
        _ => "[unknown error code]",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rcode(n) => write!(f, "server answered with response code {n}"),
            Self::NoServers => f.write_str("no nameserver configured"),
            Self::InvalidName(n) => write!(f, "invalid name {n:?}"),
            Self::Malformed(w) => write!(f, "malformed message: {w}"),
            Self::Service(s) => write!(f, "unknown service {s:?}"),
            Self::Family => f.write_str("address family not supported"),
            Self::NoName => f.write_str("a numeric host is required"),
            Self::Io(e) => write!(f, "i/o error: {e}"),
            other => f.write_str(err_to_string(other.code())),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            Self::Malformed(w) => Some(w),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Self::Malformed(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::NotExist | Error::NoData | Error::NoName => {
                Self::new(io::ErrorKind::NotFound, e.to_string())
            }
            Error::Timeout => Self::new(io::ErrorKind::TimedOut, e.to_string()),
            Error::Cancelled | Error::Shutdown => {
                Self::new(io::ErrorKind::Interrupted, e.to_string())
            }
            Error::InvalidName(_) | Error::Service(_) | Error::Family => {
                Self::new(io::ErrorKind::InvalidInput, e.to_string())
            }
            other => Self::other(other.to_string()),
        }
    }
}
