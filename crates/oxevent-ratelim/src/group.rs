//! [`RateLimitGroup`]: one shared token bucket for many connections, with fair shares.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crate::bucket::{Directions, TokenBucket, clamp_to_usize, usize_to_i64};
use crate::config::{RATE_LIMIT_MAX, TokenBucketConfig};
use crate::error::{Direction, Error, Result};

/// The minimum share of a group member when the group is created: 64 bytes, as in libevent.
pub const DEFAULT_MIN_SHARE: u64 = 64;

/// An opaque name for a group member, chosen by the caller (the bufferevent layer uses its own
/// bufferevent ids). The group never interprets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

impl From<u64> for MemberId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "member {}", self.0)
    }
}

/// What the caller must do to the members of a group after a change of its bucket, for one
/// direction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "Suspend and Resume list members whose I/O must be stopped or restarted"]
pub enum GroupChange {
    /// Nothing to do.
    Unchanged,
    /// The group bucket is exhausted: suspend this direction on every listed member (all of
    /// them), until a later [`Resume`](Self::Resume).
    Suspend(Vec<MemberId>),
    /// The group bucket has tokens again: resume this direction on every listed member (all of
    /// them), in the order given. The order rotates from one resume to the next, so that no
    /// member is always the first to be served.
    Resume(Vec<MemberId>),
}

/// What a tick did to a group: a [`GroupChange`] per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "the lists name members whose I/O must be restarted"]
pub struct GroupRefill {
    /// The change for reading.
    pub read: GroupChange,
    /// The change for writing.
    pub write: GroupChange,
}

/// Per-direction group state.
#[derive(Clone, Debug, Default)]
struct DirState {
    suspended: bool,
    total: u64,
    /// Where the next resume order starts (taken modulo the member count).
    next_start: usize,
}

/// A rate limit shared by many members: one token bucket, divided fairly.
///
/// This is the logic of libevent's `bufferevent_rate_limit_group` without its timer and locks.
/// The caller (the bufferevent layer) keeps one persistent timer per group, armed at
/// [`next_tick_at`](Self::next_tick_at), and on each firing calls [`refill`](Self::refill) and
/// resumes the members it lists. Before each read or write of a member it asks
/// [`max_to_read`](Self::max_to_read) / [`max_to_write`](Self::max_to_write), and after the I/O
/// it calls [`charge_read`](Self::charge_read) / [`charge_write`](Self::charge_write), which
/// report when every member must be suspended.
///
/// # Shares
///
/// A member may take at most `limit / members` bytes at once (libevent divides among all
/// members, not only the active ones), but never less than the minimum share (64 bytes by
/// default, see [`set_min_share`](Self::set_min_share)), so that a large group does not degrade
/// into tiny reads. Unlike libevent, a share is also capped by what the group has left, so a
/// group whose members honour their shares never goes below zero.
///
/// # Fairness
///
/// libevent resumes suspended members starting from a random one each tick. Here the starting
/// member rotates deterministically: each resume starts one member further along than the
/// previous one (separately for reading and writing). Over `n` resumes of a stable group of `n`
/// members each member is first exactly once.
///
/// Dropping the group is `bufferevent_rate_limit_group_free`. Unlike libevent, which asserts
/// that no member is left, the group may be dropped with members; the caller lifts their group
/// suspensions.
///
/// ```
/// use std::time::{Duration, Instant};
/// use oxevent_ratelim::{GroupChange, MemberId, RateLimitGroup, TokenBucketConfig};
///
/// let cfg = TokenBucketConfig::new(1000, 1000, 1000, 1000, Duration::from_millis(100))?;
/// let t0 = Instant::now();
/// let mut group = RateLimitGroup::new(cfg, t0);
/// let (a, b) = (MemberId(1), MemberId(2));
/// group.add_member(a);
/// group.add_member(b);
///
/// assert_eq!(group.max_to_read(a, None, 16384)?, 500); // half of 1000 each
/// assert_eq!(group.charge_read(a, 500)?, GroupChange::Unchanged);
/// assert_eq!(group.max_to_read(b, None, 16384)?, 250); // half of the 500 left
/// // The group runs dry: every member must stop reading.
/// assert_eq!(group.charge_read(b, 500)?, GroupChange::Suspend(vec![a, b]));
/// assert_eq!(group.max_to_read(a, None, 16384)?, 0);
///
/// // Next tick: everybody resumes; the order rotates from tick to tick.
/// let tick = group.refill(t0 + Duration::from_millis(100));
/// assert_eq!(tick.read, GroupChange::Resume(vec![a, b]));
/// assert_eq!(group.totals(), (1000, 0));
/// # Ok::<(), oxevent_ratelim::Error>(())
/// ```
#[doc(alias = "bufferevent_rate_limit_group")]
#[doc(alias = "bufferevent_rate_limit_group_free")]
#[derive(Clone, Debug)]
pub struct RateLimitGroup {
    cfg: TokenBucketConfig,
    bucket: TokenBucket,
    /// INVARIANT: `index[members[i]] == i` for every `i`, and `index` has no other keys.
    members: Vec<MemberId>,
    index: HashMap<MemberId, usize>,
    configured_min_share: u64,
    /// `configured_min_share` capped by both rates.
    min_share: u64,
    read: DirState,
    write: DirState,
}

impl RateLimitGroup {
    /// An empty group with the given configuration; its bucket starts with one tick's worth
    /// and ticks count from `now`. The minimum share is [`DEFAULT_MIN_SHARE`].
    #[doc(alias = "bufferevent_rate_limit_group_new")]
    pub fn new(cfg: TokenBucketConfig, now: Instant) -> Self {
        let mut group = Self {
            cfg,
            bucket: TokenBucket::new(&cfg, now),
            members: Vec::new(),
            index: HashMap::new(),
            configured_min_share: DEFAULT_MIN_SHARE,
            min_share: DEFAULT_MIN_SHARE,
            read: DirState::default(),
            write: DirState::default(),
        };
        group.apply_min_share();
        group
    }

    /// The group's configuration.
    pub fn config(&self) -> &TokenBucketConfig {
        &self.cfg
    }

    /// Replaces the configuration. The bucket levels are only clipped downwards to the new
    /// bursts, the new rates apply from the next tick, and the minimum share is recomputed
    /// against the new rates. If the tick length changed, ticks count again from `now`, and
    /// the caller re-arms its tick timer at [`next_tick_at`](Self::next_tick_at).
    #[doc(alias = "bufferevent_rate_limit_group_set_cfg")]
    pub fn set_config(&mut self, cfg: TokenBucketConfig, now: Instant) {
        self.cfg = cfg;
        self.bucket.reconfigure(&cfg, now);
        self.apply_min_share();
    }

    /// Sets the minimum share: no member is offered less than this at once while the group
    /// has that much left. The effective value is capped by the read and write rates, so that
    /// at least one member can go on each tick (as in libevent); it is recomputed when the
    /// configuration changes. Zero is allowed.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] above [`RATE_LIMIT_MAX`]; the share in effect is then unchanged.
    #[doc(alias = "bufferevent_rate_limit_group_set_min_share")]
    pub fn set_min_share(&mut self, share: u64) -> Result<()> {
        if share > RATE_LIMIT_MAX {
            return Err(Error::TooLarge {
                what: "min share",
                value: share,
            });
        }
        self.configured_min_share = share;
        self.apply_min_share();
        Ok(())
    }

    /// The minimum share in effect (the configured one capped by both rates).
    pub fn min_share(&self) -> u64 {
        self.min_share
    }

    /// The minimum share as last set, before capping by the rates.
    pub fn configured_min_share(&self) -> u64 {
        self.configured_min_share
    }

    fn apply_min_share(&mut self) {
        self.min_share = self
            .configured_min_share
            .min(self.cfg.read_rate())
            .min(self.cfg.write_rate());
    }

    /// Adds a member and returns the directions it must start suspended in (those the group
    /// is suspended in now). Adding a member twice changes nothing.
    #[doc(alias = "bufferevent_add_to_rate_limit_group")]
    pub fn add_member(&mut self, id: MemberId) -> Directions {
        if !self.index.contains_key(&id) {
            self.index.insert(id, self.members.len());
            self.members.push(id);
        }
        self.suspended()
    }

    /// Removes a member; returns whether it was one. The caller lifts any group suspension
    /// from it, as libevent does.
    #[doc(alias = "bufferevent_remove_from_rate_limit_group")]
    pub fn remove_member(&mut self, id: MemberId) -> bool {
        let Some(pos) = self.index.remove(&id) else {
            return false;
        };
        self.members.swap_remove(pos);
        if let Some(&moved) = self.members.get(pos) {
            self.index.insert(moved, pos);
        }
        true
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: MemberId) -> bool {
        self.index.contains_key(&id)
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members, in no particular order.
    pub fn members(&self) -> &[MemberId] {
        &self.members
    }

    /// Tokens left in the group's read bucket; negative after an overrun.
    #[doc(alias = "bufferevent_rate_limit_group_get_read_limit")]
    pub fn read_limit(&self) -> i64 {
        self.bucket.read_limit()
    }

    /// Tokens left in the group's write bucket; negative after an overrun.
    #[doc(alias = "bufferevent_rate_limit_group_get_write_limit")]
    pub fn write_limit(&self) -> i64 {
        self.bucket.write_limit()
    }

    /// The group's bucket.
    pub fn bucket(&self) -> &TokenBucket {
        &self.bucket
    }

    /// Whether the group has suspended reading on all its members.
    pub fn is_read_suspended(&self) -> bool {
        self.read.suspended
    }

    /// Whether the group has suspended writing on all its members.
    pub fn is_write_suspended(&self) -> bool {
        self.write.suspended
    }

    /// The directions the group has suspended.
    pub fn suspended(&self) -> Directions {
        Directions {
            read: self.read.suspended,
            write: self.write.suspended,
        }
    }

    /// The most bytes `member` may read now (libevent's `bufferevent_get_rlim_max_`): its
    /// share of the group (see [Shares](Self#shares)), capped by its own bucket if it has one,
    /// and by `max_single_read`; 0 while the group or the own bucket is exhausted.
    ///
    /// The caller refills `own_bucket` with the current time first.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group.
    #[doc(alias = "bufferevent_get_max_to_read")]
    pub fn max_to_read(
        &self,
        member: MemberId,
        own_bucket: Option<&TokenBucket>,
        max_single_read: usize,
    ) -> Result<usize> {
        self.max_to(Direction::Read, member, own_bucket, max_single_read)
    }

    /// The most bytes `member` may write now; see [`max_to_read`](Self::max_to_read).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group.
    #[doc(alias = "bufferevent_get_max_to_write")]
    pub fn max_to_write(
        &self,
        member: MemberId,
        own_bucket: Option<&TokenBucket>,
        max_single_write: usize,
    ) -> Result<usize> {
        self.max_to(Direction::Write, member, own_bucket, max_single_write)
    }

    /// [`max_to_read`](Self::max_to_read) or [`max_to_write`](Self::max_to_write).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group.
    pub fn max_to(
        &self,
        direction: Direction,
        member: MemberId,
        own_bucket: Option<&TokenBucket>,
        max_single: usize,
    ) -> Result<usize> {
        self.check_member(member)?;
        let mut max = max_single as i128;
        if let Some(own) = own_bucket {
            max = max.min(i128::from(own.limit(direction)));
        }
        let share = if self.dir(direction).suspended {
            0
        } else {
            let limit = i128::from(self.bucket.limit(direction));
            // At least one member: `check_member` passed.
            let members = self.members.len() as i128;
            (limit / members).max(i128::from(self.min_share)).min(limit)
        };
        Ok(clamp_to_usize(max.min(share)))
    }

    /// Charges `n` bytes read by `member`: takes them from the group bucket and adds them to
    /// the read total. When the group runs dry, returns [`GroupChange::Suspend`] with every
    /// member; otherwise [`GroupChange::Unchanged`]. (The member's own bucket, if any, is
    /// charged separately with [`TokenBucket::charge_read`].)
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group; nothing is charged then.
    pub fn charge_read(&mut self, member: MemberId, n: usize) -> Result<GroupChange> {
        self.charge(Direction::Read, member, n)
    }

    /// Charges `n` bytes written by `member`; see [`charge_read`](Self::charge_read).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group; nothing is charged then.
    pub fn charge_write(&mut self, member: MemberId, n: usize) -> Result<GroupChange> {
        self.charge(Direction::Write, member, n)
    }

    /// [`charge_read`](Self::charge_read) or [`charge_write`](Self::charge_write).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownMember`] if `member` is not in the group; nothing is charged then.
    pub fn charge(
        &mut self,
        direction: Direction,
        member: MemberId,
        n: usize,
    ) -> Result<GroupChange> {
        self.check_member(member)?;
        let state = self.dir_mut(direction);
        state.total = state
            .total
            .saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
        let _ = self.bucket.decrement(direction, usize_to_i64(n));
        if self.bucket.limit(direction) <= 0 && !self.dir(direction).suspended {
            Ok(self.suspend(direction))
        } else {
            Ok(GroupChange::Unchanged)
        }
    }

    /// Removes `decr` tokens from the group's read bucket by hand; a negative `decr` adds
    /// tokens. Totals are not touched. Suspends every member if the bucket runs dry, and
    /// resumes them all if tokens were added to a suspended group and it now has some.
    #[doc(alias = "bufferevent_rate_limit_group_decrement_read")]
    pub fn decrement_read(&mut self, decr: i64) -> GroupChange {
        self.decrement(Direction::Read, decr)
    }

    /// Removes `decr` tokens from the group's write bucket by hand; see
    /// [`decrement_read`](Self::decrement_read).
    #[doc(alias = "bufferevent_rate_limit_group_decrement_write")]
    pub fn decrement_write(&mut self, decr: i64) -> GroupChange {
        self.decrement(Direction::Write, decr)
    }

    /// [`decrement_read`](Self::decrement_read) or [`decrement_write`](Self::decrement_write).
    pub fn decrement(&mut self, direction: Direction, decr: i64) -> GroupChange {
        let _ = self.bucket.decrement(direction, decr);
        let limit = self.bucket.limit(direction);
        let suspended = self.dir(direction).suspended;
        if limit <= 0 && !suspended {
            self.suspend(direction)
        } else if limit > 0 && suspended && decr < 0 {
            self.resume(direction)
        } else {
            GroupChange::Unchanged
        }
    }

    /// The tick: adds the tokens earned since the last refill and, for each suspended
    /// direction whose bucket now holds at least the minimum share (and more than zero),
    /// lifts the suspension and lists the members to resume, in rotating order. If the group
    /// was overdrawn so far that one tick does not suffice, it stays suspended until a later
    /// tick. Calling it with a `now` in the same tick changes nothing.
    pub fn refill(&mut self, now: Instant) -> GroupRefill {
        let _ = self.bucket.refill(&self.cfg, now);
        GroupRefill {
            read: self.resume_if_refilled(Direction::Read),
            write: self.resume_if_refilled(Direction::Write),
        }
    }

    /// When the group's next tick starts, strictly after `now`: where to arm the tick timer.
    pub fn next_tick_at(&self, now: Instant) -> Instant {
        self.bucket.next_tick_at(now)
    }

    /// How long from `now` until the group's next tick.
    pub fn until_next_tick(&self, now: Instant) -> Duration {
        self.bucket.until_next_tick(now)
    }

    /// Bytes read and written by members since creation or the last
    /// [`reset_totals`](Self::reset_totals), as `(read, written)`. The counters saturate.
    #[doc(alias = "bufferevent_rate_limit_group_get_totals")]
    pub fn totals(&self) -> (u64, u64) {
        (self.read.total, self.write.total)
    }

    /// Sets both totals back to zero.
    #[doc(alias = "bufferevent_rate_limit_group_reset_totals")]
    pub fn reset_totals(&mut self) {
        self.read.total = 0;
        self.write.total = 0;
    }

    fn resume_if_refilled(&mut self, direction: Direction) -> GroupChange {
        let limit = self.bucket.limit(direction);
        let ready = limit > 0 && limit >= i64::try_from(self.min_share).unwrap_or(i64::MAX);
        if self.dir(direction).suspended && ready {
            self.resume(direction)
        } else {
            GroupChange::Unchanged
        }
    }

    fn suspend(&mut self, direction: Direction) -> GroupChange {
        self.dir_mut(direction).suspended = true;
        GroupChange::Suspend(self.members.clone())
    }

    fn resume(&mut self, direction: Direction) -> GroupChange {
        let n = self.members.len();
        let state = self.dir_mut(direction);
        state.suspended = false;
        if n == 0 {
            return GroupChange::Resume(Vec::new());
        }
        let start = state.next_start % n;
        state.next_start = start + 1;
        let mut order = Vec::with_capacity(n);
        order.extend_from_slice(&self.members[start..]);
        order.extend_from_slice(&self.members[..start]);
        GroupChange::Resume(order)
    }

    fn check_member(&self, member: MemberId) -> Result<()> {
        if self.contains(member) {
            Ok(())
        } else {
            Err(Error::UnknownMember(member))
        }
    }

    fn dir(&self, direction: Direction) -> &DirState {
        match direction {
            Direction::Read => &self.read,
            Direction::Write => &self.write,
        }
    }

    fn dir_mut(&mut self, direction: Direction) -> &mut DirState {
        match direction {
            Direction::Read => &mut self.read,
            Direction::Write => &mut self.write,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(rate: u64) -> (RateLimitGroup, Instant) {
        let cfg = TokenBucketConfig::new(rate, rate, rate, rate, Duration::from_secs(1)).unwrap();
        let t0 = Instant::now();
        (RateLimitGroup::new(cfg, t0), t0)
    }

    fn check_index(g: &RateLimitGroup) {
        assert_eq!(g.index.len(), g.members.len());
        for (i, m) in g.members.iter().enumerate() {
            assert_eq!(g.index[m], i);
        }
    }

    #[test]
    fn membership_index_stays_consistent() {
        let (mut g, _) = group(1000);
        for i in 0..10 {
            assert_eq!(g.add_member(MemberId(i)), Directions::NONE);
        }
        g.add_member(MemberId(3));
        assert_eq!(g.len(), 10);
        check_index(&g);
        assert!(g.remove_member(MemberId(0)));
        assert!(g.remove_member(MemberId(9)));
        assert!(g.remove_member(MemberId(5)));
        assert!(!g.remove_member(MemberId(5)));
        check_index(&g);
        assert_eq!(g.len(), 7);
        for i in [1, 2, 3, 4, 6, 7, 8] {
            assert!(g.contains(MemberId(i)));
        }
        for i in [1, 2, 3, 4, 6, 7, 8] {
            assert!(g.remove_member(MemberId(i)));
            check_index(&g);
        }
        assert!(g.is_empty());
    }

    #[test]
    fn min_share_is_capped_by_rates() {
        let cfg = TokenBucketConfig::new(50, 100, 30, 100, Duration::from_secs(1)).unwrap();
        let mut g = RateLimitGroup::new(cfg, Instant::now());
        assert_eq!(g.min_share(), 30);
        assert_eq!(g.configured_min_share(), DEFAULT_MIN_SHARE);
        g.set_min_share(10).unwrap();
        assert_eq!(g.min_share(), 10);
        g.set_min_share(1000).unwrap();
        assert_eq!(g.min_share(), 30);
        let bigger =
            TokenBucketConfig::new(5000, 5000, 2000, 5000, Duration::from_secs(1)).unwrap();
        g.set_config(bigger, Instant::now());
        assert_eq!(g.min_share(), 1000);
        assert_eq!(
            g.set_min_share(u64::MAX),
            Err(Error::TooLarge {
                what: "min share",
                value: u64::MAX
            })
        );
    }

    #[test]
    fn resume_rotates_start() {
        let (mut g, _) = group(100);
        for i in 0..3 {
            g.add_member(MemberId(i));
        }
        let firsts: Vec<MemberId> = (0..6)
            .map(|_| {
                g.read.suspended = true;
                match g.resume(Direction::Read) {
                    GroupChange::Resume(order) => {
                        assert_eq!(order.len(), 3);
                        order[0]
                    }
                    other => panic!("expected a resume, got {other:?}"),
                }
            })
            .collect();
        let ids: Vec<u64> = firsts.iter().map(|m| m.0).collect();
        assert_eq!(ids, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn empty_group_resumes_with_an_empty_list() {
        let (mut g, t0) = group(100);
        assert_eq!(g.decrement_read(100), GroupChange::Suspend(Vec::new()));
        let tick = g.refill(t0 + Duration::from_secs(1));
        assert_eq!(tick.read, GroupChange::Resume(Vec::new()));
        assert_eq!(tick.write, GroupChange::Unchanged);
    }
}
