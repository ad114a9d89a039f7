//! Safe wrappers over the fd I/O system calls that the buffer layer needs:
//! `read`, `readv`, `write`, `writev`, `sendfile`, `pread`, `FIONREAD` and
//! `recvmsg` with `TCP_INQ`;
//! and the datagram batches the DNS resolver reads with (`recvmmsg`).
//!
//! Every function takes a [`BorrowedFd`], so the fd is open for the whole
//! call, and slices, so every pointer handed to the kernel is valid for the
//! length it is given with. Errors are `io::Error::last_os_error()`; `EINTR`
//! is returned to the caller like any other error.

use std::io::{self, IoSlice, IoSliceMut};
#[cfg(target_os = "linux")]
use std::mem::MaybeUninit;
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
    if let [one] = bufs {
        // One buffer: `recv` spares the kernel the msghdr and iovec copies.
        return recv(fd, one);
    }
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
    if let [one] = bufs {
        // One buffer: `send` spares the kernel the msghdr and iovec copies.
        return send(fd, one);
    }
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

/// Most datagrams one [`recv_batch`] call receives.
pub const MAX_BATCH: usize = 64;

/// An `mmsghdr` with one iovec, `iov`, and nothing else (no address, no
/// control data, no flags).
#[cfg(target_os = "linux")]
fn mmsghdr_for(iov: &mut libc::iovec) -> libc::mmsghdr {
    // SAFETY: `msghdr` is a plain C struct for which all zero bytes are a
    // valid value (null pointers, zero lengths).
    let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
    hdr.msg_iov = iov;
    hdr.msg_iovlen = 1;
    libc::mmsghdr {
        msg_hdr: hdr,
        msg_len: 0,
    }
}

/// Receives up to `bufs.len()` datagrams (at most [`MAX_BATCH`], and no
/// more than `lens.len()`) in one call: `recvmmsg(2)` on Linux, a loop of
/// `recv(2)` elsewhere. Datagram `i` lands in `bufs[i]` and its length in
/// `lens[i]`; returns how many were received (at least one).
///
/// On Linux the real length of a datagram longer than its buffer is
/// reported (`MSG_TRUNC`), so `lens[i] > bufs[i].len()` means that datagram
/// was cut to its buffer; elsewhere a cut datagram reports the buffer's
/// length.
///
/// # Errors
///
/// The OS error when not even one datagram was received, including
/// `WouldBlock` on a non-blocking socket with nothing queued.
pub fn recv_batch(
    fd: BorrowedFd<'_>,
    bufs: &mut [&mut [u8]],
    lens: &mut [usize],
) -> io::Result<usize> {
    let n = bufs.len().min(lens.len()).min(MAX_BATCH);
    if n == 0 {
        return Ok(0);
    }
    #[cfg(target_os = "linux")]
    {
        // Only the first `n` entries are written (and read by the kernel):
        // zeroing all MAX_BATCH would cost more than the call saves.
        let mut iov = [const { MaybeUninit::<libc::iovec>::uninit() }; MAX_BATCH];
        let mut hdrs = [const { MaybeUninit::<libc::mmsghdr>::uninit() }; MAX_BATCH];
        for i in 0..n {
            let v = iov[i].write(libc::iovec {
                iov_base: bufs[i].as_mut_ptr().cast(),
                iov_len: bufs[i].len(),
            });
            hdrs[i].write(mmsghdr_for(v));
        }
        // SAFETY: the first `n` headers are initialised, and each points at
        // one iovec that points at a slice of `bufs`, valid and writable for
        // its length while `bufs` is mutably borrowed; `iov` and `hdrs`
        // outlive the call; no name or control buffer is given; the timeout
        // is null; the fd is open because it is borrowed.
        let r = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                hdrs.as_mut_ptr().cast(),
                n as libc::c_uint,
                libc::MSG_TRUNC as _,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = r as usize;
        for i in 0..got {
            // SAFETY: header `i < n` was initialised above (and the kernel
            // filled in its `msg_len`).
            lens[i] = unsafe { hdrs[i].assume_init_ref() }.msg_len as usize;
        }
        Ok(got)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let mut got = 0;
        while got < n {
            match recv(fd, bufs[got]) {
                Ok(len) => {
                    lens[got] = len;
                    got += 1;
                }
                Err(e) if got == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(got)
    }
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

/// `shutdown(fd, SHUT_WR)`: ends the write side of the socket `fd`, so that the peer reads
/// end of file after what was sent, while this side can still read (a lingering close).
///
/// Unlike this module's other functions it takes a raw fd, since that is what a
/// bufferevent exposes (`bufferevent_getfd`). That is sound: the call reads and writes no
/// memory of this process, and an fd that is closed or not a socket gets an error
/// (`EBADF`, `ENOTSOCK`). The caller must pass a socket it owns, as with any raw fd.
///
/// # Errors
///
/// The OS error, such as `ENOTCONN` for a socket whose peer already reset it.
pub fn shutdown_write(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: `shutdown` takes two integers and touches no memory of ours; a bad fd is
    // reported as an error.
    let r = unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    cvt(r as isize).map(drop)
}

/// [`send`] on a raw fd: for a layer that must send from inside a callback
/// that cannot carry a borrowed fd (OpenSSL writing a record through the
/// `Write` of the in-memory transport of `oxevent-openssl`, which lends it
/// the socket's number for the duration of one step).
///
/// As for [`shutdown_write`], that is sound: the call only reads `buf`,
/// and an fd that is closed or not a socket gets an error (`EBADF`,
/// `ENOTSOCK`). The caller must pass a socket it owns or borrows for the
/// duration of the call, as with any raw fd.
///
/// # Errors
///
/// As [`send`].
pub fn send_raw(fd: std::os::fd::RawFd, buf: &[u8]) -> io::Result<usize> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let flags = libc::MSG_NOSIGNAL;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let flags = 0;
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes during the call;
    // `send` touches no other memory of ours, and a bad fd is an error.
    let r = unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), flags) };
    cvt(r)
}

/// Asks the kernel to report, with every `recvmsg` on the TCP socket `fd`,
/// how many bytes are still queued after the read (`TCP_INQ`, Linux 4.18
/// and later): see [`recv_vectored_inq`].
///
/// # Errors
///
/// The OS error: `ENOPROTOOPT` or `EOPNOTSUPP` for a socket that is not
/// TCP, `ENOTSOCK` for a non-socket; `Unsupported` where the OS has no
/// `TCP_INQ`.
pub fn enable_tcp_inq(fd: BorrowedFd<'_>) -> io::Result<()> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let one: libc::c_int = 1;
        // SAFETY: `setsockopt` reads `size_of::<c_int>()` bytes through the
        // pointer, which points at a live local of that size; the fd is open
        // because it is borrowed.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_TCP,
                libc::TCP_INQ,
                std::ptr::from_ref(&one).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        cvt(r as isize).map(drop)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = fd;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// `recvmsg(2)` into `bufs` (at most [`MAX_IOVECS`] used) on a TCP socket
/// with [`enable_tcp_inq`] on: returns the bytes read and, when the kernel
/// attached it, how many bytes were still queued right after the read
/// (`TCP_CM_INQ`). `Some(0)` means the read drained the socket, so an
/// edge-triggered reader needs no further `recv` to find `WouldBlock`. The
/// kernel reports at least 1 once the peer's FIN has arrived, so that the
/// end of file is read.
///
/// # Errors
///
/// The OS error, including `WouldBlock`.
pub fn recv_vectored_inq(
    fd: BorrowedFd<'_>,
    bufs: &mut [IoSliceMut<'_>],
) -> io::Result<(usize, Option<usize>)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // Room for one `cmsghdr` carrying one `c_int`, aligned for `cmsghdr`.
        let mut control = [0u64; 4];
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = bufs.as_mut_ptr().cast();
        msg.msg_iovlen = bufs.len().min(MAX_IOVECS) as _;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&control) as _;
        // SAFETY: `msg` points at `bufs`, whose slices are valid and writable
        // for their lengths while `bufs` is mutably borrowed (`IoSliceMut` is
        // ABI-compatible with `iovec`), and at `control`, writable for
        // `msg_controllen` bytes; the fd is open because it is borrowed.
        let r = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        let n = cvt(r)?;
        let mut inq = None;
        // SAFETY: `msg` was filled by a successful `recvmsg`: its control
        // pointer and length describe the initialized prefix of `control`,
        // which is what `CMSG_FIRSTHDR`/`CMSG_NXTHDR` walk, and they return
        // null past the end.
        let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
        while !cmsg.is_null() {
            // SAFETY: `cmsg` is non-null and points inside `control` (see
            // above), at a header the kernel wrote.
            let hdr = unsafe { &*cmsg };
            if hdr.cmsg_level == libc::SOL_TCP && hdr.cmsg_type == libc::TCP_CM_INQ {
                // SAFETY: a `TCP_CM_INQ` message carries one `c_int` right
                // after its header, inside `control`; it may be unaligned.
                let v: libc::c_int =
                    unsafe { libc::CMSG_DATA(cmsg).cast::<libc::c_int>().read_unaligned() };
                inq = usize::try_from(v).ok();
            }
            // SAFETY: as for `CMSG_FIRSTHDR`: `msg` and `cmsg` are valid.
            cmsg = unsafe { libc::CMSG_NXTHDR(&msg, cmsg) };
        }
        Ok((n, inq))
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        recv_vectored(fd, bufs).map(|n| (n, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn shutdown_write_gives_the_peer_eof_and_keeps_reading() {
        use std::io::Read;
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"bye").unwrap();
        shutdown_write(a.as_raw_fd()).unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"bye");
        // The other direction still works.
        b.write_all(b"late").unwrap();
        let mut buf = [0u8; 4];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"late");
        assert!(shutdown_write(-1).is_err());
    }

    #[test]
    fn send_raw_sends_and_reports_bad_fds() {
        use std::io::Read;
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(send_raw(a.as_raw_fd(), b"raw").unwrap(), 3);
        let mut buf = [0u8; 3];
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"raw");
        assert_eq!(
            send_raw(-1, b"x").unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }

    #[test]
    fn tcp_inq_reports_what_is_left_after_a_read() {
        use std::net::{TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (b, _) = l.accept().unwrap();
        enable_tcp_inq(b.as_fd()).unwrap();
        a.write_all(&[7u8; 100]).unwrap();
        let mut buf = [0u8; 40];
        let mut got = 0;
        // Bounded: the 100 bytes are on loopback already or within moments.
        for _ in 0..1000 {
            let (n, inq) = recv_vectored_inq(b.as_fd(), &mut [IoSliceMut::new(&mut buf)]).unwrap();
            got += n;
            assert_eq!(inq, Some(100 - got));
            if got == 100 {
                break;
            }
        }
        assert_eq!(got, 100);
        // A FIN still to be read is reported as something left.
        drop(a);
        std::thread::sleep(std::time::Duration::from_millis(20));
        b.set_nonblocking(true).unwrap();
        let (n, inq) = recv_vectored_inq(b.as_fd(), &mut [IoSliceMut::new(&mut buf)]).unwrap();
        assert_eq!((n, inq.is_some()), (0, true));
        // Not TCP: refused, so the caller falls back to plain reads.
        let (u, _) = UnixStream::pair().unwrap();
        assert!(enable_tcp_inq(u.as_fd()).is_err());
    }

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

    #[test]
    fn datagram_batches_over_a_udp_pair() {
        use std::net::UdpSocket;
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut bufs = [[0u8; 8]; 4];
        let mut lens = [0usize; 4];
        {
            let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            let e = recv_batch(b.as_fd(), &mut slots, &mut lens).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        let msgs: [&[u8]; 3] = [b"one", b"second", b"a datagram too long"];
        for m in msgs {
            assert_eq!(a.send(m).unwrap(), m.len());
        }
        // Loopback queues them at once; poll (bounded) for all three.
        let mut got = Vec::new();
        for _ in 0..1000 {
            if got.len() == 3 {
                break;
            }
            let mut slots: Vec<&mut [u8]> = bufs.iter_mut().map(|b| &mut b[..]).collect();
            let n = match recv_batch(b.as_fd(), &mut slots, &mut lens) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                Err(e) => panic!("recv_batch: {e}"),
            };
            assert!(n >= 1);
            for i in 0..n {
                got.push((slots[i][..lens[i].min(8)].to_vec(), lens[i]));
            }
        }
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], (b"one".to_vec(), 3));
        assert_eq!(got[1], (b"second".to_vec(), 6));
        assert_eq!(&got[2].0[..], b"a datagr");
        if cfg!(target_os = "linux") {
            // The real length of the cut datagram.
            assert_eq!(got[2].1, 19);
        }
        assert_eq!(recv_batch(b.as_fd(), &mut [], &mut []).unwrap(), 0);
    }
}
