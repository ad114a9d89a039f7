//! Reading into and writing from a [`Buffer`] with file descriptors.
//!
//! - [`Buffer::read_from`] sizes a read with `FIONREAD`, capped by the
//!   caller's maximum, reserves that much spare space (at most two slices)
//!   and fills it with one `readv`.
//! - [`Buffer::write_atmost`] hands up to
//!   [`MAX_IOVECS`](oxevent_core::fdio::MAX_IOVECS) in-memory segments to one
//!   `writev`; a file segment at the front is sent with `sendfile` instead
//!   (or `pread` plus `write` where the OS has no `sendfile`).
//!
//! Each call makes one system call for the data (plus `FIONREAD` for
//! reads), like libevent; `WouldBlock` and the other OS errors come back as
//! [`BufferError::Io`]. The socket variants, [`Buffer::read_from_socket`]
//! and [`Buffer::write_atmost_socket`], use `recvmsg`/`sendmsg` (no
//! `FIONREAD`, no `SIGPIPE`): that is what bufferevents use.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd};

use oxevent_core::fdio;

use super::segment::Seg;
use super::{Buffer, BufferError};

/// Bytes read at a time when a file segment must go through user space
/// because `sendfile` is not available.
const FALLBACK_CHUNK: usize = 64 * 1024;

/// How [`Buffer::read_inner`] reads.
#[derive(Clone, Copy)]
enum Read {
    /// `readv`, sized by `FIONREAD`.
    File,
    /// One `recv`/`recvmsg`, no `FIONREAD`.
    Socket,
    /// As `Socket`, asking for the bytes left (`TCP_INQ`).
    SocketInq,
}

impl Buffer {
    /// Reads from `fd` into the end of the buffer: as many bytes as
    /// `FIONREAD` says are waiting, at most `max` (and `max` when `FIONREAD`
    /// fails or says zero). Returns the bytes read; `Ok(0)` is end of file.
    ///
    /// # Errors
    ///
    /// [`BufferError::ZeroLimit`] when `max == 0`; [`BufferError::Frozen`]
    /// when the end is frozen; [`BufferError::Io`] for the OS error
    /// (including `WouldBlock`). Nothing is added on error.
    #[doc(alias = "evbuffer_read")]
    #[doc(alias = "evbuffer_set_max_read")]
    pub fn read_from(&mut self, fd: BorrowedFd<'_>, max: usize) -> Result<usize, BufferError> {
        self.read_inner(fd, max, Read::File).map(|(n, _)| n)
    }

    /// Reads from the socket `fd` into the end of the buffer, at most `max`
    /// bytes, with one `recvmsg` and no `FIONREAD`: the read the bufferevent
    /// layer makes, one system call per readiness instead of two. A
    /// non-socket falls back to [`read_from`](Self::read_from).
    ///
    /// # Errors
    ///
    /// As [`read_from`](Self::read_from).
    pub fn read_from_socket(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
    ) -> Result<usize, BufferError> {
        match self.read_inner(fd, max, Read::Socket) {
            Err(BufferError::Io(e)) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                self.read_from(fd, max)
            }
            other => other.map(|(n, _)| n),
        }
    }

    /// The bufferevent's socket read: up to `max` bytes with one `recv`,
    /// straight into the spare space when that costs neither an allocation
    /// nor zeroing ([`Buffer::can_reserve_cheaply`]: a cached segment, as in
    /// steady traffic); otherwise into `scratch`, then copied into a segment
    /// sized for `max` reads, which comes back through the segment cache to
    /// the next reads (so that those read straight into it). Reading into
    /// fresh space would need it zeroed first (no unsafe here), and zeroing
    /// 16 KiB for every 4 KiB message costs more than copying the 4 KiB that
    /// came. Returns the bytes read (`0` is end of file) and, with `inq` (a
    /// TCP socket with `fdio::enable_tcp_inq` on), how many bytes the kernel
    /// still held right after the read, when it said.
    pub(crate) fn read_socket_via(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        scratch: &mut Vec<u8>,
        inq: bool,
    ) -> Result<(usize, Option<usize>), BufferError> {
        let mode = if inq { Read::SocketInq } else { Read::Socket };
        if self.can_reserve_cheaply(max) {
            return match self.read_inner(fd, max, mode) {
                Err(BufferError::Io(e)) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                    self.read_from(fd, max).map(|n| (n, None))
                }
                other => other,
            };
        }
        self.check_end()?;
        if max == 0 {
            return Err(BufferError::ZeroLimit);
        }
        if scratch.len() < max {
            // Grows to the largest max single read in use, once per base.
            scratch.resize(max, 0);
        }
        let (n, left) = loop {
            let r = if inq {
                fdio::recv_vectored_inq(fd, &mut [IoSliceMut::new(&mut scratch[..max])])
            } else {
                fdio::recv(fd, &mut scratch[..max]).map(|n| (n, None))
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                    return self.read_from(fd, max).map(|n| (n, None));
                }
                Err(e) => return Err(BufferError::Io(e)),
                Ok(r) => break r,
            }
        };
        if n > 0 {
            if self.tail_spare() < n {
                self.expand(max.max(n))?;
            }
            self.add(&scratch[..n])?;
        }
        Ok((n, left))
    }

    fn read_inner(
        &mut self,
        fd: BorrowedFd<'_>,
        max: usize,
        mode: Read,
    ) -> Result<(usize, Option<usize>), BufferError> {
        self.check_end()?;
        if max == 0 {
            return Err(BufferError::ZeroLimit);
        }
        let want = match mode {
            Read::File => match fdio::bytes_readable(fd) {
                Ok(n) if n > 0 => n.min(max),
                _ => max,
            },
            Read::Socket | Read::SocketInq => max,
        };
        let got = {
            let mut r = self.reserve_capped(want, want)?;
            loop {
                let res = match mode {
                    Read::File => fdio::readv(fd, &mut r).map(|n| (n, None)),
                    Read::Socket => fdio::recv_vectored(fd, &mut r).map(|n| (n, None)),
                    Read::SocketInq => fdio::recv_vectored_inq(fd, &mut r),
                };
                match res {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    other => break other,
                }
            }
        };
        let r = match got {
            Ok((n, left)) => self.commit(n).map(|()| (n, left)),
            Err(e) => {
                self.resv = None;
                Err(BufferError::Io(e))
            }
        };
        // Nothing read into an empty buffer (end of file, `WouldBlock`):
        // give the reserved segment back, so that an idle connection holds
        // no memory.
        self.release_if_empty();
        r
    }

    /// Writes as much of the buffer as one system call takes to `fd` and
    /// drains what was written (libevent's `evbuffer_write`).
    ///
    /// # Errors
    ///
    /// As [`Buffer::write_atmost`].
    #[doc(alias = "evbuffer_write")]
    pub fn write_to(&mut self, fd: BorrowedFd<'_>) -> Result<usize, BufferError> {
        self.write_atmost(fd, usize::MAX)
    }

    /// Writes at most `n` bytes from the front of the buffer to `fd` with
    /// one `writev` over up to `MAX_IOVECS` segments (or one `sendfile` for
    /// a file segment at the front), and drains what was written. Returns
    /// the number of bytes written (0 for an empty buffer or `n == 0`).
    ///
    /// # Errors
    ///
    /// [`BufferError::Frozen`] when the start is frozen; [`BufferError::Io`]
    /// for the OS error (`WouldBlock`, `BrokenPipe`, ...); an error reading
    /// a file segment when it goes through `pread`.
    #[doc(alias = "evbuffer_write_atmost")]
    pub fn write_atmost(&mut self, fd: BorrowedFd<'_>, n: usize) -> Result<usize, BufferError> {
        self.write_inner(fd, n, false).map(|(w, _)| w)
    }

    /// [`write_atmost`](Self::write_atmost) for a socket: `sendmsg` with
    /// `MSG_NOSIGNAL`, so a closed peer gives `EPIPE` and never raises
    /// `SIGPIPE` in the host program. A non-socket falls back to `writev`.
    ///
    /// # Errors
    ///
    /// As [`write_atmost`](Self::write_atmost).
    pub fn write_atmost_socket(
        &mut self,
        fd: BorrowedFd<'_>,
        n: usize,
    ) -> Result<usize, BufferError> {
        self.write_socket_offered(fd, n).map(|(w, _)| w)
    }

    /// [`write_atmost_socket`](Self::write_atmost_socket), returning also
    /// the bytes offered to the kernel in that one call: fewer written than
    /// offered means the socket is full (an edge-triggered writer then
    /// waits for room), all of them that it may have room for more.
    pub(crate) fn write_socket_offered(
        &mut self,
        fd: BorrowedFd<'_>,
        n: usize,
    ) -> Result<(usize, usize), BufferError> {
        match self.write_inner(fd, n, true) {
            Err(BufferError::Io(e)) if e.raw_os_error() == Some(libc::ENOTSOCK) => {
                self.write_inner(fd, n, false)
            }
            other => other,
        }
    }

    /// One write of at most `n` bytes; returns the bytes written and the
    /// bytes offered.
    fn write_inner(
        &mut self,
        fd: BorrowedFd<'_>,
        n: usize,
        socket: bool,
    ) -> Result<(usize, usize), BufferError> {
        self.check_start()?;
        let limit = n.min(self.len);
        if limit == 0 {
            return Ok((0, 0));
        }
        let (written, offered) = match self.segs.front() {
            Some(Seg::File(f)) => {
                let len = f.len().min(limit);
                match retry(|| fdio::sendfile(fd, f.file().as_fd(), f.offset(), len)) {
                    Err(e) if e.kind() == io::ErrorKind::Unsupported => {
                        let mut tmp = vec![0; len.min(FALLBACK_CHUNK)];
                        f.read_exact_at(0, &mut tmp)?;
                        (retry(|| fdio::write(fd, &tmp))?, tmp.len())
                    }
                    other => (other?, len),
                }
            }
            Some(Seg::Mut(_) | Seg::Bytes(_)) if self.segs.len() == 1 => {
                // One segment (the common case): no iovec array to fill.
                let m = self.segs[0].mem().unwrap_or_default();
                let m = &m[..m.len().min(limit)];
                let w = if socket {
                    retry(|| fdio::send(fd, m))?
                } else {
                    retry(|| fdio::write(fd, m))?
                };
                (w, m.len())
            }
            _ => {
                let mut iov = [IoSlice::new(&[]); fdio::MAX_IOVECS];
                let mut k = 0;
                let mut left = limit;
                for seg in &self.segs {
                    if k == iov.len() || left == 0 {
                        break;
                    }
                    let Some(m) = seg.mem() else { break };
                    let take = m.len().min(left);
                    if take == 0 {
                        break;
                    }
                    iov[k] = IoSlice::new(&m[..take]);
                    left -= take;
                    k += 1;
                }
                let w = if socket {
                    retry(|| fdio::send_vectored(fd, &iov[..k]))?
                } else {
                    retry(|| fdio::writev(fd, &iov[..k]))?
                };
                (w, limit - left)
            }
        };
        if written > 0 {
            self.resv = None;
            let orig = self.len;
            self.drain_inner(written);
            self.changed(orig, 0, written);
        }
        Ok((written, offered))
    }
}

fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
