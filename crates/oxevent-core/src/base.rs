//! The event base: the slab of events, the per-fd map and its changelist,
//! the timer heap and common-timeout queues, and the active queues.
//!
//! Events live in a slab with generational keys: an [`Event`] is an index
//! and a generation, so a stale handle is an error, never a use-after-free.
//! While a callback runs, its boxed closure is taken out of its slot and put
//! back afterwards unless the event was freed meanwhile; the callback gets
//! `&mut EventBase` with no `RefCell` anywhere on the path.

use std::fmt;
use std::io;
use std::time::{Duration, Instant, SystemTime};

use oxevent_backend::{Backend, Features, Interest, RawFd, ReadyList, Waker};

use crate::clock::{Clock, dur_ns};
use crate::config::{Config, MAX_PRIORITIES, MaxDispatch};
use crate::flags::{CountFlags, What};
use crate::heap::{Entry, NOT_IN_HEAP, TimerHeap};
use crate::remote::RemoteShared;
use crate::signal::SignalState;
use crate::watch::Watchers;

/// A callback: gets the base, the event's own handle and what fired.
pub type Callback = Box<dyn FnMut(&mut EventBase, Event, What)>;

pub(crate) const NIL: u32 = u32::MAX;
/// `EvData::timeout` when no timeout was given.
pub(crate) const NO_TIMEOUT: u64 = u64::MAX;
/// Keys at or above this in the timer heap are common-timeout queues.
const COMMON_KEY: u32 = 0x8000_0000;
/// Most common-timeout durations per base (`MAX_COMMON_TIMEOUTS`).
pub const MAX_COMMON_TIMEOUTS: usize = 256;

/// A handle to an event in one [`EventBase`]: an index and a generation.
///
/// It is `Copy`; the event itself lives in the base until
/// [`EventBase::free`]. Using a handle after its event was freed gives an
/// error (`NotFound`), never undefined behaviour.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[doc(alias = "event")]
pub struct Event {
    pub(crate) idx: u32,
    pub(crate) generation: u32,
}

impl Event {
    /// The event's index in its base: small, dense and reused after the
    /// event is freed, so that a layer above can keep a side table indexed
    /// by it (as `oxevent-bufferevent` does to find which bufferevent a
    /// socket event belongs to without a boxed closure per event). Two live
    /// events of one base never share an index.
    #[must_use]
    pub fn index(self) -> usize {
        self.idx as usize
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event({}v{})", self.idx, self.generation)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Io,
    Signal,
    Timer,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerState {
    None,
    /// In the heap; the position is in `EventBase::heap_pos`, a dense array
    /// beside the slab, so heap moves write to a small, cache-friendly table.
    Heap,
    /// In a common-timeout queue; the links are in `heap_pos` (previous) and
    /// `cnext` (next), keeping the slot small.
    Common {
        queue: u16,
    },
}

pub(crate) struct EvData {
    pub(crate) kind: Kind,
    /// The fd, or the signal number, or -1.
    pub(crate) fd: RawFd,
    pub(crate) what: What,
    pub(crate) cb: Option<Callback>,
    pub(crate) once: bool,
    pub(crate) internal: bool,
    pub(crate) priority: u16,
    /// I/O or signal interest is registered.
    pub(crate) inserted: bool,
    /// Index in the fd's (or signal's) event list.
    pub(crate) list_pos: u32,
    pub(crate) timer: TimerState,
    pub(crate) deadline: u64,
    /// The relative timeout of the last add, re-armed by persistent events
    /// (`NO_TIMEOUT` when there is none; a sentinel keeps the slot small).
    pub(crate) timeout: u64,
    /// Counted in the ADDED count.
    pub(crate) counted: bool,
    pub(crate) active: bool,
    pub(crate) res: What,
    pub(crate) ncalls: u16,
}

/// One event's slot: exactly one cache line, so dispatching an event
/// touches one line (checked by a test).
#[repr(align(64))]
pub(crate) struct Slot {
    pub(crate) generation: u32,
    /// Bumped on every activation; an active-queue entry is live only while
    /// it matches (kept across slot reuse so old entries never match).
    pub(crate) act_seq: u32,
    pub(crate) data: Option<EvData>,
}

#[derive(Debug, Default)]
pub(crate) struct FdState {
    /// Slots of the pending events on this fd.
    pub(crate) events: crate::fdlist::FdList,
    nread: u32,
    nwrite: u32,
    nclosed: u32,
    nedge: u32,
    /// What the backend was last told.
    pub(crate) registered: Interest,
    dirty: bool,
    /// The fd may have been closed and its number reused since the backend
    /// last heard of it.
    fresh: bool,
}

impl FdState {
    #[inline]
    pub(crate) fn wanted(&self) -> Interest {
        Interest::from_bits_truncate(
            (u8::from(self.nread > 0) * Interest::READ.bits())
                | (u8::from(self.nwrite > 0) * Interest::WRITE.bits())
                | (u8::from(self.nclosed > 0) * Interest::CLOSED.bits())
                | (u8::from(self.nedge > 0) * Interest::EDGE.bits()),
        )
    }

    /// Counts an event watching `what` in (`add`) or out of the union.
    #[inline]
    fn count(&mut self, what: What, add: bool) {
        let f = |n: &mut u32, on: bool| {
            let k = u32::from(on);
            *n = if add {
                n.wrapping_add(k)
            } else {
                n.wrapping_sub(k)
            };
        };
        f(&mut self.nread, what.contains(What::READ));
        f(&mut self.nwrite, what.contains(What::WRITE));
        f(&mut self.nclosed, what.contains(What::CLOSED));
        f(&mut self.nedge, what.contains(What::ET));
    }
}

/// The backend interest an I/O event's flags ask for.
#[inline]
fn interest_of(what: What) -> Interest {
    let mut i = Interest::empty();
    i.set(Interest::READ, what.contains(What::READ));
    i.set(Interest::WRITE, what.contains(What::WRITE));
    i.set(Interest::CLOSED, what.contains(What::CLOSED));
    i.set(Interest::EDGE, what.contains(What::ET));
    i
}

#[derive(Debug)]
pub(crate) struct CommonQueue {
    pub(crate) duration: u64,
    pub(crate) head: u32,
    pub(crate) tail: u32,
    pub(crate) heap_pos: u32,
}

/// One priority's queue of (slot, activation sequence) entries.
///
/// A buffer read from `head` to `tail`: pushing is a write and an
/// increment, popping a read and an increment, with none of a ring buffer's
/// wrap-around arithmetic. The queue is reset whenever it runs dry (every
/// loop iteration that drains it), and compacted (see
/// [`compact`](Self::compact)) if it never drains: a callback that keeps
/// re-activating events, or a loop cut short by a break or the max-dispatch
/// limits every iteration. The buffer's length only grows, like a `Vec`'s
/// capacity, so [`reserve`](Self::reserve) can make room ahead of the I/O
/// dispatch loop, which then pushes without any call that could grow it.
#[derive(Debug, Default)]
pub(crate) struct ActiveQueue {
    /// INVARIANT: `head <= tail <= buf.len()`; `buf[head..tail]` is queued.
    buf: Vec<(u32, u32)>,
    head: usize,
    tail: usize,
    /// Live entries (dead ones are skipped when popped).
    pub(crate) live: u32,
}

/// Popped entries kept before [`ActiveQueue::compact`] moves the rest down.
const ACTIVE_COMPACT: usize = 1024;

impl ActiveQueue {
    #[inline]
    pub(crate) fn push(&mut self, idx: u32, seq: u32) {
        if self.tail < self.buf.len() {
            self.buf[self.tail] = (idx, seq);
        } else {
            self.buf.push((idx, seq));
        }
        self.tail += 1;
    }

    /// Makes room for `n` more entries, for [`push_reserved`](Self::push_reserved).
    #[inline]
    pub(crate) fn reserve(&mut self, n: usize) {
        let need = self.tail + n;
        if need > self.buf.len() {
            self.grow(need);
        }
    }

    #[cold]
    fn grow(&mut self, need: usize) {
        let len = need.max(self.buf.len() * 2).max(64);
        self.buf.resize(len, (0, 0));
    }

    /// Pushes into room made by [`reserve`](Self::reserve). Running out of
    /// room would be a bug in the caller's count, and the bounds check
    /// turns it into a panic, never into memory unsafety.
    #[inline]
    pub(crate) fn push_reserved(&mut self, idx: u32, seq: u32) {
        self.buf[self.tail] = (idx, seq);
        self.tail += 1;
    }

    /// Drops the popped entries once they are many and at least half of
    /// the queue. Called wherever entries may pile up without the queue
    /// draining: each activation from a callback (or a timer, a signal, a
    /// remote) and the start of each pass over the queue. The I/O dispatch
    /// between passes adds at most one entry per ready event.
    #[inline]
    pub(crate) fn compact(&mut self) {
        if self.head >= ACTIVE_COMPACT && self.head * 2 >= self.tail {
            self.buf.copy_within(self.head..self.tail, 0);
            self.tail -= self.head;
            self.head = 0;
        }
    }

    /// The next entry, live or dead.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<(u32, u32)> {
        if self.head >= self.tail {
            return None;
        }
        let e = *self.buf.get(self.head)?;
        self.head += 1;
        Some(e)
    }

    /// The slot of the entry [`pop`](Self::pop) probably returns next, for
    /// a prefetch hint only: past the tail it is a stale entry.
    #[inline]
    pub(crate) fn peek_hint(&self) -> Option<u32> {
        self.buf.get(self.head).map(|e| e.0)
    }

    pub(crate) fn clear(&mut self) {
        self.head = 0;
        self.tail = 0;
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub(crate) added: usize,
    pub(crate) active: usize,
    pub(crate) virt: usize,
    pub(crate) max_added: usize,
    pub(crate) max_active: usize,
    pub(crate) max_virt: usize,
}

/// Information about one event, from [`EventBase::event_info`] or
/// [`EventBase::foreach_event`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventInfo {
    /// The event's handle.
    pub event: Event,
    /// The fd of an I/O event.
    pub fd: Option<RawFd>,
    /// The signal number of a signal event.
    pub signal: Option<i32>,
    /// The flags the event was created with.
    pub what: What,
    /// Its priority (0 runs first).
    pub priority: u16,
    /// What it is pending on now (including `TIMEOUT` if a timeout is armed).
    pub pending: What,
    /// When its timeout expires, if armed.
    pub deadline: Option<Instant>,
    /// What it was activated with, if its callback is queued.
    pub active: Option<What>,
}

fn stale() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        "stale event handle: the event was freed",
    )
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_owned())
}

/// The reactor: runs callbacks when fds are ready, timers expire or signals
/// arrive (libevent's `struct event_base`).
///
/// One base per thread: `EventBase` is `!Send` and its callbacks need not be
/// `Send`. Other threads reach it through a [`Remote`](crate::Remote).
///
/// ```
/// use std::time::Duration;
/// use oxevent_core::{EventBase, What};
///
/// let mut base = EventBase::new().unwrap();
/// let ev = base.timer_new(|base, _ev, what| {
///     assert_eq!(what, What::TIMEOUT);
///     base.loopbreak();
/// });
/// base.add(ev, Some(Duration::from_millis(1))).unwrap();
/// base.dispatch().unwrap();
/// assert!(base.got_break());
/// ```
pub struct EventBase {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) features: Features,
    pub(crate) clock: Clock,
    pub(crate) now: u64,
    pub(crate) cache_valid: bool,
    pub(crate) no_cache_time: bool,
    pub(crate) wall_cache: Option<SystemTime>,

    pub(crate) slots: Vec<Slot>,
    pub(crate) free: Vec<u32>,

    pub(crate) fds: Vec<FdState>,
    /// Events with their I/O interest registered (in some fd's list): a
    /// bound on what one I/O dispatch can activate.
    pub(crate) io_events: usize,
    pub(crate) changes: Vec<RawFd>,
    pub(crate) changelist: bool,

    pub(crate) heap: TimerHeap,
    /// Per slot: the heap position while the timer is `Heap`, or the
    /// previous event of its common-timeout queue while it is `Common`.
    pub(crate) heap_pos: Vec<u32>,
    /// Per slot: the next event of its common-timeout queue.
    pub(crate) cnext: Vec<u32>,
    pub(crate) commons: Vec<CommonQueue>,
    /// A persistent event whose heap timer was re-armed, while its callback
    /// runs, only in its slot's `deadline` (or `NIL`): the heap entry keeps
    /// the old, earlier deadline until [`flush_rearm`](Self::flush_rearm)
    /// moves it, right after the callback. Most callbacks re-add their event
    /// with a new timeout, which makes the first move redundant: this saves
    /// one heap update per event. Nothing reads the heap while a callback
    /// runs except through `timer_set`/`timer_remove`, which settle it.
    pub(crate) rearm: u32,

    /// Per priority: the queue of (slot, activation sequence) entries and
    /// the number of live ones. Deactivating an event leaves a dead entry
    /// behind (skipped when popped) so no neighbour is touched.
    pub(crate) active: Vec<ActiveQueue>,
    pub(crate) counts: Counts,

    pub(crate) sig: Option<SignalState>,
    pub(crate) remote: Option<std::sync::Arc<RemoteShared>>,
    pub(crate) waker: Option<Waker>,
    pub(crate) watchers: Watchers,

    pub(crate) running: bool,
    pub(crate) got_exit: bool,
    pub(crate) got_break: bool,
    pub(crate) continue_req: bool,
    pub(crate) running_event: Option<Event>,
    pub(crate) running_priority: Option<u16>,
    pub(crate) max_dispatch: MaxDispatch,
    pub(crate) ready: ReadyList,
    /// Per-type state of the layers above (bufferevents, listeners, ...).
    pub(crate) extensions: Vec<(std::any::TypeId, Box<dyn std::any::Any>)>,
}

impl fmt::Debug for EventBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBase")
            .field("method", &self.backend.name())
            .field("added", &self.counts.added)
            .field("active", &self.counts.active)
            .field("timers", &self.heap.len())
            .finish_non_exhaustive()
    }
}

impl EventBase {
    /// A base with the default configuration (`event_base_new`).
    ///
    /// # Errors
    ///
    /// The OS error if no backend could be started.
    #[doc(alias = "event_base_new")]
    pub fn new() -> io::Result<Self> {
        Self::with_config(&Config::new())
    }

    /// A base built from `config` (`event_base_new_with_config`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad configuration (such as 0 or more than 256
    /// priorities); `Unsupported` or the OS error if no backend fits.
    #[doc(alias = "event_base_new_with_config")]
    pub fn with_config(config: &Config) -> io::Result<Self> {
        let config = config.resolved()?;
        let backend = config.select_backend()?;
        Self::build(backend, &config)
    }

    /// A base over a backend of the caller's choice, for example one from a
    /// user's own crate. This is how a backend is swapped.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad configuration.
    pub fn with_backend(backend: impl Backend + 'static) -> io::Result<Self> {
        Self::with_backend_and_config(backend, &Config::new())
    }

    /// [`with_backend`](Self::with_backend) with a configuration (its
    /// backend-selection parts are ignored).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad configuration.
    pub fn with_backend_and_config(
        backend: impl Backend + 'static,
        config: &Config,
    ) -> io::Result<Self> {
        let config = config.resolved()?;
        Self::build(Box::new(backend), &config)
    }

    fn build(backend: Box<dyn Backend>, config: &Config) -> io::Result<Self> {
        let clock = config.clock.clone().unwrap_or_else(|| {
            if config.precise_timer {
                Clock::precise()
            } else {
                Clock::coarse()
            }
        });
        let features = backend.features();
        let mut base = Self {
            backend,
            features,
            now: clock.now_ns(),
            clock,
            cache_valid: false,
            no_cache_time: config.no_cache_time,
            wall_cache: None,
            slots: Vec::new(),
            free: Vec::new(),
            fds: Vec::new(),
            io_events: 0,
            changes: Vec::new(),
            changelist: config.changelist,
            heap: TimerHeap::default(),
            heap_pos: Vec::new(),
            cnext: Vec::new(),
            commons: Vec::new(),
            rearm: NIL,
            active: (0..config.priorities)
                .map(|_| ActiveQueue::default())
                .collect(),
            counts: Counts::default(),
            sig: None,
            remote: None,
            waker: None,
            watchers: Watchers::default(),
            running: false,
            got_exit: false,
            got_break: false,
            continue_req: false,
            running_event: None,
            running_priority: None,
            max_dispatch: config.max_dispatch,
            ready: ReadyList::with_capacity(64),
            extensions: Vec::new(),
        };
        if base.clock.is_manual() {
            let w = base.waker()?;
            base.clock.register_waker(&w);
        }
        Ok(base)
    }

    pub(crate) fn waker(&mut self) -> io::Result<Waker> {
        if let Some(w) = &self.waker {
            return Ok(w.clone());
        }
        let w = self.backend.waker()?;
        self.waker = Some(w.clone());
        Ok(w)
    }

    /// The backend's name (`event_base_get_method`), e.g. `"epoll"`.
    #[doc(alias = "event_base_get_method")]
    #[must_use]
    pub fn method(&self) -> &'static str {
        self.backend.name()
    }

    /// How signals are delivered (`event_base_get_signal_method`).
    #[doc(alias = "event_base_get_signal_method")]
    #[must_use]
    pub fn signal_method(&self) -> &'static str {
        "self-pipe"
    }

    /// The backend's features (`event_base_get_features`).
    #[doc(alias = "event_base_get_features")]
    #[must_use]
    pub fn features(&self) -> Features {
        self.features
    }

    /// The number of priority queues (`event_base_get_npriorities`).
    #[doc(alias = "event_base_get_npriorities")]
    #[must_use]
    pub fn npriorities(&self) -> u16 {
        self.active.len() as u16
    }

    /// Sets the number of priority queues, 1 to 256 (`event_base_priority_init`).
    /// Existing events keep their priority, clamped to the new range.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a count out of range; `WouldBlock` if callbacks
    /// are queued (the queues cannot be resized then).
    #[doc(alias = "event_base_priority_init")]
    pub fn priority_init(&mut self, n: u16) -> io::Result<()> {
        if !(1..=MAX_PRIORITIES).contains(&n) {
            return Err(invalid("priorities must be between 1 and 256"));
        }
        if self.counts.active > 0 {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "callbacks are queued",
            ));
        }
        self.active = (0..n).map(|_| ActiveQueue::default()).collect();
        for s in &mut self.slots {
            if let Some(d) = &mut s.data {
                d.priority = d.priority.min(n - 1);
            }
        }
        Ok(())
    }

    // ----- time -----

    pub(crate) fn update_time(&mut self) {
        let t = self.clock.now_ns();
        // Never let cached time go backwards (coarse and precise readings mix).
        self.now = self.now.max(t);
        // Outside the loop every read is fresh, as in libevent.
        self.cache_valid = self.running && !self.no_cache_time;
        self.wall_cache = None;
    }

    pub(crate) fn now_ns(&mut self) -> u64 {
        if !self.cache_valid {
            self.update_time();
        }
        self.now
    }

    /// The base's monotonic time, cached for the current loop iteration
    /// (`event_gettime_monotonic`).
    #[doc(alias = "event_gettime_monotonic")]
    pub fn now(&mut self) -> Instant {
        let ns = self.now_ns();
        self.clock.to_instant(ns)
    }

    /// Wall-clock time, cached for the current loop iteration
    /// (`event_base_gettimeofday_cached`).
    #[doc(alias = "event_base_gettimeofday_cached")]
    pub fn gettimeofday_cached(&mut self) -> SystemTime {
        if !self.cache_valid || self.wall_cache.is_none() {
            #[allow(clippy::disallowed_methods)] // wall time has no Clock equivalent
            let t = SystemTime::now();
            self.wall_cache = Some(t);
        }
        self.wall_cache.unwrap_or(SystemTime::UNIX_EPOCH)
    }

    /// Re-reads the clock during a long callback (`event_base_update_cache_time`).
    #[doc(alias = "event_base_update_cache_time")]
    pub fn update_cache_time(&mut self) {
        self.update_time();
    }

    /// The clock this base reads.
    #[must_use]
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    // ----- creating events -----

    fn alloc(&mut self, data: EvData) -> Event {
        if let Some(idx) = self.free.pop() {
            let s = &mut self.slots[idx as usize];
            s.data = Some(data);
            Event {
                idx,
                generation: s.generation,
            }
        } else {
            let idx = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                act_seq: 0,
                data: Some(data),
            });
            self.heap_pos.push(NOT_IN_HEAP);
            self.cnext.push(NIL);
            Event { idx, generation: 0 }
        }
    }

    fn new_data(&self, kind: Kind, fd: RawFd, what: What, cb: Callback) -> EvData {
        EvData {
            kind,
            fd,
            what,
            cb: Some(cb),
            once: false,
            internal: false,
            priority: self.npriorities() / 2,
            inserted: false,
            list_pos: NIL,
            timer: TimerState::None,
            deadline: 0,
            timeout: NO_TIMEOUT,
            counted: false,
            active: false,
            res: What::empty(),
            ncalls: 0,
        }
    }

    fn check_what(&self, fd: RawFd, what: What) -> io::Result<Kind> {
        if what.contains(What::SIGNAL) {
            if what.intersects(What::READ | What::WRITE | What::CLOSED | What::ET) {
                return Err(invalid("a signal event cannot also wait for I/O"));
            }
            crate::sys::signal::check_signal(fd)?;
            return Ok(Kind::Signal);
        }
        if what.io().is_empty() {
            return Ok(Kind::Timer);
        }
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        if what.contains(What::ET) && !self.features.contains(Features::ET) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the {} backend has no edge-triggered mode",
                    self.backend.name()
                ),
            ));
        }
        if what.contains(What::CLOSED) && !self.features.contains(Features::EARLY_CLOSE) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the {} backend cannot detect an early close",
                    self.backend.name()
                ),
            ));
        }
        Ok(Kind::Io)
    }

    fn create(&mut self, fd: RawFd, what: What, cb: Callback) -> io::Result<Event> {
        let kind = self.check_what(fd, what)?;
        let fd = if kind == Kind::Timer { -1 } else { fd };
        if kind == Kind::Io {
            let st = self.fd_state(fd);
            if st.events.is_empty() {
                // No pending event watches this fd, so it may be a new file
                // behind a reused number: make the backend re-check it.
                st.fresh = true;
            }
        }
        let data = self.new_data(kind, fd, what, cb);
        Ok(self.alloc(data))
    }

    /// Creates an event on `fd` for `what` (`event_new`).
    ///
    /// `what` combines [`What::READ`], [`What::WRITE`], [`What::CLOSED`],
    /// [`What::PERSIST`] and [`What::ET`]; or it is [`What::SIGNAL`] (plus
    /// `PERSIST`), and then `fd` is the signal number; with no direction it
    /// is a timer and `fd` is ignored. The event is not pending until
    /// [`add`](Self::add)ed.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a bad combination or signal number, `EBADF` for a
    /// negative fd, `Unsupported` for `ET` or `CLOSED` on a backend without
    /// them. An fd that is not open is reported by [`add`](Self::add).
    #[doc(alias = "event_assign")]
    pub fn event_new(
        &mut self,
        fd: RawFd,
        what: What,
        cb: impl FnMut(&mut EventBase, Event, What) + 'static,
    ) -> io::Result<Event> {
        self.create(fd, what, Box::new(cb))
    }

    /// Creates a timer event (`evtimer_new`); add it with a timeout.
    #[doc(alias("evtimer_new", "evtimer_assign"))]
    pub fn timer_new(&mut self, cb: impl FnMut(&mut EventBase, Event, What) + 'static) -> Event {
        let data = self.new_data(Kind::Timer, -1, What::empty(), Box::new(cb));
        self.alloc(data)
    }

    /// Creates a persistent signal event for `signum` (`evsignal_new`).
    ///
    /// Any number of bases may watch the same signal; each gets every
    /// delivery. The previous disposition of the signal is restored when the
    /// last watcher in the process goes.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a signal number out of range, `SIGKILL` or `SIGSTOP`.
    #[doc(alias("evsignal_new", "evsignal_assign"))]
    pub fn signal_new(
        &mut self,
        signum: i32,
        cb: impl FnMut(&mut EventBase, Event, What) + 'static,
    ) -> io::Result<Event> {
        self.create(signum, What::SIGNAL | What::PERSIST, Box::new(cb))
    }

    /// Creates a user-triggered event (`evuser_new`): it never waits on
    /// anything and runs only when [`activate`](Self::activate)d. It is
    /// persistent, so it can be triggered again and again.
    #[doc(alias("evuser_new", "evuser_trigger"))]
    pub fn user_new(&mut self, cb: impl FnMut(&mut EventBase, Event, What) + 'static) -> Event {
        let data = self.new_data(Kind::Timer, -1, What::PERSIST, Box::new(cb));
        self.alloc(data)
    }

    /// Runs `cb` once when `what` happens on `fd` or `timeout` passes, then
    /// frees the event (`event_base_once`). With no direction in `what` it is
    /// a plain timer.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `what` has `PERSIST` or `SIGNAL`; the errors of
    /// [`event_new`](Self::event_new) and [`add`](Self::add).
    #[doc(alias = "event_base_once")]
    pub fn once(
        &mut self,
        fd: RawFd,
        what: What,
        timeout: Option<Duration>,
        cb: impl FnOnce(&mut EventBase, What) + 'static,
    ) -> io::Result<()> {
        if what.intersects(What::PERSIST | What::SIGNAL) {
            return Err(invalid("once() events cannot be persistent or signals"));
        }
        let mut cb = Some(cb);
        let ev = self.create(
            fd,
            what,
            Box::new(move |base: &mut EventBase, _ev, w| {
                if let Some(f) = cb.take() {
                    f(base, w);
                }
            }),
        )?;
        self.data_mut(ev)?.once = true;
        if let Err(e) = self.add(ev, timeout) {
            let _ = self.free(ev);
            return Err(e);
        }
        Ok(())
    }

    pub(crate) fn mark_internal(&mut self, ev: Event) {
        if let Ok(d) = self.data_mut(ev) {
            d.internal = true;
        }
    }

    // ----- slot access -----

    pub(crate) fn data(&self, ev: Event) -> io::Result<&EvData> {
        match self.slots.get(ev.idx as usize) {
            Some(s) if s.generation == ev.generation => s.data.as_ref().ok_or_else(stale),
            _ => Err(stale()),
        }
    }

    pub(crate) fn data_mut(&mut self, ev: Event) -> io::Result<&mut EvData> {
        match self.slots.get_mut(ev.idx as usize) {
            Some(s) if s.generation == ev.generation => s.data.as_mut().ok_or_else(stale),
            _ => Err(stale()),
        }
    }

    #[inline]
    pub(crate) fn d(&mut self, idx: u32) -> &mut EvData {
        self.slots[idx as usize].data.as_mut().expect("live slot")
    }

    /// Whether `ev` refers to a live event (`event_initialized`).
    #[doc(alias = "event_initialized")]
    #[must_use]
    pub fn is_valid(&self, ev: Event) -> bool {
        self.data(ev).is_ok()
    }

    // ----- add / del -----

    /// Makes `ev` pending, with an optional timeout relative to now
    /// (`event_add`). Adding a pending event again with a timeout re-arms
    /// the timeout; as in libevent, adding with `None` leaves an armed
    /// timeout alone (use [`remove_timer`](Self::remove_timer) to drop it).
    ///
    /// A timeout equal to a duration registered with
    /// [`init_common_timeout`](Self::init_common_timeout) goes into that
    /// duration's O(1) FIFO queue instead of the heap.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event; the backend's error for an fd it cannot
    /// watch (`EBADF`, `EPERM` for regular files under epoll);
    /// `InvalidInput` when edge-triggered and level-triggered events are
    /// mixed on one fd.
    #[doc(alias("event_add", "evtimer_add", "evsignal_add"))]
    pub fn add(&mut self, ev: Event, timeout: Option<Duration>) -> io::Result<()> {
        let d = self.data(ev)?;
        let (kind, inserted) = (d.kind, d.inserted);
        if !inserted {
            match kind {
                Kind::Io => self.io_insert(ev.idx)?,
                Kind::Signal => self.signal_insert(ev.idx)?,
                Kind::Timer => {}
            }
        }
        match timeout {
            Some(t) => self.add_timeout(ev.idx, dur_ns(t)),
            None => self.recount(ev.idx),
        }
        Ok(())
    }

    /// The timeout part of [`add`](Self::add): arms the timer `rel`
    /// nanoseconds from now, in one look-up of the slot for the usual cases
    /// (a new heap timer, or a heap timer re-armed, as a persistent event's
    /// callback does on every event).
    fn add_timeout(&mut self, idx: u32, rel: u64) {
        let now = self.now_ns();
        let deadline = now.saturating_add(rel);
        let common = !self.commons.is_empty() && self.is_common(rel);
        let Self {
            slots,
            heap,
            heap_pos,
            commons,
            counts,
            rearm,
            ..
        } = self;
        let Some(d) = slots.get_mut(idx as usize).and_then(|s| s.data.as_mut()) else {
            return;
        };
        // Re-adding an active timeout-activated event cancels that activation
        // (below, on the general path), as libevent does, so the callback
        // does not run for a stale expiry.
        let stale = d.active && d.res.contains(What::TIMEOUT) && !d.what.contains(What::PERSIST);
        if !stale && !common {
            match d.timer {
                TimerState::Heap => {
                    d.timeout = rel.min(NO_TIMEOUT - 1);
                    d.deadline = deadline;
                    if *rearm == idx {
                        *rearm = NIL;
                    }
                    let pos = heap_pos[idx as usize];
                    heap.update(pos, deadline, &mut |k, p| {
                        Self::set_pos(heap_pos, commons, k, p)
                    });
                    // Still armed: the ADDED count is unchanged.
                    return;
                }
                TimerState::None => {
                    d.timeout = rel.min(NO_TIMEOUT - 1);
                    d.deadline = deadline;
                    d.timer = TimerState::Heap;
                    heap.push(Entry { deadline, key: idx }, &mut |k, p| {
                        Self::set_pos(heap_pos, commons, k, p)
                    });
                    Self::recount_in(d, counts);
                    return;
                }
                TimerState::Common { .. } => {}
            }
        }
        if stale {
            let rest = d.res.difference(What::TIMEOUT);
            if rest.is_empty() {
                self.deactivate(idx);
            } else {
                d.res = rest;
            }
        }
        self.d(idx).timeout = rel.min(NO_TIMEOUT - 1);
        self.timer_set(idx, deadline, rel);
        self.recount(idx);
    }

    /// Makes `ev` non-pending and cancels a queued callback (`event_del`).
    /// Deleting an event that is not pending is not an error.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event.
    #[doc(alias(
        "event_del",
        "event_del_noblock",
        "event_del_block",
        "evtimer_del",
        "evsignal_del"
    ))]
    pub fn del(&mut self, ev: Event) -> io::Result<()> {
        self.data(ev)?;
        self.del_idx(ev.idx);
        Ok(())
    }

    /// Removes only the timeout of `ev`, leaving its I/O or signal interest
    /// pending (`event_remove_timer`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event.
    #[doc(alias = "event_remove_timer")]
    pub fn remove_timer(&mut self, ev: Event) -> io::Result<()> {
        self.data(ev)?;
        self.timer_remove(ev.idx);
        let d = self.d(ev.idx);
        d.timeout = NO_TIMEOUT;
        if d.active && d.res == What::TIMEOUT {
            self.deactivate(ev.idx);
        } else if d.active {
            d.res = d.res.difference(What::TIMEOUT);
        }
        self.recount(ev.idx);
        Ok(())
    }

    /// Deletes and frees `ev` (`event_free`). A callback that is running
    /// finishes, and no callback of the event runs afterwards; the handle
    /// (and every copy of it) becomes stale.
    ///
    /// # Errors
    ///
    /// `NotFound` for an event already freed.
    #[doc(alias = "event_free")]
    pub fn free(&mut self, ev: Event) -> io::Result<()> {
        self.data(ev)?;
        self.del_idx(ev.idx);
        let s = &mut self.slots[ev.idx as usize];
        let data = s.data.take();
        s.generation = s.generation.wrapping_add(1);
        self.free.push(ev.idx);
        // The closure (and whatever it owns) is dropped here, after the
        // slot is consistent, so a Drop impl may use the base's handles freely.
        drop(data);
        Ok(())
    }

    pub(crate) fn del_idx(&mut self, idx: u32) {
        let d = self.d(idx);
        let (inserted, kind, armed, active) =
            (d.inserted, d.kind, d.timer != TimerState::None, d.active);
        if inserted {
            match kind {
                Kind::Io => self.io_remove(idx),
                Kind::Signal => self.signal_remove(idx),
                Kind::Timer => {}
            }
        }
        if armed {
            self.timer_remove(idx);
        }
        if active {
            self.deactivate(idx);
        }
        let Self { slots, counts, .. } = self;
        if let Some(d) = slots.get_mut(idx as usize).and_then(|s| s.data.as_mut()) {
            d.ncalls = 0;
            Self::recount_in(d, counts);
        }
    }

    /// Keeps the ADDED count in step with the event's state.
    #[inline]
    pub(crate) fn recount(&mut self, idx: u32) {
        let Self { slots, counts, .. } = self;
        if let Some(d) = slots.get_mut(idx as usize).and_then(|s| s.data.as_mut()) {
            Self::recount_in(d, counts);
        }
    }

    #[inline]
    fn recount_in(d: &mut EvData, counts: &mut Counts) {
        let pending = !d.internal && (d.inserted || d.timer != TimerState::None);
        if pending != d.counted {
            d.counted = pending;
            if pending {
                counts.added += 1;
                counts.max_added = counts.max_added.max(counts.added);
            } else {
                counts.added -= 1;
            }
        }
    }

    // ----- per-fd map and changelist -----

    #[inline]
    pub(crate) fn fd_state(&mut self, fd: RawFd) -> &mut FdState {
        let i = fd as usize;
        if i >= self.fds.len() {
            self.grow_fds(i);
        }
        &mut self.fds[i]
    }

    #[cold]
    fn grow_fds(&mut self, i: usize) {
        self.fds
            .resize_with((i + 1).max(self.fds.len() * 2).max(64), FdState::default);
    }

    fn io_insert(&mut self, idx: u32) -> io::Result<()> {
        let (fd, what) = {
            let d = self.d(idx);
            (d.fd, d.what)
        };
        let edge = what.contains(What::ET);
        let immediate = !self.changelist;
        let st = self.fd_state(fd);
        if !st.events.is_empty() && (st.nedge > 0) != edge {
            return Err(invalid(
                "cannot mix edge-triggered and level-triggered events on one fd",
            ));
        }
        let before = st.wanted();
        let pos = st.events.len() as u32;
        st.events.push(idx);
        st.count(what, true);
        // Counts only went up: the union gains exactly this event's interest.
        if before != (before | interest_of(what)) || st.fresh {
            if immediate || st.fresh || st.registered.is_empty() {
                if let Err(e) = self.apply_fd(fd) {
                    // Roll back so the base is as it was.
                    let st = &mut self.fds[fd as usize];
                    st.events.pop();
                    st.count(what, false);
                    return Err(e);
                }
            } else {
                self.mark_dirty(fd);
            }
        }
        let d = self.d(idx);
        d.inserted = true;
        d.list_pos = pos;
        self.io_events += 1;
        Ok(())
    }

    fn io_remove(&mut self, idx: u32) {
        let d = self.d(idx);
        let (fd, what, pos) = (d.fd, d.what, d.list_pos);
        d.inserted = false;
        d.list_pos = NIL;
        self.io_events -= 1;
        let Self { fds, slots, .. } = self;
        let st = &mut fds[fd as usize];
        st.events.swap_remove(pos as usize);
        if let Some(&m) = st.events.get(pos as usize) {
            if let Some(d) = slots.get_mut(m as usize).and_then(|s| s.data.as_mut()) {
                d.list_pos = pos;
            }
        }
        st.count(what, false);
        if st.wanted() != st.registered {
            if self.changelist {
                self.mark_dirty(fd);
            } else if let Err(e) = self.apply_fd(fd) {
                tracing::debug!(fd, error = %e, "removing interest failed");
            }
        }
    }

    fn mark_dirty(&mut self, fd: RawFd) {
        let st = &mut self.fds[fd as usize];
        if !st.dirty {
            st.dirty = true;
            self.changes.push(fd);
        }
    }

    /// Tells the backend the fd's current interest now.
    fn apply_fd(&mut self, fd: RawFd) -> io::Result<()> {
        let st = &mut self.fds[fd as usize];
        let wanted = st.wanted();
        let (old, fresh) = (st.registered, st.fresh);
        if wanted == old && !fresh {
            return Ok(());
        }
        match self.backend.set_interest(fd, old, wanted, fresh) {
            Ok(()) => {
                let st = &mut self.fds[fd as usize];
                st.registered = wanted;
                st.fresh = false;
                Ok(())
            }
            Err(e) => {
                let st = &mut self.fds[fd as usize];
                if wanted.is_empty() {
                    // The fd is gone already; nothing is watched.
                    st.registered = Interest::empty();
                    st.fresh = false;
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Flushes the changelist: one backend call per fd whose interest
    /// really changed since the last wait. A delete followed by an add in
    /// the same iteration costs nothing.
    pub(crate) fn flush_changes(&mut self) {
        let mut changes = std::mem::take(&mut self.changes);
        for &fd in &changes {
            self.fds[fd as usize].dirty = false;
            if let Err(e) = self.apply_fd(fd) {
                tracing::warn!(fd, error = %e, "the backend refused an interest change");
                // Report the failure to the fd's events as readiness so their
                // callbacks see the error on their next read or write.
                let events = self.fds[fd as usize].events.clone();
                for &idx in events.as_slice() {
                    let io = self.d(idx).what.io();
                    self.activate_idx(idx, io.difference(What::CLOSED), 1);
                }
            }
        }
        changes.clear();
        if self.changes.is_empty() {
            self.changes = changes;
        }
    }

    /// Tells the base that `fd` is about to be closed and no pending event
    /// watches it any more. Closing an fd removes it from the kernel's
    /// interest set by itself, so the removal the changelist would send at
    /// the next iteration (and that would fail with `EBADF`) is dropped: one
    /// system call less per closed connection. Does nothing while events
    /// still watch `fd`. Not for an fd that was `dup`ed: the kernel keeps a
    /// duplicated file registered.
    pub fn fd_closing(&mut self, fd: RawFd) {
        if let Some(st) = self.fds.get_mut(fd as usize) {
            if st.events.is_empty() {
                st.registered = Interest::empty();
                st.fresh = false;
            }
        }
    }

    /// Re-registers every fd after `fork()` (`event_reinit`): the backend
    /// re-creates its kernel state and hears of every fd afresh; signal
    /// delivery gets a new pipe, so parent and child no longer share one.
    ///
    /// # Errors
    ///
    /// The OS error re-creating the backend or the signal pipe.
    #[doc(alias = "event_reinit")]
    pub fn reinit(&mut self) -> io::Result<()> {
        self.backend.reinit()?;
        for st in &mut self.fds {
            st.registered = Interest::empty();
            st.fresh = false;
            st.dirty = false;
        }
        self.changes.clear();
        self.signal_reinit()?;
        for fd in 0..self.fds.len() {
            if !self.fds[fd].wanted().is_empty() {
                self.fds[fd].fresh = true;
                self.apply_fd(fd as RawFd)?;
            }
        }
        Ok(())
    }

    // ----- timers -----

    #[inline]
    fn set_pos(heap_pos: &mut [u32], commons: &mut [CommonQueue], key: u32, pos: u32) {
        if key >= COMMON_KEY {
            commons[(key - COMMON_KEY) as usize].heap_pos = pos;
        } else {
            heap_pos[key as usize] = pos;
        }
    }

    /// Registers `duration` as a common timeout (`event_base_init_common_timeout`)
    /// and returns it. Events added with exactly this timeout go into one FIFO
    /// queue with a single heap entry, so adding and removing them is O(1):
    /// the right structure for thousands of identical idle timeouts.
    ///
    /// # Errors
    ///
    /// `InvalidInput` past 256 durations or for a zero duration.
    #[doc(alias = "event_base_init_common_timeout")]
    pub fn init_common_timeout(&mut self, duration: Duration) -> io::Result<Duration> {
        let ns = dur_ns(duration);
        if ns == 0 {
            return Err(invalid("a common timeout must be longer than zero"));
        }
        if self.commons.iter().any(|c| c.duration == ns) {
            return Ok(duration);
        }
        if self.commons.len() >= MAX_COMMON_TIMEOUTS {
            return Err(invalid("too many common timeouts (at most 256)"));
        }
        self.commons.push(CommonQueue {
            duration: ns,
            head: NIL,
            tail: NIL,
            heap_pos: NOT_IN_HEAP,
        });
        Ok(duration)
    }

    /// Whether `rel` is a registered common-timeout duration.
    pub(crate) fn is_common(&self, rel: u64) -> bool {
        self.commons.iter().any(|c| c.duration == rel)
    }

    /// Arms the timer of `idx` at `deadline` (`rel` is the relative timeout
    /// used to choose a common queue).
    pub(crate) fn timer_set(&mut self, idx: u32, deadline: u64, rel: u64) {
        if self.rearm == idx {
            self.rearm = NIL;
        }
        let common = if self.commons.is_empty() {
            None
        } else {
            self.commons.iter().position(|c| c.duration == rel)
        };
        let Self {
            slots,
            heap,
            heap_pos,
            commons,
            ..
        } = self;
        let Some(d) = slots.get_mut(idx as usize).and_then(|s| s.data.as_mut()) else {
            return;
        };
        match (d.timer, common) {
            (TimerState::Heap, None) => {
                // Re-arming a heap timer: move its entry in place.
                d.deadline = deadline;
                let pos = heap_pos[idx as usize];
                heap.update(pos, deadline, &mut |k, p| {
                    Self::set_pos(heap_pos, commons, k, p)
                });
                return;
            }
            (TimerState::None, _) => {}
            _ => self.timer_remove(idx),
        }
        self.d(idx).deadline = deadline;
        match common {
            None => {
                self.d(idx).timer = TimerState::Heap;
                let (hp, commons) = (&mut self.heap_pos, &mut self.commons);
                self.heap.push(Entry { deadline, key: idx }, &mut |k, p| {
                    Self::set_pos(hp, commons, k, p)
                });
            }
            Some(q) => self.common_insert(q, idx, deadline),
        }
    }

    fn common_insert(&mut self, q: usize, idx: u32, deadline: u64) {
        // Usually the new deadline is the latest; walk back from the tail
        // otherwise (libevent's insert_common_timeout_inorder).
        let mut after = self.commons[q].tail;
        while after != NIL && self.d(after).deadline > deadline {
            after = self.heap_pos[after as usize];
        }
        let next = if after == NIL {
            self.commons[q].head
        } else {
            self.common_next(after)
        };
        self.d(idx).timer = TimerState::Common { queue: q as u16 };
        self.heap_pos[idx as usize] = after;
        self.cnext[idx as usize] = next;
        if after == NIL {
            self.commons[q].head = idx;
        } else {
            self.common_set_next(after, idx);
        }
        if next == NIL {
            self.commons[q].tail = idx;
        } else {
            self.common_set_prev(next, idx);
        }
        if self.commons[q].head == idx {
            self.common_reschedule(q);
        }
    }

    fn common_next(&self, idx: u32) -> u32 {
        self.cnext[idx as usize]
    }

    fn common_set_next(&mut self, idx: u32, n: u32) {
        self.cnext[idx as usize] = n;
    }

    fn common_set_prev(&mut self, idx: u32, p: u32) {
        self.heap_pos[idx as usize] = p;
    }

    /// Points the queue's single heap entry at its head's deadline.
    fn common_reschedule(&mut self, q: usize) {
        let head = self.commons[q].head;
        let pos = self.commons[q].heap_pos;
        let (hp, commons) = (&mut self.heap_pos, &mut self.commons);
        let mut sp = |k, p| Self::set_pos(hp, commons, k, p);
        if head == NIL {
            if pos != NOT_IN_HEAP {
                self.heap.remove(pos, &mut sp);
            }
            return;
        }
        let deadline = self.slots[head as usize]
            .data
            .as_ref()
            .map_or(0, |d| d.deadline);
        let (hp, commons) = (&mut self.heap_pos, &mut self.commons);
        let mut sp = |k, p| Self::set_pos(hp, commons, k, p);
        if pos == NOT_IN_HEAP {
            self.heap.push(
                Entry {
                    deadline,
                    key: COMMON_KEY + q as u32,
                },
                &mut sp,
            );
        } else {
            self.heap.update(pos, deadline, &mut sp);
        }
    }

    pub(crate) fn timer_remove(&mut self, idx: u32) {
        if self.rearm == idx {
            self.rearm = NIL;
        }
        match self.d(idx).timer {
            TimerState::None => {}
            TimerState::Heap => {
                let pos = self.heap_pos[idx as usize];
                let (hp, commons) = (&mut self.heap_pos, &mut self.commons);
                self.heap
                    .remove(pos, &mut |k, p| Self::set_pos(hp, commons, k, p));
                self.d(idx).timer = TimerState::None;
            }
            TimerState::Common { queue } => {
                let q = usize::from(queue);
                let (prev, next) = (self.heap_pos[idx as usize], self.cnext[idx as usize]);
                if prev == NIL {
                    self.commons[q].head = next;
                } else {
                    self.common_set_next(prev, next);
                }
                if next == NIL {
                    self.commons[q].tail = prev;
                } else {
                    self.common_set_prev(next, prev);
                }
                self.d(idx).timer = TimerState::None;
                if prev == NIL {
                    self.common_reschedule(q);
                }
            }
        }
    }

    /// Moves the heap entry of a deferred re-arm (see `rearm`) to the
    /// deadline in its slot.
    #[inline]
    pub(crate) fn flush_rearm(&mut self) {
        if self.rearm != NIL {
            self.flush_rearm_now();
        }
    }

    fn flush_rearm_now(&mut self) {
        let idx = std::mem::replace(&mut self.rearm, NIL);
        let deadline = match self.slots.get(idx as usize).and_then(|s| s.data.as_ref()) {
            Some(d) if d.timer == TimerState::Heap => d.deadline,
            _ => return,
        };
        let pos = self.heap_pos[idx as usize];
        let (hp, commons) = (&mut self.heap_pos, &mut self.commons);
        self.heap
            .update(pos, deadline, &mut |k, p| Self::set_pos(hp, commons, k, p));
    }

    /// The time until the next timer, or `None` if there is none.
    pub(crate) fn next_timeout(&mut self) -> Option<Duration> {
        self.flush_rearm();
        let top = self.heap.peek()?;
        let now = self.now_ns();
        if self.clock.is_manual() {
            // A manual clock only moves when told: never sleep for a timer.
            return if top.deadline <= now {
                Some(Duration::ZERO)
            } else {
                None
            };
        }
        Some(Duration::from_nanos(top.deadline.saturating_sub(now)))
    }

    /// Activates every expired timer, in deadline order.
    pub(crate) fn process_timeouts(&mut self) {
        self.flush_rearm();
        let Some(top) = self.heap.peek() else { return };
        let mut now = self.now_ns();
        if top.deadline > now {
            // The coarse clock lags by up to its resolution: if the wait was
            // cut short by that, take a precise reading instead of spinning.
            let res = self.clock.coarse_resolution_ns();
            if res == 0 || top.deadline - now > res {
                return;
            }
            now = self.now.max(self.clock.precise_ns());
            self.now = now;
            if top.deadline > now {
                return;
            }
        }
        while let Some(top) = self.heap.peek() {
            if top.deadline > now {
                break;
            }
            // The next minimum is one of the root's children: start loading
            // their events while this one expires.
            for k in self.heap.root_children() {
                if let Some(s) = self.slots.get(k as usize) {
                    crate::sys::hint::prefetch(s);
                }
            }
            if top.key >= COMMON_KEY {
                // One at a time, so heap timers and queue heads interleave
                // in deadline order; removing the head re-keys the queue.
                let q = (top.key - COMMON_KEY) as usize;
                let head = self.commons[q].head;
                self.expire(head);
            } else {
                self.expire(top.key);
            }
        }
    }

    fn expire(&mut self, idx: u32) {
        if self.d(idx).what.contains(What::PERSIST) {
            // Persistent events keep their I/O; the timer is re-armed when
            // the callback is processed.
            self.timer_remove(idx);
            self.recount(idx);
        } else {
            self.del_idx(idx);
        }
        self.activate_idx(idx, What::TIMEOUT, 1);
    }

    // ----- activation -----

    /// Queues the callback of `ev` with `what` as its result (`event_active`).
    /// `ncalls` is how many times a signal callback runs (at least once).
    /// Activating an event that is already queued adds `what` to its result.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event.
    #[doc(alias("event_active", "evuser_trigger"))]
    pub fn activate(&mut self, ev: Event, what: What, ncalls: u16) -> io::Result<()> {
        self.data(ev)?;
        self.activate_idx(ev.idx, what, ncalls.max(1));
        Ok(())
    }

    pub(crate) fn activate_idx(&mut self, idx: u32, res: What, ncalls: u16) {
        let Some(p) = Self::activate_in(&mut self.slots, &mut self.active, idx, res, ncalls) else {
            return;
        };
        self.active[usize::from(p)].compact();
        self.counts.active += 1;
        self.counts.max_active = self.counts.max_active.max(self.counts.active);
        if self.running_priority.is_some_and(|rp| p < rp) {
            self.continue_req = true;
        }
    }

    /// The activation itself, on the fields it needs, so the dispatch path
    /// can run it while it iterates the per-fd lists. Returns the priority
    /// the event was queued at, or `None` if it was queued already (its
    /// result then gains `res`) or is not live. Leaves the counts to the
    /// caller.
    #[inline]
    pub(crate) fn activate_in(
        slots: &mut [Slot],
        active: &mut [ActiveQueue],
        idx: u32,
        res: What,
        ncalls: u16,
    ) -> Option<u16> {
        let Slot { act_seq, data, .. } = slots.get_mut(idx as usize)?;
        let d = data.as_mut()?;
        if d.active {
            d.res |= res;
            if res.contains(What::SIGNAL) {
                d.ncalls = d.ncalls.saturating_add(ncalls);
            }
            return None;
        }
        // `priority` is always below the number of queues (`priority_set`
        // checks it and `priority_init` clamps it).
        let q = active.get_mut(usize::from(d.priority))?;
        d.active = true;
        d.res = res;
        d.ncalls = if res.contains(What::SIGNAL) {
            ncalls
        } else {
            1
        };
        *act_seq = act_seq.wrapping_add(1);
        q.push(idx, *act_seq);
        q.live += 1;
        Some(d.priority)
    }

    /// Takes `idx` off its active queue; its queue entry goes dead in place.
    pub(crate) fn deactivate(&mut self, idx: u32) {
        let d = self.d(idx);
        if !d.active {
            return;
        }
        let p = usize::from(d.priority);
        d.active = false;
        d.res = What::empty();
        self.active[p].live -= 1;
        self.counts.active -= 1;
    }

    /// Activates every pending event on `fd` that waits for any of `what`
    /// (`event_base_active_by_fd`).
    #[doc(alias = "event_base_active_by_fd")]
    pub fn active_by_fd(&mut self, fd: RawFd, what: What) {
        if fd < 0 || fd as usize >= self.fds.len() {
            return;
        }
        let mut i = 0;
        while let Some(&idx) = self.fds[fd as usize].events.get(i) {
            let res = self.d(idx).what & what.io();
            if !res.is_empty() {
                self.activate_idx(idx, res, 1);
            }
            i += 1;
        }
    }

    /// Activates the events watching signal `signum` as if it had arrived
    /// (`event_base_active_by_signal`).
    #[doc(alias = "event_base_active_by_signal")]
    pub fn active_by_signal(&mut self, signum: i32) {
        self.signal_activate(signum, 1);
    }

    /// Sets the priority of `ev`, 0 being the first to run (`event_priority_set`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event, `InvalidInput` for a priority beyond
    /// [`npriorities`](Self::npriorities), `WouldBlock` while the event's
    /// callback is queued.
    #[doc(alias = "event_priority_set")]
    pub fn priority_set(&mut self, ev: Event, priority: u16) -> io::Result<()> {
        let n = self.npriorities();
        let d = self.data_mut(ev)?;
        if priority >= n {
            return Err(invalid("priority out of range"));
        }
        if d.active {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the event is active",
            ));
        }
        d.priority = priority;
        Ok(())
    }

    /// Which of `what` `ev` is pending on, with its timeout's expiry if
    /// armed (`event_pending`). `What::TIMEOUT` in `what` asks about the timeout.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event.
    #[doc(alias("event_pending", "evtimer_pending", "evsignal_pending"))]
    pub fn pending(&self, ev: Event, what: What) -> io::Result<(What, Option<Instant>)> {
        let d = self.data(ev)?;
        let mut p = What::empty();
        if d.inserted {
            p |= d.what & (What::READ | What::WRITE | What::CLOSED | What::SIGNAL);
        }
        let armed = d.timer != TimerState::None;
        if armed {
            p |= What::TIMEOUT;
        }
        if d.active {
            p |= d.res;
        }
        let deadline = if armed && what.contains(What::TIMEOUT) {
            Some(self.clock.to_instant(d.deadline))
        } else {
            None
        };
        Ok((p & what, deadline))
    }

    /// Everything about one event (`event_get_fd`, `event_get_events`,
    /// `event_get_priority`, `event_get_assignment`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed event.
    #[doc(alias(
        "event_get_fd",
        "event_get_events",
        "event_get_priority",
        "event_get_assignment"
    ))]
    #[doc(alias("event_get_signal", "event_get_base", "event_get_callback"))]
    pub fn event_info(&self, ev: Event) -> io::Result<EventInfo> {
        let d = self.data(ev)?;
        Ok(self.info_of(ev, d))
    }

    pub(crate) fn info_of(&self, ev: Event, d: &EvData) -> EventInfo {
        let (pending, deadline) = self
            .pending(ev, What::all())
            .unwrap_or((What::empty(), None));
        EventInfo {
            event: ev,
            fd: (d.kind == Kind::Io).then_some(d.fd),
            signal: (d.kind == Kind::Signal).then_some(d.fd),
            what: d.what,
            priority: d.priority,
            pending: pending.difference(if d.active { d.res } else { What::empty() })
                | if d.timer != TimerState::None {
                    What::TIMEOUT
                } else {
                    What::empty()
                },
            deadline,
            active: d.active.then_some(d.res),
        }
    }

    /// The event whose callback is running now (`event_base_get_running_event`).
    #[doc(alias = "event_base_get_running_event")]
    #[must_use]
    pub fn running_event(&self) -> Option<Event> {
        self.running_event
    }

    /// Counts events of the kinds in `which` (`event_base_get_num_events`).
    #[doc(alias = "event_base_get_num_events")]
    #[must_use]
    pub fn num_events(&self, which: CountFlags) -> usize {
        let c = &self.counts;
        let mut n = 0;
        if which.contains(CountFlags::ACTIVE) {
            n += c.active;
        }
        if which.contains(CountFlags::VIRTUAL) {
            n += c.virt;
        }
        if which.contains(CountFlags::ADDED) {
            n += c.added;
        }
        n
    }

    /// The most events of the kinds in `which` seen at once, optionally
    /// resetting the maxima to the current counts (`event_base_get_max_events`).
    #[doc(alias = "event_base_get_max_events")]
    pub fn max_events(&mut self, which: CountFlags, clear: bool) -> usize {
        let c = &mut self.counts;
        let mut n = 0;
        if which.contains(CountFlags::ACTIVE) {
            n += c.max_active;
            if clear {
                c.max_active = c.active;
            }
        }
        if which.contains(CountFlags::VIRTUAL) {
            n += c.max_virt;
            if clear {
                c.max_virt = c.virt;
            }
        }
        if which.contains(CountFlags::ADDED) {
            n += c.max_added;
            if clear {
                c.max_added = c.added;
            }
        }
        n
    }

    /// The base's instance of the extension state `T`, created with
    /// `T::default()` on first use.
    ///
    /// This is how the layers above the reactor keep their objects inside the
    /// base, so that every callback, which gets `&mut EventBase`, can reach
    /// them: `oxevent-bufferevent` keeps its bufferevents here, in a slab with
    /// generational handles, exactly as the base keeps its events. There are
    /// few extension types, so lookup is a short linear scan: the first two
    /// entries are checked inline, and one found further back is swapped
    /// into the second place, so that the two layers in use together (the
    /// bufferevents and the protocol above them) are both found without a
    /// call.
    #[inline]
    pub fn extension<T: std::any::Any + Default>(&mut self) -> &mut T {
        let id = std::any::TypeId::of::<T>();
        let i = match self.extensions.as_slice() {
            [(t, _), ..] if *t == id => 0,
            [_, (t, _), ..] if *t == id => 1,
            _ => self.extension_slow::<T>(id),
        };
        self.extensions[i]
            .1
            .downcast_mut::<T>()
            .expect("the TypeId matched")
    }

    /// The slow path of [`extension`](Self::extension): moves `T`'s entry
    /// to the second place (the first if it is alone), creating it first if
    /// needed, and returns its index.
    #[cold]
    #[inline(never)]
    fn extension_slow<T: std::any::Any + Default>(&mut self, id: std::any::TypeId) -> usize {
        let i = match self.extensions.iter().position(|(t, _)| *t == id) {
            Some(i) => i,
            None => {
                self.extensions.push((id, Box::new(T::default())));
                self.extensions.len() - 1
            }
        };
        let to = i.min(1);
        self.extensions.swap(to, i);
        to
    }

    /// The extension state `T` if it exists, without creating it.
    #[must_use]
    pub fn extension_ref<T: std::any::Any>(&self) -> Option<&T> {
        let id = std::any::TypeId::of::<T>();
        self.extensions
            .iter()
            .find(|(t, _)| *t == id)
            .and_then(|(_, b)| b.downcast_ref::<T>())
    }

    /// Adds a virtual event: something outside the base's own events (such
    /// as a bufferevent's deferred work) that keeps the loop from exiting.
    pub fn add_virtual(&mut self) {
        self.counts.virt += 1;
        self.counts.max_virt = self.counts.max_virt.max(self.counts.virt);
    }

    /// Removes a virtual event added by [`add_virtual`](Self::add_virtual).
    pub fn del_virtual(&mut self) {
        self.counts.virt = self.counts.virt.saturating_sub(1);
    }

    pub(crate) fn has_events(&self) -> bool {
        self.counts.added > 0 || self.counts.virt > 0 || self.counts.active > 0
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[test]
    fn an_event_slot_fits_one_cache_line() {
        assert_eq!(size_of::<Slot>(), 64, "one slot per cache line");
        assert_eq!(align_of::<Slot>(), 64);
    }
}
