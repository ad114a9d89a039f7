//! Pair bufferevents: two bufferevents joined in memory. What one writes
//! becomes the other's input, moved without copying, with the reader's
//! watermarks honoured (`bufferevent_pair_new`).

use std::io;

use oxevent_core::{EventBase, What};

use super::{
    BevData, BevEvent, BevFlags, BevOptions, BufferEvent, FlushMode, Kind, bevs, data, eventcb,
    mark_dirty, readcb, update_read_wm, writecb,
};
use crate::slab::Key;

/// The pair side of a bufferevent.
pub(crate) struct PairState {
    pub(crate) partner: Option<Key>,
}

impl PairState {
    /// On free, the partner sees end of file.
    pub(crate) fn release(self, base: &mut EventBase) {
        if let Some(p) = self.partner {
            if let Ok(d) = data(base, p) {
                if let Kind::Pair(ps) = &mut d.kind {
                    ps.partner = None;
                }
                eventcb(
                    base,
                    p,
                    BevEvent::new(BevFlags::READING | BevFlags::EOF, None),
                );
            }
        }
    }
}

fn partner(base: &mut EventBase, key: Key) -> Option<Key> {
    match &data(base, key).ok()?.kind {
        Kind::Pair(p) => p.partner,
        _ => None,
    }
}

impl BufferEvent {
    /// Two bufferevents joined in memory (`bufferevent_pair_new`).
    ///
    /// # Errors
    ///
    /// None today; the `io::Result` keeps the signature of the other constructors.
    #[doc(alias = "bufferevent_pair_new")]
    pub fn pair(base: &mut EventBase, options: BevOptions) -> io::Result<(Self, Self)> {
        let a = Self::insert(
            base,
            BevData::new(Kind::Pair(PairState { partner: None }), options),
        );
        let b = Self::insert(
            base,
            BevData::new(
                Kind::Pair(PairState {
                    partner: Some(a.key),
                }),
                options,
            ),
        );
        if let Kind::Pair(p) = &mut data(base, a.key)?.kind {
            p.partner = Some(b.key);
        }
        Ok((a, b))
    }

    /// The other end of a pair, while both exist (`bufferevent_pair_get_partner`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_pair_get_partner")]
    pub fn pair_partner(self, base: &mut EventBase) -> io::Result<Option<BufferEvent>> {
        data(base, self.key)?;
        Ok(partner(base, self.key).map(|key| BufferEvent { key }))
    }
}

/// Moves `src`'s output into `dst`'s input: everything with `ignore_wm`,
/// else up to `dst`'s read high watermark, and only while `src` may write
/// and `dst` may read. Runs the callbacks the move calls for. Returns the
/// number of bytes moved.
fn transfer(base: &mut EventBase, src: Key, dst: Key, ignore_wm: bool) -> usize {
    let Some((s, d)) = bevs(base).slab.get2_mut(src, dst) else {
        return 0;
    };
    if s.output.is_empty() {
        return 0;
    }
    if !ignore_wm && (!s.enabled.contains(What::WRITE) || !d.wants_read()) {
        return 0;
    }
    let n = if ignore_wm {
        s.output.len()
    } else {
        s.output.len().min(d.read_room())
    };
    if n == 0 {
        return 0;
    }
    let moved = match s.output.remove_buffer(&mut d.input, n) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "pair transfer failed");
            return 0;
        }
    };
    update_read_wm(d);
    let (dst_ready, src_drained) = (d.input.len() >= d.wm_read.0, s.output.len() <= s.wm_write.0);
    if moved > 0 {
        if dst_ready {
            readcb(base, dst);
        }
        if src_drained {
            writecb(base, src);
        }
    }
    moved
}

/// The per-iteration flush: data flows both ways as far as watermarks allow.
pub(crate) fn flush_normal(base: &mut EventBase, key: Key) {
    if let Ok(d) = data(base, key) {
        update_read_wm(d);
    }
    let Some(p) = partner(base, key) else { return };
    transfer(base, key, p, false);
    transfer(base, p, key, false);
}

/// `bufferevent_flush` on a pair.
pub(crate) fn flush(
    base: &mut EventBase,
    key: Key,
    what: What,
    mode: FlushMode,
) -> io::Result<bool> {
    data(base, key)?;
    let Some(p) = partner(base, key) else {
        return Ok(false);
    };
    let force = mode != FlushMode::Normal;
    let mut moved = 0;
    if what.contains(What::WRITE) {
        moved += transfer(base, key, p, force);
    }
    if what.contains(What::READ) {
        moved += transfer(base, p, key, force);
    }
    if mode == FlushMode::Finished && what.contains(What::WRITE) {
        eventcb(
            base,
            p,
            BevEvent::new(BevFlags::READING | BevFlags::EOF, None),
        );
    }
    let _ = mark_dirty(base, key);
    Ok(moved > 0)
}
