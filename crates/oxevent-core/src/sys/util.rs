//! Small portability helpers (libevent's `evutil`) that need a raw syscall.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Creates a FIFO (named pipe) at `path` with permissions `mode`.
///
/// # Errors
///
/// The OS error, e.g. `AlreadyExists`.
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Puts `fd` in non-blocking mode (`evutil_make_socket_nonblocking`).
///
/// # Errors
///
/// The OS error from `ioctl`.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // One `ioctl(FIONBIO)` rather than `fcntl` `F_GETFL` then `F_SETFL`
    // (as the standard library does): a system call less for every socket
    // a bufferevent takes, accepted connections included.
    let mut on: libc::c_int = 1;
    // SAFETY: FIONBIO reads one c_int through the pointer, which points to
    // a live local; the fd is borrowed, hence open.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONBIO, &mut on) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The CPU time (user plus system) this process has used so far
/// (`getrusage(RUSAGE_SELF)`), for benchmarks.
///
/// # Errors
///
/// The OS error from `getrusage`.
pub fn process_cpu_time() -> io::Result<std::time::Duration> {
    // SAFETY: an all-zero rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable for the duration of the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let tv = |t: libc::timeval| std::time::Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok(tv(ru.ru_utime) + tv(ru.ru_stime))
}

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit,
/// or to `want` if that is lower, and returns the new soft limit. Servers
/// holding thousands of connections need this.
///
/// # Errors
///
/// The OS error from `getrlimit` or `setrlimit`.
pub fn raise_fd_limit(want: u64) -> io::Result<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid, writable rlimit for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    let target = (want as libc::rlim_t).min(rl.rlim_max);
    if target > rl.rlim_cur {
        rl.rlim_cur = target;
        // SAFETY: `rl` is a valid rlimit read above, with rlim_cur <= rlim_max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rl) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 on every target
    Ok(rl.rlim_cur as u64)
}

/// Asks the kernel to wake a listening TCP socket only once a new
/// connection has data to read, or after `seconds` (`TCP_DEFER_ACCEPT`;
/// libevent's `evutil_make_tcp_listen_socket_deferred`, which uses 1 second).
/// Linux and Android only: other systems have no such option.
///
/// # Errors
///
/// The OS error from `setsockopt`, e.g. `EOPNOTSUPP` for a non-TCP socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[doc(alias = "evutil_make_tcp_listen_socket_deferred")]
pub fn set_tcp_defer_accept(fd: BorrowedFd<'_>, seconds: u32) -> io::Result<()> {
    let v = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    // SAFETY: `v` is a live c_int for the duration of the call and the length
    // passed is exactly its size; the fd is borrowed, hence open.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
