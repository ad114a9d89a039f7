//! The one error type of the buffer module, [`BufferError`].

use std::fmt;
use std::io;

/// Which end of a [`Buffer`](super::Buffer) an operation or a freeze refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BufferSide {
    /// The front: the end that data is drained, removed and read from, and
    /// that `prepend` adds to.
    Start,
    /// The back: the end that data is added, reserved and read into.
    End,
}

impl fmt::Display for BufferSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::End => "end",
        })
    }
}

/// Everything that can go wrong in a [`Buffer`](super::Buffer) operation.
///
/// Bad input is always one of these, never a panic and never a silent
/// truncation. The wording of the messages is not part of the API.
#[derive(Debug)]
#[non_exhaustive]
pub enum BufferError {
    /// More bytes were asked for (drained, pulled up, ...) than the buffer
    /// holds; nothing was changed.
    OutOfRange {
        /// How many bytes the call asked for.
        requested: usize,
        /// How many bytes were there.
        available: usize,
    },
    /// A [`BufferPos`](super::BufferPos) points past the end of the buffer,
    /// or an offset would move it there.
    PosOutOfRange {
        /// The position asked for.
        pos: usize,
        /// The buffer's length.
        len: usize,
    },
    /// A [`BufferPos`](super::BufferPos) made by another buffer was used.
    ForeignPos,
    /// `commit` was asked to commit more bytes than the outstanding
    /// reservation holds (zero when there is none, or when another operation
    /// invalidated it).
    CommitTooLarge {
        /// Bytes asked to commit.
        requested: usize,
        /// Bytes reserved and still valid.
        reserved: usize,
    },
    /// The operation changes an end of the buffer that is frozen.
    Frozen(BufferSide),
    /// `readln` found no end of line within the maximum line length.
    LineTooLong {
        /// The maximum line length given to `readln`.
        max: usize,
    },
    /// The [`CallbackId`](super::CallbackId) is not (or no longer) registered
    /// on this buffer.
    UnknownCallback,
    /// A file segment's range does not lie inside the file.
    InvalidFileRange {
        /// First byte of the range.
        offset: u64,
        /// Length of the range.
        len: u64,
        /// The file's length when the segment was made.
        file_len: u64,
    },
    /// A file behind a file segment became shorter than the segment.
    FileTruncated,
    /// A limit argument was zero where at least one byte is needed (for
    /// example `read_from` with `max == 0`).
    ZeroLimit,
    /// The space asked for (by `reserve`, `expand`, `tail_writer` or
    /// `read_from`) is larger than any allocation can be (`isize::MAX`).
    AllocFailed {
        /// The segment size that could not be allocated.
        requested: usize,
    },
    /// The operating system reported an error (reading a file segment, or
    /// reading from or writing to an fd). `WouldBlock` arrives here too.
    Io(io::Error),
}

impl BufferError {
    /// The I/O error behind this error, if it is [`BufferError::Io`].
    #[must_use]
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is an I/O error of kind `WouldBlock` (a non-blocking fd
    /// had nothing to read or no room to write).
    #[must_use]
    pub fn is_would_block(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfRange {
                requested,
                available,
            } => write!(
                f,
                "asked for {requested} bytes but the buffer holds {available}"
            ),
            Self::PosOutOfRange { pos, len } => {
                write!(
                    f,
                    "position {pos} is past the end of a buffer of {len} bytes"
                )
            }
            Self::ForeignPos => f.write_str("position belongs to another buffer"),
            Self::CommitTooLarge {
                requested,
                reserved,
            } => write!(
                f,
                "cannot commit {requested} bytes, only {reserved} are reserved"
            ),
            Self::Frozen(side) => write!(f, "the {side} of the buffer is frozen"),
            Self::LineTooLong { max } => {
                write!(f, "no end of line within the maximum line length of {max}")
            }
            Self::UnknownCallback => f.write_str("no such callback on this buffer"),
            Self::InvalidFileRange {
                offset,
                len,
                file_len,
            } => write!(
                f,
                "file range {offset}+{len} is outside a file of {file_len} bytes"
            ),
            Self::FileTruncated => f.write_str("file shrank below its file segment"),
            Self::ZeroLimit => f.write_str("a limit of zero bytes was given"),
            Self::AllocFailed { requested } => {
                write!(f, "cannot allocate a segment of {requested} bytes")
            }
            Self::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for BufferError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<BufferError> for io::Error {
    fn from(e: BufferError) -> Self {
        match e {
            BufferError::Io(e) => e,
            BufferError::FileTruncated => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            BufferError::Frozen(_) => io::Error::new(io::ErrorKind::PermissionDenied, e),
            other => io::Error::new(io::ErrorKind::InvalidInput, other),
        }
    }
}
