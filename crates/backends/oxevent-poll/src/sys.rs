//! System calls of the poll backend: the only module of this crate where
//! `unsafe` is allowed.
//!
//! Contract: every function here is safe to call with any argument. Buffers
//! are slices, so every pointer handed to the kernel is valid for the length
//! it is given with; descriptors the backend is merely told about are plain
//! integers that the kernel validates itself. Errors are
//! `io::Error::last_os_error()`; `EINTR` is returned to the caller.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// One entry of the poll set (`struct pollfd`).
pub(crate) type PollFd = libc::pollfd;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of a descriptor a system call just returned.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn owned(r: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(r)?;
    // SAFETY: `fd` was just returned by a successful fd-creating system call,
    // so it is open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `poll(fds, timeout_ms)`; returns how many entries have a non-zero
/// `revents`.
pub(crate) fn poll(fds: &mut [PollFd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let n = libc::nfds_t::try_from(fds.len())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `fds` is a valid, writable slice of exactly `n` pollfd entries
    // for the whole call; entries with invalid fds are reported through
    // `POLLNVAL`, not by touching other memory.
    let r = cvt(unsafe { libc::poll(fds.as_mut_ptr(), n, timeout_ms) })?;
    Ok(r as usize)
}

/// Whether `fd` is an open descriptor (`fcntl(fd, F_GETFD)`); `EBADF` if not.
pub(crate) fn check_open(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFD only reads the descriptor flags of `fd`, which the
    // kernel validates; no memory is passed.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) }).map(drop)
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; no pointers.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

/// A pipe whose both ends are non-blocking and close-on-exec, as
/// `(read, write)`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid, writable array of two ints, as pipe(2) needs.
    cvt(unsafe { libc::pipe(fds.as_mut_ptr()) })?;
    // SAFETY: pipe(2) succeeded, so both descriptors are open and owned by
    // nobody else; wrapping them at once makes sure they are closed on error.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    for fd in fds {
        // SAFETY: `fd` is open (owned above); F_SETFD/F_GETFL/F_SETFL take
        // integer arguments only.
        unsafe {
            cvt(libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC))?;
            let flags = cvt(libc::fcntl(fd, libc::F_GETFL))?;
            cvt(libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK))?;
        }
    }
    Ok((r, w))
}
