//! Interoperability: [`bytes::Buf`], [`std::io::Read`], [`std::io::BufRead`],
//! [`std::io::Write`], [`std::fmt::Write`], and [`TailWriter`] for
//! [`bytes::BufMut`] writes.
//!
//! Through `Buf`, a buffer shows the bytes in memory up to its first file
//! segment (file segments are not in memory, and `Buf::chunk` cannot read
//! them); `Read` and `BufRead` read file segments with `pread`. A buffer
//! whose start is frozen shows no bytes through `Buf`, and `Read`/`BufRead`
//! fail with `PermissionDenied`.

use std::fmt;
use std::io::{self, IoSlice};
use std::ops::{Deref, DerefMut};

use bytes::{Buf, BytesMut};

use super::search::FILE_WINDOW;
use super::segment::Seg;
use super::{Buffer, BufferError};

impl Buffer {
    /// Bytes in memory before the first file segment.
    fn mem_prefix_len(&self) -> usize {
        if self.file_segs == 0 {
            return self.len;
        }
        self.segs
            .iter()
            .take_while(|s| !s.is_file())
            .map(Seg::len)
            .sum()
    }

    /// Reads the first window of a file segment at the front into memory.
    fn materialize_front(&mut self) -> Result<(), BufferError> {
        let Some(Seg::File(f)) = self.segs.front() else {
            return Ok(());
        };
        let n = f.len().min(FILE_WINDOW);
        let mut v = BytesMut::zeroed(n);
        f.read_exact_at(0, &mut v)?;
        self.resv = None;
        if let Some(front) = self.segs.front_mut() {
            if front.len() == n {
                self.pop_front_seg();
            } else {
                front.advance(n);
                self.len -= n;
            }
        }
        self.push_front_seg(Seg::Bytes(v.freeze()));
        Ok(())
    }
}

/// `Buf` over the in-memory bytes up to the first file segment; no bytes
/// when the start is frozen.
///
/// `advance` past [`Buf::remaining`] drains what there is instead of
/// panicking (use [`Buffer::drain`] for a checked drain).
impl Buf for Buffer {
    fn remaining(&self) -> usize {
        if self.frozen_start {
            0
        } else {
            self.mem_prefix_len()
        }
    }

    fn chunk(&self) -> &[u8] {
        if self.frozen_start {
            return &[];
        }
        self.segs.front().and_then(Seg::mem).unwrap_or(&[])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        if self.frozen_start {
            return 0;
        }
        let mut k = 0;
        for seg in &self.segs {
            if k == dst.len() {
                break;
            }
            match seg.mem() {
                Some(m) if !m.is_empty() => {
                    dst[k] = IoSlice::new(m);
                    k += 1;
                }
                _ => break,
            }
        }
        k
    }

    fn advance(&mut self, cnt: usize) {
        let n = cnt.min(self.remaining());
        if n > 0 {
            self.resv = None;
            let orig = self.len;
            self.drain_inner(n);
            self.changed(orig, 0, n);
        }
    }
}

impl io::Read for Buffer {
    /// [`Buffer::remove`].
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.remove(buf)?)
    }
}

impl io::BufRead for Buffer {
    /// The first segment (a file segment is read into memory first, up to
    /// 16 KiB of it).
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check_start()?;
        self.materialize_front()?;
        Ok(self.segs.front().and_then(Seg::mem).unwrap_or(&[]))
    }

    fn consume(&mut self, amt: usize) {
        let n = amt.min(self.len);
        if n > 0 && !self.frozen_start {
            self.resv = None;
            let orig = self.len;
            self.drain_inner(n);
            self.changed(orig, 0, n);
        }
    }
}

impl io::Write for Buffer {
    /// [`Buffer::add`]; fails with `PermissionDenied` when the end is frozen.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.add(buf)?;
        Ok(buf.len())
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.add_iovec(bufs)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `write!` into a buffer ([`Buffer::add`]); fails when the end is frozen.
impl fmt::Write for Buffer {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.add(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Writes straight into the writable tail of a [`Buffer`]; made by
/// [`Buffer::tail_writer`].
///
/// It dereferences to a [`BytesMut`] that starts empty over the tail's
/// spare space, so `bytes::BufMut` methods append to the buffer. The new
/// bytes join the buffer (and its callbacks run) when the writer is
/// dropped; the bytes already in the buffer cannot be reached through it.
pub struct TailWriter<'a> {
    buf: &'a mut Buffer,
    new: BytesMut,
}

impl fmt::Debug for TailWriter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TailWriter")
            .field("written", &self.new.len())
            .field("capacity", &self.new.capacity())
            .finish_non_exhaustive()
    }
}

impl<'a> TailWriter<'a> {
    pub(crate) fn new(buf: &'a mut Buffer, new: BytesMut) -> Self {
        Self { buf, new }
    }
}

impl Deref for TailWriter<'_> {
    type Target = BytesMut;
    fn deref(&self) -> &BytesMut {
        &self.new
    }
}

impl DerefMut for TailWriter<'_> {
    fn deref_mut(&mut self) -> &mut BytesMut {
        &mut self.new
    }
}

impl Drop for TailWriter<'_> {
    fn drop(&mut self) {
        let new = std::mem::take(&mut self.new);
        self.buf.absorb_tail(new);
    }
}
