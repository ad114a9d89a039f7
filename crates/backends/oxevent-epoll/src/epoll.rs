//! The epoll backend itself: interest bookkeeping, the wait loop, the
//! eventfd waker and the precise-timer strategies.

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oxevent_backend::{Backend, BackendConfig, Features, Interest, Ready, ReadyList, Wake, Waker};

use crate::sys::{self, CtlOp, EpollEvent};

/// The features of the epoll backend.
pub(crate) const FEATURES: Features = Features::ET
    .union(Features::O1)
    .union(Features::EARLY_CLOSE);

/// Initial size of the event array (libevent's `INITIAL_NEVENT`).
const INITIAL_EVENTS: usize = 32;
/// The event array never grows past this (libevent's `MAX_NEVENT`).
const MAX_EVENTS: usize = 4096;
/// Longest single wait, in milliseconds: 35 minutes, as libevent caps it
/// (`MAX_EPOLL_TIMEOUT_MSEC`) because old kernels misbehaved past that.
const MAX_TIMEOUT_MS: u128 = 35 * 60 * 1000;

/// The epoll data of the waker's eventfd. Fd entries encode a non-negative
/// fd in the low 32 bits and the interest (at most 4 bits) above it, so the
/// top byte of an fd entry is always zero and cannot collide.
const WAKER_DATA: u64 = u64::MAX;
/// The epoll data of the precise-timer timerfd (the smaller of the two
/// special values: `wait` relies on it).
const TIMER_DATA: u64 = u64::MAX - 1;

/// Packs an fd and its interest into the epoll data word, so `wait` can
/// restrict error reports to the interest without a lookup table.
fn encode(fd: RawFd, interest: Interest) -> u64 {
    u64::from(fd as u32) | (u64::from(interest.bits()) << 32)
}

fn decode(data: u64) -> (RawFd, Interest) {
    (
        data as u32 as RawFd,
        Interest::from_bits_truncate((data >> 32) as u8),
    )
}

/// The epoll event mask for an interest.
fn epoll_mask(interest: Interest) -> u32 {
    let mut ev = 0;
    if interest.contains(Interest::READ) {
        ev |= libc::EPOLLIN;
    }
    if interest.contains(Interest::WRITE) {
        ev |= libc::EPOLLOUT;
    }
    if interest.contains(Interest::CLOSED) {
        ev |= libc::EPOLLRDHUP;
    }
    if interest.contains(Interest::EDGE) {
        ev |= libc::EPOLLET;
    }
    ev as u32
}

/// The readiness directions an interest allows.
fn allowed(interest: Interest) -> Ready {
    let mut r = Ready::empty();
    r.set(Ready::READ, interest.contains(Interest::READ));
    r.set(Ready::WRITE, interest.contains(Interest::WRITE));
    r.set(Ready::CLOSED, interest.contains(Interest::CLOSED));
    r
}

/// [`Ready`] bits for the low five epoll bits (`EPOLLIN`, `EPOLLPRI`,
/// `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`): an error or hang-up is everything.
const LOW_READY: [u8; 32] = {
    let mut t = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        let ev = i as libc::c_int;
        t[i] = if ev & (libc::EPOLLERR | libc::EPOLLHUP) != 0 {
            Ready::READ.bits() | Ready::WRITE.bits() | Ready::CLOSED.bits()
        } else {
            let mut r = 0;
            if ev & libc::EPOLLIN != 0 {
                r |= Ready::READ.bits();
            }
            if ev & libc::EPOLLOUT != 0 {
                r |= Ready::WRITE.bits();
            }
            r
        };
        i += 1;
    }
    t
};

/// Translates epoll's report into [`Ready`], restricted to `interest`.
#[inline]
fn ready_from(events: u32, interest: Interest) -> Ready {
    let mut r = LOW_READY[(events & 0x1f) as usize];
    if events & libc::EPOLLRDHUP as u32 != 0 {
        r |= Ready::CLOSED.bits();
    }
    // `Interest` and `Ready` share the READ, WRITE and CLOSED bits.
    Ready::from_bits_truncate(r) & allowed(interest)
}

/// Rounds a timeout up to whole milliseconds (never wake early) and caps it.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => d.as_nanos().div_ceil(1_000_000).min(MAX_TIMEOUT_MS) as libc::c_int,
    }
}

fn is_errno(e: &io::Error, codes: &[libc::c_int]) -> bool {
    e.raw_os_error().is_some_and(|c| codes.contains(&c))
}

/// Whether this kernel has `epoll_pwait2`: 0 not probed yet, 1 yes, 2 no.
static PWAIT2: AtomicU8 = AtomicU8::new(0);

fn has_pwait2(probe_on: &OwnedFd) -> bool {
    match PWAIT2.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let mut buf = [sys::empty_event()];
            // Any failure (ENOSYS, or EPERM from a seccomp filter) means we
            // cannot rely on it.
            let ok = sys::epoll_pwait2(probe_on.as_fd(), &mut buf, Some(Duration::ZERO)).is_ok();
            PWAIT2.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// How `wait` honours its timeout.
#[derive(Debug)]
enum TimerMode {
    /// `epoll_wait` with the timeout rounded up to milliseconds.
    Millis,
    /// `epoll_pwait2` with a nanosecond timeout.
    Pwait2,
    /// A timerfd in the epoll set, armed for each wait (libevent's
    /// `EVENT_BASE_FLAG_PRECISE_TIMER` path).
    TimerFd {
        /// The timer; registered with [`TIMER_DATA`].
        fd: OwnedFd,
        /// Whether it may be armed (so `None` must disarm it).
        armed: bool,
    },
}

/// One eventfd of the waker chain.
///
/// [`Backend::reinit`] gives the backend a new eventfd (after `fork()` the
/// old one is shared with the parent, whose wakes the child would otherwise
/// steal by draining it, and the other way round) and links it as `next` of
/// the old one. A [`Waker`] handed out before follows the links to the
/// newest eventfd, so it keeps working, with no lock on the wake path.
#[derive(Debug)]
struct WakeNode {
    efd: File,
    /// The eventfd that replaced this one, set once by `reinit`.
    next: OnceLock<Arc<WakeNode>>,
}

impl WakeNode {
    fn new() -> io::Result<Self> {
        Ok(Self {
            efd: File::from(sys::eventfd()?),
            next: OnceLock::new(),
        })
    }

    /// The newest eventfd reachable from this one.
    fn newest(&self) -> &Self {
        let mut node = self;
        while let Some(next) = node.next.get() {
            node = next;
        }
        node
    }

    fn wake(&self) -> io::Result<()> {
        match (&self.newest().efd).write(&1u64.to_ne_bytes()) {
            Ok(_) => Ok(()),
            // The counter is saturated: a wake is already pending.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn drain(&self) {
        let mut buf = [0u8; 8];
        // Reading resets the counter; EAGAIN means another drain won.
        let _ = (&self.efd).read(&mut buf);
    }
}

/// The Linux epoll backend (libevent's `epollops`).
///
/// Level-triggered by default, edge-triggered for interest with
/// [`Interest::EDGE`]; peer close ([`Interest::CLOSED`]) through
/// `EPOLLRDHUP`. Each call to [`Backend::set_interest`] is one
/// `epoll_ctl` (two when a fallback is needed), so there is no changelist
/// here: the core already coalesces changes per iteration.
///
/// epoll registers open files, not fd numbers: if a registered fd is closed
/// while a duplicate of it (`dup`, `fork`) keeps the file open, the kernel
/// keeps reporting it under the old number (epoll(7), "Questions and
/// answers" 6). Remove interest before closing an fd, as the core does.
#[doc(alias = "epollops")]
#[doc(alias = "epollop")]
pub struct Epoll {
    /// The epoll instance.
    epfd: OwnedFd,
    /// INVARIANT: `INITIAL_EVENTS <= events.len() <= MAX_EVENTS`.
    events: Vec<EpollEvent>,
    /// The waker's current eventfd (the end of the chain), created on the
    /// first [`Backend::waker`] call and replaced by [`Backend::reinit`].
    waker: Option<Arc<WakeNode>>,
    timer: TimerMode,
}

impl fmt::Debug for Epoll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Epoll")
            .field("epfd", &self.epfd)
            .field("event_capacity", &self.events.len())
            .field("waker", &self.waker)
            .field("timer", &self.timer)
            .finish()
    }
}

impl Epoll {
    /// Creates an epoll instance (`epoll_create1(EPOLL_CLOEXEC)`).
    ///
    /// With [`BackendConfig::precise_timer`], timeouts are honoured to the
    /// nanosecond through `epoll_pwait2` when the kernel has it (probed once
    /// per process), else through a timerfd unless
    /// [`BackendConfig::disallow_timerfd`] is set; otherwise they are rounded
    /// up to whole milliseconds.
    ///
    /// # Errors
    ///
    /// The OS error from `epoll_create1` (for example `EMFILE`).
    #[doc(alias = "epoll_init")]
    pub fn new(config: &BackendConfig) -> io::Result<Self> {
        let epfd = sys::epoll_create()?;
        let mut this = Self {
            epfd,
            events: vec![sys::empty_event(); INITIAL_EVENTS],
            waker: None,
            timer: TimerMode::Millis,
        };
        if config.precise_timer {
            if has_pwait2(&this.epfd) {
                this.timer = TimerMode::Pwait2;
            } else if !config.disallow_timerfd {
                // Like libevent, fall back to millisecond timeouts when no
                // timerfd can be had.
                if let Ok(fd) = this.new_timerfd() {
                    this.timer = TimerMode::TimerFd { fd, armed: false };
                }
            }
        }
        Ok(this)
    }

    /// Builds a boxed instance; the constructor of [`crate::DESCRIPTOR`].
    pub(crate) fn boxed(config: &BackendConfig) -> io::Result<Box<dyn Backend>> {
        Ok(Box::new(Self::new(config)?))
    }

    /// Creates a timerfd and registers it in the current epoll set.
    fn new_timerfd(&self) -> io::Result<OwnedFd> {
        let fd = sys::timerfd_create()?;
        sys::epoll_ctl(
            self.epfd.as_fd(),
            CtlOp::Add,
            fd.as_fd().as_raw_fd(),
            libc::EPOLLIN as u32,
            TIMER_DATA,
        )?;
        Ok(fd)
    }

    /// Adds a waker eventfd to the current epoll set.
    fn register_waker(&self, node: &WakeNode) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd.as_fd(),
            CtlOp::Add,
            node.efd.as_raw_fd(),
            libc::EPOLLIN as u32,
            WAKER_DATA,
        )
    }

    fn ctl(&self, op: CtlOp, fd: RawFd, interest: Interest) -> io::Result<()> {
        sys::epoll_ctl(
            self.epfd.as_fd(),
            op,
            fd,
            epoll_mask(interest),
            encode(fd, interest),
        )
    }

    fn wait_raw(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let ep = self.epfd.as_fd();
        match &mut self.timer {
            TimerMode::Millis => sys::epoll_wait(ep, &mut self.events, timeout_ms(timeout)),
            TimerMode::Pwait2 => sys::epoll_pwait2(ep, &mut self.events, timeout),
            TimerMode::TimerFd { fd, armed } => match timeout {
                Some(d) if d.is_zero() => sys::epoll_wait(ep, &mut self.events, 0),
                Some(d) => {
                    sys::timerfd_set(fd.as_fd(), Some(d))?;
                    *armed = true;
                    sys::epoll_wait(ep, &mut self.events, -1)
                }
                None => {
                    if *armed {
                        sys::timerfd_set(fd.as_fd(), None)?;
                        *armed = false;
                    }
                    sys::epoll_wait(ep, &mut self.events, -1)
                }
            },
        }
    }
}

impl Backend for Epoll {
    fn name(&self) -> &'static str {
        "epoll"
    }

    fn features(&self) -> Features {
        FEATURES
    }

    /// One `epoll_ctl`: ADD, MOD or DEL from `old` and `new`, with the
    /// fallbacks libevent's `epoll_apply_one_change` uses. MOD failing with
    /// `ENOENT` (the fd was closed and its number reused) retries as ADD, ADD
    /// failing with `EEXIST` retries as MOD, and DEL failing with `ENOENT`,
    /// `EBADF` or `EPERM` succeeds (the fd is already gone). Because those
    /// fallbacks are always on, `fresh` needs no extra work.
    #[doc(alias = "epoll_nochangelist_add")]
    #[doc(alias = "epoll_nochangelist_del")]
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        _fresh: bool,
    ) -> io::Result<()> {
        let (old_dirs, new_dirs) = (old.directions(), new.directions());
        if new_dirs.is_empty() {
            if old_dirs.is_empty() {
                return Ok(());
            }
            return match self.ctl(CtlOp::Del, fd, new) {
                Err(e) if is_errno(&e, &[libc::ENOENT, libc::EBADF, libc::EPERM]) => Ok(()),
                r => r,
            };
        }
        if old_dirs.is_empty() {
            match self.ctl(CtlOp::Add, fd, new) {
                Err(e) if is_errno(&e, &[libc::EEXIST]) => self.ctl(CtlOp::Mod, fd, new),
                r => r,
            }
        } else {
            match self.ctl(CtlOp::Mod, fd, new) {
                Err(e) if is_errno(&e, &[libc::ENOENT]) => self.ctl(CtlOp::Add, fd, new),
                r => r,
            }
        }
    }

    #[doc(alias = "epoll_dispatch")]
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        let n = match self.wait_raw(timeout) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        };
        for ev in &self.events[..n] {
            let (bits, data) = sys::event_parts(ev);
            // One comparison tells the two special entries from fd entries.
            if data < TIMER_DATA {
                let (fd, interest) = decode(data);
                ready.push(fd, ready_from(bits, interest));
            } else if data == WAKER_DATA {
                if let Some(w) = &self.waker {
                    w.drain();
                }
                ready.set_woken();
            }
        }
        if n == self.events.len() && n < MAX_EVENTS {
            let grown = (n * 2).min(MAX_EVENTS);
            self.events.resize(grown, sys::empty_event());
        }
        Ok(())
    }

    /// An eventfd (`EFD_CLOEXEC | EFD_NONBLOCK`) in the epoll set, created on
    /// the first call; later calls share it. Waking is one `write(2)`, never
    /// blocks and takes no lock.
    ///
    /// [`reinit`](Backend::reinit) replaces the eventfd, and wakers handed
    /// out before reach the new one (see `WakeNode`). A wake racing with
    /// `reinit` itself (possible only from a signal handler of the thread
    /// running `reinit`, since `fork()` leaves one thread) may go to the old
    /// eventfd and be lost. Each `reinit` keeps the old eventfd open while a
    /// waker made before it is alive.
    fn waker(&mut self) -> io::Result<Waker> {
        let node = match &self.waker {
            Some(w) => Arc::clone(w),
            None => {
                let w = Arc::new(WakeNode::new()?);
                self.register_waker(&w)?;
                self.waker = Some(Arc::clone(&w));
                w
            }
        };
        Ok(Waker::new(EventFdWaker(node)))
    }

    /// Closes the epoll fd and creates a new one, holding a new eventfd for
    /// the waker (linked from the old one, so wakers handed out before keep
    /// working) and a new timerfd: after `fork()` the old ones are shared
    /// with the parent process.
    #[doc(alias = "epoll_init")]
    fn reinit(&mut self) -> io::Result<()> {
        let old = std::mem::replace(&mut self.epfd, sys::epoll_create()?);
        drop(old);
        if let Some(tail) = self.waker.clone() {
            let node = Arc::new(WakeNode::new()?);
            self.register_waker(&node)?;
            // `tail` was the end of the chain and only `reinit` extends it,
            // so `next` is still unset.
            let _ = tail.next.set(Arc::clone(&node));
            self.waker = Some(node);
        }
        if matches!(self.timer, TimerMode::TimerFd { .. }) {
            let fd = self.new_timerfd()?;
            self.timer = TimerMode::TimerFd { fd, armed: false };
        }
        Ok(())
    }
}

/// The [`Wake`] handed out in a [`Waker`]: a share of the eventfd chain.
#[derive(Debug)]
struct EventFdWaker(Arc<WakeNode>);

impl Wake for EventFdWaker {
    fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    use super::*;

    #[test]
    fn data_word_round_trips_and_never_hits_reserved_values() {
        for fd in [0, 1, 1000, RawFd::MAX] {
            for bits in 0..16u8 {
                let i = Interest::from_bits_truncate(bits);
                let data = encode(fd, i);
                assert_eq!(decode(data), (fd, i));
                assert!(data != WAKER_DATA && data != TIMER_DATA);
            }
        }
    }

    #[test]
    fn errors_are_restricted_to_interest() {
        let err = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        assert_eq!(ready_from(err, Interest::READ), Ready::READ);
        assert_eq!(
            ready_from(err, Interest::READ | Interest::WRITE | Interest::EDGE),
            Ready::READ | Ready::WRITE
        );
        assert_eq!(ready_from(err, Interest::CLOSED), Ready::CLOSED);
        assert_eq!(
            ready_from((libc::EPOLLIN | libc::EPOLLRDHUP) as u32, Interest::READ),
            Ready::READ
        );
        assert_eq!(
            epoll_mask(Interest::all()),
            (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32
        );
    }

    #[test]
    fn timeouts_round_up_and_cap() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_nanos(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1500))), 2);
        assert_eq!(timeout_ms(Some(Duration::from_millis(7))), 7);
        assert_eq!(timeout_ms(Some(Duration::MAX)), 35 * 60 * 1000);
    }

    /// Forces the timerfd strategy, which this kernel may not pick on its own
    /// because it has `epoll_pwait2`.
    fn with_timerfd() -> Epoll {
        let mut e = Epoll::new(&BackendConfig::new()).unwrap();
        let fd = e.new_timerfd().unwrap();
        e.timer = TimerMode::TimerFd { fd, armed: false };
        e
    }

    #[test]
    fn timerfd_timeouts_are_precise_and_never_early() {
        let mut e = with_timerfd();
        let mut list = ReadyList::new();
        for want in [
            Duration::from_micros(300),
            Duration::from_micros(2500),
            Duration::from_millis(20),
        ] {
            let t = Instant::now();
            e.wait(Some(want), &mut list).unwrap();
            let el = t.elapsed();
            assert!(el >= want, "{want:?} returned after {el:?}");
            assert!(el < Duration::from_secs(1));
            assert!(list.is_empty() && !list.woken());
        }
        // Zero does not block, even with a stale expired timer.
        let t = Instant::now();
        e.wait(Some(Duration::ZERO), &mut list).unwrap();
        assert!(t.elapsed() < Duration::from_millis(100));
        // None disarms the timer: only the waker ends the wait.
        let w = e.waker().unwrap();
        let th = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            w.wake().unwrap();
        });
        e.wait(None, &mut list).unwrap();
        assert!(list.woken());
        th.join().unwrap();
    }

    #[test]
    fn timerfd_survives_reinit_and_reports_io() {
        let mut e = with_timerfd();
        let w = e.waker().unwrap();
        e.reinit().unwrap();
        assert!(matches!(e.timer, TimerMode::TimerFd { .. }));
        let (a, mut b) = UnixStream::pair().unwrap();
        e.set_interest(a.as_raw_fd(), Interest::empty(), Interest::READ, true)
            .unwrap();
        b.write_all(b"x").unwrap();
        let mut list = ReadyList::new();
        e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert_eq!(list.events(), &[(a.as_raw_fd(), Ready::READ)]);
        list.clear();
        e.set_interest(a.as_raw_fd(), Interest::READ, Interest::empty(), false)
            .unwrap();
        let t = Instant::now();
        e.wait(Some(Duration::from_millis(5)), &mut list).unwrap();
        assert!(t.elapsed() >= Duration::from_millis(5));
        list.clear();
        w.wake().unwrap();
        e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
    }

    #[test]
    fn reinit_gives_the_waker_a_new_eventfd() {
        let mut e = Epoll::new(&BackendConfig::new()).unwrap();
        let w = e.waker().unwrap();
        let old = Arc::clone(e.waker.as_ref().unwrap());
        e.reinit().unwrap();
        let new = Arc::clone(e.waker.as_ref().unwrap());
        assert!(!Arc::ptr_eq(&old, &new));
        assert!(Arc::ptr_eq(old.next.get().unwrap(), &new));
        // A write to the old eventfd (the parent's, after a fork) no longer
        // wakes this instance...
        (&old.efd).write_all(&1u64.to_ne_bytes()).unwrap();
        let mut list = ReadyList::new();
        e.wait(Some(Duration::from_millis(30)), &mut list).unwrap();
        assert!(!list.woken());
        // ...and is not drained by it.
        let mut buf = [0u8; 8];
        assert_eq!((&old.efd).read(&mut buf).unwrap(), 8);
        // The waker handed out before reaches the new eventfd, as does a
        // new one.
        w.wake().unwrap();
        e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
        list.clear();
        e.reinit().unwrap();
        e.waker().unwrap().wake().unwrap();
        e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
        list.clear();
        w.wake().unwrap();
        e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
    }

    #[test]
    fn event_array_grows_to_the_cap() {
        let mut e = Epoll::new(&BackendConfig::new()).unwrap();
        let pairs: Vec<_> = (0..300).map(|_| UnixStream::pair().unwrap()).collect();
        for (a, _) in &pairs {
            e.set_interest(a.as_raw_fd(), Interest::empty(), Interest::WRITE, false)
                .unwrap();
        }
        let mut list = ReadyList::new();
        let mut sizes = Vec::new();
        for _ in 0..6 {
            list.clear();
            e.wait(Some(Duration::from_secs(1)), &mut list).unwrap();
            sizes.push(list.len());
        }
        assert_eq!(sizes, [32, 64, 128, 256, 300, 300]);
        assert_eq!(e.events.len(), 512);
    }
}
