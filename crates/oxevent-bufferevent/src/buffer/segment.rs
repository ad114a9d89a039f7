//! The pieces a [`Buffer`](super::Buffer) is made of: read-only [`Bytes`],
//! a writable [`BytesMut`] and file ranges ([`FileSegment`]).
//!
//! # Segment sizing policy
//!
//! - Small adds are copied into the spare capacity of the last segment when
//!   it is writable, so a stream of small adds costs no allocation per add.
//! - When the tail is full, a new writable segment is allocated with a
//!   capacity of the remaining bytes, or twice the previous tail's capacity
//!   if that is more, rounded up to a power of two, at least
//!   [`MIN_SEGMENT`] (4 KiB) and at most [`MAX_AUTO_SEGMENT`] (64 KiB) unless
//!   a single add is larger, in which case it gets exactly its size.
//! - `Bytes` added by reference, segments moved in from another buffer and
//!   file segments are linked in as they are, never copied.
//! - A segment is dropped as soon as it is drained, and a buffer that drains
//!   to empty holds no segment at all.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};

use super::BufferError;

/// Smallest writable segment allocated for adds and reservations.
pub const MIN_SEGMENT: usize = 4096;

/// Largest writable segment allocated automatically (a single larger add
/// gets a segment of exactly its size).
pub const MAX_AUTO_SEGMENT: usize = 64 * 1024;

/// The capacity of a new writable segment that must take `need` bytes.
pub(crate) fn segment_capacity(need: usize) -> usize {
    if need <= MIN_SEGMENT {
        MIN_SEGMENT
    } else if need <= MAX_AUTO_SEGMENT {
        need.next_power_of_two()
    } else {
        need
    }
}

/// A range of a file, shared by reference count between buffers.
///
/// When a buffer holding a file segment is written to an fd, the range is
/// sent with `sendfile(2)` where the OS has it (and with `pread` plus
/// `write` elsewhere); the bytes never pass through user space. Operations
/// that need the bytes themselves (`copyout`, `search`, `readln`, `pullup`,
/// `remove`, `std::io::Read`) read them with `pread(2)` at that time. The
/// file's own offset is never used or moved, so one file can back many
/// segments and buffers at once.
#[doc(alias = "evbuffer_file_segment")]
#[doc(alias = "evbuffer_file_segment_new")]
#[derive(Debug, Clone)]
pub struct FileSegment {
    file: Arc<File>,
    offset: u64,
    len: usize,
}

impl FileSegment {
    /// A segment of `len` bytes of `file` starting at `offset`.
    ///
    /// # Errors
    ///
    /// [`BufferError::InvalidFileRange`] when the range does not lie inside
    /// the file (its length is read with `metadata`), [`BufferError::Io`]
    /// when the metadata cannot be read.
    #[doc(alias = "evbuffer_file_segment_new")]
    pub fn new(file: File, offset: u64, len: u64) -> Result<Self, BufferError> {
        Self::from_arc(Arc::new(file), offset, len)
    }

    /// Like [`FileSegment::new`], for a file that is already shared.
    ///
    /// # Errors
    ///
    /// As [`FileSegment::new`].
    pub fn from_arc(file: Arc<File>, offset: u64, len: u64) -> Result<Self, BufferError> {
        let file_len = file.metadata()?.len();
        let bad = || BufferError::InvalidFileRange {
            offset,
            len,
            file_len,
        };
        let end = offset.checked_add(len).ok_or_else(bad)?;
        if end > file_len {
            return Err(bad());
        }
        let len = usize::try_from(len).map_err(|_| bad())?;
        Ok(Self { file, offset, len })
    }

    /// The sub-range `[start, start + len)` of this segment.
    ///
    /// # Errors
    ///
    /// [`BufferError::OutOfRange`] when it does not fit in this segment.
    pub fn slice(&self, start: usize, len: usize) -> Result<Self, BufferError> {
        match start.checked_add(len) {
            Some(end) if end <= self.len => Ok(Self {
                file: Arc::clone(&self.file),
                offset: self.offset + start as u64,
                len,
            }),
            _ => Err(BufferError::OutOfRange {
                requested: start.saturating_add(len),
                available: self.len,
            }),
        }
    }

    /// Bytes in the segment.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the segment is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Offset of the segment's first byte in the file.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The file behind the segment.
    #[must_use]
    pub fn file(&self) -> &Arc<File> {
        &self.file
    }

    pub(crate) fn advance(&mut self, n: usize) {
        self.offset += n as u64;
        self.len -= n;
    }

    /// Reads `dst.len()` bytes at `at` (relative to the segment) with pread.
    pub(crate) fn read_exact_at(&self, at: usize, dst: &mut [u8]) -> Result<(), BufferError> {
        let mut done = 0;
        while done < dst.len() {
            let off = self.offset + (at + done) as u64;
            match oxevent_core::fdio::pread(self.file.as_fd(), &mut dst[done..], off) {
                Ok(0) => return Err(BufferError::FileTruncated),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(BufferError::Io(e)),
            }
        }
        Ok(())
    }
}

/// A writable segment.
///
/// INVARIANT: `len <= buf.len()`. `buf[..len]` is data, `buf[len..]` is
/// initialized spare space (handed out by `reserve`), and the capacity past
/// `buf.len()` is uninitialized spare space that is only written through
/// `BytesMut`'s safe `extend_from_slice`/`resize`.
#[derive(Debug)]
pub(crate) struct MutSeg {
    pub(crate) buf: BytesMut,
    pub(crate) len: usize,
}

impl MutSeg {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(cap),
            len: 0,
        }
    }

    /// A segment of `cap` bytes, or an error instead of a panic when no
    /// allocation can have that size (sizes asked for by callers: more than
    /// `isize::MAX` bytes).
    pub(crate) fn try_with_capacity(cap: usize) -> Result<Self, BufferError> {
        if isize::try_from(cap).is_err() {
            return Err(BufferError::AllocFailed { requested: cap });
        }
        Ok(Self::with_capacity(cap))
    }

    /// Spare bytes (initialized or not) after the data.
    pub(crate) fn spare(&self) -> usize {
        self.buf.capacity() - self.len
    }

    /// Copies as much of `data` as fits into the spare space; returns how
    /// much was copied.
    pub(crate) fn append(&mut self, data: &[u8]) -> usize {
        let init = self.buf.len() - self.len;
        let a = init.min(data.len());
        self.buf[self.len..self.len + a].copy_from_slice(&data[..a]);
        self.len += a;
        let rest = &data[a..];
        if rest.is_empty() {
            return a;
        }
        // Here `len == buf.len()`: the initialized spare is used up.
        let b = (self.buf.capacity() - self.buf.len()).min(rest.len());
        self.buf.extend_from_slice(&rest[..b]);
        self.len += b;
        a + b
    }

    /// Makes the whole capacity initialized, so that it can be handed out as
    /// `&mut [u8]`. Zeroes it once per segment.
    pub(crate) fn init_spare(&mut self) {
        let cap = self.buf.capacity();
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
    }

    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One piece of a buffer.
#[derive(Debug)]
pub(crate) enum Seg {
    /// Read-only bytes: references added by the user or shared with another
    /// buffer.
    Bytes(Bytes),
    /// Writable memory owned by this buffer.
    Mut(MutSeg),
    /// A range of a file.
    File(FileSegment),
}

impl Seg {
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Bytes(b) => b.len(),
            Self::Mut(m) => m.len,
            Self::File(f) => f.len,
        }
    }

    /// The bytes if they are in memory.
    #[inline]
    pub(crate) fn mem(&self) -> Option<&[u8]> {
        match self {
            Self::Bytes(b) => Some(b),
            Self::Mut(m) => Some(m.data()),
            Self::File(_) => None,
        }
    }

    /// Drops the first `n` bytes (`n < len`).
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        match self {
            Self::Bytes(b) => b.advance(n),
            Self::Mut(m) => {
                m.buf.advance(n);
                m.len -= n;
            }
            Self::File(f) => f.advance(n),
        }
    }

    /// Splits off and returns the first `n` bytes (`n < len`) as a segment
    /// of its own, without copying.
    pub(crate) fn split_front(&mut self, n: usize) -> Self {
        match self {
            Self::Bytes(b) => Self::Bytes(b.split_to(n)),
            Self::Mut(m) => {
                m.len -= n;
                Self::Bytes(m.buf.split_to(n).freeze())
            }
            Self::File(f) => {
                let front = FileSegment {
                    file: Arc::clone(&f.file),
                    offset: f.offset,
                    len: n,
                };
                f.advance(n);
                Self::File(front)
            }
        }
    }

    /// The first `n` bytes as `Bytes` when they are in memory (no copy).
    pub(crate) fn take_front_bytes(&mut self, n: usize) -> Option<Bytes> {
        match self {
            Self::Bytes(b) => Some(b.split_to(n)),
            Self::Mut(m) => {
                m.len -= n;
                Some(m.buf.split_to(n).freeze())
            }
            Self::File(_) => None,
        }
    }

    /// Makes a segment that shares this one's bytes. A writable segment is
    /// first turned into read-only `Bytes` (its spare space, if any, is kept
    /// as a new empty writable segment, returned second).
    pub(crate) fn share(&mut self) -> (Self, Option<Self>) {
        match self {
            Self::Bytes(b) => (Self::Bytes(b.clone()), None),
            Self::File(f) => (Self::File(f.clone()), None),
            Self::Mut(m) => {
                let data = m.buf.split_to(m.len).freeze();
                let spare = std::mem::take(&mut m.buf);
                let rest = if spare.capacity() > 0 {
                    Some(Self::Mut(MutSeg { buf: spare, len: 0 }))
                } else {
                    None
                };
                *self = Self::Bytes(data.clone());
                (Self::Bytes(data), rest)
            }
        }
    }

    /// Copies `dst.len()` bytes from offset `at` of the segment.
    pub(crate) fn copy_to(&self, at: usize, dst: &mut [u8]) -> Result<(), BufferError> {
        match self.mem() {
            Some(m) => {
                dst.copy_from_slice(&m[at..at + dst.len()]);
                Ok(())
            }
            None => match self {
                Self::File(f) => f.read_exact_at(at, dst),
                _ => Ok(()),
            },
        }
    }

    pub(crate) fn is_file(&self) -> bool {
        matches!(self, Self::File(_))
    }
}
