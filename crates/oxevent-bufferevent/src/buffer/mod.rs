//! [`Buffer`]: libevent's `evbuffer`, a queue of bytes made of a chain of
//! segments.
//!
//! A buffer is a `VecDeque` of segments (see the sizing policy below) plus
//! a cached total length:
//!
//! - read-only [`Bytes`] segments: references added with
//!   [`Buffer::add_bytes`] (released when drained) and segments shared with
//!   another buffer by [`Buffer::add_buffer_reference`];
//! - writable [`BytesMut`] segments that small adds are
//!   coalesced into and that [`Buffer::reserve`] hands out;
//! - [`FileSegment`]s, ranges of a file sent with `sendfile(2)` by
//!   [`Buffer::write_to`] and read with `pread(2)` only when an operation
//!   needs the bytes themselves.
//!
//! Nothing is ever one big reallocating vector: [`Buffer::add_buffer`] and
//! [`Buffer::remove_buffer`] move segments and copy no byte (at most one
//! segment is split, also without copying), and [`Buffer::pullup`] copies
//! only when the bytes asked for are not already contiguous.
//!
//! # Segment sizing
//!
//! Small adds are copied into the spare capacity of the last writable
//! segment. When it is full, a new writable segment is allocated: large
//! enough for the bytes to add, at least [`MIN_SEGMENT`] (4 KiB), rounded up
//! to a power of two, and twice the capacity of the segment it follows, up
//! to [`MAX_AUTO_SEGMENT`] (64 KiB, below malloc's mmap threshold). A
//! growing buffer thus allocates rarely and wastes at most its last
//! segment's spare space; one add larger than 64 KiB gets a segment of
//! exactly its size. A drained segment
//! is dropped at once, and an empty buffer holds no segment:
//! `Buffer::new()` allocates nothing, and a buffer that drains to empty
//! starts again from 4 KiB. Drained segments of the automatic sizes go to
//! a small per-thread cache (at most 1 MiB) that the next segments are
//! taken from, so that steady traffic does no `malloc`/`free` per message.
//!
//! # Errors, limits and bad input
//!
//! Every fallible operation returns [`BufferError`]. Operations that grow
//! memory from untrusted input are bounded: [`Buffer::readln`] takes a
//! maximum line length, and [`Buffer::read_from`] a maximum read.
//!
//! # Callbacks and freezing
//!
//! See [`Buffer::add_cb`] and [`Buffer::freeze`].

mod callbacks;
mod error;
mod interop;
mod io;
mod search;
mod segment;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::io::IoSliceMut;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};

pub use callbacks::{CallbackId, CbInfo};
pub use error::{BufferError, BufferSide};
pub use interop::TailWriter;
pub use search::{BufferPos, EolStyle, PtrHow};
pub use segment::{FileSegment, MAX_AUTO_SEGMENT, MIN_SEGMENT};

use callbacks::Callbacks;
use segment::{MutSeg, Seg, segment_capacity};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// An outstanding reservation made by [`Buffer::reserve`].
#[derive(Debug, Clone, Copy, Default)]
struct Reservation {
    /// Index of the segment holding the first slice.
    first: usize,
    /// Spare bytes of that segment handed out (from its data length on).
    first_len: usize,
    /// Total bytes handed out (the rest is at the start of the next
    /// segment's spare space).
    total: usize,
}

/// A queue of bytes built from a chain of segments: libevent's `evbuffer`.
///
/// See the [module documentation](self) for the design, the segment sizing
/// policy and the handling of file segments.
///
/// A `Buffer` is not `Send`: its callbacks need not be (they run on the
/// loop's thread, like every other callback of a base).
///
/// ```
/// use oxevent_bufferevent::{Buffer, EolStyle};
/// use std::fmt::Write as _;
///
/// let mut buf = Buffer::new();
/// buf.add(b"GET / HTTP/1.1\r\n").unwrap();
/// write!(buf, "Host: {}\r\n", "example.org").unwrap();
/// assert_eq!(&buf.readln(EolStyle::Crlf, 8192).unwrap().unwrap()[..], b"GET / HTTP/1.1");
/// assert_eq!(&buf.readln(EolStyle::Crlf, 8192).unwrap().unwrap()[..], b"Host: example.org");
/// assert!(buf.is_empty());
/// ```
#[doc(alias = "evbuffer")]
pub struct Buffer {
    /// INVARIANT: no segment is empty, except possibly the last one, which
    /// is then a writable segment kept for its spare space.
    segs: VecDeque<Seg>,
    /// INVARIANT: the sum of the segments' lengths.
    len: usize,
    /// INVARIANT: the number of `Seg::File` segments.
    file_segs: u32,
    id: u64,
    frozen_start: bool,
    frozen_end: bool,
    resv: Option<Reservation>,
    cbs: Option<Box<Callbacks>>,
}

impl fmt::Debug for Buffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Buffer")
            .field("len", &self.len)
            .field("segments", &self.segs.len())
            .field("file_segments", &self.file_segs)
            .field("frozen_start", &self.frozen_start)
            .field("frozen_end", &self.frozen_end)
            .field("callbacks", &self.cbs)
            .finish_non_exhaustive()
    }
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

/// Spare space handed out by [`Buffer::reserve`]: one or two slices, usable
/// directly with `readv` (it dereferences to `[IoSliceMut]`).
///
/// Fill a prefix of the slices, in order, then call [`Buffer::commit`] with
/// the number of bytes filled.
#[derive(Debug)]
pub struct Reserved<'a> {
    slices: [IoSliceMut<'a>; 2],
    count: usize,
}

impl Reserved<'_> {
    /// Total bytes in the slices.
    #[must_use]
    pub fn total_len(&self) -> usize {
        self.slices[..self.count].iter().map(|s| s.len()).sum()
    }
}

impl<'a> Deref for Reserved<'a> {
    type Target = [IoSliceMut<'a>];
    fn deref(&self) -> &Self::Target {
        &self.slices[..self.count]
    }
}

impl DerefMut for Reserved<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.slices[..self.count]
    }
}

/// The in-memory slices returned by [`Buffer::peek`].
#[derive(Debug, Clone)]
pub struct Peek<'a> {
    segs: std::collections::vec_deque::Iter<'a, Seg>,
    left: usize,
}

impl<'a> Iterator for Peek<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let Some(m) = self
            .segs
            .next()
            .and_then(Seg::mem)
            .filter(|m| !m.is_empty())
        else {
            // A file segment (or the end): stop for good.
            self.left = 0;
            return None;
        };
        let n = m.len().min(self.left);
        self.left -= n;
        Some(&m[..n])
    }
}

impl Buffer {
    /// An empty buffer. Allocates nothing.
    #[doc(alias = "evbuffer_new")]
    #[must_use]
    pub fn new() -> Self {
        Self {
            segs: VecDeque::new(),
            len: 0,
            file_segs: 0,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            frozen_start: false,
            frozen_end: false,
            resv: None,
            cbs: None,
        }
    }

    /// Total bytes in the buffer.
    #[doc(alias = "evbuffer_get_length")]
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer holds no byte.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes in the first segment: how many bytes can be read at the front
    /// without [`Buffer::pullup`] copying anything.
    #[doc(alias = "evbuffer_get_contiguous_space")]
    #[must_use]
    pub fn contiguous_space(&self) -> usize {
        self.segs.front().map_or(0, Seg::len)
    }

    /// Number of segments (for tests and introspection).
    #[must_use]
    pub fn segment_count(&self) -> usize {
        self.segs.len()
    }

    // ----- internal plumbing -------------------------------------------------

    #[inline]
    fn check_end(&self) -> Result<(), BufferError> {
        if self.frozen_end {
            Err(BufferError::Frozen(BufferSide::End))
        } else {
            Ok(())
        }
    }

    #[inline]
    fn check_start(&self) -> Result<(), BufferError> {
        if self.frozen_start {
            Err(BufferError::Frozen(BufferSide::Start))
        } else {
            Ok(())
        }
    }

    /// Tells the callbacks about a change.
    #[inline]
    fn changed(&mut self, orig_size: usize, n_added: usize, n_deleted: usize) {
        if let Some(cbs) = &mut self.cbs {
            if n_added != 0 || n_deleted != 0 {
                cbs.notify(CbInfo {
                    orig_size,
                    n_added,
                    n_deleted,
                });
            }
        }
    }

    /// Pushes a non-empty segment at the back, dropping an empty writable
    /// tail first (keeps the segment invariant).
    fn push_seg(&mut self, seg: Seg) {
        if matches!(self.segs.back(), Some(s) if s.len() == 0) {
            self.segs.pop_back();
        }
        self.list_room();
        self.len += seg.len();
        if seg.is_file() {
            self.file_segs += 1;
        }
        self.segs.push_back(seg);
    }

    /// Pushes a non-empty segment at the front.
    fn push_front_seg(&mut self, seg: Seg) {
        self.len += seg.len();
        if seg.is_file() {
            self.file_segs += 1;
        }
        if self.len == seg.len() {
            // Only an empty writable tail can be there; drop it.
            self.segs.clear();
        }
        self.list_room();
        self.segs.push_front(seg);
    }

    /// Gives a buffer that released its segment list (see
    /// [`release_if_empty`](Self::release_if_empty)) one from the thread's
    /// list cache before it pushes a segment.
    fn list_room(&mut self) {
        if self.segs.capacity() == 0 {
            self.segs = segment::list_take();
        }
    }

    fn pop_front_seg(&mut self) -> Option<Seg> {
        let seg = self.segs.pop_front()?;
        self.len -= seg.len();
        if seg.is_file() {
            self.file_segs -= 1;
        }
        Some(seg)
    }

    /// Releases all segments once the buffer is empty.
    fn release_if_empty(&mut self) {
        if self.len == 0 {
            // The segment list too: an idle connection's buffers hold no
            // memory at all. Its allocation goes to the thread's list cache,
            // for the next buffer that needs one.
            self.segs.clear();
            segment::list_put(std::mem::take(&mut self.segs));
            self.file_segs = 0;
        }
    }

    /// Drops the first `n <= len` bytes.
    fn drain_inner(&mut self, n: usize) {
        let mut left = n;
        while left > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            let l = front.len();
            if l <= left {
                left -= l;
                self.pop_front_seg();
            } else {
                front.advance(left);
                self.len -= left;
                left = 0;
            }
        }
        self.release_if_empty();
    }

    /// Copies bytes `[start, start + dst.len())` into `dst` (the caller checks
    /// the range).
    fn copy_range(&self, start: usize, dst: &mut [u8]) -> Result<(), BufferError> {
        let mut skip = start;
        let mut done = 0;
        for seg in &self.segs {
            if done == dst.len() {
                break;
            }
            let l = seg.len();
            if skip >= l {
                skip -= l;
                continue;
            }
            let n = (l - skip).min(dst.len() - done);
            seg.copy_to(skip, &mut dst[done..done + n])?;
            done += n;
            skip = 0;
        }
        Ok(())
    }

    /// Removes the first `n <= len` bytes as one `Bytes`, without copying
    /// when they lie in one in-memory segment.
    fn take_front(&mut self, n: usize) -> Result<Bytes, BufferError> {
        if n == 0 {
            return Ok(Bytes::new());
        }
        if let Some(front) = self.segs.front_mut() {
            let l = front.len();
            if l > n {
                if let Some(b) = front.take_front_bytes(n) {
                    self.len -= n;
                    return Ok(b);
                }
            } else if l == n && !front.is_file() {
                if let Some(seg) = self.pop_front_seg() {
                    let b = match seg {
                        Seg::Bytes(b) => b,
                        Seg::Mut(m) => m.into_bytes(),
                        // Excluded by the branch condition.
                        Seg::File(_) => Bytes::new(),
                    };
                    self.release_if_empty();
                    return Ok(b);
                }
            }
        }
        let mut v = BytesMut::zeroed(n);
        self.copy_range(0, &mut v)?;
        self.drain_inner(n);
        Ok(v.freeze())
    }

    /// The writable tail with at least one byte of spare space, allocating a
    /// segment sized for `need` bytes when there is none.
    fn tail_with_space(&mut self, need: usize) -> &mut MutSeg {
        let ok = matches!(self.segs.back(), Some(Seg::Mut(m)) if m.spare() > 0);
        if !ok {
            self.push_empty_mut(self.grow_capacity(need));
        }
        match self.segs.back_mut() {
            Some(Seg::Mut(m)) => m,
            // The branch above made the last segment writable.
            _ => unreachable!("tail segment is writable"),
        }
    }

    /// The capacity of the next writable segment: room for `need` bytes,
    /// and twice the current tail's capacity (up to [`MAX_AUTO_SEGMENT`]),
    /// so that a growing buffer allocates rarely.
    fn grow_capacity(&self, need: usize) -> usize {
        let prev = match self.segs.back() {
            Some(Seg::Mut(m)) => m.buf.capacity(),
            _ => 0,
        };
        segment_capacity(need.max(prev.saturating_mul(2).min(MAX_AUTO_SEGMENT)))
    }

    fn push_empty_mut(&mut self, cap: usize) {
        self.push_mut(MutSeg::with_capacity(cap));
    }

    /// Pushes an empty writable segment whose size a caller asked for.
    fn try_push_empty_mut(&mut self, cap: usize) -> Result<(), BufferError> {
        self.push_mut(MutSeg::try_with_capacity(cap)?);
        Ok(())
    }

    fn push_mut(&mut self, seg: MutSeg) {
        if matches!(self.segs.back(), Some(s) if s.len() == 0) {
            self.segs.pop_back();
        }
        self.list_room();
        self.segs.push_back(Seg::Mut(seg));
    }

    // ----- adding ------------------------------------------------------------

    /// Appends a copy of `data`, coalescing it into the writable tail.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen.
    #[doc(alias = "evbuffer_add")]
    pub fn add(&mut self, data: &[u8]) -> Result<(), BufferError> {
        self.check_end()?;
        if data.is_empty() {
            return Ok(());
        }
        self.resv = None;
        let orig = self.len;
        let mut rest = data;
        if let Some(Seg::Mut(m)) = self.segs.back_mut() {
            // Fast path: the tail has room past its initialized part.
            if m.end() == m.buf.len() && m.buf.capacity() - m.end() >= data.len() {
                m.buf.extend_from_slice(data);
                m.len += data.len();
                self.len += data.len();
                self.changed(orig, data.len(), 0);
                return Ok(());
            }
            let n = m.append(rest);
            rest = &rest[n..];
        }
        if !rest.is_empty() {
            let m = self.tail_with_space(rest.len());
            let n = m.append(rest);
            debug_assert_eq!(n, rest.len());
        }
        self.len += data.len();
        self.changed(orig, data.len(), 0);
        Ok(())
    }

    /// Appends `data` by reference: no byte is copied, and the `Bytes` (and
    /// whatever owns its memory, see [`Bytes::from_owner`]) is dropped when
    /// the bytes are drained from every buffer holding them.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen.
    #[doc(alias = "evbuffer_add_reference")]
    #[doc(alias = "evbuffer_add_reference_with_offset")]
    pub fn add_bytes(&mut self, data: Bytes) -> Result<(), BufferError> {
        self.check_end()?;
        if data.is_empty() {
            return Ok(());
        }
        self.resv = None;
        let orig = self.len;
        let n = data.len();
        self.push_seg(Seg::Bytes(data));
        self.changed(orig, n, 0);
        Ok(())
    }

    /// Appends the bytes of several slices, in order (copying them).
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen.
    #[doc(alias = "evbuffer_add_iovec")]
    pub fn add_iovec(&mut self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize, BufferError> {
        self.check_end()?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        self.resv = None;
        let orig = self.len;
        for b in bufs {
            let mut rest: &[u8] = b;
            while !rest.is_empty() {
                let m = self.tail_with_space(rest.len());
                let n = m.append(rest);
                rest = &rest[n..];
            }
        }
        self.len += total;
        self.changed(orig, total, 0);
        Ok(total)
    }

    /// Appends formatted text (`buf.add_fmt(format_args!(...))`; `write!`
    /// works too, through [`std::fmt::Write`] and [`std::io::Write`]).
    /// Returns the number of bytes added.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen.
    #[doc(alias = "evbuffer_add_printf")]
    #[doc(alias = "evbuffer_add_vprintf")]
    pub fn add_fmt(&mut self, args: fmt::Arguments<'_>) -> Result<usize, BufferError> {
        self.check_end()?;
        let before = self.len;
        if let Some(s) = args.as_str() {
            self.add(s.as_bytes())?;
        } else {
            struct W<'a>(&'a mut Buffer);
            impl fmt::Write for W<'_> {
                fn write_str(&mut self, s: &str) -> fmt::Result {
                    self.0.add(s.as_bytes()).map_err(|_| fmt::Error)
                }
            }
            // `add` can only fail on a frozen end, checked above, and the
            // formatting traits of std types do not fail.
            fmt::write(&mut W(self), args).map_err(|_| BufferError::Frozen(BufferSide::End))?;
        }
        Ok(self.len - before)
    }

    /// Inserts a copy of `data` at the front.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the start is frozen.
    #[doc(alias = "evbuffer_prepend")]
    pub fn prepend(&mut self, data: &[u8]) -> Result<(), BufferError> {
        self.check_start()?;
        if data.is_empty() {
            return Ok(());
        }
        self.prepend_bytes(Bytes::copy_from_slice(data))
    }

    /// Inserts `data` at the front by reference (no copy).
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the start is frozen.
    #[doc(alias = "evbuffer_prepend")]
    pub fn prepend_bytes(&mut self, data: Bytes) -> Result<(), BufferError> {
        self.check_start()?;
        if data.is_empty() {
            return Ok(());
        }
        self.resv = None;
        let orig = self.len;
        let n = data.len();
        self.push_front_seg(Seg::Bytes(data));
        self.changed(orig, n, 0);
        Ok(())
    }

    /// Moves all of `other` in front of this buffer's data, copying no byte.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when this buffer's start or `other`'s start
    /// is frozen.
    #[doc(alias = "evbuffer_prepend_buffer")]
    pub fn prepend_buffer(&mut self, other: &mut Self) -> Result<(), BufferError> {
        self.check_start()?;
        other.check_start()?;
        if other.len == 0 {
            return Ok(());
        }
        self.resv = None;
        other.resv = None;
        let orig = self.len;
        let oorig = other.len;
        while let Some(seg) = other.segs.pop_back() {
            if seg.len() > 0 {
                self.push_front_seg(seg);
            }
        }
        self.took_all_of(other, orig, oorig);
        Ok(())
    }

    /// The end of a whole-buffer move: `other` (whose `n` bytes are now ours, this buffer
    /// having held `orig`) is emptied, and both buffers' callbacks hear of it.
    fn took_all_of(&mut self, other: &mut Self, orig: usize, n: usize) {
        other.len = 0;
        other.file_segs = 0;
        other.release_if_empty();
        self.changed(orig, n, 0);
        other.changed(n, 0, n);
    }

    /// Moves all of `other` to the end of this buffer: segments are relinked
    /// and no byte is copied. O(1) when this buffer is empty, O(number of
    /// segments) otherwise.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when this buffer's end or `other`'s start is
    /// frozen.
    #[doc(alias = "evbuffer_add_buffer")]
    pub fn add_buffer(&mut self, other: &mut Self) -> Result<(), BufferError> {
        self.check_end()?;
        other.check_start()?;
        if other.len == 0 {
            return Ok(());
        }
        self.resv = None;
        other.resv = None;
        let orig = self.len;
        let n = other.len;
        if self.len == 0 {
            std::mem::swap(&mut self.segs, &mut other.segs);
            self.len = n;
            self.file_segs = other.file_segs;
            other.segs.clear();
        } else {
            if matches!(self.segs.back(), Some(s) if s.len() == 0) {
                self.segs.pop_back();
            }
            self.segs.append(&mut other.segs);
            self.len += n;
            self.file_segs += other.file_segs;
        }
        self.took_all_of(other, orig, n);
        Ok(())
    }

    /// Appends the contents of `other` by sharing its segments: both buffers
    /// then read the same memory, and nothing is copied.
    ///
    /// `other` is taken as `&mut` only because its writable segments are
    /// turned into shareable read-only `Bytes` first (its contents and
    /// length do not change, and its callbacks do not run).
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when this buffer's end is frozen.
    #[doc(alias = "evbuffer_add_buffer_reference")]
    pub fn add_buffer_reference(&mut self, other: &mut Self) -> Result<(), BufferError> {
        self.check_end()?;
        if other.len == 0 {
            return Ok(());
        }
        self.resv = None;
        other.resv = None;
        let orig = self.len;
        let n = other.len;
        let last = other.segs.len() - 1;
        let mut spare_tail = None;
        for (i, seg) in other.segs.iter_mut().enumerate() {
            if seg.len() == 0 {
                continue;
            }
            let (shared, rest) = seg.share();
            if i == last {
                spare_tail = rest;
            }
            self.push_seg(shared);
        }
        if let Some(t) = spare_tail {
            other.segs.push_back(t);
        }
        self.changed(orig, n, 0);
        Ok(())
    }

    /// Appends `len` bytes of `file` starting at `offset` as a file segment:
    /// sent with `sendfile` by [`Buffer::write_to`], read with `pread` when
    /// the bytes are needed (see [`FileSegment`]).
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen;
    /// [`BufferError::InvalidFileRange`] when the range is not in the file.
    #[doc(alias = "evbuffer_add_file")]
    pub fn add_file(
        &mut self,
        file: std::fs::File,
        offset: u64,
        len: u64,
    ) -> Result<(), BufferError> {
        self.check_end()?;
        let seg = FileSegment::new(file, offset, len)?;
        self.add_file_segment(&seg)
    }

    /// Appends a (shared) file segment; the same segment can be added to any
    /// number of buffers.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen.
    #[doc(alias = "evbuffer_add_file_segment")]
    pub fn add_file_segment(&mut self, seg: &FileSegment) -> Result<(), BufferError> {
        self.check_end()?;
        if seg.is_empty() {
            return Ok(());
        }
        self.resv = None;
        let orig = self.len;
        self.push_seg(Seg::File(seg.clone()));
        self.changed(orig, seg.len(), 0);
        Ok(())
    }

    // ----- removing ----------------------------------------------------------

    /// Discards the first `n` bytes.
    ///
    /// # Errors
    ///
    /// [`BufferError::OutOfRange`] when `n > len()` (nothing is drained);
    /// [`BufferError::Frozen`] when the start is frozen.
    #[doc(alias = "evbuffer_drain")]
    pub fn drain(&mut self, n: usize) -> Result<(), BufferError> {
        self.check_start()?;
        if n > self.len {
            return Err(BufferError::OutOfRange {
                requested: n,
                available: self.len,
            });
        }
        if n == 0 {
            return Ok(());
        }
        self.resv = None;
        let orig = self.len;
        match self.segs.front_mut() {
            // Fast path: inside the first segment.
            Some(front) if front.len() > n => {
                front.advance(n);
                self.len -= n;
            }
            _ => self.drain_inner(n),
        }
        self.changed(orig, 0, n);
        Ok(())
    }

    /// Discards everything.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the start is frozen.
    pub fn clear(&mut self) -> Result<(), BufferError> {
        self.drain(self.len)
    }

    /// Moves up to `dst.len()` bytes from the front into `dst`; returns how
    /// many were moved.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the start is frozen; an I/O error when
    /// reading a file segment fails (then nothing is removed).
    #[doc(alias = "evbuffer_remove")]
    pub fn remove(&mut self, dst: &mut [u8]) -> Result<usize, BufferError> {
        self.check_start()?;
        let n = dst.len().min(self.len);
        if n == 0 {
            return Ok(0);
        }
        self.copy_range(0, &mut dst[..n])?;
        self.resv = None;
        let orig = self.len;
        self.drain_inner(n);
        self.changed(orig, 0, n);
        Ok(n)
    }

    /// Moves up to `n` bytes from the front of this buffer to the end of
    /// `dst`: whole segments are relinked, and at most one is split (without
    /// copying). Returns how many bytes were moved.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when this buffer's start or `dst`'s end is
    /// frozen.
    #[doc(alias = "evbuffer_remove_buffer")]
    pub fn remove_buffer(&mut self, dst: &mut Self, n: usize) -> Result<usize, BufferError> {
        self.check_start()?;
        dst.check_end()?;
        let n = n.min(self.len);
        if n == 0 {
            return Ok(0);
        }
        if n == self.len {
            dst.add_buffer(self)?;
            return Ok(n);
        }
        self.resv = None;
        dst.resv = None;
        let orig = self.len;
        let dorig = dst.len;
        let mut left = n;
        while left > 0 {
            let Some(front) = self.segs.front_mut() else {
                break;
            };
            let l = front.len();
            let seg = if l <= left {
                match self.pop_front_seg() {
                    Some(s) => s,
                    None => break,
                }
            } else {
                // The split-off front keeps this buffer's file count as it
                // was: both halves of a split file segment are file segments.
                let s = front.split_front(left);
                self.len -= left;
                s
            };
            left -= seg.len();
            dst.push_seg(seg);
        }
        self.release_if_empty();
        self.changed(orig, 0, n);
        dst.changed(dorig, n, 0);
        Ok(n)
    }

    /// Copies up to `dst.len()` bytes from the front into `dst` without
    /// removing them; returns how many were copied.
    ///
    /// # Errors
    ///
    /// An I/O error when reading a file segment fails.
    #[doc(alias = "evbuffer_copyout")]
    pub fn copyout(&self, dst: &mut [u8]) -> Result<usize, BufferError> {
        let n = dst.len().min(self.len);
        self.copy_range(0, &mut dst[..n])?;
        Ok(n)
    }

    /// Copies up to `dst.len()` bytes starting at `pos` into `dst` without
    /// removing them; returns how many were copied.
    ///
    /// # Errors
    ///
    /// [`BufferError::ForeignPos`] or [`BufferError::PosOutOfRange`] for a
    /// bad position; an I/O error when reading a file segment fails.
    #[doc(alias = "evbuffer_copyout_from")]
    pub fn copyout_from(&self, pos: &BufferPos, dst: &mut [u8]) -> Result<usize, BufferError> {
        let start = self.check_pos(pos)?;
        let n = dst.len().min(self.len - start);
        self.copy_range(start, &mut dst[..n])?;
        Ok(n)
    }

    /// The first `len` bytes (or all, if fewer) as slices into the
    /// segments, without copying. The iteration stops early at a file
    /// segment, whose bytes are not in memory (use [`Buffer::pullup`] or
    /// [`Buffer::copyout`] to get them).
    #[doc(alias = "evbuffer_peek")]
    #[must_use]
    pub fn peek(&self, len: usize) -> Peek<'_> {
        Peek {
            segs: self.segs.iter(),
            left: len.min(self.len),
        }
    }

    /// Makes the first `n` bytes contiguous and returns them. Copies only
    /// when they are not already in the first segment (then into one new
    /// segment of exactly `n` bytes); file segments touched are read with
    /// `pread`.
    ///
    /// # Errors
    ///
    /// [`BufferError::OutOfRange`] when `n > len()`; an I/O error when
    /// reading a file segment fails (the buffer is then unchanged).
    #[doc(alias = "evbuffer_pullup")]
    pub fn pullup(&mut self, n: usize) -> Result<&[u8], BufferError> {
        if n > self.len {
            return Err(BufferError::OutOfRange {
                requested: n,
                available: self.len,
            });
        }
        if n == 0 {
            return Ok(&[]);
        }
        let fits = matches!(self.segs.front(), Some(s) if s.len() >= n && !s.is_file());
        if !fits {
            let mut v = BytesMut::zeroed(n);
            self.copy_range(0, &mut v)?;
            self.resv = None;
            self.drain_inner(n);
            self.push_front_seg(Seg::Mut(MutSeg::from_buf(v, n)));
        }
        match self.segs.front().and_then(Seg::mem) {
            Some(m) => Ok(&m[..n]),
            None => Ok(&[]),
        }
    }

    // ----- space -------------------------------------------------------------

    /// Makes sure `n` bytes can be added to the end with no further
    /// allocation, in one contiguous piece of spare space.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen;
    /// [`BufferError::AllocFailed`] when `n` bytes cannot be allocated.
    #[doc(alias = "evbuffer_expand")]
    pub fn expand(&mut self, n: usize) -> Result<(), BufferError> {
        self.check_end()?;
        let spare = match self.segs.back() {
            Some(Seg::Mut(m)) => m.spare(),
            _ => 0,
        };
        if spare < n {
            self.resv = None;
            self.try_push_empty_mut(self.grow_capacity(n))?;
        }
        Ok(())
    }

    /// Frees the spare space kept at the end of the buffer: an empty
    /// writable segment left by [`Buffer::expand`] or by a reservation
    /// committed short. An empty buffer then holds no memory (its segments
    /// go back to the thread's segment cache). Cancels any reservation.
    pub fn release_spare(&mut self) {
        self.resv = None;
        if matches!(self.segs.back(), Some(s) if s.len() == 0) {
            self.segs.pop_back();
        }
        self.release_if_empty();
    }

    /// Hands out at least `n` bytes of spare space at the end, as one or two
    /// slices (the tail's spare space, then a new segment). Fill a prefix
    /// and call [`Buffer::commit`]; any other change to the buffer cancels
    /// the reservation. Call [`Buffer::expand`] first to get one slice.
    ///
    /// The space is zeroed the first time a segment's spare space is handed
    /// out, so that it can be given out as `&mut [u8]` with no `unsafe`.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen;
    /// [`BufferError::AllocFailed`] when `n` bytes cannot be allocated.
    #[doc(alias = "evbuffer_reserve_space")]
    pub fn reserve(&mut self, n: usize) -> Result<Reserved<'_>, BufferError> {
        self.reserve_capped(n, usize::MAX)
    }

    /// Spare bytes after the data of the writable tail.
    fn tail_spare(&self) -> usize {
        match self.segs.back() {
            Some(Seg::Mut(m)) => m.spare(),
            _ => 0,
        }
    }

    /// Whether [`Buffer::reserve`] of `n` bytes would neither allocate nor
    /// zero memory: the spare space it would use is initialized already,
    /// and a segment it would add is waiting in the thread's cache.
    pub(crate) fn can_reserve_cheaply(&self, n: usize) -> bool {
        let (spare, init, back_empty) = match self.segs.back() {
            Some(Seg::Mut(m)) => (m.spare(), m.buf.len() - m.end(), m.len == 0),
            _ => (0, 0, true),
        };
        if spare > 0 && spare >= n {
            init == spare
        } else if spare > 0 && !back_empty {
            init == spare && segment::cache_has(self.grow_capacity(n - spare))
        } else {
            segment::cache_has(self.grow_capacity(n))
        }
    }

    /// `reserve(n)`, with the slices handed out cut to `cap` bytes in all.
    fn reserve_capped(&mut self, n: usize, cap: usize) -> Result<Reserved<'_>, BufferError> {
        self.check_end()?;
        let (spare, back_empty) = match self.segs.back() {
            Some(Seg::Mut(m)) => (m.spare(), m.len == 0),
            _ => (0, true),
        };
        let first = if spare > 0 && spare >= n {
            self.segs.len() - 1
        } else if spare > 0 && !back_empty {
            // The tail's spare space, then a new segment for the rest.
            let seg = MutSeg::try_with_capacity(self.grow_capacity(n - spare))?;
            self.segs.push_back(Seg::Mut(seg));
            self.segs.len() - 2
        } else {
            self.try_push_empty_mut(self.grow_capacity(n))?;
            self.segs.len() - 1
        };
        let mut slices = [IoSliceMut::new(&mut []), IoSliceMut::new(&mut [])];
        let mut k = 0;
        let mut first_len = 0;
        let mut total = 0;
        for seg in self.segs.range_mut(first..) {
            if let Seg::Mut(m) = seg {
                if total >= cap {
                    break;
                }
                m.init_spare();
                let start = m.end();
                let end = m.buf.len().min(start.saturating_add(cap - total));
                let s = &mut m.buf[start..end];
                if k == 0 {
                    first_len = s.len();
                }
                total += s.len();
                slices[k] = IoSliceMut::new(s);
                k += 1;
            }
        }
        self.resv = Some(Reservation {
            first,
            first_len,
            total,
        });
        Ok(Reserved { slices, count: k })
    }

    /// Adds the first `n` bytes of the space handed out by the last
    /// [`Buffer::reserve`] to the buffer's data.
    ///
    /// # Errors
    ///
    /// [`BufferError::CommitTooLarge`] when `n` is larger than the
    /// reservation (or there is none any more); [`BufferError::Frozen`] when
    /// the end is frozen.
    #[doc(alias = "evbuffer_commit_space")]
    pub fn commit(&mut self, n: usize) -> Result<(), BufferError> {
        self.check_end()?;
        let r = self.resv.unwrap_or_default();
        if n > r.total {
            return Err(BufferError::CommitTooLarge {
                requested: n,
                reserved: r.total,
            });
        }
        self.resv = None;
        if n == 0 {
            return Ok(());
        }
        let orig = self.len;
        let a = n.min(r.first_len);
        if let Some(Seg::Mut(m)) = self.segs.get_mut(r.first) {
            m.len += a;
        }
        if n > a {
            if let Some(Seg::Mut(m)) = self.segs.get_mut(r.first + 1) {
                m.len += n - a;
            }
        } else if self.segs.len() > r.first + 1 {
            // The second slice stayed empty: drop that segment so that only
            // the last segment can be empty.
            self.segs.truncate(r.first + 1);
        }
        self.len += n;
        self.changed(orig, n, 0);
        Ok(())
    }

    /// A writer into the buffer's writable tail: it dereferences to the
    /// tail's [`BytesMut`], so every [`bytes::BufMut`] method (`put_u32`,
    /// `put_slice`, ...) and `BytesMut::extend_from_slice` can write straight
    /// into the buffer. The bytes written join the buffer (and callbacks
    /// run) when the writer is dropped.
    ///
    /// `Buffer` itself does not implement `BufMut`: that trait is `unsafe`
    /// to implement, and this crate forbids `unsafe`. The `BytesMut` starts
    /// empty, over the tail's spare space (at least `min_spare` bytes); when
    /// the writes stay within it they join the tail without a copy, and
    /// writes past it make the `BytesMut` grow as usual and become a
    /// segment of their own.
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the end is frozen;
    /// [`BufferError::AllocFailed`] when `min_spare` bytes cannot be
    /// allocated.
    pub fn tail_writer(&mut self, min_spare: usize) -> Result<TailWriter<'_>, BufferError> {
        self.check_end()?;
        self.resv = None;
        let spare = match self.segs.back() {
            Some(Seg::Mut(m)) => m.spare(),
            _ => 0,
        };
        if spare == 0 || spare < min_spare {
            self.try_push_empty_mut(self.grow_capacity(min_spare.max(1)))?;
        }
        let spare = match self.segs.back_mut() {
            Some(Seg::Mut(m)) => {
                // Shared with the writer from here on: not cached any more.
                m.whole = false;
                let end = m.end();
                m.buf.truncate(end);
                m.buf.split_off(end)
            }
            // Not reached: a writable tail was made above.
            _ => BytesMut::new(),
        };
        Ok(TailWriter::new(self, spare))
    }

    /// Appends what a [`TailWriter`] wrote: joined to the tail when it is
    /// still contiguous with it, as a segment of its own otherwise.
    fn absorb_tail(&mut self, new: BytesMut) {
        let n = new.len();
        let orig = self.len;
        if let Some(Seg::Mut(m)) = self.segs.back_mut() {
            if m.end() == m.buf.len() && std::ptr::eq(m.buf.as_ptr_range().end, new.as_ptr()) {
                m.buf.unsplit(new);
                m.len += n;
                self.len += n;
                self.changed(orig, n, 0);
                return;
            }
        }
        if n > 0 {
            self.push_seg(Seg::Mut(MutSeg::from_buf(new, n)));
            self.changed(orig, n, 0);
        }
    }

    // ----- freezing and callbacks -------------------------------------------

    /// Freezes one end: operations that would change it fail with
    /// [`BufferError::Frozen`] until [`Buffer::unfreeze`]. A bufferevent
    /// freezes the end of its input buffer and the start of its output
    /// buffer while the user owns the other end.
    #[doc(alias = "evbuffer_freeze")]
    pub fn freeze(&mut self, side: BufferSide) {
        match side {
            BufferSide::Start => self.frozen_start = true,
            BufferSide::End => self.frozen_end = true,
        }
    }

    /// Undoes [`Buffer::freeze`].
    #[doc(alias = "evbuffer_unfreeze")]
    pub fn unfreeze(&mut self, side: BufferSide) {
        match side {
            BufferSide::Start => self.frozen_start = false,
            BufferSide::End => self.frozen_end = false,
        }
    }

    /// Whether an end is frozen.
    #[must_use]
    pub fn is_frozen(&self, side: BufferSide) -> bool {
        match side {
            BufferSide::Start => self.frozen_start,
            BufferSide::End => self.frozen_end,
        }
    }

    /// Registers a callback that runs after every change of the buffer's
    /// length, with a [`CbInfo`]. Callbacks run in the order they were
    /// added, inline, unless the buffer is in deferred mode.
    #[doc(alias = "evbuffer_add_cb")]
    pub fn add_cb<F>(&mut self, f: F) -> CallbackId
    where
        F: FnMut(&CbInfo) + 'static,
    {
        self.cbs.get_or_insert_with(Box::default).add(Box::new(f))
    }

    /// Removes a callback.
    ///
    /// # Errors
    ///
    /// [`BufferError::UnknownCallback`] when it is not registered.
    #[doc(alias = "evbuffer_remove_cb_entry")]
    #[doc(alias = "evbuffer_remove_cb")]
    pub fn remove_cb(&mut self, id: CallbackId) -> Result<(), BufferError> {
        let cbs = self.cbs.as_mut().ok_or(BufferError::UnknownCallback)?;
        if !cbs.remove(id) {
            return Err(BufferError::UnknownCallback);
        }
        if cbs.is_empty() && !cbs.deferred {
            self.cbs = None;
        }
        Ok(())
    }

    /// Enables or disables a callback (`EVBUFFER_CB_ENABLED`). A disabled
    /// callback misses the changes made meanwhile.
    ///
    /// # Errors
    ///
    /// [`BufferError::UnknownCallback`] when it is not registered.
    #[doc(alias = "evbuffer_cb_set_flags")]
    #[doc(alias = "evbuffer_cb_clear_flags")]
    pub fn set_cb_enabled(&mut self, id: CallbackId, enabled: bool) -> Result<(), BufferError> {
        self.on_cb(|c| c.set_enabled(id, enabled))
    }

    /// Applies `f` to the callback list; `UnknownCallback` unless it found the id.
    fn on_cb(&mut self, f: impl FnOnce(&mut Callbacks) -> bool) -> Result<(), BufferError> {
        if self.cbs.as_deref_mut().is_some_and(f) {
            Ok(())
        } else {
            Err(BufferError::UnknownCallback)
        }
    }

    /// Suspends a callback: changes are coalesced into one [`CbInfo`] that
    /// is delivered by [`Buffer::unsuspend_cb`].
    ///
    /// # Errors
    ///
    /// [`BufferError::UnknownCallback`] when it is not registered.
    #[doc(alias = "evbuffer_cb_suspend")]
    pub fn suspend_cb(&mut self, id: CallbackId) -> Result<(), BufferError> {
        self.on_cb(|c| c.suspend(id))
    }

    /// Resumes a suspended callback, running it once with the coalesced
    /// changes if there were any (in deferred mode they wait for
    /// [`Buffer::run_deferred_callbacks`]).
    ///
    /// # Errors
    ///
    /// [`BufferError::UnknownCallback`] when it is not registered.
    #[doc(alias = "evbuffer_cb_unsuspend")]
    pub fn unsuspend_cb(&mut self, id: CallbackId) -> Result<(), BufferError> {
        self.on_cb(|c| c.unsuspend(id))
    }

    /// Switches to deferred callbacks: changes are coalesced per callback
    /// and delivered only by [`Buffer::run_deferred_callbacks`], which the
    /// bufferevent layer calls from the event loop (libevent's
    /// `evbuffer_defer_callbacks`).
    #[doc(alias = "evbuffer_defer_callbacks")]
    pub fn defer_callbacks(&mut self) {
        self.cbs.get_or_insert_with(Box::default).deferred = true;
    }

    /// Delivers the changes coalesced in deferred mode (or while suspended
    /// and since unsuspended), once per callback. Returns how many callbacks
    /// ran.
    pub fn run_deferred_callbacks(&mut self) -> usize {
        self.cbs.as_mut().map_or(0, |c| c.run_pending())
    }

    /// Checks the structural invariants; `Err` names the first one broken.
    #[cfg(any(test, fuzzing))]
    pub(crate) fn check_invariants(&self) -> Result<(), &'static str> {
        let sum: usize = self.segs.iter().map(Seg::len).sum();
        if sum != self.len {
            return Err("len is not the sum of the segment lengths");
        }
        if self.segs.iter().filter(|s| s.is_file()).count() != self.file_segs as usize {
            return Err("file_segs is not the number of file segments");
        }
        let n = self.segs.len();
        for (i, seg) in self.segs.iter().enumerate() {
            if seg.len() == 0 && (i + 1 != n || !matches!(seg, Seg::Mut(_))) {
                return Err("an empty segment that is not a writable tail");
            }
            if let Seg::Mut(m) = seg {
                if m.end() > m.buf.len() {
                    return Err("a writable segment's length is past its buffer");
                }
            }
        }
        if let Some(r) = self.resv {
            if r.first >= n {
                return Err("a reservation past the last segment");
            }
        }
        Ok(())
    }

    /// Checks the structural invariants (for the fuzz targets only).
    ///
    /// # Errors
    ///
    /// The first invariant found broken.
    #[cfg(fuzzing)]
    #[doc(hidden)]
    pub fn fuzz_check_invariants(&self) -> Result<(), &'static str> {
        self.check_invariants()
    }

    // ----- positions ---------------------------------------------------------

    /// The offset a position stands for, checked against this buffer.
    fn check_pos(&self, pos: &BufferPos) -> Result<usize, BufferError> {
        if pos.buffer != self.id {
            return Err(BufferError::ForeignPos);
        }
        if pos.pos > self.len {
            return Err(BufferError::PosOutOfRange {
                pos: pos.pos,
                len: self.len,
            });
        }
        Ok(pos.pos)
    }
}
