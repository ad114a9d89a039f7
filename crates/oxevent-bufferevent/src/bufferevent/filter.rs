//! Filter bufferevents: transform the data of an underlying bufferevent on
//! the way in and on the way out (`bufferevent_filter_new`), e.g. for
//! compression or a framing layer.
//!
//! A filter is either a pair of closures ([`FilterFn`], libevent's
//! `bufferevent_filter_cb`) or a [`Filter`] object, the general hook a
//! protocol layer such as TLS needs: it sees all four buffers (its own
//! input and output, the underlying input and output) in each direction, so
//! reading may write to the underlying output (handshake messages) and
//! writing may wait for input; it reports events (`CONNECTED` when its
//! handshake completes, its own EOF and errors), rewrites the underlying
//! bufferevent's events, tells whether it needs the underlying bufferevent
//! to read even when the user does not ([`Filter::wants_input`]) and
//! whether it holds input it has not delivered yet ([`Filter::pending_input`]),
//! in which case it is run again without new underlying data as soon as
//! there is room in the input.

use std::any::Any;
use std::fmt;
use std::io;

use oxevent_core::{EventBase, What};

use super::{
    BevData, BevEvent, BevFlags, BevOptions, BufferEvent, FlushMode, Kind, PackedTimeout, Reported,
    after_layer_run, bevs, data, eventcb, mark_dirty, read_budget, suspend, update_read_wm,
};
use crate::buffer::Buffer;
use crate::slab::Key;

/// What a filter function reports (`enum bufferevent_filter_result`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterResult {
    /// Some data was processed (`BEV_OK`).
    Ok,
    /// More input is needed before anything can be produced (`BEV_NEED_MORE`).
    NeedMore,
    /// The data is bad; the bufferevent reports an error (`BEV_ERROR`).
    Error,
}

/// A filter: moves and transforms data from `src` to `dst`, producing at
/// most `limit` bytes (`None`: no limit), honouring the flush mode
/// (`bufferevent_filter_cb`).
pub type FilterFn =
    Box<dyn FnMut(&mut Buffer, &mut Buffer, Option<usize>, FlushMode) -> FilterResult>;

/// What a [`Filter`] works on: the four buffers, the read limits and the
/// flush mode, and the events it reports.
pub struct FilterCtx<'a> {
    /// The filter bufferevent's input: where decoded data goes.
    pub input: &'a mut Buffer,
    /// The filter bufferevent's output: what the user wrote.
    pub output: &'a mut Buffer,
    /// The underlying bufferevent's input: the raw data read.
    pub under_input: &'a mut Buffer,
    /// The underlying bufferevent's output: what goes down the wire.
    pub under_output: &'a mut Buffer,
    /// Room left in `input` below the read high watermark (`None`: no
    /// limit). A filter never produces more than this into `input`.
    pub limit: Option<usize>,
    /// The bufferevent's max single read: the most a filter should produce
    /// into `input` in one run (it is run again if it says it has more,
    /// see [`Filter::pending_input`]).
    pub max_read: usize,
    /// The flush mode ([`FlushMode::Normal`] but for `bufferevent_flush`).
    pub mode: FlushMode,
    /// Whether the user has reading enabled and not suspended: if not, a
    /// filter should not produce into `input` (it may still handshake).
    pub reading: bool,
    reported: Reported,
}

impl fmt::Debug for FilterCtx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterCtx")
            .field("input", &self.input.len())
            .field("output", &self.output.len())
            .field("under_input", &self.under_input.len())
            .field("under_output", &self.under_output.len())
            .field("limit", &self.limit)
            .field("max_read", &self.max_read)
            .field("mode", &self.mode)
            .field("reading", &self.reading)
            .field("events", &self.reported.events)
            .finish()
    }
}

impl FilterCtx<'_> {
    /// Reports `what` to the filter bufferevent's event callback once the
    /// filter returns (after its read callback for the data produced in
    /// the same run, except `CONNECTED`, which comes before it). Several
    /// reports in one run are merged.
    pub fn report(&mut self, what: BevFlags, error: Option<i32>) {
        self.reported.add(what, error);
    }

    /// How many more bytes may be produced into the input in this run: the
    /// smaller of the room below the high watermark and the max single
    /// read, 0 if the user does not read.
    #[must_use]
    pub fn read_budget(&self) -> usize {
        read_budget(self.reading, self.limit, self.max_read)
    }
}

/// A general filter hook, for a layer that is more than two byte
/// transforms (TLS). Install one with [`BufferEvent::filter_with`].
///
/// `on_input` runs when the underlying bufferevent read data, when
/// reading resumes (the input was drained below its high watermark or
/// reading was enabled) while the underlying input holds data or the
/// filter has pending input, and on `bufferevent_flush` of the read side.
/// `on_output` runs when the user's output has data, when the underlying
/// output drained, and on flush. Both may use all four buffers. After each
/// run the underlying bufferevent is flushed if its output grew, the read
/// callback runs if the input reached its low watermark, the write callback
/// if the output drained to its low watermark, and the reported events go
/// to the event callback.
pub trait Filter: 'static {
    /// Underlying data arrived, or there is room for more input.
    fn on_input(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult;

    /// The user wrote data, or the underlying output drained.
    fn on_output(&mut self, cx: &mut FilterCtx<'_>) -> FilterResult;

    /// The underlying bufferevent reported `ev`: returns what the filter
    /// bufferevent reports instead (`None` swallows it). The default passes
    /// it on.
    fn on_event(&mut self, cx: &mut FilterCtx<'_>, ev: BevEvent) -> Option<BevEvent> {
        let _ = cx;
        Some(ev)
    }

    /// Whether the underlying bufferevent must read even when the user has
    /// not enabled reading (e.g. during a handshake). Default: no.
    fn wants_input(&self) -> bool {
        false
    }

    /// Whether the filter holds input it could deliver without new
    /// underlying data (e.g. records already decrypted). If so it is run
    /// again as soon as the input has room. Default: no.
    fn pending_input(&self) -> bool {
        false
    }

    /// The filter bufferevent is being freed: last words (e.g. a TLS
    /// close_notify) go into `under_output`, which is flushed before the
    /// underlying bufferevent is freed (with `CLOSE_ON_FREE`) or kept.
    fn on_free(&mut self, under_output: &mut Buffer) {
        let _ = under_output;
    }

    /// `self`, to reach the concrete type through
    /// [`BufferEvent::filter_hook`]: implement it as `self`.
    fn as_any(&mut self) -> &mut dyn Any;
}

/// The two kinds of filter. The closures are boxed together, so that the
/// hook is two words and a filter's state no larger than a socket's (the
/// size of every bufferevent's slot).
enum Hook {
    Fns(Box<Fns>),
    Obj(Box<dyn Filter>),
}

/// The closures of a closure filter.
struct Fns {
    input: Option<FilterFn>,
    output: Option<FilterFn>,
}

/// The filter side of a bufferevent.
pub(crate) struct FilterState {
    pub(crate) under: Key,
    /// `None` while the hook runs (taken out of its slot).
    hook: Option<Hook>,
    /// Behaves as a socket bufferevent to the user: `fd()` is the
    /// underlying socket's, `underlying()` is `None`.
    pub(crate) socket_mode: bool,
    /// Whether the underlying bufferevent was last told to read.
    under_reading: bool,
    /// The timeouts last handed to the underlying bufferevent, packed:
    /// 16 bytes instead of 32 keep this state no larger than a socket's,
    /// and so every bufferevent's slot smaller.
    under_timeouts: [PackedTimeout; 2],
}

impl FilterState {
    pub(crate) fn release(mut self, base: &mut EventBase, options: BevOptions) {
        let under = BufferEvent { key: self.under };
        if let Some(Hook::Obj(h)) = self.hook.as_mut() {
            if let Ok(u) = data(base, self.under) {
                h.on_free(&mut u.output);
            }
        }
        if options.contains(BevOptions::CLOSE_ON_FREE) {
            // Last words first: whatever the socket takes now is sent.
            if data(base, self.under).is_ok_and(|u| !u.output.is_empty()) {
                let _ = under.flush(base, What::WRITE, FlushMode::Finished);
            }
            let _ = under.free(base);
        } else {
            let _ = under.clear_callbacks(base);
        }
    }
}

fn state(d: &mut BevData) -> &mut FilterState {
    match &mut d.kind {
        Kind::Filter(f) => f,
        _ => unreachable!("filter functions are only called for filter bufferevents"),
    }
}

fn state_of(base: &mut EventBase, key: Key) -> io::Result<&mut FilterState> {
    match &mut data(base, key)?.kind {
        Kind::Filter(f) => Ok(f),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a filter bufferevent",
        )),
    }
}

impl BufferEvent {
    /// A bufferevent that filters `under` (`bufferevent_filter_new`): data
    /// read by `under` passes through `input` into this one's input; data
    /// written here passes through `output` into `under`'s output. A `None`
    /// filter passes data through unchanged. `under`'s callbacks are taken
    /// over; its events reach this bufferevent's event callback. With
    /// [`BevOptions::CLOSE_ON_FREE`], freeing the filter frees `under`.
    ///
    /// # Errors
    ///
    /// `NotFound` if `under` was freed.
    #[doc(alias = "bufferevent_filter_new")]
    pub fn filter(
        base: &mut EventBase,
        under: BufferEvent,
        input: Option<FilterFn>,
        output: Option<FilterFn>,
        options: BevOptions,
    ) -> io::Result<Self> {
        Self::new_filter(
            base,
            under,
            Hook::Fns(Box::new(Fns { input, output })),
            options,
        )
    }

    /// A bufferevent that filters `under` through a [`Filter`] object: as
    /// [`filter`](Self::filter), with the general hook.
    ///
    /// # Errors
    ///
    /// `NotFound` if `under` was freed.
    pub fn filter_with(
        base: &mut EventBase,
        under: BufferEvent,
        hook: Box<dyn Filter>,
        options: BevOptions,
    ) -> io::Result<Self> {
        Self::new_filter(base, under, Hook::Obj(hook), options)
    }

    fn new_filter(
        base: &mut EventBase,
        under: BufferEvent,
        hook: Hook,
        options: BevOptions,
    ) -> io::Result<Self> {
        data(base, under.key)?;
        let me = Self::insert(
            base,
            BevData::new(
                Kind::Filter(FilterState {
                    under: under.key,
                    hook: Some(hook),
                    socket_mode: false,
                    under_reading: false,
                    under_timeouts: [PackedTimeout::NONE; 2],
                }),
                options,
            ),
        );
        let key = me.key;
        under.on_read(base, move |base, _| {
            pull_input(base, key, FlushMode::Normal);
        })?;
        under.on_write(base, move |base, _| {
            push_output(base, key, FlushMode::Normal);
        })?;
        under.on_event(base, move |base, _, ev| under_event(base, key, ev))?;
        under.enable(base, What::WRITE)?;
        sync(base, key)?;
        Ok(me)
    }

    /// The bufferevent a filter wraps (`bufferevent_get_underlying`); `None`
    /// for a filter in socket mode, as for libevent's TLS socket
    /// bufferevents.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_get_underlying")]
    pub fn underlying(self, base: &mut EventBase) -> io::Result<Option<BufferEvent>> {
        Ok(match &data(base, self.key)?.kind {
            Kind::Filter(f) if !f.socket_mode => Some(BufferEvent { key: f.under }),
            _ => None,
        })
    }

    /// The bufferevent a filter wraps, in socket mode too.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for another kind.
    pub fn filter_underlying(self, base: &mut EventBase) -> io::Result<BufferEvent> {
        Ok(BufferEvent {
            key: state_of(base, self.key)?.under,
        })
    }

    /// Makes a filter over a socket bufferevent look like a socket
    /// bufferevent: [`fd`](Self::fd) is the socket's, and
    /// [`underlying`](Self::underlying) is `None` (libevent's TLS socket
    /// mode). Timeouts are always handed to the underlying bufferevent.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for another kind.
    pub fn set_filter_socket_mode(self, base: &mut EventBase, on: bool) -> io::Result<()> {
        state_of(base, self.key)?.socket_mode = on;
        Ok(())
    }

    /// The [`Filter`] object of a filter bufferevent, as its concrete type.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` for another kind
    /// or another type of filter; `WouldBlock` if called from inside the
    /// filter's own run.
    pub fn filter_hook<T: Filter>(self, base: &mut EventBase) -> io::Result<&mut T> {
        let wrong = || {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a filter bufferevent of that type",
            )
        };
        match state_of(base, self.key)?.hook.as_mut() {
            Some(Hook::Obj(h)) => h.as_any().downcast_mut::<T>().ok_or_else(wrong),
            Some(Hook::Fns(_)) => Err(wrong()),
            None => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the filter is running",
            )),
        }
    }

    /// Runs `f` on the [`Filter`] object with a context over the four
    /// buffers (no read limit unless a high watermark is set), then does
    /// what a filter run does: flushes the underlying output, runs the read
    /// and write callbacks as the buffers call for, reports the events.
    /// This is how a layer starts a handshake or a shutdown on its own.
    ///
    /// # Errors
    ///
    /// As for [`filter_hook`](Self::filter_hook).
    pub fn with_filter_hook<T: Filter, R>(
        self,
        base: &mut EventBase,
        f: impl FnOnce(&mut T, &mut FilterCtx<'_>) -> R,
    ) -> io::Result<R> {
        self.filter_hook::<T>(base)?;
        let mut out = None;
        let mut f = Some(f);
        let res = run(base, self.key, FlushMode::Normal, &mut |hook, cx| {
            let Hook::Obj(h) = hook else {
                return FilterResult::Error;
            };
            match (h.as_any().downcast_mut::<T>(), f.take()) {
                (Some(t), Some(f)) => {
                    out = Some(f(t, cx));
                    FilterResult::Ok
                }
                _ => FilterResult::Error,
            }
        });
        let Some(outcome) = res else {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "the filter is running",
            ));
        };
        after_run(base, self.key, outcome, BevFlags::empty());
        out.ok_or_else(|| io::Error::other("the filter hook did not run"))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    Input,
    Output,
}

/// What one run did, for the work that follows it.
struct Outcome {
    result: FilterResult,
    produced: usize,
    output_before: usize,
    output_after: usize,
    under_grew: bool,
    /// The hook took from the underlying input: its read watermark may
    /// let it read again.
    under_took: bool,
    reported: Reported,
    under: Key,
}

/// Runs the hook with it taken out of its slot, so that it can be called
/// with the four buffers borrowed from the slab. `None` if the bufferevent
/// is gone or its hook is already running.
fn run(
    base: &mut EventBase,
    key: Key,
    mode: FlushMode,
    call: &mut dyn FnMut(&mut Hook, &mut FilterCtx<'_>) -> FilterResult,
) -> Option<Outcome> {
    let d = data(base, key).ok()?;
    let s = state(d);
    let under = s.under;
    let mut hook = s.hook.take()?;
    let Some((me, u)) = bevs(base).slab.get2_mut(key, under) else {
        if let Ok(d) = data(base, key) {
            state(d).hook = Some(hook);
        }
        return None;
    };
    let room = me.read_room();
    let reading = me.wants_read();
    let (max_read, output_before, under_before) = (me.max_read, me.output.len(), u.output.len());
    let under_input_before = u.input.len();
    let input_before = me.input.len();
    let BevData { input, output, .. } = me;
    let mut cx = FilterCtx {
        input,
        output,
        under_input: &mut u.input,
        under_output: &mut u.output,
        limit: (room != usize::MAX).then_some(room),
        max_read,
        mode,
        reading,
        reported: Reported::default(),
    };
    let result = call(&mut hook, &mut cx);
    let reported = cx.reported;
    let produced = cx.input.len().saturating_sub(input_before);
    let output_after = cx.output.len();
    let under_grew = cx.under_output.len() > under_before;
    let under_took = cx.under_input.len() < under_input_before;
    if let Ok(d) = data(base, key) {
        state(d).hook = Some(hook);
    }
    Some(Outcome {
        result,
        produced,
        output_before,
        output_after,
        under_grew,
        under_took,
        reported,
        under,
    })
}

/// The built-in behaviour of each direction for each kind of hook.
fn call_dir(dir: Dir) -> impl FnMut(&mut Hook, &mut FilterCtx<'_>) -> FilterResult {
    move |hook, cx| match hook {
        Hook::Obj(h) => match dir {
            Dir::Input => h.on_input(cx),
            Dir::Output => h.on_output(cx),
        },
        Hook::Fns(fns) => {
            let Fns { input, output } = &mut **fns;
            let (f, src, dst, limit) = match dir {
                Dir::Input => (input, &mut *cx.under_input, &mut *cx.input, cx.limit),
                Dir::Output => (output, &mut *cx.output, &mut *cx.under_output, None),
            };
            match f.as_mut() {
                Some(f) => f(src, dst, limit, cx.mode),
                None => {
                    let n = limit.unwrap_or(usize::MAX).min(src.len());
                    match src.remove_buffer(dst, n) {
                        Ok(_) => FilterResult::Ok,
                        Err(_) => FilterResult::Error,
                    }
                }
            }
        }
    }
}

/// After a run: flush the underlying output, apply the watermarks, run
/// the callbacks and report the events (`CONNECTED` before the read
/// callback, the rest after it). `error_flags` is what a
/// [`FilterResult::Error`] reports when the hook reported no error itself.
fn after_run(base: &mut EventBase, key: Key, o: Outcome, error_flags: BevFlags) {
    let under = BufferEvent { key: o.under };
    if o.under_grew || o.under_took {
        let _ = under.touch(base);
    }
    let mut reported = o.reported;
    if o.result == FilterResult::Error && !reported.events.contains(BevFlags::ERROR) {
        reported.events |= error_flags | BevFlags::ERROR;
    }
    let Ok(d) = data(base, key) else { return };
    if update_read_wm(d) {
        let _ = sync(base, key);
    }
    after_layer_run(
        base,
        key,
        o.produced,
        (o.output_before, o.output_after),
        reported,
    );
    // The hook's needs may have changed (a handshake finished), and it may
    // hold more input than it delivered: come back for it next pass.
    let _ = sync(base, key);
    let more = data(base, key).is_ok_and(|d| {
        d.wants_read()
            && d.read_room() > 0
            && matches!(&state(d).hook, Some(Hook::Obj(h)) if h.pending_input())
    });
    if more {
        let _ = mark_dirty(base, key);
    }
}

/// Whether the filter has the user's reading on, or needs input itself.
fn may_read(d: &mut BevData) -> bool {
    d.wants_read() || matches!(&state(d).hook, Some(Hook::Obj(h)) if h.wants_input())
}

/// Underlying data arrived (or room opened): filter it into our input.
fn pull_input(base: &mut EventBase, key: Key, mode: FlushMode) {
    let Ok(d) = data(base, key) else { return };
    if !may_read(d) {
        return;
    }
    let mut call = call_dir(Dir::Input);
    let Some(o) = run(base, key, mode, &mut call) else {
        // Re-entered from the hook's own run: try again next pass.
        let _ = mark_dirty(base, key);
        return;
    };
    after_run(base, key, o, BevFlags::READING);
}

/// Our output has data: filter it into the underlying output.
fn push_output(base: &mut EventBase, key: Key, mode: FlushMode) -> usize {
    let Ok(d) = data(base, key) else { return 0 };
    if !d.enabled.contains(What::WRITE) {
        return 0;
    }
    let mut call = call_dir(Dir::Output);
    let Some(o) = run(base, key, mode, &mut call) else {
        let _ = mark_dirty(base, key);
        return 0;
    };
    let under = BufferEvent { key: o.under };
    let _ = under.touch(base);
    let produced = o.output_before.saturating_sub(o.output_after);
    after_run(base, key, o, BevFlags::WRITING);
    produced
}

/// An event of the underlying bufferevent: through the hook, then to ours.
fn under_event(base: &mut EventBase, key: Key, ev: BevEvent) {
    let is_obj = data(base, key).is_ok_and(|d| matches!(state(d).hook, Some(Hook::Obj(_))));
    let mut out = Some(ev);
    if is_obj {
        let mut call = |hook: &mut Hook, cx: &mut FilterCtx<'_>| {
            if let Hook::Obj(h) = hook {
                out = h.on_event(cx, ev);
            }
            FilterResult::Ok
        };
        match run(base, key, FlushMode::Normal, &mut call) {
            Some(o) => after_run(base, key, o, BevFlags::empty()),
            None => out = Some(ev),
        }
    }
    // A socket bufferevent stops reading by itself on a read timeout, EOF
    // or error: the next sync must enable it again, not trust its memory.
    if ev.what.contains(BevFlags::READING)
        && ev
            .what
            .intersects(BevFlags::TIMEOUT | BevFlags::EOF | BevFlags::ERROR)
    {
        if let Ok(d) = data(base, key) {
            state(d).under_reading = false;
        }
    }
    let Some(ev) = out else { return };
    // A timeout disables that direction, as for a socket bufferevent.
    if ev.what.contains(BevFlags::TIMEOUT) {
        if let Ok(d) = data(base, key) {
            if ev.what.contains(BevFlags::READING) {
                d.enabled = d.enabled.difference(What::READ);
            }
            if ev.what.contains(BevFlags::WRITING) {
                d.enabled = d.enabled.difference(What::WRITE);
            }
            let _ = sync(base, key);
        }
    }
    eventcb(base, key, ev);
}

/// Hands the enabled state and the timeouts down to the underlying
/// bufferevent: it reads while we read (or the hook needs input), so a
/// disabled or full filter stops the reads below it.
pub(crate) fn sync(base: &mut EventBase, key: Key) -> io::Result<()> {
    let d = data(base, key)?;
    let want = may_read(d);
    let timeouts = (d.timeout_read, d.timeout_write);
    let s = state(d);
    let under = BufferEvent { key: s.under };
    let (was, old_timeouts) = (s.under_reading, s.under_timeouts);
    let packed = [timeouts.0, timeouts.1];
    s.under_reading = want;
    s.under_timeouts = packed;
    if packed != old_timeouts {
        under.set_timeouts(base, timeouts.0.get(), timeouts.1.get())?;
    }
    if want && !was {
        under.enable(base, What::READ)?;
    } else if !want && was {
        under.disable(base, What::READ)?;
    }
    Ok(())
}

/// The per-iteration flush of a filter: output goes down, and input is
/// pulled again if reading may go on and there is something to pull (the
/// underlying input, or input the hook holds).
pub(crate) fn flush_normal(base: &mut EventBase, key: Key) {
    let Ok(d) = data(base, key) else { return };
    let was_suspended = d.read_suspend & suspend::WM != 0;
    update_read_wm(d);
    let now_suspended = d.read_suspend & suspend::WM != 0;
    if was_suspended != now_suspended {
        let _ = sync(base, key);
    }
    let Ok(d) = data(base, key) else { return };
    let under = state(d).under;
    let pending = matches!(&state(d).hook, Some(Hook::Obj(h)) if h.pending_input());
    let readable = may_read(d) && d.read_room() > 0;
    let under_has = bevs(base)
        .slab
        .get_mut(under)
        .is_some_and(|u| !u.input.is_empty());
    if readable && (pending || under_has) {
        pull_input(base, key, FlushMode::Normal);
    }
    if data(base, key).is_ok_and(|d| !d.output.is_empty()) {
        push_output(base, key, FlushMode::Normal);
    }
}

/// `bufferevent_flush` on a filter.
pub(crate) fn flush(
    base: &mut EventBase,
    key: Key,
    what: What,
    mode: FlushMode,
) -> io::Result<bool> {
    data(base, key)?;
    let mut produced = 0;
    if what.contains(What::READ) {
        let before = data(base, key)?.input.len();
        pull_input(base, key, mode);
        produced += data(base, key).map_or(0, |d| d.input.len().saturating_sub(before));
    }
    if what.contains(What::WRITE) {
        produced += push_output(base, key, mode);
        if let Kind::Filter(f) = &data(base, key)?.kind {
            let under = BufferEvent { key: f.under };
            if mode != FlushMode::Normal {
                under.flush(base, What::WRITE, mode)?;
            }
        }
    }
    let _ = mark_dirty(base, key);
    Ok(produced > 0)
}
