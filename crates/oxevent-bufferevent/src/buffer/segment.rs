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
//!
//! # Segment cache
//!
//! A drained writable segment of one of the automatic sizes (4, 8, 16, 32
//! or 64 KiB) goes back to a small per-thread cache instead of to the
//! allocator, and the next segment of that size on the thread comes from
//! there: steady traffic (read 16 KiB, move it to an output, write it,
//! drain it) then costs no `malloc`/`free` per message, and no zeroing
//! either, as cached segments stay initialized (so a socket read can go
//! straight into them). Without it glibc trimmed and re-grew the top of the
//! heap around every message, which page-faulted on every new segment. The
//! cache holds at most 256 segments of a size and 1 MiB in all per thread
//! (with 32 of a size, 64 connections echoing 4 KiB messages still sent
//! glibc to `brk` about once every 16 messages); it belongs to no buffer, so
//! an empty buffer still holds no memory. Draining moves a segment's start
//! offset rather than advancing its `BytesMut`, so a drained segment still
//! owns its whole allocation; a segment that was split (shared with `Bytes`
//! elsewhere) is freed, not cached.

use std::collections::VecDeque;
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

/// Size classes of the segment cache: the capacities [`segment_capacity`]
/// hands out below [`MAX_AUTO_SEGMENT`].
const CACHE_CLASSES: [usize; 5] = [4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10];

/// Most bytes of segments one thread's cache keeps, all classes together.
pub(crate) const CACHE_MAX_BYTES: usize = 1024 << 10;

/// Most segments the cache keeps in one class.
pub(crate) const CACHE_MAX_PER_CLASS: usize = 256;

/// Writable segments given back by drained buffers, kept for the next
/// segment of the same size on the same thread (see the module docs).
struct SegCache {
    classes: [Vec<BytesMut>; CACHE_CLASSES.len()],
    bytes: usize,
}

thread_local! {
    static SEG_CACHE: std::cell::RefCell<SegCache> = const {
        std::cell::RefCell::new(SegCache {
            classes: [const { Vec::new() }; CACHE_CLASSES.len()],
            bytes: 0,
        })
    };
}

fn cache_class(cap: usize) -> Option<usize> {
    CACHE_CLASSES.iter().position(|&c| c == cap)
}

/// A cached allocation of exactly `cap` bytes (all initialized), if any.
fn cache_take(cap: usize) -> Option<BytesMut> {
    let class = cache_class(cap)?;
    SEG_CACHE
        .try_with(|c| {
            let mut c = c.try_borrow_mut().ok()?;
            let buf = c.classes[class].pop()?;
            c.bytes -= cap;
            Some(buf)
        })
        .ok()
        .flatten()
}

/// Whether the cache holds a segment of exactly `cap` bytes.
pub(crate) fn cache_has(cap: usize) -> bool {
    let Some(class) = cache_class(cap) else {
        return false;
    };
    SEG_CACHE
        .try_with(|c| c.try_borrow().is_ok_and(|c| !c.classes[class].is_empty()))
        .unwrap_or(false)
}

/// Keeps `buf` for reuse when it is one of the cached sizes and there is
/// room; drops it otherwise.
fn cache_put(mut buf: BytesMut) {
    let cap = buf.capacity();
    let Some(class) = cache_class(cap) else {
        return;
    };
    let _ = SEG_CACHE.try_with(|c| {
        let Ok(mut c) = c.try_borrow_mut() else {
            return;
        };
        if c.classes[class].len() >= CACHE_MAX_PER_CLASS || c.bytes + cap > CACHE_MAX_BYTES {
            return;
        }
        // Cached segments are handed out as initialized spare space (for
        // `reserve`): zero what never was, once per allocation.
        if buf.len() < cap {
            buf.resize(cap, 0);
        }
        c.bytes += cap;
        c.classes[class].push(buf);
    });
}

/// Most empty segment lists one thread keeps for reuse.
const LIST_CACHE_MAX: usize = 256;

/// Largest capacity (in segments) a kept segment list may have.
const LIST_CACHE_MAX_CAP: usize = 16;

thread_local! {
    /// Empty segment lists given back by buffers that emptied: a buffer
    /// that empties gives its list's allocation back so that an idle
    /// buffer holds nothing, and the next buffer to need a list takes one
    /// from here instead of from the allocator (one `malloc` and one
    /// `free` per echoed message otherwise).
    static LIST_CACHE: std::cell::RefCell<Vec<VecDeque<Seg>>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// An empty segment list, with room from an earlier one when the thread
/// has one to hand.
pub(crate) fn list_take() -> VecDeque<Seg> {
    LIST_CACHE
        .try_with(|c| c.try_borrow_mut().ok().and_then(|mut c| c.pop()))
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Keeps the allocation of the empty list `list` for [`list_take`] when it
/// is small and there is room; frees it otherwise.
pub(crate) fn list_put(list: VecDeque<Seg>) {
    if !list.is_empty() || list.capacity() == 0 || list.capacity() > LIST_CACHE_MAX_CAP {
        return;
    }
    let _ = LIST_CACHE.try_with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            if c.len() < LIST_CACHE_MAX {
                c.push(list);
            }
        }
    });
}

/// The bytes the calling thread's segment cache holds (for tests).
#[cfg(test)]
pub(crate) fn cached_bytes() -> usize {
    SEG_CACHE.with(|c| c.borrow().bytes)
}

/// A writable segment.
///
/// INVARIANT: `start + len <= buf.len()`. `buf[start..start + len]` is
/// data, `buf[..start]` was drained, `buf[start + len..]` is initialized
/// spare space (handed out by `reserve`), and the capacity past `buf.len()`
/// is uninitialized spare space that is only written through `BytesMut`'s
/// safe `extend_from_slice`/`resize`.
///
/// Draining moves `start` instead of advancing the `BytesMut`, so that a
/// drained segment still owns its whole allocation, initialized, and goes
/// back to the thread's segment cache when dropped.
#[derive(Debug)]
pub(crate) struct MutSeg {
    pub(crate) buf: BytesMut,
    pub(crate) start: usize,
    pub(crate) len: usize,
    /// `buf` is a whole allocation of its own, never split: only such
    /// segments go back to the cache (a split one could pin a larger
    /// allocation shared with `Bytes` elsewhere).
    pub(crate) whole: bool,
}

impl Drop for MutSeg {
    fn drop(&mut self) {
        if self.whole {
            cache_put(std::mem::take(&mut self.buf));
        }
    }
}

impl MutSeg {
    pub(crate) fn with_capacity(cap: usize) -> Self {
        let buf = cache_take(cap).unwrap_or_else(|| BytesMut::with_capacity(cap));
        Self {
            buf,
            start: 0,
            len: 0,
            whole: true,
        }
    }

    /// A segment over `buf` whose first `len` bytes are data (it does not
    /// go to the cache).
    pub(crate) fn from_buf(buf: BytesMut, len: usize) -> Self {
        Self {
            buf,
            start: 0,
            len,
            whole: false,
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

    /// Where the data ends (and the spare space starts) in `buf`.
    #[inline]
    pub(crate) fn end(&self) -> usize {
        self.start + self.len
    }

    /// Spare bytes (initialized or not) after the data.
    pub(crate) fn spare(&self) -> usize {
        self.buf.capacity() - self.end()
    }

    /// Copies as much of `data` as fits into the spare space; returns how
    /// much was copied.
    pub(crate) fn append(&mut self, data: &[u8]) -> usize {
        let end = self.end();
        let init = self.buf.len() - end;
        let a = init.min(data.len());
        self.buf[end..end + a].copy_from_slice(&data[..a]);
        self.len += a;
        let rest = &data[a..];
        if rest.is_empty() {
            return a;
        }
        // Here `end == buf.len()`: the initialized spare is used up.
        let b = (self.buf.capacity() - self.buf.len()).min(rest.len());
        self.buf.extend_from_slice(&rest[..b]);
        self.len += b;
        a + b
    }

    /// Makes the whole capacity initialized, so that it can be handed out as
    /// `&mut [u8]`. Zeroes it once per allocation (cached segments come
    /// back initialized).
    pub(crate) fn init_spare(&mut self) {
        let cap = self.buf.capacity();
        if self.buf.len() < cap {
            self.buf.resize(cap, 0);
        }
    }

    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end()]
    }

    /// Splits off the first `n` bytes of data (`n <= len`) as `Bytes`,
    /// without copying; the segment keeps the rest (and its spare space).
    pub(crate) fn split_data(&mut self, n: usize) -> Bytes {
        let mut front = self.buf.split_to(self.start + n);
        front.advance(self.start);
        self.start = 0;
        self.len -= n;
        self.whole = false;
        front.freeze()
    }

    /// The data as `Bytes` (no copy); the segment's memory goes with it.
    pub(crate) fn into_bytes(mut self) -> Bytes {
        let end = self.end();
        let mut buf = std::mem::take(&mut self.buf);
        buf.truncate(end);
        buf.advance(self.start);
        buf.freeze()
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
                m.start += n;
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
            Self::Mut(m) => Self::Bytes(m.split_data(n)),
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
            Self::Mut(m) => Some(m.split_data(n)),
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
                let data = m.split_data(m.len);
                let spare = std::mem::take(&mut m.buf);
                let rest = if spare.capacity() > 0 {
                    Some(Self::Mut(MutSeg::from_buf(spare, 0)))
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
