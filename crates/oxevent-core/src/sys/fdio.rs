//! Safe wrappers over the fd I/O system calls that the buffer layer needs:
//! `read`, `readv`, `write`, `writev`, `sendfile`, `pread` and `FIONREAD`.
//!
//! Every function takes a [`BorrowedFd`], so the fd is open for the whole
//! call, and slices, so every pointer handed to the kernel is valid for the
//! length it is given with. Errors are `io::Error::last_os_error()`; `EINTR`
//! is returned to the caller like any other error.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Most iovecs handed to one `readv`/`writev` call (POSIX `IOV_MAX` is at
/// least 16; Linux allows 1024).
pub const MAX_IOVECS: usize = 64;

fn cvt(r: isize) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `read(2)` into `buf`.
///
/// # Errors
///
/// The OS error, including `WouldBlock` on a non-blocking fd with no data.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, writable slice of `buf.len()` bytes for the
    // duration of the call, and `fd` is open because it is borrowed.
    let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    cvt(r)
}

/// `readv(2)` into `bufs` (at most [`MAX_IOVECS`] of them are used).
///
/// # Errors
///
/// The OS error, including `WouldBlock`.
pub fn readv(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOVECS);
    // SAFETY: `IoSliceMut` is ABI-compatible with `struct iovec` on unix (std
    // guarantees it), every slice is valid and writable for its length while
    // `bufs` is mutably borrowed, and `n <= bufs.len()`.
    let r = unsafe { libc::readv(fd.as_raw_fd(), bufs.as_mut_ptr().cast(), n as libc::c_int) };
    cvt(r)
}

/// `write(2)` from `buf`.
///
/// # Errors
///
/// The OS error, including `WouldBlock` and `BrokenPipe`.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call.
    let r = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    cvt(r)
}

/// `writev(2)` from `bufs` (at most [`MAX_IOVECS`] of them are used).
///
/// # Errors
///
/// The OS error, including `WouldBlock` and `BrokenPipe`.
pub fn writev(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(MAX_IOVECS);
    // SAFETY: `IoSlice` is ABI-compatible with `struct iovec` on unix, each
    // slice is valid for reads of its length while `bufs` is borrowed, and
    // `n <= bufs.len()`.
    let r = unsafe { libc::writev(fd.as_raw_fd(), bufs.as_ptr().cast(), n as libc::c_int) };
    cvt(r)
}

/// `recv(2)` into `buf` (sockets only). On Linux it skips the file-position
/// lock that `read(2)` takes, so it is a little cheaper on sockets.
///
/// # Errors
///
/// The OS error, including `WouldBlock`, and `ENOTSOCK` for a non-socket.
pub fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a valid, writable slice of `buf.len()` bytes for the
    // duration of the call, and `fd` is open because it is borrowed.
    let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    cvt(r)
}

/// `send(2)` from `buf` (sockets only), with `MSG_NOSIGNAL` where the OS
/// has it, so a closed peer is `EPIPE`, never `SIGPIPE`.
///
/// # Errors
///
/// The OS error, including `WouldBlock`, `BrokenPipe` and `ENOTSOCK`.
pub fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call.
    let r = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), flags) };
    cvt(r)
}

/// `recvmsg(2)` into `bufs` (sockets only; at most [`MAX_IOVECS`] used):
/// `readv` for sockets, without the file-position lock.
///
/// # Errors
///
/// The OS error, including `WouldBlock`, and `ENOTSOCK` for a non-socket.
pub fn recv_vectored(fd: BorrowedFd<'_>, bufs: &mut [IoSliceMut<'_>]) -> io::Result<usize> {
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = bufs.as_mut_ptr().cast();
    msg.msg_iovlen = bufs.len().min(MAX_IOVECS) as _;
    // SAFETY: `msg` points at `bufs`, whose slices are valid and writable
    // for their lengths while `bufs` is mutably borrowed (`IoSliceMut` is
    // ABI-compatible with `iovec`); the fd is open because it is borrowed.
    let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
    cvt(r)
}

/// `sendmsg(2)` from `bufs` (sockets only; at most [`MAX_IOVECS`] used),
/// with `MSG_NOSIGNAL` where the OS has it: `writev` for sockets, and a
/// closed peer is `EPIPE`, never `SIGPIPE`.
///
/// # Errors
///
/// The OS error, including `WouldBlock`, `BrokenPipe` and `ENOTSOCK`.
pub fn send_vectored(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // SAFETY: an all-zero msghdr is valid (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    // sendmsg does not write through msg_iov; the cast to *mut is what the
    // C signature asks for.
    msg.msg_iov = bufs.as_ptr().cast_mut().cast();
    msg.msg_iovlen = bufs.len().min(MAX_IOVECS) as _;
    // SAFETY: `msg` points at `bufs`, valid for reads while borrowed
    // (`IoSlice` is ABI-compatible with `iovec`); the fd is open.
    let r = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags) };
    cvt(r)
}

/// `pread(2)`: reads from `file` at `offset` without moving its file offset.
///
/// # Errors
///
/// The OS error.
pub fn pread(file: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let off =
        libc::off_t::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `buf` is valid and writable for `buf.len()` bytes during the call.
    let r = unsafe { libc::pread(file.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), off) };
    cvt(r)
}

/// Sends up to `len` bytes of `file`, starting at `offset`, to `out` with
/// `sendfile(2)` where the OS has it (Linux, Android). Returns the number of
/// bytes sent. The file's own offset does not move.
///
/// # Errors
///
/// The OS error; `Unsupported` where there is no `sendfile`, so that callers
/// fall back to [`pread`] and [`write()`].
pub fn sendfile(
    out: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    offset: u64,
    len: usize,
) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `off` is a valid, writable `off_t` for the duration of the
        // call, and both fds are open because they are borrowed.
        let r = unsafe { libc::sendfile(out.as_raw_fd(), file.as_raw_fd(), &mut off, len) };
        cvt(r)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = (out, file, offset, len);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// The number of bytes that can be read from `fd` without blocking
/// (`ioctl(FIONREAD)`), used to size reads.
///
/// # Errors
///
/// The OS error, for example `ENOTTY` on an fd that does not support it.
pub fn bytes_readable(fd: BorrowedFd<'_>) -> io::Result<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one `c_int` through the pointer, which points
    // at a live local.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn vectored_round_trip_over_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        let n = writev(
            a.as_fd(),
            &[IoSlice::new(b"hello "), IoSlice::new(b"world")],
        )
        .unwrap();
        assert_eq!(n, 11);
        assert_eq!(bytes_readable(b.as_fd()).unwrap(), 11);
        let (mut x, mut y) = ([0u8; 4], [0u8; 16]);
        let n = readv(
            b.as_fd(),
            &mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)],
        )
        .unwrap();
        assert_eq!(n, 11);
        assert_eq!(&x, b"hell");
        assert_eq!(&y[..7], b"o world");
    }

    #[test]
    fn sendfile_and_pread_from_a_real_file() {
        let path = std::env::temp_dir().join(format!("oxevent-fdio-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"0123456789").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(pread(f.as_fd(), &mut buf, 3).unwrap(), 4);
        assert_eq!(&buf, b"3456");
        let (a, b) = UnixStream::pair().unwrap();
        match sendfile(a.as_fd(), f.as_fd(), 2, 5) {
            Ok(n) => {
                assert_eq!(n, 5);
                let mut out = [0u8; 5];
                assert_eq!(read(b.as_fd(), &mut out).unwrap(), 5);
                assert_eq!(&out, b"23456");
            }
            Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported),
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn vectored_socket_calls() {
        let (a, b) = UnixStream::pair().unwrap();
        let n = send_vectored(a.as_fd(), &[IoSlice::new(b"ab"), IoSlice::new(b"cde")]).unwrap();
        assert_eq!(n, 5);
        let (mut x, mut y) = ([0u8; 2], [0u8; 8]);
        let n = recv_vectored(
            b.as_fd(),
            &mut [IoSliceMut::new(&mut x), IoSliceMut::new(&mut y)],
        )
        .unwrap();
        assert_eq!((n, &x, &y[..3]), (5, b"ab", &b"cde"[..]));
        let f = std::fs::File::open("/dev/null").unwrap();
        let e = recv_vectored(f.as_fd(), &mut [IoSliceMut::new(&mut x)]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTSOCK));
        drop(b);
        assert_eq!(
            send_vectored(a.as_fd(), &[IoSlice::new(b"x")])
                .unwrap_err()
                .kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn recv_and_send_on_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        assert_eq!(send(a.as_fd(), b"xyz").unwrap(), 3);
        let mut buf = [0u8; 8];
        assert_eq!(recv(b.as_fd(), &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"xyz");
        drop(b);
        assert_eq!(
            send(a.as_fd(), b"x").unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
    }

    #[test]
    fn errors_are_reported_not_panics() {
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 8];
        let e = read(a.as_fd(), &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
