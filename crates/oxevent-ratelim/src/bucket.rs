//! [`TokenBucket`]: the read and write limits of one connection (or of one group).

use std::time::{Duration, Instant};

use crate::config::TokenBucketConfig;
use crate::error::Direction;

/// The default largest single read of a bufferevent, 16 KiB (libevent's
/// `MAX_SINGLE_READ_DEFAULT`). A rate limit never allows more than this in one read.
pub const DEFAULT_MAX_SINGLE_READ: usize = 16 * 1024;

/// The default largest single write of a bufferevent, 16 KiB (libevent's
/// `MAX_SINGLE_WRITE_DEFAULT`).
pub const DEFAULT_MAX_SINGLE_WRITE: usize = 16 * 1024;

/// A flag for each direction: which directions resumed, are suspended, and so on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Directions {
    /// The read direction.
    pub read: bool,
    /// The write direction.
    pub write: bool,
}

impl Directions {
    /// Neither direction.
    pub const NONE: Self = Self {
        read: false,
        write: false,
    };

    /// Both directions.
    pub const BOTH: Self = Self {
        read: true,
        write: true,
    };

    /// Whether either direction is set.
    pub fn any(self) -> bool {
        self.read || self.write
    }

    /// The flag of one direction.
    pub fn get(self, direction: Direction) -> bool {
        match direction {
            Direction::Read => self.read,
            Direction::Write => self.write,
        }
    }
}

/// What a change to a limit means for the caller.
///
/// A direction is *suspended* while its limit is `<= 0`: the caller stops that direction and
/// keeps one refill timer armed (see [`TokenBucket::next_tick_at`]) until a refill brings the
/// limit back above zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[must_use = "a Suspended or Resumed transition tells the caller to stop or restart I/O"]
pub enum Transition {
    /// The direction stays as it was, suspended or not.
    Unchanged,
    /// The limit dropped to zero or below: stop this direction and arm the refill timer.
    Suspended,
    /// The limit rose above zero: this direction may run again.
    Resumed,
}

impl Transition {
    fn between(old: i64, new: i64) -> Self {
        match (old > 0, new > 0) {
            (true, false) => Self::Suspended,
            (false, true) => Self::Resumed,
            _ => Self::Unchanged,
        }
    }
}

/// A token bucket per direction: how many bytes a connection may still read and write.
///
/// Limits are `i64` and may go negative, as in libevent: an operation may overrun its
/// allowance (one overlong write), and the debt is paid back by the following refills.
///
/// The bucket has no clock and no timer. The caller passes the event loop's cached time to
/// [`refill`](Self::refill), and ticks are counted from the `now` given to
/// [`new`](Self::new) (the *origin*), in whole ticks of the configuration's length, with
/// integer arithmetic only. The configuration is passed to each call rather than stored, so
/// that many buckets may share one, as libevent's bufferevents share an `ev_token_bucket_cfg`.
///
/// How a bufferevent drives it:
///
/// 1. Before a read, call [`refill`](Self::refill) with the cached time, then read at most
///    [`max_to_read`](Self::max_to_read) bytes (or ask the group, which also accounts for this
///    bucket).
/// 2. After reading `n` bytes, call [`charge_read`](Self::charge_read). On
///    [`Transition::Suspended`], stop reading and arm *one* timer at
///    [`next_tick_at`](Self::next_tick_at).
/// 3. When that timer fires, call [`refill`](Self::refill): the directions it reports resumed
///    may run again; if a direction is still suspended (it was deep in debt), arm the timer
///    again for the next tick. No timer is needed while nothing is suspended.
///
/// ```
/// use std::time::{Duration, Instant};
/// use oxevent_ratelim::{TokenBucket, TokenBucketConfig, Transition};
///
/// let cfg = TokenBucketConfig::new(100, 300, 100, 300, Duration::from_secs(1))?;
/// let t0 = Instant::now();
/// let mut bucket = TokenBucket::new(&cfg, t0);
/// assert_eq!(bucket.read_limit(), 100); // a fresh bucket holds one tick's worth
///
/// assert_eq!(bucket.charge_read(150), Transition::Suspended);
/// assert_eq!(bucket.read_limit(), -50);
/// assert_eq!(bucket.next_tick_at(t0), t0 + Duration::from_secs(1));
///
/// let resumed = bucket.refill(&cfg, t0 + Duration::from_secs(1));
/// assert!(resumed.read);
/// assert_eq!(bucket.read_limit(), 50);
///
/// bucket.refill(&cfg, t0 + Duration::from_secs(60));
/// assert_eq!(bucket.read_limit(), 300); // capped at the burst
/// # Ok::<(), oxevent_ratelim::Error>(())
/// ```
#[doc(alias = "ev_token_bucket")]
#[doc(alias = "bufferevent_set_rate_limit")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    read_limit: i64,
    write_limit: i64,
    /// The instant tick 0 starts at.
    origin: Instant,
    /// The tick length the tick numbers below are counted in.
    /// INVARIANT: not zero (it comes from a validated configuration).
    tick: Duration,
    /// The tick number of the last refill (libevent's `last_updated`).
    last_tick: u64,
}

impl TokenBucket {
    /// A bucket holding one tick's worth of tokens (the configured rates), with tick 0
    /// starting at `now` (libevent's `ev_token_bucket_init_`).
    pub fn new(cfg: &TokenBucketConfig, now: Instant) -> Self {
        Self {
            read_limit: to_i64(cfg.read_rate()),
            write_limit: to_i64(cfg.write_rate()),
            origin: now,
            tick: cfg.tick(),
            last_tick: 0,
        }
    }

    /// Switches to a new configuration, as `bufferevent_set_rate_limit` does on a bufferevent
    /// that already has one.
    ///
    /// The limits are only clipped downwards to the new bursts, since part of this tick's
    /// allowance may already be spent; the new rates apply from the next tick. If the tick
    /// length changed, ticks are counted again from `now` (the partial tick in progress earns
    /// nothing, the same hiccup libevent has).
    pub fn reconfigure(&mut self, cfg: &TokenBucketConfig, now: Instant) {
        self.read_limit = self.read_limit.min(to_i64(cfg.read_burst()));
        self.write_limit = self.write_limit.min(to_i64(cfg.write_burst()));
        if cfg.tick() != self.tick {
            self.origin = now;
            self.tick = cfg.tick();
            self.last_tick = 0;
        }
    }

    /// Adds `rate` tokens for every whole tick since the last refill, capped at `burst`
    /// (libevent's `ev_token_bucket_update_`), and reports the directions that were suspended
    /// and are no longer.
    ///
    /// A `now` in the same tick as the last refill, or earlier, changes nothing. Any gap is
    /// handled without overflow (the sum is computed in `i128` and capped). A limit above the
    /// burst (after a negative manual decrement, or a smaller new burst) is brought down to
    /// the burst by the first refill that adds tokens.
    ///
    /// `cfg` should be the configuration the bucket was built or last reconfigured with; if
    /// its tick length differs, this acts as [`reconfigure`](Self::reconfigure) instead.
    pub fn refill(&mut self, cfg: &TokenBucketConfig, now: Instant) -> Directions {
        let before = self.suspended();
        if cfg.tick() != self.tick {
            self.reconfigure(cfg, now);
        } else {
            let tick = cfg.tick_number(self.origin, now);
            if tick > self.last_tick {
                let ticks = tick - self.last_tick;
                self.read_limit =
                    add_tokens(self.read_limit, cfg.read_rate(), cfg.read_burst(), ticks);
                self.write_limit =
                    add_tokens(self.write_limit, cfg.write_rate(), cfg.write_burst(), ticks);
                self.last_tick = tick;
            }
        }
        let after = self.suspended();
        Directions {
            read: before.read && !after.read,
            write: before.write && !after.write,
        }
    }

    /// Tokens left for reading; negative after an overrun.
    #[doc(alias = "bufferevent_get_read_limit")]
    pub fn read_limit(&self) -> i64 {
        self.read_limit
    }

    /// Tokens left for writing; negative after an overrun.
    #[doc(alias = "bufferevent_get_write_limit")]
    pub fn write_limit(&self) -> i64 {
        self.write_limit
    }

    /// Tokens left in one direction.
    pub fn limit(&self, direction: Direction) -> i64 {
        match direction {
            Direction::Read => self.read_limit,
            Direction::Write => self.write_limit,
        }
    }

    /// Whether reading is suspended (the read limit is `<= 0`).
    pub fn is_read_suspended(&self) -> bool {
        self.read_limit <= 0
    }

    /// Whether writing is suspended (the write limit is `<= 0`).
    pub fn is_write_suspended(&self) -> bool {
        self.write_limit <= 0
    }

    /// The suspended directions. While any is set, the caller keeps one refill timer armed.
    pub fn suspended(&self) -> Directions {
        Directions {
            read: self.is_read_suspended(),
            write: self.is_write_suspended(),
        }
    }

    /// Removes `decr` tokens from the read bucket by hand; a negative `decr` adds tokens
    /// (libevent's `bufferevent_decrement_read_limit`). Saturates instead of overflowing.
    #[doc(alias = "bufferevent_decrement_read_limit")]
    pub fn decrement_read(&mut self, decr: i64) -> Transition {
        decrement(&mut self.read_limit, decr)
    }

    /// Removes `decr` tokens from the write bucket by hand; a negative `decr` adds tokens
    /// (libevent's `bufferevent_decrement_write_limit`).
    #[doc(alias = "bufferevent_decrement_write_limit")]
    pub fn decrement_write(&mut self, decr: i64) -> Transition {
        decrement(&mut self.write_limit, decr)
    }

    /// Removes `decr` tokens from one direction; see [`decrement_read`](Self::decrement_read).
    pub fn decrement(&mut self, direction: Direction, decr: i64) -> Transition {
        match direction {
            Direction::Read => self.decrement_read(decr),
            Direction::Write => self.decrement_write(decr),
        }
    }

    /// Charges `n` bytes just read (what libevent's `bufferevent_decrement_read_buckets_`
    /// does to the bufferevent's own bucket).
    pub fn charge_read(&mut self, n: usize) -> Transition {
        self.decrement_read(usize_to_i64(n))
    }

    /// Charges `n` bytes just written.
    pub fn charge_write(&mut self, n: usize) -> Transition {
        self.decrement_write(usize_to_i64(n))
    }

    /// The most bytes the next read may take: the read limit, capped by `max_single_read`,
    /// and 0 while suspended. For a member of a group, ask
    /// [`RateLimitGroup::max_to_read`](crate::RateLimitGroup::max_to_read) instead.
    #[doc(alias = "bufferevent_get_max_to_read")]
    pub fn max_to_read(&self, max_single_read: usize) -> usize {
        clamp_to_usize(i128::from(self.read_limit).min(max_single_read as i128))
    }

    /// The most bytes the next write may take: the write limit, capped by
    /// `max_single_write`, and 0 while suspended.
    #[doc(alias = "bufferevent_get_max_to_write")]
    pub fn max_to_write(&self, max_single_write: usize) -> usize {
        clamp_to_usize(i128::from(self.write_limit).min(max_single_write as i128))
    }

    /// The instant the next tick starts, strictly after `now`: where to arm the single refill
    /// timer. Tick boundaries are `origin + k × tick`.
    ///
    /// If that instant cannot be represented (an `Instant` centuries away), `now + tick` is
    /// returned, or `now` if even that overflows.
    pub fn next_tick_at(&self, now: Instant) -> Instant {
        let tick_ns = self.tick.as_nanos();
        let elapsed_ns = now.saturating_duration_since(self.origin).as_nanos();
        let next_ns = (elapsed_ns / tick_ns + 1).saturating_mul(tick_ns);
        duration_from_nanos(next_ns)
            .and_then(|offset| self.origin.checked_add(offset))
            .or_else(|| now.checked_add(self.tick))
            .unwrap_or(now)
    }

    /// How long from `now` until the next tick starts; never zero, at most one tick (more
    /// only if `now` is before the origin).
    pub fn until_next_tick(&self, now: Instant) -> Duration {
        self.next_tick_at(now).saturating_duration_since(now)
    }

    /// The instant tick 0 started at.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The tick length the bucket counts in.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The number of the tick the bucket was last refilled in (0 until a refill adds tokens).
    pub fn last_refill_tick(&self) -> u64 {
        self.last_tick
    }
}

/// `limit + ticks × rate`, capped at `burst`, without overflow. `rate` and `burst` are at most
/// `i64::MAX` (validated configuration), so the product fits in `u128` and the sum in `i128`
/// once saturated.
fn add_tokens(limit: i64, rate: u64, burst: u64, ticks: u64) -> i64 {
    let added = u128::from(ticks).saturating_mul(u128::from(rate));
    let added = i128::try_from(added).unwrap_or(i128::MAX);
    let total = i128::from(limit).saturating_add(added);
    let capped = total.min(i128::from(to_i64(burst)));
    // `capped` is at most `burst` and at least `limit`, so it fits.
    i64::try_from(capped).unwrap_or(i64::MAX)
}

fn decrement(limit: &mut i64, decr: i64) -> Transition {
    let old = *limit;
    *limit = old.saturating_sub(decr);
    Transition::between(old, *limit)
}

/// A configuration value (validated to be at most `i64::MAX`) as `i64`.
fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn usize_to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Clamps to `0..=usize::MAX`.
pub(crate) fn clamp_to_usize(v: i128) -> usize {
    usize::try_from(v.max(0)).unwrap_or(usize::MAX)
}

fn duration_from_nanos(nanos: u128) -> Option<Duration> {
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(nanos / NANOS_PER_SEC).ok()?;
    let sub = u32::try_from(nanos % NANOS_PER_SEC).ok()?;
    Some(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rate: u64, burst: u64, tick_ms: u64) -> TokenBucketConfig {
        TokenBucketConfig::new(rate, burst, rate, burst, Duration::from_millis(tick_ms)).unwrap()
    }

    #[test]
    fn add_tokens_caps_and_never_overflows() {
        assert_eq!(add_tokens(0, 10, 100, 3), 30);
        assert_eq!(add_tokens(90, 10, 100, 3), 100);
        assert_eq!(add_tokens(-25, 10, 100, 2), -5);
        assert_eq!(add_tokens(500, 10, 100, 1), 100);
        let max = i64::MAX as u64;
        assert_eq!(add_tokens(i64::MIN, max, max, u64::MAX), i64::MAX);
        assert_eq!(add_tokens(i64::MIN, 1, max, 1), i64::MIN + 1);
        assert_eq!(add_tokens(i64::MAX, max, max, u64::MAX), i64::MAX);
    }

    #[test]
    fn transitions_follow_the_sign_of_the_limit() {
        assert_eq!(Transition::between(5, 0), Transition::Suspended);
        assert_eq!(Transition::between(5, -3), Transition::Suspended);
        assert_eq!(Transition::between(0, 1), Transition::Resumed);
        assert_eq!(Transition::between(-4, -1), Transition::Unchanged);
        assert_eq!(Transition::between(4, 1), Transition::Unchanged);
    }

    #[test]
    fn decrement_saturates() {
        let c = cfg(10, 10, 1000);
        let mut b = TokenBucket::new(&c, Instant::now());
        assert_eq!(b.decrement_read(i64::MAX), Transition::Suspended);
        assert_eq!(b.decrement_read(i64::MAX), Transition::Unchanged);
        assert_eq!(b.read_limit(), i64::MIN);
        assert_eq!(b.decrement_write(i64::MIN), Transition::Unchanged);
        assert_eq!(b.write_limit(), i64::MAX);
        assert_eq!(b.charge_write(usize::MAX), Transition::Suspended);
        // `usize::MAX` is charged as `i64::MAX`: i64::MAX - i64::MAX.
        assert_eq!(b.write_limit(), 0);
    }

    #[test]
    fn duration_from_nanos_splits_and_rejects_overflow() {
        assert_eq!(
            duration_from_nanos(1_500_000_000),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(duration_from_nanos(u128::MAX), None);
    }

    #[test]
    fn next_tick_at_is_on_a_boundary_after_now() {
        let c = cfg(1, 1, 100);
        let t0 = Instant::now();
        let b = TokenBucket::new(&c, t0);
        let ms = Duration::from_millis;
        assert_eq!(b.next_tick_at(t0), t0 + ms(100));
        assert_eq!(b.next_tick_at(t0 + ms(99)), t0 + ms(100));
        assert_eq!(b.next_tick_at(t0 + ms(100)), t0 + ms(200));
        assert_eq!(b.next_tick_at(t0 + ms(1234)), t0 + ms(1300));
        assert_eq!(b.until_next_tick(t0 + ms(1234)), ms(66));
        assert_eq!(b.until_next_tick(t0 + ms(1300)), ms(100));
    }

    #[test]
    fn directions_helpers() {
        assert!(!Directions::NONE.any());
        assert!(Directions::BOTH.any());
        let d = Directions {
            read: false,
            write: true,
        };
        assert!(d.any());
        assert!(!d.get(Direction::Read));
        assert!(d.get(Direction::Write));
    }
}
