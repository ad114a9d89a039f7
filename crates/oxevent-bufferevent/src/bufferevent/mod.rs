//! Bufferevents: buffered, callback-driven connections (libevent's
//! `bufferevent.h`).
//!
//! A [`BufferEvent`] has an input and an output [`Buffer`] and up to three
//! callbacks: *read* (new data reached the input, at or above the read low
//! watermark), *write* (the output drained to or below the write low
//! watermark) and *event* ([`BevFlags`]: connected, EOF, error, timeout, each
//! with reading or writing). Three kinds exist: **socket** (an fd, or a
//! non-blocking connect), **pair** (two bufferevents joined in memory) and
//! **filter** (transforms the data of another bufferevent).
//!
//! Bufferevents live inside the base (in its extension state) behind
//! generational handles, like events: every callback gets `&mut EventBase`
//! and the handle, so it may use or free any bufferevent, its own included;
//! a freed bufferevent's handle is a `NotFound` error and none of its
//! callbacks runs after [`BufferEvent::free`] returns. Another thread frees
//! one with [`BufferEvent::free_from`], which returns once the loop has
//! freed it.
//!
//! **Writes** are flushed once per loop iteration, just before the loop
//! polls: data added to the output (by [`BufferEvent::write`] or through
//! [`BufferEvent::output`]) is written straight away with `writev`, and
//! write interest is registered only if the socket could not take it all.
//! An echo server therefore makes one `writev` per message and no
//! `epoll_ctl` at all, where libevent re-arms its write event on nearly every
//! write. Reads take up to [`BufferEvent::set_max_single_read`] bytes
//! (16 KiB by default) at a time.
//!
//! ```
//! use oxevent_core::{EventBase, What};
//! use oxevent_bufferevent::{BufferEvent, BevOptions};
//!
//! let mut base = EventBase::new().unwrap();
//! let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
//! b.on_read(&mut base, |base, bev| {
//!     let mut got = Vec::new();
//!     got.extend_from_slice(bev.input(base).unwrap().pullup(5).unwrap());
//!     assert_eq!(got, b"hello");
//!     bev.free(base).unwrap();
//! })
//! .unwrap();
//! b.enable(&mut base, What::READ).unwrap();
//! a.write(&mut base, b"hello").unwrap();
//! base.dispatch().unwrap();
//! ```

mod filter;
mod pair;
mod rate;
mod resolve;
mod socket;
mod transport;

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use oxevent_core::{Event, EventBase, Remote, Watcher, What};

use crate::buffer::Buffer;
use crate::slab::{Key, Slab, stale};

pub use filter::{Filter, FilterCtx, FilterFn, FilterResult};
pub use rate::RateGroup;
pub use resolve::{BlockingResolver, Family, Resolve, ResolveDone, ResolvePart};
pub use transport::{Transport, TransportCtx};

/// The default most bytes read or written at once (libevent 2.2's 16 KiB).
pub const DEFAULT_MAX_SINGLE: usize = 16 * 1024;

oxevent_backend::bitflags_type! {
    /// What an event callback reports (libevent's `BEV_EVENT_*`, same values).
    BevFlags: u8 {
        /// The condition arose while reading (`BEV_EVENT_READING`).
        READING = 0x01;
        /// The condition arose while writing (`BEV_EVENT_WRITING`).
        WRITING = 0x02;
        /// End of file (`BEV_EVENT_EOF`).
        EOF = 0x10;
        /// An error; see [`BevEvent::error`] (`BEV_EVENT_ERROR`).
        ERROR = 0x20;
        /// A read or write timeout expired (`BEV_EVENT_TIMEOUT`).
        TIMEOUT = 0x40;
        /// A connect finished (`BEV_EVENT_CONNECTED`).
        CONNECTED = 0x80;
    }
}

oxevent_backend::bitflags_type! {
    /// Options of a bufferevent (libevent's `BEV_OPT_*`, same values).
    BevOptions: u8 {
        /// Close the fd (or free the underlying bufferevent) on free
        /// (`BEV_OPT_CLOSE_ON_FREE`).
        CLOSE_ON_FREE = 0x01;
        /// Run callbacks from the loop after the I/O that caused them, not
        /// from inside it (`BEV_OPT_DEFER_CALLBACKS`).
        DEFER_CALLBACKS = 0x04;
    }
}

/// What an event callback receives: the flags and, with
/// [`BevFlags::ERROR`], the OS error number (`EVUTIL_SOCKET_ERROR()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BevEvent {
    /// What happened.
    pub what: BevFlags,
    /// The raw OS error (`errno`) for an error, when there is one.
    pub error: Option<i32>,
}

impl BevEvent {
    fn new(what: BevFlags, error: Option<i32>) -> Self {
        Self { what, error }
    }

    /// The error as an `io::Error`, if any.
    #[must_use]
    pub fn io_error(&self) -> Option<io::Error> {
        self.error.map(io::Error::from_raw_os_error)
    }
}

/// How much to flush (libevent's `enum bufferevent_flush_mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushMode {
    /// Process data as usual (`BEV_NORMAL`).
    Normal,
    /// Push everything through now, ignoring watermarks (`BEV_FLUSH`).
    Flush,
    /// As `Flush`, and no more data will come: the other side sees EOF
    /// (`BEV_FINISHED`).
    Finished,
}

/// A handle to a bufferevent in one [`EventBase`] (`struct bufferevent *`).
///
/// It is `Copy`; the bufferevent lives in the base until
/// [`free`](BufferEvent::free). Every method takes the base, and a stale
/// handle gives `NotFound`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[doc(alias = "bufferevent")]
pub struct BufferEvent {
    pub(crate) key: Key,
}

impl fmt::Debug for BufferEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BufferEvent({}v{})", self.key.idx, self.key.generation)
    }
}

type DataCb = Box<dyn FnMut(&mut EventBase, BufferEvent)>;
type EventCb = Box<dyn FnMut(&mut EventBase, BufferEvent, BevEvent)>;

/// Why reading is suspended (libevent's `BEV_SUSPEND_*`).
pub(crate) mod suspend {
    /// The input reached the high watermark.
    pub(crate) const WM: u8 = 0x01;
    /// A connect is in progress.
    pub(crate) const CONNECTING: u8 = 0x02;
    /// The bufferevent's own token bucket is empty.
    pub(crate) const BW: u8 = 0x08;
    /// Its rate-limit group's bucket is empty.
    pub(crate) const BW_GROUP: u8 = 0x10;
}

pub(crate) enum Kind {
    Socket(socket::SocketState),
    Pair(pair::PairState),
    Filter(filter::FilterState),
}

/// A timeout in one word: nanoseconds (saturating at about 584 years), or
/// `u64::MAX` for none. Half the size of an `Option<Duration>`, in every
/// bufferevent's slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PackedTimeout(u64);

impl PackedTimeout {
    /// No timeout.
    pub(crate) const NONE: Self = Self(u64::MAX);

    pub(crate) fn new(t: Option<Duration>) -> Self {
        Self(t.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).map_or(u64::MAX - 1, |n| n.min(u64::MAX - 1))
        }))
    }

    pub(crate) fn get(self) -> Option<Duration> {
        (self.0 != u64::MAX).then(|| Duration::from_nanos(self.0))
    }
}

pub(crate) struct BevData {
    pub(crate) kind: Kind,
    pub(crate) input: Buffer,
    pub(crate) output: Buffer,
    readcb: Option<DataCb>,
    writecb: Option<DataCb>,
    eventcb: Option<EventCb>,
    /// READ and/or WRITE, as enabled by the user.
    pub(crate) enabled: What,
    pub(crate) read_suspend: u8,
    pub(crate) write_suspend: u8,
    pub(crate) wm_read: (usize, usize),
    pub(crate) wm_write: (usize, usize),
    pub(crate) timeout_read: PackedTimeout,
    pub(crate) timeout_write: PackedTimeout,
    pub(crate) max_read: usize,
    pub(crate) max_write: usize,
    pub(crate) options: BevOptions,
    pub(crate) dirty: bool,
    /// Deferred callbacks waiting for the next flush.
    pub(crate) pending_read: bool,
    pub(crate) pending_write: bool,
    pub(crate) pending_event: Option<BevEvent>,
    /// Rate limits, boxed: most bufferevents have none.
    pub(crate) rate: Option<Box<rate::RateState>>,
}

impl BevData {
    pub(crate) fn new(kind: Kind, options: BevOptions) -> Self {
        Self {
            kind,
            input: Buffer::new(),
            output: Buffer::new(),
            readcb: None,
            writecb: None,
            eventcb: None,
            enabled: What::WRITE,
            read_suspend: 0,
            write_suspend: 0,
            wm_read: (0, 0),
            wm_write: (0, 0),
            timeout_read: PackedTimeout::NONE,
            timeout_write: PackedTimeout::NONE,
            max_read: DEFAULT_MAX_SINGLE,
            max_write: DEFAULT_MAX_SINGLE,
            options,
            dirty: false,
            pending_read: false,
            pending_write: false,
            pending_event: None,
            rate: None,
        }
    }

    /// Whether reading should be armed now.
    pub(crate) fn wants_read(&self) -> bool {
        self.enabled.contains(What::READ) && self.read_suspend == 0
    }

    /// Room left below the read high watermark (`usize::MAX` if none).
    pub(crate) fn read_room(&self) -> usize {
        match self.wm_read.1 {
            0 => usize::MAX,
            high => high.saturating_sub(self.input.len()),
        }
    }
}

/// The per-base state of this layer, kept in the base's extension map.
#[derive(Default)]
pub(crate) struct Bevs {
    pub(crate) slab: Slab<BevData>,
    pub(crate) groups: rate::Groups,
    dirty: Vec<Key>,
    /// The prepare watcher that flushes dirty bufferevents.
    watcher: Option<Watcher>,
    /// Whether the base holds a virtual event for the dirty list.
    virtual_held: bool,
    /// A no-op user event, activated when dirty work is left over so the
    /// loop polls without sleeping.
    kick: Option<Event>,
    /// Where sockets are read into before the data is copied to the input
    /// when the input has no initialized space to read into (see
    /// `Buffer::read_socket_via`); as large as the largest max single read.
    pub(crate) scratch: Vec<u8>,
    /// The bufferevent each socket read or write event belongs to, by the
    /// event's index ([`Event::index`]). The events' callbacks capture
    /// nothing, so core boxes them without allocating: 8 bytes here per
    /// event instead of a 32-byte malloc chunk.
    owners: Vec<Key>,
}

pub(crate) fn bevs(base: &mut EventBase) -> &mut Bevs {
    base.extension::<Bevs>()
}

/// Records that `ev`'s callback works for the bufferevent `key` (see
/// [`owner`]). Every event created with a capture-free callback that calls
/// [`owner`] must be recorded before it can run.
pub(crate) fn set_owner(base: &mut EventBase, ev: Event, key: Key) {
    let owners = &mut bevs(base).owners;
    let i = ev.index();
    if owners.len() <= i {
        owners.resize(i + 1, key);
    }
    owners[i] = key;
}

/// The bufferevent that the live event `ev` was recorded for with
/// [`set_owner`]. An index is reused only after its event is freed, and a
/// freed event's callback never runs, so the entry read here is the one
/// its creator wrote.
pub(crate) fn owner(base: &mut EventBase, ev: Event) -> Option<Key> {
    bevs(base).owners.get(ev.index()).copied()
}

pub(crate) fn data(base: &mut EventBase, key: Key) -> io::Result<&mut BevData> {
    bevs(base)
        .slab
        .get_mut(key)
        .ok_or_else(|| stale("bufferevent"))
}

impl BufferEvent {
    pub(crate) fn insert(base: &mut EventBase, data: BevData) -> Self {
        let needs_watcher = bevs(base).watcher.is_none();
        if needs_watcher {
            let w = base.watch_prepare(|base, _| flush_dirty(base));
            bevs(base).watcher = Some(w);
        }
        Self {
            key: bevs(base).slab.insert(data),
        }
    }

    fn data<'b>(&self, base: &'b mut EventBase) -> io::Result<&'b mut BevData> {
        data(base, self.key)
    }

    /// Whether the handle still refers to a live bufferevent.
    #[must_use]
    pub fn is_valid(self, base: &mut EventBase) -> bool {
        bevs(base).slab.get(self.key).is_some()
    }

    /// Sets the read callback (`bufferevent_setcb`): called when new data
    /// brought the input to at least the read low watermark.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_setcb")]
    pub fn on_read(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, BufferEvent) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.readcb = Some(Box::new(cb));
        Ok(())
    }

    /// Sets the write callback: called when the output drained to or below
    /// the write low watermark (0 by default: fully written).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    pub fn on_write(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, BufferEvent) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.writecb = Some(Box::new(cb));
        Ok(())
    }

    /// Sets the event callback: connected, EOF, error and timeout.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    pub fn on_event(
        self,
        base: &mut EventBase,
        cb: impl FnMut(&mut EventBase, BufferEvent, BevEvent) + 'static,
    ) -> io::Result<()> {
        self.data(base)?.eventcb = Some(Box::new(cb));
        Ok(())
    }

    /// Removes all three callbacks (`bufferevent_setcb` with NULLs).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    pub fn clear_callbacks(self, base: &mut EventBase) -> io::Result<()> {
        let d = self.data(base)?;
        d.readcb = None;
        d.writecb = None;
        d.eventcb = None;
        Ok(())
    }

    /// The input buffer (`bufferevent_get_input`). Draining it below the
    /// read high watermark resumes reading at the next loop iteration.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_get_input")]
    pub fn input(self, base: &mut EventBase) -> io::Result<&mut Buffer> {
        self.touch(base)?;
        Ok(&mut self.data(base)?.input)
    }

    /// The output buffer (`bufferevent_get_output`). What is added to it is
    /// written when the loop next polls.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_get_output")]
    pub fn output(self, base: &mut EventBase) -> io::Result<&mut Buffer> {
        self.touch(base)?;
        Ok(&mut self.data(base)?.output)
    }

    /// Both buffers at once, `(input, output)`: an echo is
    /// `output.add_buffer(input)`.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    pub fn buffers(self, base: &mut EventBase) -> io::Result<(&mut Buffer, &mut Buffer)> {
        self.touch(base)?;
        let d = self.data(base)?;
        Ok((&mut d.input, &mut d.output))
    }

    /// Moves everything in `self`'s input to `to`'s output without copying
    /// (what a proxy does); returns the number of bytes moved.
    ///
    /// # Errors
    ///
    /// `NotFound` if either bufferevent was freed; `InvalidInput` if they
    /// are the same (use [`buffers`](Self::buffers)); a frozen buffer.
    pub fn transfer(self, base: &mut EventBase, to: BufferEvent) -> io::Result<usize> {
        self.touch(base)?;
        to.touch(base)?;
        let (from, dst) = bevs(base).slab.get2_mut(self.key, to.key).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "transfer needs two distinct live bufferevents",
            )
        })?;
        let n = from.input.len();
        dst.output
            .add_buffer(&mut from.input)
            .map_err(io::Error::other)?;
        Ok(n)
    }

    /// Appends `data` to the output (`bufferevent_write`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; a frozen output.
    #[doc(alias = "bufferevent_write")]
    pub fn write(self, base: &mut EventBase, data: &[u8]) -> io::Result<()> {
        self.output(base)?.add(data).map_err(io::Error::other)
    }

    /// Moves all of `buf` to the output without copying (`bufferevent_write_buffer`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; a frozen buffer.
    #[doc(alias = "bufferevent_write_buffer")]
    pub fn write_buffer(self, base: &mut EventBase, buf: &mut Buffer) -> io::Result<()> {
        self.output(base)?.add_buffer(buf).map_err(io::Error::other)
    }

    /// Removes up to `dst.len()` bytes from the input (`bufferevent_read`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_read")]
    pub fn read(self, base: &mut EventBase, dst: &mut [u8]) -> io::Result<usize> {
        self.input(base)?.remove(dst).map_err(io::Error::other)
    }

    /// Moves the whole input into `dst` without copying (`bufferevent_read_buffer`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_read_buffer")]
    pub fn read_buffer(self, base: &mut EventBase, dst: &mut Buffer) -> io::Result<()> {
        dst.add_buffer(self.input(base)?).map_err(io::Error::other)
    }

    /// Enables reading and/or writing (`bufferevent_enable`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; the backend's error arming the fd.
    #[doc(alias = "bufferevent_enable")]
    pub fn enable(self, base: &mut EventBase, what: What) -> io::Result<()> {
        let d = self.data(base)?;
        d.enabled |= what & (What::READ | What::WRITE);
        self.sync(base)?;
        self.touch(base)
    }

    /// Disables reading and/or writing (`bufferevent_disable`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_disable")]
    pub fn disable(self, base: &mut EventBase, what: What) -> io::Result<()> {
        let d = self.data(base)?;
        d.enabled = d.enabled.difference(what);
        self.sync(base)
    }

    /// What is enabled (`bufferevent_get_enabled`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_get_enabled")]
    pub fn enabled(self, base: &mut EventBase) -> io::Result<What> {
        Ok(self.data(base)?.enabled)
    }

    /// Sets the watermarks for `what` (`bufferevent_setwatermark`). Reading
    /// suspends while the input holds `high` bytes or more (0: no limit) and
    /// the read callback waits for `low`; the write callback runs once the
    /// output is at or below `low`.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` if `high` is set
    /// and below `low`.
    #[doc(alias("bufferevent_setwatermark", "bufferevent_getwatermark"))]
    pub fn set_watermark(
        self,
        base: &mut EventBase,
        what: What,
        low: usize,
        high: usize,
    ) -> io::Result<()> {
        if high != 0 && high < low {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "high watermark below low watermark",
            ));
        }
        let d = self.data(base)?;
        if what.contains(What::READ) {
            d.wm_read = (low, high);
        }
        if what.contains(What::WRITE) {
            d.wm_write = (low, high);
        }
        self.touch(base)
    }

    /// Read and write timeouts (`bufferevent_set_timeouts`): if no data
    /// could be read (or written) for that long while enabled, the event
    /// callback gets `TIMEOUT` with `READING` (or `WRITING`) and that
    /// direction is disabled.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_set_timeouts")]
    pub fn set_timeouts(
        self,
        base: &mut EventBase,
        read: Option<Duration>,
        write: Option<Duration>,
    ) -> io::Result<()> {
        let d = self.data(base)?;
        d.timeout_read = PackedTimeout::new(read);
        d.timeout_write = PackedTimeout::new(write);
        if let Kind::Socket(s) = &mut d.kind {
            s.rearm = true;
        }
        self.sync(base)
    }

    /// The most bytes read at once (`bufferevent_set_max_single_read`; 16 KiB by default).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for 0.
    #[doc(alias = "bufferevent_set_max_single_read")]
    pub fn set_max_single_read(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max single read must be positive",
            ));
        }
        self.data(base)?.max_read = n;
        Ok(())
    }

    /// The most bytes written at once (`bufferevent_set_max_single_write`; 16 KiB by default).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for 0.
    #[doc(alias = "bufferevent_set_max_single_write")]
    pub fn set_max_single_write(self, base: &mut EventBase, n: usize) -> io::Result<()> {
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max single write must be positive",
            ));
        }
        self.data(base)?.max_write = n;
        Ok(())
    }

    /// The fd of a socket bufferevent (`bufferevent_getfd`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_getfd")]
    pub fn fd(self, base: &mut EventBase) -> io::Result<Option<RawFd>> {
        let under = match &self.data(base)?.kind {
            Kind::Socket(s) => return Ok(s.fd.as_ref().map(AsRawFd::as_raw_fd)),
            // A filter in socket mode (TLS) shows its socket's fd.
            Kind::Filter(f) if f.socket_mode => BufferEvent { key: f.under },
            _ => return Ok(None),
        };
        under.fd(base)
    }

    /// Sets the priority of the bufferevent's events (`bufferevent_priority_set`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; the core's errors for a bad priority.
    #[doc(alias = "bufferevent_priority_set")]
    pub fn priority_set(self, base: &mut EventBase, priority: u16) -> io::Result<()> {
        let evs: Vec<Event> = match &self.data(base)?.kind {
            Kind::Socket(s) => [s.read_ev, s.write_ev].into_iter().flatten().collect(),
            _ => Vec::new(),
        };
        for ev in evs {
            base.priority_set(ev, priority)?;
        }
        Ok(())
    }

    /// Runs the read and/or write callback as if data had arrived or been
    /// written (`bufferevent_trigger`). Unless `ignore_watermarks`, the read
    /// callback runs only if the input is at the read low watermark and the
    /// write callback only if the output is at or below the write one.
    /// With `defer`, they run from the loop instead of from this call.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_trigger")]
    pub fn trigger(
        self,
        base: &mut EventBase,
        what: What,
        ignore_watermarks: bool,
        defer: bool,
    ) -> io::Result<()> {
        let d = self.data(base)?;
        let read = what.contains(What::READ) && (ignore_watermarks || d.input.len() >= d.wm_read.0);
        let write =
            what.contains(What::WRITE) && (ignore_watermarks || d.output.len() <= d.wm_write.0);
        if defer {
            d.pending_read |= read;
            d.pending_write |= write;
            return self.touch(base);
        }
        if read {
            run_readcb(base, self.key);
        }
        if write {
            run_writecb(base, self.key);
        }
        Ok(())
    }

    /// Runs the event callback with `what` (`bufferevent_trigger_event`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_trigger_event")]
    pub fn trigger_event(
        self,
        base: &mut EventBase,
        what: BevFlags,
        defer: bool,
    ) -> io::Result<()> {
        let ev = BevEvent::new(what, None);
        if defer {
            merge_pending_event(self.data(base)?, ev);
            return self.touch(base);
        }
        self.data(base)?;
        run_eventcb(base, self.key, ev);
        Ok(())
    }

    /// Pushes data through (`bufferevent_flush`): for a pair, moves the
    /// output to the partner now, ignoring watermarks; with
    /// [`FlushMode::Finished`] the other side then sees EOF. For a filter,
    /// runs the output filter with the mode. For a socket, tries to write
    /// the output now; for a socket with a [`Transport`], runs it with the
    /// mode (a TLS session sends close_notify on `Finished`). Returns
    /// whether anything was moved.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_flush")]
    pub fn flush(self, base: &mut EventBase, what: What, mode: FlushMode) -> io::Result<bool> {
        let kind = match &self.data(base)?.kind {
            Kind::Socket(s) if s.transport.is_some() => 3,
            Kind::Socket(_) => 0,
            Kind::Pair(_) => 1,
            Kind::Filter(_) => 2,
        };
        match kind {
            0 => Ok(what.contains(What::WRITE) && socket::flush_write(base, self.key) > 0),
            3 => transport::flush(base, self.key, what, mode),
            1 => pair::flush(base, self.key, what, mode),
            _ => filter::flush(base, self.key, what, mode),
        }
    }

    /// Frees the bufferevent (`bufferevent_free`): its events go, the fd is
    /// closed with [`BevOptions::CLOSE_ON_FREE`], a pair's partner sees EOF,
    /// and no callback of it runs afterwards. Data still in the output is
    /// dropped, as in libevent.
    ///
    /// # Errors
    ///
    /// `NotFound` if it was already freed.
    #[doc(alias = "bufferevent_free")]
    pub fn free(self, base: &mut EventBase) -> io::Result<()> {
        let mut d = bevs(base)
            .slab
            .remove(self.key)
            .ok_or_else(|| stale("bufferevent"))?;
        if let Some(r) = d.rate.take() {
            r.release(base, self.key);
        }
        match d.kind {
            Kind::Socket(s) => s.release(base, d.options),
            Kind::Pair(p) => p.release(base),
            Kind::Filter(f) => f.release(base, d.options),
        }
        Ok(())
    }

    /// Frees a bufferevent from another thread: the free runs on the loop,
    /// and this returns once it has (so no callback of it runs after this
    /// returns). The loop must be running or run later.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when called on the loop's own thread (use
    /// [`free`](Self::free) there); `NotFound` if it was already freed;
    /// `BrokenPipe` if the base was dropped before the loop got to it.
    pub fn free_from(self, remote: &Remote) -> io::Result<()> {
        if remote.is_loop_thread() {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "free_from on the loop's thread would wait for itself; call free(base)",
            ));
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        remote.run_in_loop(move |base| {
            let _ = tx.send(self.free(base).map_err(|e| e.kind()));
        })?;
        match rx.recv() {
            Ok(r) => r.map_err(io::Error::from),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the base went away before the free ran",
            )),
        }
    }

    /// Marks the bufferevent for the next flush.
    pub(crate) fn touch(self, base: &mut EventBase) -> io::Result<()> {
        mark_dirty(base, self.key)
    }

    /// Arms or disarms the kind's events to match the enabled state.
    pub(crate) fn sync(self, base: &mut EventBase) -> io::Result<()> {
        let kind = match &self.data(base)?.kind {
            Kind::Socket(_) => 0,
            Kind::Filter(_) => 2,
            Kind::Pair(_) => 1,
        };
        match kind {
            0 => socket::sync(base, self.key),
            2 => {
                filter::sync(base, self.key)?;
                self.touch(base)
            }
            _ => self.touch(base),
        }
    }
}

pub(crate) fn mark_dirty(base: &mut EventBase, key: Key) -> io::Result<()> {
    let Bevs {
        slab,
        dirty,
        virtual_held,
        ..
    } = bevs(base);
    let d = slab.get_mut(key).ok_or_else(|| stale("bufferevent"))?;
    if note_dirty(d, key, dirty, virtual_held) {
        base.add_virtual();
    }
    Ok(())
}

/// Puts `d` (the bufferevent `key`) on the dirty list, for callers that
/// already hold the parts of [`Bevs`]. Returns whether the caller must now
/// add the base's virtual event ([`EventBase::add_virtual`]).
pub(crate) fn note_dirty(
    d: &mut BevData,
    key: Key,
    dirty: &mut Vec<Key>,
    virtual_held: &mut bool,
) -> bool {
    if d.dirty {
        return false;
    }
    d.dirty = true;
    dirty.push(key);
    !std::mem::replace(virtual_held, true)
}

/// The prepare-watcher body: for every bufferevent touched since the last
/// iteration, write what is pending, move pair data, re-check watermarks
/// and run deferred callbacks. Work that callbacks create meanwhile is
/// taken in a few more passes; past that it waits for the next iteration,
/// and a queued no-op event keeps the loop from sleeping on it.
fn flush_dirty(base: &mut EventBase) {
    const PASSES: usize = 4;
    for _ in 0..PASSES {
        let mut keys = std::mem::take(&mut bevs(base).dirty);
        if keys.is_empty() {
            break;
        }
        for &key in &keys {
            let Some(d) = bevs(base).slab.get_mut(key) else {
                continue;
            };
            d.dirty = false;
            let kind = match d.kind {
                Kind::Socket(_) => 0,
                Kind::Pair(_) => 1,
                Kind::Filter(_) => 2,
            };
            match kind {
                0 => socket::flush(base, key),
                1 => pair::flush_normal(base, key),
                _ => filter::flush_normal(base, key),
            }
            // Deferred bufferevent callbacks, then the buffers' own: buffers
            // in deferred-callback mode report their changes here, from the
            // loop (libevent's deferred evbuffer callbacks).
            let Some(d) = bevs(base).slab.get_mut(key) else {
                continue;
            };
            let d = if d.pending_read || d.pending_write || d.pending_event.is_some() {
                run_deferred(base, key);
                let Some(d) = bevs(base).slab.get_mut(key) else {
                    continue;
                };
                d
            } else {
                d
            };
            d.input.run_deferred_callbacks();
            d.output.run_deferred_callbacks();
        }
        let b = bevs(base);
        if b.dirty.is_empty() {
            keys.clear();
            b.dirty = keys;
        }
    }
    let b = bevs(base);
    if b.dirty.is_empty() {
        if b.virtual_held {
            b.virtual_held = false;
            base.del_virtual();
        }
    } else {
        let kick = match b.kick {
            Some(ev) => ev,
            None => {
                let ev = base.user_new(|_, _, _| {});
                bevs(base).kick = Some(ev);
                ev
            }
        };
        let _ = base.activate(kick, What::READ, 1);
    }
}

fn run_deferred(base: &mut EventBase, key: Key) {
    let Some(d) = bevs(base).slab.get_mut(key) else {
        return;
    };
    let (r, w, e) = (d.pending_read, d.pending_write, d.pending_event.take());
    d.pending_read = false;
    d.pending_write = false;
    if r {
        run_readcb(base, key);
    }
    if w {
        run_writecb(base, key);
    }
    if let Some(ev) = e {
        run_eventcb(base, key, ev);
    }
}

fn merge_pending_event(d: &mut BevData, ev: BevEvent) {
    d.pending_event = Some(match d.pending_event {
        Some(old) => BevEvent::new(old.what | ev.what, ev.error.or(old.error)),
        None => ev,
    });
}

/// Runs (or defers) the read callback.
pub(crate) fn readcb(base: &mut EventBase, key: Key) {
    let Some(d) = bevs(base).slab.get_mut(key) else {
        return;
    };
    if d.options.contains(BevOptions::DEFER_CALLBACKS) {
        d.pending_read = true;
        let _ = mark_dirty(base, key);
    } else if let Some(cb) = d.readcb.take() {
        run_readcb_taken(base, key, cb);
    }
}

/// Runs (or defers) the write callback.
pub(crate) fn writecb(base: &mut EventBase, key: Key) {
    let Some(d) = bevs(base).slab.get_mut(key) else {
        return;
    };
    if d.options.contains(BevOptions::DEFER_CALLBACKS) {
        d.pending_write = true;
        let _ = mark_dirty(base, key);
    } else if let Some(cb) = d.writecb.take() {
        run_writecb_taken(base, key, cb);
    }
}

/// Runs (or defers) the event callback.
pub(crate) fn eventcb(base: &mut EventBase, key: Key, ev: BevEvent) {
    let Some(d) = bevs(base).slab.get_mut(key) else {
        return;
    };
    if d.options.contains(BevOptions::DEFER_CALLBACKS) {
        merge_pending_event(d, ev);
        let _ = mark_dirty(base, key);
    } else if let Some(cb) = d.eventcb.take() {
        run_eventcb_taken(base, key, cb, ev);
    }
}

/// Runs a callback already taken out of its slot, then puts it back unless
/// the bufferevent was freed (or the callback replaced) meanwhile, and
/// marks the bufferevent dirty: the callback may have drained the input or
/// filled the output. One slot lookup after the call.
macro_rules! run_taken {
    ($base:expr, $key:expr, $field:ident, $cb:expr, $($arg:expr),*) => {{
        let base: &mut EventBase = $base;
        let key: Key = $key;
        let mut cb = $cb;
        cb(base, BufferEvent { key } $(, $arg)*);
        let Bevs {
            slab,
            dirty,
            virtual_held,
            ..
        } = bevs(base);
        if let Some(d) = slab.get_mut(key) {
            if d.$field.is_none() {
                d.$field = Some(cb);
            }
            if note_dirty(d, key, dirty, virtual_held) {
                base.add_virtual();
            }
        }
    }};
}

fn run_readcb_taken(base: &mut EventBase, key: Key, cb: DataCb) {
    run_taken!(base, key, readcb, cb,);
}

fn run_writecb_taken(base: &mut EventBase, key: Key, cb: DataCb) {
    run_taken!(base, key, writecb, cb,);
}

fn run_eventcb_taken(base: &mut EventBase, key: Key, cb: EventCb, ev: BevEvent) {
    run_taken!(base, key, eventcb, cb, ev);
}

fn run_readcb(base: &mut EventBase, key: Key) {
    if let Some(cb) = bevs(base).slab.get_mut(key).and_then(|d| d.readcb.take()) {
        run_readcb_taken(base, key, cb);
    }
}

fn run_writecb(base: &mut EventBase, key: Key) {
    if let Some(cb) = bevs(base).slab.get_mut(key).and_then(|d| d.writecb.take()) {
        run_writecb_taken(base, key, cb);
    }
}

fn run_eventcb(base: &mut EventBase, key: Key, ev: BevEvent) {
    if let Some(cb) = bevs(base).slab.get_mut(key).and_then(|d| d.eventcb.take()) {
        run_eventcb_taken(base, key, cb, ev);
    }
}

/// What one run of a layer over a bufferevent's buffers (a filter hook, a
/// socket transport) reported for the event callback: the events merged,
/// and the last error given.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reported {
    pub(crate) events: BevFlags,
    pub(crate) error: Option<i32>,
}

impl Reported {
    /// Merges one report.
    pub(crate) fn add(&mut self, what: BevFlags, error: Option<i32>) {
        self.events |= what;
        if error.is_some() {
            self.error = error;
        }
    }
}

/// How many more bytes a layer may put into the input in one run: the
/// smaller of `limit` (the room below the high watermark) and the max
/// single read, 0 if the user does not read.
pub(crate) fn read_budget(reading: bool, limit: Option<usize>, max_read: usize) -> usize {
    if !reading {
        return 0;
    }
    limit.unwrap_or(usize::MAX).min(max_read)
}

/// The user's callbacks after a layer's run, in order: `CONNECTED`, the
/// read callback if `produced` bytes brought the input to its low
/// watermark, the write callback if the run drained the output (from
/// `output` .0 to .1 bytes) to its low watermark, then the other reported
/// events.
pub(crate) fn after_layer_run(
    base: &mut EventBase,
    key: Key,
    produced: usize,
    output: (usize, usize),
    reported: Reported,
) {
    let Some(d) = bevs(base).slab.get_mut(key) else {
        return;
    };
    let ready = produced > 0 && d.input.len() >= d.wm_read.0;
    let (before, after) = output;
    let drained = before > 0 && after < before && after <= d.wm_write.0;
    let mut events = reported.events;
    if events.contains(BevFlags::CONNECTED) {
        eventcb(base, key, BevEvent::new(BevFlags::CONNECTED, None));
        events = events.difference(BevFlags::CONNECTED);
    }
    if ready {
        readcb(base, key);
    }
    if drained {
        writecb(base, key);
    }
    if !events.is_empty() {
        eventcb(base, key, BevEvent::new(events, reported.error));
    }
}

/// Applies the read high watermark: suspends or resumes reading.
/// Returns whether the suspension changed.
pub(crate) fn update_read_wm(d: &mut BevData) -> bool {
    let over = d.wm_read.1 != 0 && d.input.len() >= d.wm_read.1;
    let was = d.read_suspend & suspend::WM != 0;
    if over != was {
        if over {
            d.read_suspend |= suspend::WM;
        } else {
            d.read_suspend &= !suspend::WM;
        }
        true
    } else {
        false
    }
}

/// Keeps `fd` open, or closes it, as the options say.
pub(crate) fn release_fd(fd: OwnedFd, options: BevOptions) {
    if !options.contains(BevOptions::CLOSE_ON_FREE) {
        // Not ours to close: hand the number back to the caller's world.
        let _ = std::os::fd::IntoRawFd::into_raw_fd(fd);
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    /// An idle connection should cost a few hundred bytes: the bufferevent
    /// itself, two empty buffers (which allocate nothing) and two event slots.
    #[test]
    fn an_idle_bufferevent_is_small() {
        let bev = size_of::<BevData>();
        let slot = size_of::<Option<BevData>>() + 8;
        eprintln!(
            "BevData {bev} bytes, Buffer {} bytes, slab entry {slot} bytes",
            size_of::<Buffer>()
        );
        assert!(slot <= 512, "a bufferevent takes {slot} bytes in the slab");
    }
}
