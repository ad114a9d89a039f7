//! Rate limits on bufferevents: a token bucket per bufferevent and groups
//! sharing one bucket (libevent's `bufferevent_ratelim.c`), driven by the
//! arithmetic of `oxevent-ratelim`.
//!
//! Reads and writes take at most what the buckets allow. A bufferevent
//! whose bucket runs dry is suspended in that direction and one timer is
//! armed for the next tick (never a timer per byte); a group has one
//! persistent tick timer that refills the shared bucket and resumes the
//! members in a rotating order.

use std::io;

use oxevent_core::{Event, EventBase, What};
use oxevent_ratelim::{
    GroupChange, MemberId, RateLimitGroup, TokenBucket, TokenBucketConfig, Transition,
};

use super::{BufferEvent, bevs, data, mark_dirty, suspend};
use crate::slab::{Key, Slab, stale};

/// A bufferevent's own limit and its group.
pub(crate) struct RateState {
    cfg: Option<TokenBucketConfig>,
    bucket: Option<TokenBucket>,
    /// Armed only while the bucket keeps a direction suspended.
    timer: Option<Event>,
    group: Option<Key>,
}

impl RateState {
    /// Releases the timer and leaves the group.
    pub(crate) fn release(self, base: &mut EventBase, key: Key) {
        if let Some(t) = self.timer {
            let _ = base.free(t);
        }
        if let Some(g) = self.group {
            if let Some(gd) = bevs(base).groups.get_mut(g) {
                let _ = gd.group.remove_member(member_id(key));
                gd.members.retain(|k| *k != key);
            }
        }
    }
}

/// A group's shared bucket, its tick timer and its members.
pub(crate) struct GroupData {
    group: RateLimitGroup,
    timer: Option<Event>,
    members: Vec<Key>,
}

/// The groups of a base.
pub(crate) type Groups = Slab<GroupData>;

fn member_id(key: Key) -> MemberId {
    MemberId((u64::from(key.idx) << 32) | u64::from(key.generation))
}

fn key_of(id: MemberId) -> Key {
    Key {
        idx: (id.0 >> 32) as u32,
        generation: id.0 as u32,
    }
}

fn rate_of(base: &mut EventBase, key: Key) -> Option<&mut RateState> {
    data(base, key).ok()?.rate.as_deref_mut()
}

fn ensure_rate(base: &mut EventBase, key: Key) -> io::Result<&mut RateState> {
    let d = data(base, key)?;
    Ok(d.rate.get_or_insert_with(|| {
        Box::new(RateState {
            cfg: None,
            bucket: None,
            timer: None,
            group: None,
        })
    }))
}

/// The most bytes the bufferevent may read now, given `max_single`.
pub(crate) fn max_to_read(base: &mut EventBase, key: Key, max_single: usize) -> usize {
    max_to(base, key, max_single, true)
}

/// The most bytes the bufferevent may write now, given `max_single`.
pub(crate) fn max_to_write(base: &mut EventBase, key: Key, max_single: usize) -> usize {
    max_to(base, key, max_single, false)
}

fn max_to(base: &mut EventBase, key: Key, max_single: usize, read: bool) -> usize {
    let Some(r) = rate_of(base, key) else {
        return max_single;
    };
    let own = r.bucket.clone();
    let group = r.group;
    let mut n = match &own {
        Some(b) if read => b.max_to_read(max_single),
        Some(b) => b.max_to_write(max_single),
        None => max_single,
    };
    if let Some(g) = group.and_then(|g| bevs(base).groups.get(g)) {
        let m = if read {
            g.group
                .max_to_read(member_id(key), own.as_ref(), max_single)
        } else {
            g.group
                .max_to_write(member_id(key), own.as_ref(), max_single)
        };
        n = n.min(m.unwrap_or(0));
    }
    n
}

/// Charges `n` bytes read (or written) to the buckets, suspending what ran dry.
pub(crate) fn charge(base: &mut EventBase, key: Key, n: usize, read: bool) {
    if n == 0 {
        return;
    }
    let Some(r) = rate_of(base, key) else { return };
    let group = r.group;
    if let Some(b) = r.bucket.as_mut() {
        let t = if read {
            b.charge_read(n)
        } else {
            b.charge_write(n)
        };
        if t == Transition::Suspended {
            set_suspended(base, key, read, suspend::BW, true);
            arm_timer(base, key);
        }
    }
    if let Some(g) = group {
        let change = match bevs(base).groups.get_mut(g) {
            Some(gd) if read => gd.group.charge_read(member_id(key), n),
            Some(gd) => gd.group.charge_write(member_id(key), n),
            None => return,
        };
        if let Ok(GroupChange::Suspend(members)) = change {
            for m in members {
                set_suspended(base, key_of(m), read, suspend::BW_GROUP, true);
            }
        }
    }
}

fn set_suspended(base: &mut EventBase, key: Key, read: bool, why: u8, on: bool) {
    let Ok(d) = data(base, key) else { return };
    let bits = if read {
        &mut d.read_suspend
    } else {
        &mut d.write_suspend
    };
    if on {
        *bits |= why;
    } else {
        *bits &= !why;
    }
    let _ = BufferEvent { key }.sync(base);
    if !on {
        // Resumed writes need a flush; resumed reads pick up what waits.
        let _ = mark_dirty(base, key);
    }
}

fn arm_timer(base: &mut EventBase, key: Key) {
    let now = base.now();
    let Some(r) = rate_of(base, key) else { return };
    let Some(b) = r.bucket.as_ref() else { return };
    let wait = b.next_tick_at(now).saturating_duration_since(now);
    let timer = match r.timer {
        Some(t) => t,
        None => {
            let t = base.timer_new(move |base, _, _| refill(base, key));
            match rate_of(base, key) {
                Some(r) => r.timer = Some(t),
                None => {
                    let _ = base.free(t);
                    return;
                }
            }
            t
        }
    };
    let _ = base.add(timer, Some(wait));
}

/// The per-bufferevent tick: refill, resume, or wait another tick.
fn refill(base: &mut EventBase, key: Key) {
    let now = base.now();
    let Some(r) = rate_of(base, key) else { return };
    let (Some(cfg), Some(b)) = (r.cfg, r.bucket.as_mut()) else {
        return;
    };
    let _ = b.refill(&cfg, now);
    let still = b.suspended();
    // Clear the bucket's suspension of every direction it no longer holds
    // back (also one set because a read found nothing allowed).
    if !still.read {
        set_suspended(base, key, true, suspend::BW, false);
    }
    if !still.write {
        set_suspended(base, key, false, suspend::BW, false);
    }
    if still.any() {
        arm_timer(base, key);
    }
}

/// Nothing may be read (or written) now: suspend until the next tick.
pub(crate) fn starve(base: &mut EventBase, key: Key, read: bool) {
    let own = rate_of(base, key).is_some_and(|r| r.bucket.is_some());
    if own {
        set_suspended(base, key, read, suspend::BW, true);
        arm_timer(base, key);
    } else {
        // Only the group limits it: wait for the group's tick.
        set_suspended(base, key, read, suspend::BW_GROUP, true);
    }
}

/// The group's tick: refill the shared bucket and resume its members.
fn group_tick(base: &mut EventBase, g: Key) {
    let now = base.now();
    let Some(gd) = bevs(base).groups.get_mut(g) else {
        return;
    };
    let r = gd.group.refill(now);
    for (change, read) in [(r.read, true), (r.write, false)] {
        if let GroupChange::Resume(members) = change {
            for m in members {
                set_suspended(base, key_of(m), read, suspend::BW_GROUP, false);
            }
        }
    }
}

/// A rate-limit group shared by many bufferevents
/// (`struct bufferevent_rate_limit_group`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[doc(alias = "bufferevent_rate_limit_group")]
pub struct RateGroup {
    key: Key,
}

impl RateGroup {
    /// A group with a shared bucket of `cfg` (`bufferevent_rate_limit_group_new`).
    /// Its tick timer runs while the group exists.
    ///
    /// # Errors
    ///
    /// The core's error arming the timer.
    #[doc(alias = "bufferevent_rate_limit_group_new")]
    pub fn new(base: &mut EventBase, cfg: TokenBucketConfig) -> io::Result<Self> {
        let now = base.now();
        let tick = cfg.tick();
        let slot = bevs(base).groups.insert(GroupData {
            group: RateLimitGroup::new(cfg, now),
            timer: None,
            members: Vec::new(),
        });
        let timer =
            match base.event_new(-1, What::PERSIST, move |base, _, _| group_tick(base, slot)) {
                Ok(t) => t,
                Err(e) => {
                    bevs(base).groups.remove(slot);
                    return Err(e);
                }
            };
        if let Some(gd) = bevs(base).groups.get_mut(slot) {
            gd.timer = Some(timer);
        }
        base.add(timer, Some(tick))?;
        Ok(Self { key: slot })
    }

    fn data(self, base: &mut EventBase) -> io::Result<&mut GroupData> {
        bevs(base)
            .groups
            .get_mut(self.key)
            .ok_or_else(|| stale("rate-limit group"))
    }

    /// Changes the shared bucket's configuration (`bufferevent_rate_limit_group_set_cfg`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias = "bufferevent_rate_limit_group_set_cfg")]
    pub fn set_config(self, base: &mut EventBase, cfg: TokenBucketConfig) -> io::Result<()> {
        let now = base.now();
        let gd = self.data(base)?;
        gd.group.set_config(cfg, now);
        match gd.timer {
            Some(t) => base.add(t, Some(cfg.tick())),
            None => Ok(()),
        }
    }

    /// The least each member may take per tick (`bufferevent_rate_limit_group_set_min_share`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group; `InvalidInput` for a share the
    /// configuration cannot hold.
    #[doc(alias = "bufferevent_rate_limit_group_set_min_share")]
    pub fn set_min_share(self, base: &mut EventBase, share: u64) -> io::Result<()> {
        self.data(base)?
            .group
            .set_min_share(share)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// Bytes read and written by the members (`bufferevent_rate_limit_group_get_totals`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias = "bufferevent_rate_limit_group_get_totals")]
    pub fn totals(self, base: &mut EventBase) -> io::Result<(u64, u64)> {
        Ok(self.data(base)?.group.totals())
    }

    /// Resets the totals (`bufferevent_rate_limit_group_reset_totals`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias = "bufferevent_rate_limit_group_reset_totals")]
    pub fn reset_totals(self, base: &mut EventBase) -> io::Result<()> {
        self.data(base)?.group.reset_totals();
        Ok(())
    }

    /// The shared read and write limits now
    /// (`bufferevent_rate_limit_group_get_read_limit`, `_get_write_limit`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias(
        "bufferevent_rate_limit_group_get_read_limit",
        "bufferevent_rate_limit_group_get_write_limit"
    ))]
    pub fn limits(self, base: &mut EventBase) -> io::Result<(i64, i64)> {
        let g = &self.data(base)?.group;
        Ok((g.read_limit(), g.write_limit()))
    }

    /// Takes `n` read (or written) tokens from the shared bucket by hand
    /// (`bufferevent_rate_limit_group_decrement_read`, `_write`); a negative
    /// `n` gives tokens back.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias(
        "bufferevent_rate_limit_group_decrement_read",
        "bufferevent_rate_limit_group_decrement_write"
    ))]
    pub fn decrement(self, base: &mut EventBase, what: What, n: i64) -> io::Result<()> {
        for read in [true, false] {
            if !what.contains(if read { What::READ } else { What::WRITE }) {
                continue;
            }
            let gd = self.data(base)?;
            let change = if read {
                gd.group.decrement_read(n)
            } else {
                gd.group.decrement_write(n)
            };
            match change {
                GroupChange::Suspend(m) => m
                    .into_iter()
                    .for_each(|m| set_suspended(base, key_of(m), read, suspend::BW_GROUP, true)),
                GroupChange::Resume(m) => m
                    .into_iter()
                    .for_each(|m| set_suspended(base, key_of(m), read, suspend::BW_GROUP, false)),
                GroupChange::Unchanged => {}
            }
        }
        Ok(())
    }

    /// Frees the group; its members leave it and are no longer limited by it
    /// (`bufferevent_rate_limit_group_free`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed group.
    #[doc(alias = "bufferevent_rate_limit_group_free")]
    pub fn free(self, base: &mut EventBase) -> io::Result<()> {
        let gd = bevs(base)
            .groups
            .remove(self.key)
            .ok_or_else(|| stale("rate-limit group"))?;
        if let Some(t) = gd.timer {
            base.free(t)?;
        }
        for m in gd.members {
            if let Some(r) = rate_of(base, m) {
                r.group = None;
            }
            set_suspended(base, m, true, suspend::BW_GROUP, false);
            set_suspended(base, m, false, suspend::BW_GROUP, false);
        }
        Ok(())
    }
}

impl BufferEvent {
    /// Limits this bufferevent with its own token bucket, or removes the
    /// limit with `None` (`bufferevent_set_rate_limit`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_set_rate_limit")]
    pub fn set_rate_limit(
        self,
        base: &mut EventBase,
        cfg: Option<TokenBucketConfig>,
    ) -> io::Result<()> {
        let now = base.now();
        let r = ensure_rate(base, self.key)?;
        r.cfg = cfg;
        r.bucket = cfg.map(|c| TokenBucket::new(&c, now));
        if cfg.is_none() {
            if let Some(t) = r.timer.take() {
                base.free(t)?;
            }
            set_suspended(base, self.key, true, suspend::BW, false);
            set_suspended(base, self.key, false, suspend::BW, false);
        }
        Ok(())
    }

    /// Joins `group` (`bufferevent_add_to_rate_limit_group`), leaving any other.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent or group.
    #[doc(alias = "bufferevent_add_to_rate_limit_group")]
    pub fn add_to_group(self, base: &mut EventBase, group: RateGroup) -> io::Result<()> {
        group.data(base)?;
        self.remove_from_group(base)?;
        ensure_rate(base, self.key)?.group = Some(group.key);
        let gd = group.data(base)?;
        let start = gd.group.add_member(member_id(self.key));
        gd.members.push(self.key);
        if start.read {
            set_suspended(base, self.key, true, suspend::BW_GROUP, true);
        }
        if start.write {
            set_suspended(base, self.key, false, suspend::BW_GROUP, true);
        }
        Ok(())
    }

    /// Leaves its group, if any (`bufferevent_remove_from_rate_limit_group`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias = "bufferevent_remove_from_rate_limit_group")]
    pub fn remove_from_group(self, base: &mut EventBase) -> io::Result<()> {
        data(base, self.key)?;
        let Some(g) = rate_of(base, self.key).and_then(|r| r.group.take()) else {
            return Ok(());
        };
        if let Some(gd) = bevs(base).groups.get_mut(g) {
            let _ = gd.group.remove_member(member_id(self.key));
            gd.members.retain(|k| *k != self.key);
        }
        set_suspended(base, self.key, true, suspend::BW_GROUP, false);
        set_suspended(base, self.key, false, suspend::BW_GROUP, false);
        Ok(())
    }

    /// The bucket's read and write limits now (`bufferevent_get_read_limit`,
    /// `bufferevent_get_write_limit`); `i64::MAX` without a limit.
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias("bufferevent_get_read_limit", "bufferevent_get_write_limit"))]
    pub fn rate_limits(self, base: &mut EventBase) -> io::Result<(i64, i64)> {
        data(base, self.key)?;
        Ok(
            match rate_of(base, self.key).and_then(|r| r.bucket.as_ref()) {
                Some(b) => (b.read_limit(), b.write_limit()),
                None => (i64::MAX, i64::MAX),
            },
        )
    }

    /// The most bytes it may read and write now, all limits and the max
    /// single read and write considered (`bufferevent_get_max_to_read`,
    /// `bufferevent_get_max_to_write`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent.
    #[doc(alias("bufferevent_get_max_to_read", "bufferevent_get_max_to_write"))]
    pub fn max_to_transfer(self, base: &mut EventBase) -> io::Result<(usize, usize)> {
        let d = data(base, self.key)?;
        let (mr, mw) = (d.max_read, d.max_write);
        Ok((
            max_to_read(base, self.key, mr),
            max_to_write(base, self.key, mw),
        ))
    }

    /// Takes `n` tokens from its own bucket by hand; negative gives back
    /// (`bufferevent_decrement_read_limit`, `bufferevent_decrement_write_limit`).
    ///
    /// # Errors
    ///
    /// `NotFound` for a freed bufferevent; `InvalidInput` without a limit.
    #[doc(alias(
        "bufferevent_decrement_read_limit",
        "bufferevent_decrement_write_limit"
    ))]
    pub fn decrement_limit(self, base: &mut EventBase, what: What, n: i64) -> io::Result<()> {
        data(base, self.key)?;
        for read in [true, false] {
            if !what.contains(if read { What::READ } else { What::WRITE }) {
                continue;
            }
            let b = rate_of(base, self.key)
                .and_then(|r| r.bucket.as_mut())
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no rate limit is set")
                })?;
            match if read {
                b.decrement_read(n)
            } else {
                b.decrement_write(n)
            } {
                Transition::Suspended => {
                    set_suspended(base, self.key, read, suspend::BW, true);
                    arm_timer(base, self.key);
                }
                Transition::Resumed => set_suspended(base, self.key, read, suspend::BW, false),
                Transition::Unchanged => {}
            }
        }
        Ok(())
    }
}
