//! Positions ([`BufferPos`]), searching and line reading ([`EolStyle`]).
//!
//! Searching walks the segments in place: a word-at-a-time scan for the
//! first byte of the needle inside each segment, and a byte comparison only
//! at candidates (across a segment boundary only when the candidate
//! straddles one). File segments are read with `pread` in windows of
//! [`FILE_WINDOW`] bytes while searching; nothing else allocates.

use bytes::Bytes;

use super::segment::Seg;
use super::{Buffer, BufferError};

/// Bytes of a file segment read at a time while searching it.
pub(crate) const FILE_WINDOW: usize = 16 * 1024;

/// A position in one [`Buffer`], libevent's `struct evbuffer_ptr`.
///
/// A position remembers which buffer made it; using it with another buffer
/// is a [`BufferError::ForeignPos`] error. It is an offset from the start of
/// the buffer, so draining the buffer moves the bytes it points at; a
/// position past the (new) end is a [`BufferError::PosOutOfRange`] error.
#[doc(alias = "evbuffer_ptr")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferPos {
    pub(crate) buffer: u64,
    pub(crate) pos: usize,
}

impl BufferPos {
    /// The offset from the start of the buffer.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }
}

/// How [`Buffer::ptr_set`] moves a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtrHow {
    /// To this offset from the start (`EVBUFFER_PTR_SET`).
    #[doc(alias = "EVBUFFER_PTR_SET")]
    Set(usize),
    /// Forward by this many bytes (`EVBUFFER_PTR_ADD`).
    #[doc(alias = "EVBUFFER_PTR_ADD")]
    Add(usize),
}

/// What ends a line, for [`Buffer::readln`] and [`Buffer::search_eol`].
#[doc(alias = "evbuffer_eol_style")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EolStyle {
    /// Any run of one or more CR and LF characters, in any order
    /// (`EVBUFFER_EOL_ANY`). Fast, and wrong for protocols with empty lines.
    #[doc(alias = "EVBUFFER_EOL_ANY")]
    Any,
    /// An LF, optionally preceded by a CR (`EVBUFFER_EOL_CRLF`): the
    /// tolerant way to read text protocols. A lone CR is part of the line.
    #[doc(alias = "EVBUFFER_EOL_CRLF")]
    Crlf,
    /// Exactly CR LF (`EVBUFFER_EOL_CRLF_STRICT`).
    #[doc(alias = "EVBUFFER_EOL_CRLF_STRICT")]
    CrlfStrict,
    /// A single LF (`EVBUFFER_EOL_LF`).
    #[doc(alias = "EVBUFFER_EOL_LF")]
    Lf,
    /// A single NUL byte (`EVBUFFER_EOL_NUL`).
    #[doc(alias = "EVBUFFER_EOL_NUL")]
    Nul,
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

#[inline]
fn has_zero(v: u64) -> bool {
    v.wrapping_sub(LO) & !v & HI != 0
}

#[inline]
fn word(c: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(c);
    u64::from_ne_bytes(w)
}

/// The index of the first `x` in `hay`, a word at a time.
#[inline]
pub(crate) fn memchr(x: u8, hay: &[u8]) -> Option<usize> {
    let rep = LO.wrapping_mul(u64::from(x));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        if has_zero(word(c) ^ rep) {
            return c.iter().position(|&b| b == x).map(|p| base + p);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == x)
        .map(|p| base + p)
}

/// The index of the first `x` or `y` in `hay`, a word at a time.
#[inline]
pub(crate) fn memchr2(x: u8, y: u8, hay: &[u8]) -> Option<usize> {
    let rx = LO.wrapping_mul(u64::from(x));
    let ry = LO.wrapping_mul(u64::from(y));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for c in &mut chunks {
        let w = word(c);
        if has_zero(w ^ rx) || has_zero(w ^ ry) {
            return c.iter().position(|&b| b == x || b == y).map(|p| base + p);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == x || b == y)
        .map(|p| base + p)
}

impl Buffer {
    /// Visits the bytes `[start, end)` piece by piece, in order, until `f`
    /// returns `Some`. `f` gets the absolute offset of the piece and its
    /// bytes. File segments are read in windows of [`FILE_WINDOW`] bytes.
    pub(crate) fn walk<R>(
        &self,
        start: usize,
        end: usize,
        mut f: impl FnMut(usize, &[u8]) -> Option<R>,
    ) -> Result<Option<R>, BufferError> {
        let end = end.min(self.len);
        if start >= end {
            return Ok(None);
        }
        let mut off = 0;
        let mut scratch = Vec::new();
        for seg in &self.segs {
            let seg_end = off + seg.len();
            if seg_end <= start {
                off = seg_end;
                continue;
            }
            if off >= end {
                break;
            }
            let a = start.max(off) - off;
            let b = end.min(seg_end) - off;
            match seg {
                Seg::File(fs) => {
                    let mut x = a;
                    while x < b {
                        let w = (b - x).min(FILE_WINDOW);
                        scratch.resize(w, 0);
                        fs.read_exact_at(x, &mut scratch[..w])?;
                        if let Some(r) = f(off + x, &scratch[..w]) {
                            return Ok(Some(r));
                        }
                        x += w;
                    }
                }
                _ => {
                    if let Some(m) = seg.mem() {
                        if let Some(r) = f(off + a, &m[a..b]) {
                            return Ok(Some(r));
                        }
                    }
                }
            }
            off = seg_end;
        }
        Ok(None)
    }

    /// Whether the bytes at `at` equal `needle` (false if they run past the
    /// end).
    fn range_eq(&self, at: usize, needle: &[u8]) -> Result<bool, BufferError> {
        if at.checked_add(needle.len()).is_none_or(|e| e > self.len) {
            return Ok(false);
        }
        let mut tmp = [0u8; 64];
        for (k, chunk) in needle.chunks(64).enumerate() {
            let d = &mut tmp[..chunk.len()];
            self.copy_range(at + k * 64, d)?;
            if d != chunk {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The first match of `needle` starting in `[start, ..)` and ending at
    /// or before `end`.
    fn find(&self, needle: &[u8], start: usize, end: usize) -> Result<Option<usize>, BufferError> {
        let m = needle.len();
        let end = end.min(self.len);
        if start > end || end - start < m {
            return Ok(None);
        }
        let Some(&first) = needle.first() else {
            return Ok(Some(start));
        };
        let last_cand = end - m;
        let mut err = None;
        let found = self.walk(start, last_cand + 1, |base, piece| {
            let mut i = 0;
            while let Some(j) = memchr(first, &piece[i..]) {
                let p = i + j;
                if p + m <= piece.len() {
                    if &piece[p..p + m] == needle {
                        return Some(base + p);
                    }
                } else {
                    match self.range_eq(base + p, needle) {
                        Ok(true) => return Some(base + p),
                        Ok(false) => {}
                        Err(e) => {
                            err = Some(e);
                            return Some(usize::MAX);
                        }
                    }
                }
                i = p + 1;
            }
            None
        })?;
        match err {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// The first end of line whose terminating byte lies in
    /// `[start, limit)`: its offset and its length.
    pub(crate) fn find_eol(
        &self,
        start: usize,
        limit: usize,
        style: EolStyle,
    ) -> Result<Option<(usize, usize)>, BufferError> {
        match style {
            EolStyle::Lf => Ok(self
                .walk(start, limit, |base, p| memchr(b'\n', p).map(|i| base + i))?
                .map(|q| (q, 1))),
            EolStyle::Nul => Ok(self
                .walk(start, limit, |base, p| memchr(0, p).map(|i| base + i))?
                .map(|q| (q, 1))),
            EolStyle::CrlfStrict => Ok(self.find(b"\r\n", start, limit)?.map(|q| (q, 2))),
            EolStyle::Crlf => {
                let mut prev: Option<u8> = None;
                Ok(self.walk(start, limit, |base, p| {
                    let r = memchr(b'\n', p).map(|i| {
                        let before = if i > 0 { Some(p[i - 1]) } else { prev };
                        if before == Some(b'\r') {
                            (base + i - 1, 2)
                        } else {
                            (base + i, 1)
                        }
                    });
                    prev = p.last().copied();
                    r
                })?)
            }
            EolStyle::Any => {
                let Some(q) = self.walk(start, limit, |base, p| {
                    memchr2(b'\r', b'\n', p).map(|i| base + i)
                })?
                else {
                    return Ok(None);
                };
                let run_end = self.walk(q, self.len, |base, p| {
                    p.iter()
                        .position(|&b| b != b'\r' && b != b'\n')
                        .map(|i| base + i)
                })?;
                Ok(Some((q, run_end.unwrap_or(self.len) - q)))
            }
        }
    }

    fn start_of(&self, pos: Option<&BufferPos>) -> Result<usize, BufferError> {
        pos.map_or(Ok(0), |p| self.check_pos(p))
    }

    fn mk_pos(&self, pos: usize) -> BufferPos {
        BufferPos {
            buffer: self.id,
            pos,
        }
    }

    /// A position at offset `n` (`n == len()` is the end).
    ///
    /// # Errors
    ///
    /// [`BufferError::PosOutOfRange`] when `n > len()`.
    #[doc(alias = "evbuffer_ptr_set")]
    pub fn pos_at(&self, n: usize) -> Result<BufferPos, BufferError> {
        if n > self.len {
            return Err(BufferError::PosOutOfRange {
                pos: n,
                len: self.len,
            });
        }
        Ok(self.mk_pos(n))
    }

    /// Moves `pos`: to an offset, or forward by a count. The position is
    /// unchanged on error.
    ///
    /// # Errors
    ///
    /// [`BufferError::ForeignPos`] for a position of another buffer;
    /// [`BufferError::PosOutOfRange`] when the result would be past the end.
    #[doc(alias = "evbuffer_ptr_set")]
    pub fn ptr_set(&self, pos: &mut BufferPos, how: PtrHow) -> Result<(), BufferError> {
        if pos.buffer != self.id {
            return Err(BufferError::ForeignPos);
        }
        let target = match how {
            PtrHow::Set(n) => Some(n),
            PtrHow::Add(n) => pos.pos.checked_add(n),
        };
        match target {
            Some(t) if t <= self.len => {
                pos.pos = t;
                Ok(())
            }
            _ => Err(BufferError::PosOutOfRange {
                pos: target.unwrap_or(usize::MAX),
                len: self.len,
            }),
        }
    }

    /// Moves `pos` forward by `n` bytes (`ptr_set` with [`PtrHow::Add`]).
    ///
    /// # Errors
    ///
    /// As [`Buffer::ptr_set`].
    #[doc(alias = "evbuffer_ptr_set")]
    pub fn advance_pos(&self, pos: &mut BufferPos, n: usize) -> Result<(), BufferError> {
        self.ptr_set(pos, PtrHow::Add(n))
    }

    /// The first occurrence of `needle` at or after `start` (the start of
    /// the buffer when `None`). An empty needle matches at `start`.
    ///
    /// # Errors
    ///
    /// [`BufferError::ForeignPos`] or [`BufferError::PosOutOfRange`] for a
    /// bad `start`; an I/O error when reading a file segment fails.
    #[doc(alias = "evbuffer_search")]
    pub fn search(
        &self,
        needle: &[u8],
        start: Option<&BufferPos>,
    ) -> Result<Option<BufferPos>, BufferError> {
        self.search_range(needle, start, None)
    }

    /// The first occurrence of `needle` at or after `start` that ends at or
    /// before `end` (the end of the buffer when `None`).
    ///
    /// # Errors
    ///
    /// As [`Buffer::search`], for both positions.
    #[doc(alias = "evbuffer_search_range")]
    pub fn search_range(
        &self,
        needle: &[u8],
        start: Option<&BufferPos>,
        end: Option<&BufferPos>,
    ) -> Result<Option<BufferPos>, BufferError> {
        let s = self.start_of(start)?;
        let e = match end {
            Some(p) => self.check_pos(p)?,
            None => self.len,
        };
        Ok(self.find(needle, s, e)?.map(|p| self.mk_pos(p)))
    }

    /// The first end of line at or after `start`, under `style`: its
    /// position and its length in bytes (for [`EolStyle::Any`], the whole
    /// run of CR and LF).
    ///
    /// # Errors
    ///
    /// As [`Buffer::search`].
    #[doc(alias = "evbuffer_search_eol")]
    pub fn search_eol(
        &self,
        start: Option<&BufferPos>,
        style: EolStyle,
    ) -> Result<Option<(BufferPos, usize)>, BufferError> {
        let s = self.start_of(start)?;
        Ok(self
            .find_eol(s, self.len, style)?
            .map(|(q, l)| (self.mk_pos(q), l)))
    }

    /// Removes one line, without its end of line, and returns it; `None`
    /// when there is no complete line yet.
    ///
    /// The line is returned as `Bytes`: without copying when it lies in one
    /// segment, copied into one allocation of exactly its length otherwise.
    /// At most `max_line + 2` bytes are scanned, so a peer that never sends
    /// an end of line costs no more than that per call.
    ///
    /// # Errors
    ///
    /// [`BufferError::LineTooLong`] when the line is longer than `max_line`
    /// bytes, or when no end of line has been found and more than
    /// `max_line + 1` bytes are waiting (nothing is removed; a server should
    /// close the connection). [`BufferError::Frozen`] when the start is
    /// frozen.
    #[doc(alias = "evbuffer_readln")]
    pub fn readln(
        &mut self,
        style: EolStyle,
        max_line: usize,
    ) -> Result<Option<Bytes>, BufferError> {
        self.check_start()?;
        let limit = self.len.min(max_line.saturating_add(2));
        match self.find_eol(0, limit, style)? {
            Some((q, eol)) => {
                if q > max_line {
                    return Err(BufferError::LineTooLong { max: max_line });
                }
                self.resv = None;
                let orig = self.len;
                let line = self.take_front(q)?;
                self.drain_inner(eol);
                self.changed(orig, 0, q + eol);
                Ok(Some(line))
            }
            None if self.len > max_line.saturating_add(1) => {
                Err(BufferError::LineTooLong { max: max_line })
            }
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memchr_agrees_with_position() {
        let hay: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
        for x in 0..=255u8 {
            for start in 0..17 {
                let h = &hay[start..];
                assert_eq!(memchr(x, h), h.iter().position(|&b| b == x));
                assert_eq!(
                    memchr2(x, b'\n', h),
                    h.iter().position(|&b| b == x || b == b'\n')
                );
            }
        }
    }
}
