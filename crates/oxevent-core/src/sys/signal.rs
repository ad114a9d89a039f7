//! Signal delivery by self-pipe, to any number of bases.
//!
//! libevent delivers a signal to one base only. Here a process-wide table of
//! up to [`MAX_BASES`] slots, each holding a base's pipe write end, a mask of
//! the signals it watches and a counter per signal, lets one async-signal-safe
//! handler notify every base that watches the signal: it bumps the counter
//! and writes one byte to the pipe. The base's read end is an ordinary
//! internal read event; when it fires the base takes the counters and runs
//! the signal events that many times (libevent's `ncalls`).
//!
//! The previous disposition of a signal is saved when the first watcher in
//! the process appears and restored when the last one goes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};

/// Highest signal number supported (Linux real-time signals end at 64).
pub(crate) const MAX_SIGNAL: i32 = 64;
/// Most bases that may watch signals at the same time.
pub(crate) const MAX_BASES: usize = 256;

struct Slot {
    /// Write end of the base's pipe, or -1.
    fd: AtomicI32,
    /// Bit `s - 1` set when the base watches signal `s`.
    mask: AtomicU64,
    counts: [AtomicU32; MAX_SIGNAL as usize + 1],
}

static SLOTS: [Slot; MAX_BASES] = [const {
    Slot {
        fd: AtomicI32::new(-1),
        mask: AtomicU64::new(0),
        counts: [const { AtomicU32::new(0) }; MAX_SIGNAL as usize + 1],
    }
}; MAX_BASES];

struct Global {
    used: [bool; MAX_BASES],
    refcount: [u32; MAX_SIGNAL as usize + 1],
    old: Vec<Option<libc::sigaction>>,
}

static GLOBAL: Mutex<Option<Global>> = Mutex::new(None);

fn with_global<R>(f: impl FnOnce(&mut Global) -> R) -> R {
    let mut g = GLOBAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let g = g.get_or_insert_with(|| Global {
        used: [false; MAX_BASES],
        refcount: [0; MAX_SIGNAL as usize + 1],
        old: vec![None; MAX_SIGNAL as usize + 1],
    });
    f(g)
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "emscripten"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: `__errno_location` has no preconditions and returns the calling
    // thread's errno address.
    unsafe { libc::__errno_location() }
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: `__error` has no preconditions and returns the calling thread's
    // errno address.
    unsafe { libc::__error() }
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "emscripten",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
fn errno_location() -> *mut libc::c_int {
    std::ptr::null_mut()
}

extern "C" fn handler(sig: libc::c_int) {
    let errno = errno_location();
    let saved = if errno.is_null() {
        0
    } else {
        // SAFETY: `errno` is the calling thread's errno, which is valid to
        // read for the life of the thread.
        unsafe { *errno }
    };
    if (1..=MAX_SIGNAL).contains(&sig) {
        let bit = 1u64 << (sig - 1);
        let byte = sig as u8;
        for slot in &SLOTS {
            if slot.mask.load(Ordering::Acquire) & bit == 0 {
                continue;
            }
            slot.counts[sig as usize].fetch_add(1, Ordering::AcqRel);
            let fd = slot.fd.load(Ordering::Acquire);
            if fd >= 0 {
                // SAFETY: write(2) is async-signal-safe; the buffer is one
                // live byte. A full pipe (EAGAIN) is fine: the counter holds
                // the signal and the pipe is already readable.
                let _ = unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
            }
        }
    }
    if !errno.is_null() {
        // SAFETY: as above; restoring errno keeps the interrupted code's view.
        unsafe { *errno = saved };
    }
}

fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // SAFETY: `fds` is a valid array of two ints for pipe to fill.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: `fd` was just returned by pipe(2) and is open.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                let fl = libc::fcntl(fd, libc::F_GETFL);
                libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
    }
    // SAFETY: both fds were just created by pipe and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Checks a signal number for the portable range.
pub(crate) fn check_signal(sig: i32) -> io::Result<()> {
    if (1..=MAX_SIGNAL).contains(&sig) && sig != libc::SIGKILL && sig != libc::SIGSTOP {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("signal number {sig} cannot be watched"),
        ))
    }
}

/// One base's signal receiver.
#[derive(Debug)]
pub(crate) struct SignalPipe {
    slot: usize,
    read: OwnedFd,
    write: OwnedFd,
    mask: u64,
}

impl SignalPipe {
    pub(crate) fn new() -> io::Result<Self> {
        let (read, write) = nonblocking_pipe()?;
        let slot = with_global(|g| {
            let i = g.used.iter().position(|u| !u)?;
            g.used[i] = true;
            Some(i)
        })
        .ok_or_else(|| io::Error::other(format!("more than {MAX_BASES} bases watch signals")))?;
        for c in &SLOTS[slot].counts {
            c.store(0, Ordering::Relaxed);
        }
        SLOTS[slot].mask.store(0, Ordering::Release);
        SLOTS[slot].fd.store(write.as_raw_fd(), Ordering::Release);
        Ok(Self {
            slot,
            read,
            write,
            mask: 0,
        })
    }

    /// The read end, to register as an internal read event.
    pub(crate) fn read_fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// Starts delivering `sig` to this pipe, installing the handler if this
    /// is the first watcher of `sig` in the process.
    pub(crate) fn watch(&mut self, sig: i32) -> io::Result<()> {
        check_signal(sig)?;
        let bit = 1u64 << (sig - 1);
        if self.mask & bit != 0 {
            return Ok(());
        }
        with_global(|g| -> io::Result<()> {
            if g.refcount[sig as usize] == 0 {
                // SAFETY: an all-zero sigaction is a valid starting value.
                let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
                sa.sa_sigaction = handler as extern "C" fn(libc::c_int) as usize;
                sa.sa_flags = libc::SA_RESTART;
                // SAFETY: `sa.sa_mask` is a valid sigset_t to fill.
                unsafe { libc::sigfillset(&mut sa.sa_mask) };
                // SAFETY: as above, a valid zeroed out-parameter.
                let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
                // SAFETY: both pointers are valid; `handler` is an
                // async-signal-safe extern "C" fn that lives forever.
                if unsafe { libc::sigaction(sig, &sa, &mut old) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                g.old[sig as usize] = Some(old);
            }
            g.refcount[sig as usize] += 1;
            Ok(())
        })?;
        self.mask |= bit;
        SLOTS[self.slot].mask.fetch_or(bit, Ordering::AcqRel);
        Ok(())
    }

    /// Stops delivering `sig` here; restores the old disposition when no
    /// base in the process watches it any more.
    pub(crate) fn unwatch(&mut self, sig: i32) {
        if !(1..=MAX_SIGNAL).contains(&sig) {
            return;
        }
        let bit = 1u64 << (sig - 1);
        if self.mask & bit == 0 {
            return;
        }
        self.mask &= !bit;
        SLOTS[self.slot].mask.fetch_and(!bit, Ordering::AcqRel);
        SLOTS[self.slot].counts[sig as usize].store(0, Ordering::Release);
        with_global(|g| {
            g.refcount[sig as usize] -= 1;
            if g.refcount[sig as usize] == 0 {
                if let Some(old) = g.old[sig as usize].take() {
                    // SAFETY: `old` is the disposition sigaction returned
                    // earlier for this signal, so it is valid to reinstall.
                    unsafe { libc::sigaction(sig, &old, std::ptr::null_mut()) };
                }
            }
        });
    }

    /// Empties the pipe and moves the pending counts into `out[sig]`.
    /// Returns whether any signal was pending.
    pub(crate) fn drain(&self, out: &mut [u32; MAX_SIGNAL as usize + 1]) -> bool {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: `buf` is a valid writable buffer of its length.
            let r =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
        }
        let mut any = false;
        let mut mask = self.mask;
        while mask != 0 {
            let sig = mask.trailing_zeros() as usize + 1;
            mask &= mask - 1;
            let n = SLOTS[self.slot].counts[sig].swap(0, Ordering::AcqRel);
            out[sig] = n;
            any |= n > 0;
        }
        any
    }

    /// Re-creates the pipe after `fork()`, so parent and child do not share it.
    pub(crate) fn reinit(&mut self) -> io::Result<()> {
        let (read, write) = nonblocking_pipe()?;
        SLOTS[self.slot]
            .fd
            .store(write.as_raw_fd(), Ordering::Release);
        self.read = read;
        self.write = write;
        Ok(())
    }
}

impl Drop for SignalPipe {
    fn drop(&mut self) {
        let mut mask = self.mask;
        while mask != 0 {
            let sig = mask.trailing_zeros() as i32 + 1;
            mask &= mask - 1;
            self.unwatch(sig);
        }
        SLOTS[self.slot].fd.store(-1, Ordering::Release);
        with_global(|g| g.used[self.slot] = false);
        let _ = self.write.as_raw_fd();
    }
}

/// Sends `sig` to the calling process (`raise(3)`), for tests and examples.
///
/// # Errors
///
/// The OS error for an invalid signal number.
pub fn raise(sig: i32) -> io::Result<()> {
    // SAFETY: raise has no memory-safety preconditions.
    if unsafe { libc::raise(sig) } != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sends `sig` to the whole process (`kill(getpid(), sig)`), so any thread
/// not blocking it may take it.
///
/// # Errors
///
/// The OS error for an invalid signal number.
pub fn kill_self(sig: i32) -> io::Result<()> {
    // SAFETY: getpid and kill have no memory-safety preconditions.
    if unsafe { libc::kill(libc::getpid(), sig) } != 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether `sig`'s disposition is the default (`SIG_DFL`), for tests of
/// the restore-on-last-watcher rule.
///
/// # Errors
///
/// The OS error for an invalid signal number.
#[doc(hidden)]
pub fn signal_disposition_is_default(sig: i32) -> io::Result<bool> {
    // SAFETY: an all-zero sigaction is a valid out-parameter.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries; `old` is valid and writable.
    if unsafe { libc::sigaction(sig, std::ptr::null(), &mut old) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(old.sa_sigaction == libc::SIG_DFL)
}
