//! The poll backend itself: the pollfd array with its fd index, the wait
//! loop and the eventfd or pipe waker.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oxevent_backend::{Backend, BackendConfig, Features, Interest, Ready, ReadyList, Wake, Waker};

use crate::sys::{self, PollFd};

/// Whether this platform has `POLLRDHUP` (early close detection).
const HAS_RDHUP: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// The features of the poll backend.
pub(crate) const FEATURES: Features = if HAS_RDHUP {
    Features::FDS.union(Features::EARLY_CLOSE)
} else {
    Features::FDS
};

#[cfg(any(target_os = "linux", target_os = "android"))]
const POLLRDHUP: libc::c_short = libc::POLLRDHUP;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const POLLRDHUP: libc::c_short = 0;

/// The `events` mask for an interest (without `EDGE`, which is refused).
fn poll_mask(interest: Interest) -> libc::c_short {
    let mut ev = 0;
    if interest.contains(Interest::READ) {
        ev |= libc::POLLIN;
    }
    if interest.contains(Interest::WRITE) {
        ev |= libc::POLLOUT;
    }
    if interest.contains(Interest::CLOSED) {
        ev |= POLLRDHUP;
    }
    ev
}

/// The readiness directions an interest allows.
fn allowed(interest: Interest) -> Ready {
    let mut r = Ready::empty();
    r.set(Ready::READ, interest.contains(Interest::READ));
    r.set(Ready::WRITE, interest.contains(Interest::WRITE));
    r.set(
        Ready::CLOSED,
        HAS_RDHUP && interest.contains(Interest::CLOSED),
    );
    r
}

/// Translates `revents` into [`Ready`], restricted to `interest`.
fn ready_from(revents: libc::c_short, interest: Interest) -> Ready {
    let mut r = Ready::empty();
    if revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
        r = Ready::READ | Ready::WRITE | Ready::CLOSED;
    }
    if revents & libc::POLLIN != 0 {
        r |= Ready::READ;
    }
    if revents & libc::POLLOUT != 0 {
        r |= Ready::WRITE;
    }
    if revents & POLLRDHUP != 0 {
        r |= Ready::CLOSED;
    }
    r & allowed(interest)
}

/// Rounds a timeout up to whole milliseconds (never wake early).
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => d
            .as_nanos()
            .div_ceil(1_000_000)
            .min(libc::c_int::MAX as u128) as libc::c_int,
    }
}

/// The wake-up mechanism: an eventfd on Linux and Android, a non-blocking
/// pipe elsewhere. The current one's read end is slot 0 of the poll set.
///
/// [`Backend::reinit`] replaces it (after `fork()` the old one is shared
/// with the parent, and each process would drain the other's wakes) and
/// links the new one as `next` of the old one; a [`Waker`] handed out
/// before follows the links to the newest, with no lock on the wake path.
#[derive(Debug)]
struct Wakeup {
    /// The eventfd, or the pipe's read end.
    read: File,
    /// The pipe's write end.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    write: File,
    /// The wake-up that replaced this one, set once by `reinit`.
    next: OnceLock<Arc<Wakeup>>,
}

impl Wakeup {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn new() -> io::Result<Self> {
        Ok(Self {
            read: File::from(sys::eventfd()?),
            next: OnceLock::new(),
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn new() -> io::Result<Self> {
        let (r, w) = sys::pipe()?;
        Ok(Self {
            read: File::from(r),
            write: File::from(w),
            next: OnceLock::new(),
        })
    }

    /// The newest wake-up reachable from this one.
    fn newest(&self) -> &Self {
        let mut node = self;
        while let Some(next) = node.next.get() {
            node = next;
        }
        node
    }

    fn write_end(&self) -> &File {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        return &self.read;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        return &self.write;
    }

    fn drain(&self) {
        let mut buf = [0u8; 64];
        // An eventfd is emptied by one 8-byte read; a pipe by reading until
        // a short read (bounded, in case a writer keeps going).
        for _ in 0..16 {
            match (&self.read).read(&mut buf) {
                Ok(n) if n == buf.len() => {}
                _ => return,
            }
        }
    }
}

impl Wake for Wakeup {
    fn wake(&self) -> io::Result<()> {
        match self.newest().write_end().write(&1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            // Full pipe or saturated counter: a wake is already pending.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The [`Wake`] handed out in a [`Waker`]: a share of the [`Wakeup`].
#[derive(Debug)]
struct SharedWakeup(Arc<Wakeup>);

impl Wake for SharedWakeup {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

/// The POSIX `poll(2)` backend (libevent's `pollops`): the portable
/// fallback, and the one that works with any kind of fd.
///
/// Interest changes are O(1): the backend keeps the `pollfd` array plus an
/// index from fd to slot, and removes with a swap. Each wait is O(n) in the
/// number of fds, as poll(2) itself is. [`Interest::EDGE`] is not supported.
#[doc(alias = "pollops")]
#[doc(alias = "pollop")]
pub struct Poll {
    /// INVARIANT: `fds[0]` is the waker's read end; for every slot `i >= 1`,
    /// `index[meta[i].0] == i`, and `fds.len() == meta.len()`.
    fds: Vec<PollFd>,
    /// The fd and interest of each slot (`meta[0]` belongs to the waker).
    /// The pollfd's own `fd` is -1 (ignored by poll) while the interest maps
    /// to no poll event, so such an fd cannot spin on `POLLHUP`.
    meta: Vec<(RawFd, Interest)>,
    /// Slot of each fd, indexed by fd; 0 means not registered (slot 0 is
    /// the waker's).
    index: Vec<u32>,
    wakeup: Arc<Wakeup>,
}

impl fmt::Debug for Poll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Poll")
            .field("fds", &&self.meta[1..])
            .field("wakeup", &self.wakeup)
            .finish()
    }
}

impl Poll {
    /// Creates a poll backend with its wake-up eventfd (or pipe). The
    /// configuration is accepted for symmetry; poll(2) has millisecond
    /// timeouts only, which are rounded up.
    ///
    /// # Errors
    ///
    /// The OS error creating the eventfd or pipe.
    #[doc(alias = "poll_init")]
    pub fn new(_config: &BackendConfig) -> io::Result<Self> {
        let wakeup = Arc::new(Wakeup::new()?);
        let waker_fd = wakeup.read.as_raw_fd();
        Ok(Self {
            fds: vec![PollFd {
                fd: waker_fd,
                events: libc::POLLIN,
                revents: 0,
            }],
            meta: vec![(waker_fd, Interest::READ)],
            index: Vec::new(),
            wakeup,
        })
    }

    /// Builds a boxed instance; the constructor of [`crate::DESCRIPTOR`].
    pub(crate) fn boxed(config: &BackendConfig) -> io::Result<Box<dyn Backend>> {
        Ok(Box::new(Self::new(config)?))
    }

    /// Number of fds with interest (the waker not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.fds.len() - 1
    }

    /// Whether no fd has interest.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot_of(&self, fd: RawFd) -> usize {
        self.index.get(fd as usize).map_or(0, |&s| s as usize)
    }

    fn fill(pfd: &mut PollFd, fd: RawFd, interest: Interest) {
        pfd.events = poll_mask(interest);
        pfd.fd = if pfd.events == 0 { -1 } else { fd };
    }

    fn remove(&mut self, fd: RawFd, slot: usize) {
        self.fds.swap_remove(slot);
        self.meta.swap_remove(slot);
        self.index[fd as usize] = 0;
        if let Some(&(moved, _)) = self.meta.get(slot) {
            self.index[moved as usize] = slot as u32;
        }
    }
}

impl Backend for Poll {
    fn name(&self) -> &'static str {
        "poll"
    }

    fn features(&self) -> Features {
        FEATURES
    }

    /// O(1): updates, appends or swap-removes one `pollfd`. `old` and
    /// `fresh` are not needed, since poll keeps no kernel state. Adding an
    /// fd checks that it is open (`EBADF` otherwise).
    ///
    /// # Errors
    ///
    /// `Unsupported` for [`Interest::EDGE`], `EBADF` for an fd that is not
    /// open.
    #[doc(alias = "poll_add")]
    #[doc(alias = "poll_del")]
    fn set_interest(
        &mut self,
        fd: RawFd,
        _old: Interest,
        new: Interest,
        _fresh: bool,
    ) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if new.contains(Interest::EDGE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "poll has no edge-triggered mode",
            ));
        }
        let slot = self.slot_of(fd);
        if new.is_empty() {
            if slot != 0 {
                self.remove(fd, slot);
            }
            return Ok(());
        }
        if slot != 0 {
            Self::fill(&mut self.fds[slot], fd, new);
            self.meta[slot].1 = new;
            return Ok(());
        }
        sys::check_open(fd)?;
        let slot = u32::try_from(self.fds.len())
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let i = fd as usize;
        if i >= self.index.len() {
            self.index.resize((i + 1).next_power_of_two().max(64), 0);
        }
        self.index[i] = slot;
        let mut pfd = PollFd {
            fd,
            events: 0,
            revents: 0,
        };
        Self::fill(&mut pfd, fd, new);
        self.fds.push(pfd);
        self.meta.push((fd, new));
        Ok(())
    }

    #[doc(alias = "poll_dispatch")]
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        let mut n = match sys::poll(&mut self.fds, timeout_ms(timeout)) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(());
        }
        if self.fds[0].revents != 0 {
            self.wakeup.drain();
            ready.set_woken();
            n -= 1;
        }
        for (pfd, &(fd, interest)) in self.fds.iter().zip(&self.meta).skip(1) {
            if n == 0 {
                break;
            }
            if pfd.revents != 0 {
                n -= 1;
                ready.push(fd, ready_from(pfd.revents, interest));
            }
        }
        Ok(())
    }

    /// A handle on the eventfd (Linux, Android) or pipe (elsewhere) polled in
    /// slot 0; every call shares the same one. Waking is one `write(2)`,
    /// never blocks and takes no lock. It keeps working across
    /// [`reinit`](Backend::reinit) (see `Wakeup`); a wake racing with
    /// `reinit` itself (only possible from a signal handler of the thread
    /// running it) may be lost. Each `reinit` keeps the old eventfd or pipe
    /// open while a waker made before it is alive.
    fn waker(&mut self) -> io::Result<Waker> {
        Ok(Waker::new(SharedWakeup(Arc::clone(&self.wakeup))))
    }

    /// Forgets every fd and gives the waker a new eventfd or pipe (linked
    /// from the old one, so wakers handed out before keep working; after
    /// `fork()` the old one is shared with the parent). poll(2) keeps no
    /// kernel state, so [`need_reinit`](Backend::need_reinit) is false, as in
    /// libevent.
    fn reinit(&mut self) -> io::Result<()> {
        let next = Arc::new(Wakeup::new()?);
        let fd = next.read.as_raw_fd();
        // Only `reinit` extends the chain and `self.wakeup` is its end, so
        // `next` is still unset.
        let _ = self.wakeup.next.set(Arc::clone(&next));
        self.wakeup = next;
        self.fds[0].fd = fd;
        self.meta[0].0 = fd;
        self.fds.truncate(1);
        self.meta.truncate(1);
        self.index.clear();
        Ok(())
    }

    fn need_reinit(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_restricted_to_interest() {
        let hup = libc::POLLHUP;
        assert_eq!(ready_from(hup, Interest::READ), Ready::READ);
        assert_eq!(
            ready_from(libc::POLLNVAL, Interest::READ | Interest::WRITE),
            Ready::READ | Ready::WRITE
        );
        assert_eq!(ready_from(libc::POLLIN, Interest::WRITE), Ready::empty());
        if HAS_RDHUP {
            assert_eq!(ready_from(hup, Interest::CLOSED), Ready::CLOSED);
        }
    }

    #[test]
    fn reinit_replaces_the_wakeup_and_old_wakers_follow() {
        let mut p = Poll::new(&BackendConfig::new()).unwrap();
        let w = p.waker().unwrap();
        let old = Arc::clone(&p.wakeup);
        p.reinit().unwrap();
        assert!(Arc::ptr_eq(old.next.get().unwrap(), &p.wakeup));
        assert_eq!(p.fds[0].fd, p.wakeup.read.as_raw_fd());
        // A write to the old one (the parent's, after a fork) does not wake
        // this instance.
        old.write_end().write_all(&1u64.to_ne_bytes()).unwrap();
        let mut list = ReadyList::new();
        p.wait(Some(Duration::from_millis(30)), &mut list).unwrap();
        assert!(!list.woken());
        w.wake().unwrap();
        p.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
    }

    #[test]
    fn timeouts_round_up() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(2001))), 3);
        assert_eq!(timeout_ms(Some(Duration::MAX)), libc::c_int::MAX);
    }
}
