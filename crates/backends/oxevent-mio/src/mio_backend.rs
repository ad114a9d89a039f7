//! The mio backend itself: registration with fd tokens, level-triggering
//! emulation by re-registration, and a waker that survives `reinit`.

use std::io;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Token};
use oxevent_backend::{Backend, BackendConfig, Features, Interest, RawFd, Ready, ReadyList, Wake};

use crate::FEATURES;

/// The token of the waker; fd tokens are fd values, which are at most
/// `i32::MAX`, so they never collide with it.
const WAKER_TOKEN: Token = Token(usize::MAX);
/// Initial capacity of the event buffer.
const INITIAL_EVENTS: usize = 32;
/// The event buffer never grows past this.
const MAX_EVENTS: usize = 4096;

/// What the backend knows of one fd.
#[derive(Clone, Copy, Debug, Default)]
struct FdState {
    /// The interest last set; empty when the fd is not registered.
    interest: Interest,
    /// Whether the fd is in `Mio::rearm`.
    rearm: bool,
}

/// The readiness directions an interest allows.
fn allowed(interest: Interest) -> Ready {
    let mut r = Ready::empty();
    r.set(Ready::READ, interest.contains(Interest::READ));
    r.set(Ready::WRITE, interest.contains(Interest::WRITE));
    r.set(Ready::CLOSED, interest.contains(Interest::CLOSED));
    r
}

/// The mio interest for a non-empty set of directions. mio always needs
/// READABLE or WRITABLE, so CLOSED alone registers READABLE (its events
/// carry the read-closed bit) and only CLOSED is reported.
fn mio_interest(interest: Interest) -> mio::Interest {
    let read = interest.intersects(Interest::READ | Interest::CLOSED);
    if interest.contains(Interest::WRITE) {
        if read {
            mio::Interest::READABLE | mio::Interest::WRITABLE
        } else {
            mio::Interest::WRITABLE
        }
    } else {
        mio::Interest::READABLE
    }
}

/// Translates one mio event into [`Ready`], restricted to `interest`.
fn ready_from(ev: &mio::event::Event, interest: Interest) -> Ready {
    let mut r = Ready::empty();
    if ev.is_readable() {
        r |= Ready::READ;
    }
    if ev.is_writable() {
        r |= Ready::WRITE;
    }
    if ev.is_error() {
        r |= Ready::READ | Ready::WRITE;
    }
    if ev.is_read_closed() {
        // End of file is readable.
        r |= Ready::READ | Ready::CLOSED;
    }
    if ev.is_write_closed() {
        r |= Ready::WRITE;
    }
    r & allowed(interest)
}

fn is_errno(e: &io::Error, codes: &[i32]) -> bool {
    e.raw_os_error().is_some_and(|c| codes.contains(&c))
}

/// One `mio::Waker` of the waker chain.
///
/// A mio waker is tied to the `mio::Poll` it was created on, and
/// [`Backend::reinit`] creates a new `mio::Poll`; so `reinit` creates a new
/// waker and links it as `next` of the old one. A handle given out before
/// follows the links to the newest waker, with no lock on the wake path.
#[derive(Debug)]
struct WakerNode {
    waker: mio::Waker,
    /// The waker that replaced this one, set once by `reinit`.
    next: OnceLock<Arc<WakerNode>>,
}

impl WakerNode {
    fn new(poll: &mio::Poll) -> io::Result<Self> {
        Ok(Self {
            waker: mio::Waker::new(poll.registry(), WAKER_TOKEN)?,
            next: OnceLock::new(),
        })
    }
}

/// The [`Wake`] handed out in an [`oxevent_backend::Waker`].
#[derive(Debug)]
struct SharedWaker(Arc<WakerNode>);

impl Wake for SharedWaker {
    fn wake(&self) -> io::Result<()> {
        let mut node = &*self.0;
        while let Some(next) = node.next.get() {
            node = next;
        }
        node.waker.wake()
    }
}

/// The backend over [mio](https://docs.rs/mio): kqueue on the BSDs and
/// macOS, epoll on Linux. Not a libevent method; it stands in for
/// `kqueueops` on the platforms where kqueue is the native mechanism.
///
/// # Level triggering
///
/// mio is edge-triggered only. For an fd whose interest lacks
/// [`Interest::EDGE`], every time it is reported the backend re-registers it
/// just before the next wait; the kernel then re-checks the fd and reports it
/// again if it is still ready. That costs one system call per reported fd per
/// wait, against none for [`Interest::EDGE`], which is passed through
/// natively.
///
/// # Waker and `reinit`
///
/// A `mio::Waker` belongs to one `mio::Poll`, and [`Backend::reinit`] has to
/// create a new `mio::Poll`. So `reinit` creates a new `mio::Waker` and links
/// it from the old one; the [`Waker`](oxevent_backend::Waker) handed out
/// follows the links to the newest, so wakers handed out before keep working
/// and waking takes no lock. A wake racing with `reinit` itself (only
/// possible from a signal handler of the thread running it) may be lost.
/// Old `mio::Waker`s (and the fds they hold) stay alive while a waker made
/// before the `reinit` is alive.
#[doc(alias = "kqueueops")]
#[derive(Debug)]
pub struct Mio {
    poll: mio::Poll,
    /// INVARIANT: `INITIAL_EVENTS <= capacity <= MAX_EVENTS` and `events`
    /// was created with `capacity`.
    events: Events,
    capacity: usize,
    /// Per-fd state, indexed by fd.
    fds: Vec<FdState>,
    /// Level-triggered fds reported by the last wait, to re-register before
    /// the next one. INVARIANT: `fds[fd].rearm` exactly for the fds in here.
    rearm: Vec<RawFd>,
    /// The newest waker (the end of the chain), created by the first
    /// [`Backend::waker`] call.
    waker: Option<Arc<WakerNode>>,
}

impl Mio {
    /// Creates a `mio::Poll`. The configuration is accepted for symmetry;
    /// timeouts are as precise as the platform's mechanism (milliseconds,
    /// rounded up, under epoll; nanoseconds under kqueue).
    ///
    /// # Errors
    ///
    /// The OS error creating the poll instance.
    pub fn new(_config: &BackendConfig) -> io::Result<Self> {
        Ok(Self {
            poll: mio::Poll::new()?,
            events: Events::with_capacity(INITIAL_EVENTS),
            capacity: INITIAL_EVENTS,
            fds: Vec::new(),
            rearm: Vec::new(),
            waker: None,
        })
    }

    /// Builds a boxed instance; the constructor of [`crate::DESCRIPTOR`].
    pub(crate) fn boxed(config: &BackendConfig) -> io::Result<Box<dyn Backend>> {
        Ok(Box::new(Self::new(config)?))
    }

    fn state(&mut self, fd: RawFd) -> &mut FdState {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.fds
                .resize((i + 1).next_power_of_two().max(64), FdState::default());
        }
        &mut self.fds[i]
    }

    /// Re-registers every level-triggered fd reported by the last wait, so
    /// the kernel reports it again if it is still ready.
    fn rearm(&mut self) {
        let registry = self.poll.registry();
        for fd in self.rearm.drain(..) {
            let st = &mut self.fds[fd as usize];
            st.rearm = false;
            let interest = st.interest;
            if interest.directions().is_empty() || interest.contains(Interest::EDGE) {
                continue;
            }
            // A failure means the fd was closed behind our back; it cannot
            // be ready then, and the core will remove it.
            let _ = registry.reregister(
                &mut SourceFd(&fd),
                Token(fd as usize),
                mio_interest(interest),
            );
        }
    }
}

impl Backend for Mio {
    fn name(&self) -> &'static str {
        "mio"
    }

    fn features(&self) -> Features {
        FEATURES
    }

    /// `register`, `reregister` or `deregister` with token `fd`. The backend
    /// tracks what it registered itself, and falls back like the epoll
    /// backend does: re-registering an unknown fd (closed and reused)
    /// registers it, registering a known one (`EEXIST`) re-registers it,
    /// and deregistering a closed fd succeeds.
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        fresh: bool,
    ) -> io::Result<()> {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        let cur = self
            .fds
            .get(fd as usize)
            .map_or(Interest::empty(), |s| s.interest);
        let registered = !cur.directions().is_empty();
        let registry = self.poll.registry();
        let mut source = SourceFd(&fd);
        if new.directions().is_empty() {
            if registered || (fresh && !old.directions().is_empty()) {
                match registry.deregister(&mut source) {
                    Err(e) if is_errno(&e, &[libc::ENOENT, libc::EBADF, libc::EPERM]) => {}
                    r => r?,
                }
            }
            if let Some(st) = self.fds.get_mut(fd as usize) {
                st.interest = Interest::empty();
            }
            return Ok(());
        }
        let (token, mi) = (Token(fd as usize), mio_interest(new));
        if registered {
            match registry.reregister(&mut source, token, mi) {
                Err(e) if is_errno(&e, &[libc::ENOENT]) => {
                    registry.register(&mut source, token, mi)?
                }
                r => r?,
            }
        } else {
            match registry.register(&mut source, token, mi) {
                Err(e) if is_errno(&e, &[libc::EEXIST]) => {
                    registry.reregister(&mut source, token, mi)?;
                }
                r => r?,
            }
        }
        self.state(fd).interest = new;
        Ok(())
    }

    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        self.rearm();
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut count = 0;
        for ev in &self.events {
            count += 1;
            if ev.token() == WAKER_TOKEN {
                ready.set_woken();
                continue;
            }
            let fd = ev.token().0;
            let Some(st) = self.fds.get_mut(fd) else {
                continue;
            };
            let r = ready_from(ev, st.interest);
            if r.is_empty() {
                // Nothing asked for (say, data under CLOSED-only interest):
                // not re-armed either, so the fd cannot spin.
                continue;
            }
            ready.push(fd as RawFd, r);
            if !st.interest.contains(Interest::EDGE) && !st.rearm {
                st.rearm = true;
                self.rearm.push(fd as RawFd);
            }
        }
        if count == self.capacity && self.capacity < MAX_EVENTS {
            self.capacity = (self.capacity * 2).min(MAX_EVENTS);
            self.events = Events::with_capacity(self.capacity);
        }
        Ok(())
    }

    /// A `mio::Waker` with the reserved token `usize::MAX`, created on the
    /// first call; later calls share it. See the type's docs for how it
    /// survives [`reinit`](Backend::reinit).
    fn waker(&mut self) -> io::Result<oxevent_backend::Waker> {
        let node = match &self.waker {
            Some(n) => Arc::clone(n),
            None => {
                let n = Arc::new(WakerNode::new(&self.poll)?);
                self.waker = Some(Arc::clone(&n));
                n
            }
        };
        Ok(oxevent_backend::Waker::new(SharedWaker(node)))
    }

    /// Replaces the `mio::Poll`, links a waker for it at the end of the waker
    /// chain, and forgets every fd.
    fn reinit(&mut self) -> io::Result<()> {
        let poll = mio::Poll::new()?;
        if let Some(tail) = self.waker.clone() {
            let node = Arc::new(WakerNode::new(&poll)?);
            // Only `reinit` extends the chain and `tail` is its end, so
            // `next` is still unset.
            let _ = tail.next.set(Arc::clone(&node));
            self.waker = Some(node);
        }
        self.poll = poll;
        self.fds.clear();
        self.rearm.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_alone_registers_readable() {
        assert_eq!(mio_interest(Interest::CLOSED), mio::Interest::READABLE);
        assert_eq!(mio_interest(Interest::WRITE), mio::Interest::WRITABLE);
        assert_eq!(
            mio_interest(Interest::CLOSED | Interest::WRITE | Interest::EDGE),
            mio::Interest::READABLE | mio::Interest::WRITABLE
        );
        assert_eq!(allowed(Interest::CLOSED | Interest::EDGE), Ready::CLOSED);
    }
}
