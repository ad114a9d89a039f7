//! The error type of this crate and the [`Direction`] it refers to.

use std::fmt;

use crate::MemberId;

/// One of the two directions a bucket limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Bytes read from the peer.
    Read,
    /// Bytes written to the peer.
    Write,
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Read => "read",
            Self::Write => "write",
        })
    }
}

/// What went wrong when building a configuration or using a group.
///
/// libevent reports all of these as a `NULL` or `-1` return; here each has its own variant. The
/// wording of the [`Display`](fmt::Display) text is not part of the API.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A rate of zero bytes per tick was given; libevent requires at least one.
    ZeroRate {
        /// The direction whose rate was zero.
        direction: Direction,
    },
    /// A rate was larger than the burst (the bucket size) of the same direction.
    RateExceedsBurst {
        /// The direction at fault.
        direction: Direction,
        /// The rate given, in bytes per tick.
        rate: u64,
        /// The burst given, in bytes.
        burst: u64,
    },
    /// A rate, burst or minimum share was above [`RATE_LIMIT_MAX`](crate::RATE_LIMIT_MAX).
    TooLarge {
        /// What was too large: `"read rate"`, `"write burst"`, `"min share"`, ...
        what: &'static str,
        /// The value given.
        value: u64,
    },
    /// The tick length was zero.
    ZeroTick,
    /// The member is not in this group.
    UnknownMember(MemberId),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroRate { direction } => {
                write!(f, "{direction} rate must be at least 1 byte per tick")
            }
            Self::RateExceedsBurst {
                direction,
                rate,
                burst,
            } => write!(
                f,
                "{direction} rate {rate} is larger than its burst {burst}"
            ),
            Self::TooLarge { what, value } => write!(
                f,
                "{what} {value} is larger than the maximum {}",
                crate::RATE_LIMIT_MAX
            ),
            Self::ZeroTick => f.write_str("tick length must not be zero"),
            Self::UnknownMember(id) => write!(f, "{id} is not a member of this group"),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
