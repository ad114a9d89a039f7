//! Filter bufferevents: transform the data of an underlying bufferevent on
//! the way in and on the way out (`bufferevent_filter_new`), e.g. for
//! compression or a framing layer; the TLS crate is built the same way.

use std::io;

use oxevent_core::{EventBase, What};

use super::{
    BevData, BevEvent, BevOptions, BufferEvent, FlushMode, Kind, bevs, data, eventcb, mark_dirty,
    readcb, suspend, update_read_wm, writecb,
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

/// The filter side of a bufferevent.
pub(crate) struct FilterState {
    under: Key,
    input: Option<FilterFn>,
    output: Option<FilterFn>,
}

impl FilterState {
    pub(crate) fn release(self, base: &mut EventBase, options: BevOptions) {
        let under = BufferEvent { key: self.under };
        if options.contains(BevOptions::CLOSE_ON_FREE) {
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
        data(base, under.key)?;
        let me = Self::insert(
            base,
            BevData::new(
                Kind::Filter(FilterState {
                    under: under.key,
                    input,
                    output,
                }),
                options,
            ),
        );
        let key = me.key;
        under.on_read(base, move |base, _| {
            pull_input(base, key, FlushMode::Normal)
        })?;
        under.on_write(base, move |base, _| {
            push_output(base, key, FlushMode::Normal);
        })?;
        under.on_event(base, move |base, _, ev| eventcb(base, key, ev))?;
        under.enable(base, What::READ | What::WRITE)?;
        Ok(me)
    }

    /// The bufferevent a filter wraps (`bufferevent_get_underlying`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_get_underlying")]
    pub fn underlying(self, base: &mut EventBase) -> io::Result<Option<BufferEvent>> {
        Ok(match &data(base, self.key)?.kind {
            Kind::Filter(f) => Some(BufferEvent { key: f.under }),
            _ => None,
        })
    }
}

/// Runs a filter with the callback taken out of its slot, so it can be
/// called with both buffers borrowed from the slab.
fn run(
    base: &mut EventBase,
    key: Key,
    inbound: bool,
    mode: FlushMode,
) -> Option<(FilterResult, usize)> {
    let d = data(base, key).ok()?;
    let under = state(d).under;
    let mut f = if inbound {
        state(d).input.take()
    } else {
        state(d).output.take()
    };
    let (me, u) = bevs(base).slab.get2_mut(key, under)?;
    let (src, dst, limit) = if inbound {
        let room = me.read_room();
        (
            &mut u.input,
            &mut me.input,
            (room != usize::MAX).then_some(room),
        )
    } else {
        (&mut me.output, &mut u.output, None)
    };
    let before = dst.len();
    let result = match f.as_mut() {
        Some(f) => f(src, dst, limit, mode),
        None => {
            let n = limit.unwrap_or(usize::MAX).min(src.len());
            match src.remove_buffer(dst, n) {
                Ok(_) => FilterResult::Ok,
                Err(_) => FilterResult::Error,
            }
        }
    };
    let produced = dst.len().saturating_sub(before);
    if let Ok(d) = data(base, key) {
        let s = state(d);
        if inbound { s.input = f } else { s.output = f }
    }
    Some((result, produced))
}

/// Underlying data arrived (or room opened): filter it into our input.
fn pull_input(base: &mut EventBase, key: Key, mode: FlushMode) {
    let Ok(d) = data(base, key) else { return };
    if !d.enabled.contains(What::READ) {
        return;
    }
    let Some((result, produced)) = run(base, key, true, mode) else {
        return;
    };
    if result == FilterResult::Error {
        eventcb(
            base,
            key,
            BevEvent::new(super::BevFlags::READING | super::BevFlags::ERROR, None),
        );
        return;
    }
    let Ok(d) = data(base, key) else { return };
    let changed = update_read_wm(d);
    let under = BufferEvent {
        key: state(d).under,
    };
    let ready = produced > 0 && d.input.len() >= d.wm_read.0;
    // Behind the high watermark: stop the underlying reads until drained.
    if changed {
        let suspended = d.read_suspend & suspend::WM != 0;
        if suspended {
            let _ = under.disable(base, What::READ);
        } else {
            let _ = under.enable(base, What::READ);
        }
    }
    if ready {
        readcb(base, key);
    }
}

/// Our output has data: filter it into the underlying output.
fn push_output(base: &mut EventBase, key: Key, mode: FlushMode) -> usize {
    let Ok(d) = data(base, key) else { return 0 };
    if !d.enabled.contains(What::WRITE) {
        return 0;
    }
    let had = d.output.len();
    let under = BufferEvent {
        key: state(d).under,
    };
    let Some((result, produced)) = run(base, key, false, mode) else {
        return 0;
    };
    if result == FilterResult::Error {
        eventcb(
            base,
            key,
            BevEvent::new(super::BevFlags::WRITING | super::BevFlags::ERROR, None),
        );
        return 0;
    }
    let _ = under.touch(base);
    let Ok(d) = data(base, key) else {
        return produced;
    };
    let drained = had > 0 && d.output.len() <= d.wm_write.0;
    if drained {
        writecb(base, key);
    }
    produced
}

/// The per-iteration flush of a filter: output goes down, and reading
/// resumes if the input was drained below the high watermark.
pub(crate) fn flush_normal(base: &mut EventBase, key: Key) {
    let Ok(d) = data(base, key) else { return };
    let was_suspended = d.read_suspend & suspend::WM != 0;
    update_read_wm(d);
    let now_suspended = d.read_suspend & suspend::WM != 0;
    let under = BufferEvent {
        key: state(d).under,
    };
    if was_suspended && !now_suspended {
        let _ = under.enable(base, What::READ);
        // Data may already wait in the underlying input.
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
