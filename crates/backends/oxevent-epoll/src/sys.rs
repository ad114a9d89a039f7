//! System calls of the epoll backend: the only module of this crate where
//! `unsafe` is allowed.
//!
//! Contract: every function here is safe to call with any argument. File
//! descriptors the backend owns are passed as [`BorrowedFd`] (so they are open
//! for the whole call); descriptors the backend is merely told about are
//! passed as [`RawFd`] to `epoll_ctl`, which validates them itself and fails
//! with `EBADF` rather than touching memory. Buffers are slices, so every
//! pointer handed to the kernel is valid for the length it is given with.
//! Errors are `io::Error::last_os_error()`; `EINTR` is returned to the caller.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// One entry of the epoll event array (`struct epoll_event`).
pub(crate) type EpollEvent = libc::epoll_event;

/// An `epoll_ctl` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CtlOp {
    /// `EPOLL_CTL_ADD`.
    Add,
    /// `EPOLL_CTL_MOD`.
    Mod,
    /// `EPOLL_CTL_DEL`.
    Del,
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of a descriptor a system call just returned.
fn owned(r: libc::c_int) -> io::Result<OwnedFd> {
    let fd = cvt(r)?;
    // SAFETY: `fd` was just returned by a successful fd-creating system call,
    // so it is open and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A zeroed event, used to size the event array.
pub(crate) const fn empty_event() -> EpollEvent {
    EpollEvent { events: 0, u64: 0 }
}

/// The `(events, data)` pair of an event (read by value: the struct is
/// packed on x86-64).
pub(crate) fn event_parts(ev: &EpollEvent) -> (u32, u64) {
    (ev.events, ev.u64)
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub(crate) fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with a flag argument; no pointers.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// `epoll_ctl(ep, op, fd, {events, data})`.
pub(crate) fn epoll_ctl(
    ep: BorrowedFd<'_>,
    op: CtlOp,
    fd: RawFd,
    events: u32,
    data: u64,
) -> io::Result<()> {
    let op = match op {
        CtlOp::Add => libc::EPOLL_CTL_ADD,
        CtlOp::Mod => libc::EPOLL_CTL_MOD,
        CtlOp::Del => libc::EPOLL_CTL_DEL,
    };
    // A valid event pointer is passed even for DEL (kernels before 2.6.9
    // required one).
    let mut ev = EpollEvent { events, u64: data };
    // SAFETY: `ep` is open (borrowed); `fd` is any integer, which the kernel
    // validates (EBADF) without touching our memory; `ev` is a valid,
    // initialised `epoll_event` on our stack for the whole call.
    cvt(unsafe { libc::epoll_ctl(ep.as_raw_fd(), op, fd, &mut ev) }).map(drop)
}

fn max_events(events: &[EpollEvent]) -> libc::c_int {
    libc::c_int::try_from(events.len()).unwrap_or(libc::c_int::MAX)
}

/// `epoll_wait(ep, events, timeout_ms)`; returns how many entries of
/// `events` were filled.
pub(crate) fn epoll_wait(
    ep: BorrowedFd<'_>,
    events: &mut [EpollEvent],
    timeout_ms: libc::c_int,
) -> io::Result<usize> {
    // SAFETY: `events` is a valid, writable slice of at least `max_events`
    // entries for the whole call, and `ep` is open.
    let n = cvt(unsafe {
        libc::epoll_wait(
            ep.as_raw_fd(),
            events.as_mut_ptr(),
            max_events(events),
            timeout_ms,
        )
    })?;
    Ok(n as usize)
}

fn timespec(d: Duration) -> libc::timespec {
    // Clamp absurd durations instead of overflowing `time_t`.
    let secs = d.as_secs().min(i32::MAX as u64);
    libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: libc::c_long::from(d.subsec_nanos() as i32),
    }
}

/// `epoll_pwait2(ep, events, timeout, NULL)` (Linux 5.11), through
/// `syscall(2)` so it links against any libc; `None` waits forever.
/// Fails with `ENOSYS` on older kernels.
pub(crate) fn epoll_pwait2(
    ep: BorrowedFd<'_>,
    events: &mut [EpollEvent],
    timeout: Option<Duration>,
) -> io::Result<usize> {
    let ts = timeout.map(timespec);
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `events` is a valid, writable slice of at least `max_events`
    // entries; `ts_ptr` is null or points to a timespec on our stack that
    // lives for the whole call; the signal mask is null (unchanged) and its
    // size argument is the kernel's sigset size, ignored for a null mask.
    let r = unsafe {
        libc::syscall(
            libc::SYS_epoll_pwait2,
            ep.as_raw_fd(),
            events.as_mut_ptr(),
            max_events(events),
            ts_ptr,
            std::ptr::null::<libc::sigset_t>(),
            8usize,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`.
pub(crate) fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; no pointers.
    owned(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })
}

/// `timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)`.
pub(crate) fn timerfd_create() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; no pointers.
    owned(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    })
}

/// Arms `fd` to expire once, `after` from now, or disarms it (`None`).
/// Either way its expiration count is reset.
pub(crate) fn timerfd_set(fd: BorrowedFd<'_>, after: Option<Duration>) -> io::Result<()> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // A zero `it_value` disarms, so a zero duration becomes one nanosecond.
    let value = after.map_or(zero, |d| timespec(d.max(Duration::from_nanos(1))));
    let spec = libc::itimerspec {
        it_interval: zero,
        it_value: value,
    };
    // SAFETY: `fd` is open (borrowed); `spec` is a valid itimerspec on our
    // stack; the old-value pointer is null, which the kernel allows.
    cvt(unsafe { libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) }).map(drop)
}
