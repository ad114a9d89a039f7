//! The backend contract of oxevent.
//!
//! This crate sits at the bottom of the layer diagram: every backend crate
//! (`oxevent-epoll`, `oxevent-poll`, `oxevent-mio`, or a user's own) implements
//! [`Backend`], and `oxevent-core` drives whichever one it was given. It plays
//! the role of libevent's `struct eventop`.
//!
//! **Architecture invariant: a backend never sees the `EventBase`.** The core
//! tells a backend the union of interest per file descriptor through
//! [`Backend::set_interest`] and the backend reports readiness into a
//! [`ReadyList`] from [`Backend::wait`]. There are no back-pointers, so a
//! backend can be tested on its own; the conformance suite (feature
//! `conformance`) does exactly that against every backend.
//!
//! # Writing a backend
//!
//! ```
//! use std::io;
//! use std::time::Duration;
//! use oxevent_backend::{Backend, Features, Interest, RawFd, ReadyList, Waker};
//!
//! /// A backend that never reports anything (for illustration only).
//! #[derive(Debug)]
//! struct Nothing;
//!
//! impl Backend for Nothing {
//!     fn name(&self) -> &'static str { "nothing" }
//!     fn features(&self) -> Features { Features::empty() }
//!     fn set_interest(&mut self, _fd: RawFd, _old: Interest, _new: Interest, _fresh: bool) -> io::Result<()> {
//!         Ok(())
//!     }
//!     fn wait(&mut self, timeout: Option<Duration>, _ready: &mut ReadyList) -> io::Result<()> {
//!         if let Some(t) = timeout { std::thread::sleep(t) }
//!         Ok(())
//!     }
//!     fn waker(&mut self) -> io::Result<Waker> { Err(io::ErrorKind::Unsupported.into()) }
//!     fn reinit(&mut self) -> io::Result<()> { Ok(()) }
//! }
//! ```
//!
//! # Feature flags
//!
//! - `conformance` (disabled): the backend conformance suite, see
//!   `backend_conformance_tests!`.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "conformance")]
pub mod conformance;

/// The raw file descriptor type the backends work with.
#[cfg(unix)]
pub type RawFd = std::os::unix::io::RawFd;
/// The raw file descriptor type the backends work with (a socket on Windows).
#[cfg(windows)]
pub type RawFd = std::os::windows::io::RawSocket;
/// The raw file descriptor type the backends work with.
#[cfg(not(any(unix, windows)))]
pub type RawFd = i32;

/// Defines a small bit-flag set type (used by this crate and by
/// `oxevent-core` for its own flag types, so the two stay alike).
#[doc(hidden)]
#[macro_export]
macro_rules! bitflags_type {
    ($(#[$meta:meta])* $name:ident: $repr:ty { $($(#[$fmeta:meta])* $flag:ident = $value:expr;)* }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name($repr);

        impl $name {
            $($(#[$fmeta])* pub const $flag: Self = Self($value);)*

            /// The empty set.
            #[must_use]
            pub const fn empty() -> Self { Self(0) }
            /// Every flag of this type.
            #[must_use]
            pub const fn all() -> Self { Self(0 $(| $value)*) }
            /// The raw bits.
            #[must_use]
            pub const fn bits(self) -> $repr { self.0 }
            /// Builds a set from raw bits, dropping unknown ones.
            #[must_use]
            pub const fn from_bits_truncate(bits: $repr) -> Self { Self(bits & Self::all().0) }
            /// Whether no flag is set.
            #[must_use]
            pub const fn is_empty(self) -> bool { self.0 == 0 }
            /// Whether every flag of `other` is set in `self`.
            #[must_use]
            pub const fn contains(self, other: Self) -> bool { self.0 & other.0 == other.0 }
            /// Whether `self` and `other` share a flag.
            #[must_use]
            pub const fn intersects(self, other: Self) -> bool { self.0 & other.0 != 0 }
            /// The union of two sets.
            #[must_use]
            pub const fn union(self, other: Self) -> Self { Self(self.0 | other.0) }
            /// The flags of `self` that are not in `other`.
            #[must_use]
            pub const fn difference(self, other: Self) -> Self { Self(self.0 & !other.0) }
            /// Sets or clears the flags of `other`.
            pub const fn set(&mut self, other: Self, on: bool) {
                if on { self.0 |= other.0 } else { self.0 &= !other.0 }
            }
        }

        impl ::std::ops::BitOr for $name { type Output = Self; fn bitor(self, rhs: Self) -> Self { Self(self.0 | rhs.0) } }
        impl ::std::ops::BitOrAssign for $name { fn bitor_assign(&mut self, rhs: Self) { self.0 |= rhs.0 } }
        impl ::std::ops::BitAnd for $name { type Output = Self; fn bitand(self, rhs: Self) -> Self { Self(self.0 & rhs.0) } }
        impl ::std::ops::BitAndAssign for $name { fn bitand_assign(&mut self, rhs: Self) { self.0 &= rhs.0 } }
        impl ::std::ops::Not for $name { type Output = Self; fn not(self) -> Self { Self(!self.0 & Self::all().0) } }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                let mut first = true;
                write!(f, "{}(", stringify!($name))?;
                $(
                    if self.contains(Self::$flag) && Self::$flag.0 != 0 {
                        if !first { f.write_str(" | ")?; }
                        first = false;
                        f.write_str(stringify!($flag))?;
                    }
                )*
                if first { f.write_str("empty")?; }
                f.write_str(")")
            }
        }
    };
}

bitflags_type! {
    /// What the core wants to hear about on one file descriptor: the union of
    /// the interest of every pending event on it.
    Interest: u8 {
        /// Readable (`EV_READ`).
        READ = 0x01;
        /// Writable (`EV_WRITE`).
        WRITE = 0x02;
        /// The peer closed its side (`EV_CLOSED`, `EPOLLRDHUP`/`POLLRDHUP`).
        /// Only meaningful when the backend has [`Features::EARLY_CLOSE`].
        CLOSED = 0x04;
        /// Edge-triggered notification (`EV_ET`). Only allowed when the
        /// backend has [`Features::ET`].
        EDGE = 0x08;
    }
}

impl Interest {
    /// The readiness directions of this interest, without [`Interest::EDGE`].
    #[must_use]
    pub const fn directions(self) -> Self {
        Self(self.0 & !Self::EDGE.0)
    }
}

bitflags_type! {
    /// What a backend found ready on one file descriptor.
    ///
    /// An error or hang-up condition is reported as both [`Ready::READ`] and
    /// [`Ready::WRITE`], as libevent does, so the callback's next read or
    /// write sees the error.
    Ready: u8 {
        /// Readable, or at end of file, or in error.
        READ = 0x01;
        /// Writable, or in error.
        WRITE = 0x02;
        /// The peer closed its side of the connection.
        CLOSED = 0x04;
    }
}

bitflags_type! {
    /// Capabilities of a backend (libevent's `enum event_method_feature`).
    Features: u8 {
        /// Edge-triggered notification (`EV_FEATURE_ET`).
        ET = 0x01;
        /// O(1) add, delete and per-event dispatch (`EV_FEATURE_O1`).
        O1 = 0x02;
        /// Works with any file descriptor, not only sockets (`EV_FEATURE_FDS`).
        FDS = 0x04;
        /// Reports a peer close without reading the data (`EV_FEATURE_EARLY_CLOSE`).
        EARLY_CLOSE = 0x08;
    }
}

/// The readiness a backend reports from one [`Backend::wait`] call.
///
/// The core owns one `ReadyList` and reuses it for every iteration, so its
/// allocation is amortised; backends only [`push`](ReadyList::push) into it.
#[derive(Debug, Default)]
pub struct ReadyList {
    events: Vec<(RawFd, Ready)>,
    woken: bool,
}

impl ReadyList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty list with room for `n` entries.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self {
            events: Vec::with_capacity(n),
            woken: false,
        }
    }

    /// Reports `ready` on `fd`. Reporting the same fd twice is allowed; the
    /// core merges the entries.
    #[inline]
    pub fn push(&mut self, fd: RawFd, ready: Ready) {
        if !ready.is_empty() {
            self.events.push((fd, ready));
        }
    }

    /// Records that the backend's [`Waker`] fired during this wait.
    #[inline]
    pub fn set_woken(&mut self) {
        self.woken = true;
    }

    /// Whether the backend's [`Waker`] fired.
    #[must_use]
    pub fn woken(&self) -> bool {
        self.woken
    }

    /// The reported entries, in the order they were pushed.
    #[must_use]
    pub fn events(&self) -> &[(RawFd, Ready)] {
        &self.events
    }

    /// Number of reported entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether nothing was reported (the waker is not counted).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Forgets every entry and the woken flag, keeping the allocation.
    pub fn clear(&mut self) {
        self.events.clear();
        self.woken = false;
    }

    /// Takes the entries out, leaving the list empty but keeping `woken`.
    /// Used by the core to iterate while holding `&mut` to the backend.
    pub fn drain(&mut self) -> std::vec::Drain<'_, (RawFd, Ready)> {
        self.events.drain(..)
    }
}

/// Something that interrupts a [`Backend::wait`] from any thread.
pub trait Wake: Send + Sync + fmt::Debug {
    /// Makes the current or the next `wait` of the backend return promptly,
    /// with [`ReadyList::woken`] set. Several wakes before a wait may be
    /// coalesced into one. Must be async-signal-tolerant in the sense that it
    /// never blocks.
    fn wake(&self) -> io::Result<()>;
}

/// A cloneable, thread-safe handle that wakes a backend (eventfd, pipe, or
/// the platform's native mechanism).
#[derive(Clone, Debug)]
pub struct Waker(Arc<dyn Wake>);

impl Waker {
    /// Wraps a [`Wake`] implementation.
    pub fn new(w: impl Wake + 'static) -> Self {
        Self(Arc::new(w))
    }

    /// Wakes the backend. See [`Wake::wake`].
    pub fn wake(&self) -> io::Result<()> {
        self.0.wake()
    }
}

/// Options the core passes to a backend constructor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackendConfig {
    /// Honour sub-millisecond timeouts (`EVENT_BASE_FLAG_PRECISE_TIMER`):
    /// epoll uses `epoll_pwait2` or a timerfd.
    pub precise_timer: bool,
    /// Never use a timerfd for precise timers (`EVENT_BASE_FLAG_EPOLL_DISALLOW_TIMERFD`).
    pub disallow_timerfd: bool,
}

impl BackendConfig {
    /// The default configuration: coarse timers.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            precise_timer: false,
            disallow_timerfd: false,
        }
    }

    /// Sets [`BackendConfig::precise_timer`].
    #[must_use]
    pub const fn precise_timer(mut self, on: bool) -> Self {
        self.precise_timer = on;
        self
    }

    /// Sets [`BackendConfig::disallow_timerfd`].
    #[must_use]
    pub const fn disallow_timerfd(mut self, on: bool) -> Self {
        self.disallow_timerfd = on;
        self
    }
}

/// The I/O multiplexer an `EventBase` waits on (libevent's `struct eventop`).
///
/// # Contract
///
/// - The core calls [`set_interest`](Backend::set_interest) only when the
///   union of interest on an fd changes (after coalescing a whole iteration's
///   changes when its changelist is on), or with `fresh = true` when the fd
///   may refer to a new file since the backend was last told about it.
/// - [`wait`](Backend::wait) blocks at most `timeout` (`None` means until
///   something happens) and pushes every ready fd into the list. Readiness is
///   **level-triggered** unless the fd's interest has [`Interest::EDGE`]; a
///   backend without native level triggering must emulate it. An interrupted
///   wait (`EINTR`) returns `Ok(())` with whatever it has.
/// - A backend never reports an fd whose interest is empty, and reports only
///   directions that were asked for (an error condition is reported as
///   `READ | WRITE` restricted to the interest).
/// - A backend is used from one thread at a time; only its [`Waker`] crosses
///   threads.
pub trait Backend: fmt::Debug {
    /// The method name, as `event_base_get_method` reports it (`"epoll"`).
    fn name(&self) -> &'static str;

    /// The capabilities of this backend.
    fn features(&self) -> Features;

    /// Changes the interest on `fd` from `old` (what this backend was last
    /// told, empty if nothing) to `new` (empty to forget the fd).
    ///
    /// When `fresh` is true the core cannot rule out that `fd` was closed and
    /// its number reused since the backend last heard of it, so the backend
    /// must not trust `old` blindly: epoll, for one, retries a failed
    /// `EPOLL_CTL_MOD` as `EPOLL_CTL_ADD`.
    ///
    /// # Errors
    ///
    /// The OS error, for example `EBADF` for an fd that is not open, or
    /// `EPERM` for a regular file under epoll. Removing interest from an fd
    /// that was already closed is not an error.
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        fresh: bool,
    ) -> io::Result<()>;

    /// Waits for readiness or until `timeout` passes, and reports what is
    /// ready into `ready` (which the caller has cleared).
    ///
    /// # Errors
    ///
    /// Any OS error other than `EINTR`.
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()>;

    /// A handle that makes [`wait`](Backend::wait) return from another thread
    /// (or a signal handler's wake-up pipe). Calling it twice may return the
    /// same underlying mechanism.
    ///
    /// # Errors
    ///
    /// The OS error creating the wake-up mechanism, or `Unsupported`.
    fn waker(&mut self) -> io::Result<Waker>;

    /// Re-creates the kernel state after `fork()` (`event_reinit`). After it
    /// returns the backend knows of no fd; the core then re-adds every fd
    /// with `fresh = true`. Wakers handed out before keep working.
    ///
    /// # Errors
    ///
    /// The OS error re-creating the kernel object.
    fn reinit(&mut self) -> io::Result<()>;

    /// Whether [`reinit`](Backend::reinit) is needed after `fork()`
    /// (libevent's `need_reinit`).
    fn need_reinit(&self) -> bool {
        true
    }
}

impl<B: Backend + ?Sized> Backend for Box<B> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn features(&self) -> Features {
        (**self).features()
    }
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        fresh: bool,
    ) -> io::Result<()> {
        (**self).set_interest(fd, old, new, fresh)
    }
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        (**self).wait(timeout, ready)
    }
    fn waker(&mut self) -> io::Result<Waker> {
        (**self).waker()
    }
    fn reinit(&mut self) -> io::Result<()> {
        (**self).reinit()
    }
    fn need_reinit(&self) -> bool {
        (**self).need_reinit()
    }
}

/// A static description of a backend: its name, features and constructor
/// (one entry of libevent's `eventops[]`). Each backend crate exports one as
/// `DESCRIPTOR`; the core's preference list is a slice of them.
#[derive(Clone, Copy)]
pub struct BackendDescriptor {
    /// The method name, also used by `avoid_method` and `EVENT_NO<NAME>`.
    pub name: &'static str,
    /// The features every instance will have.
    pub features: Features,
    /// Builds an instance.
    pub new: fn(&BackendConfig) -> io::Result<Box<dyn Backend>>,
}

impl fmt::Debug for BackendDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendDescriptor")
            .field("name", &self.name)
            .field("features", &self.features)
            .finish_non_exhaustive()
    }
}

impl BackendDescriptor {
    /// The environment variable that disables this backend, as libevent
    /// spells it: `EVENT_NO` followed by the upper-cased name (`EVENT_NOEPOLL`).
    #[must_use]
    pub fn env_var(&self) -> String {
        let mut s = String::from("EVENT_NO");
        s.extend(
            self.name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase()),
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_behave_like_sets() {
        let i = Interest::READ | Interest::EDGE;
        assert!(i.contains(Interest::READ));
        assert!(!i.contains(Interest::WRITE));
        assert_eq!(i.directions(), Interest::READ);
        assert_eq!(
            !Interest::READ,
            Interest::WRITE | Interest::CLOSED | Interest::EDGE
        );
        assert_eq!(
            format!("{:?}", Ready::READ | Ready::CLOSED),
            "Ready(READ | CLOSED)"
        );
        assert_eq!(format!("{:?}", Features::empty()), "Features(empty)");
    }

    #[test]
    fn env_var_names_match_libevent() {
        fn nop(_: &BackendConfig) -> io::Result<Box<dyn Backend>> {
            Err(io::ErrorKind::Unsupported.into())
        }
        let d = BackendDescriptor {
            name: "epoll",
            features: Features::ET,
            new: nop,
        };
        assert_eq!(d.env_var(), "EVENT_NOEPOLL");
    }

    #[test]
    fn ready_list_skips_empty_and_keeps_order() {
        let mut l = ReadyList::new();
        l.push(3, Ready::READ);
        l.push(4, Ready::empty());
        l.push(5, Ready::WRITE);
        l.set_woken();
        assert_eq!(l.events(), &[(3, Ready::READ), (5, Ready::WRITE)]);
        assert!(l.woken());
        l.clear();
        assert!(l.is_empty() && !l.woken());
    }
}
