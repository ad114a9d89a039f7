//! The rate-limiting parts of libevent's `test/regress_bufferevent.c`, as pure logic: the
//! configuration checks, the division by the member count when the last member leaves, and
//! bucket overflow with the largest values.

use std::time::{Duration, Instant};

use oxevent_ratelim::{
    DEFAULT_MAX_SINGLE_READ, DEFAULT_MAX_SINGLE_WRITE, Direction, Error, GroupChange, MemberId,
    RATE_LIMIT_MAX, RateLimitGroup, TokenBucket, TokenBucketConfig,
};

use crate::{at_tick, symmetric};

#[test]
fn token_bucket_cfg_new_rejects_what_libevent_rejects() {
    let s = Duration::from_secs(1);
    // rate > burst, rate < 1, values over the maximum, and (ours) a zero tick.
    assert!(matches!(
        TokenBucketConfig::new(2, 1, 1, 1, s),
        Err(Error::RateExceedsBurst {
            direction: Direction::Read,
            ..
        })
    ));
    assert!(matches!(
        TokenBucketConfig::new(1, 1, 0, 1, s),
        Err(Error::ZeroRate {
            direction: Direction::Write
        })
    ));
    assert!(matches!(
        TokenBucketConfig::new(1, RATE_LIMIT_MAX + 1, 1, 1, s),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(
        TokenBucketConfig::new(1, 1, 1, 1, Duration::ZERO),
        Err(Error::ZeroTick)
    );
    let err: Box<dyn std::error::Error> = Box::new(Error::ZeroTick);
    assert_eq!(err.to_string(), "tick length must not be zero");
}

#[test]
fn leaving_the_group_never_divides_by_zero() {
    // libevent once divided by n_members after the last member left; here a non-member cannot
    // ask, and an empty group still ticks.
    let tick = Duration::from_millis(10);
    let t0 = Instant::now();
    let mut g = RateLimitGroup::new(symmetric(1000, 1000, tick), t0);
    let only = MemberId(1);
    let _ = g.add_member(only);
    assert_eq!(
        g.max_to_read(only, None, DEFAULT_MAX_SINGLE_READ).unwrap(),
        1000
    );
    assert!(g.remove_member(only));
    assert!(g.is_empty());
    assert_eq!(
        g.max_to_read(only, None, DEFAULT_MAX_SINGLE_READ),
        Err(Error::UnknownMember(only))
    );
    assert_eq!(g.decrement_write(5000), GroupChange::Suspend(Vec::new()));
    for k in 1..=10 {
        let _ = g.refill(at_tick(t0, tick, k));
    }
    assert!(!g.is_write_suspended());
    let _ = g.add_member(only);
    assert_eq!(
        g.max_to_write(only, None, DEFAULT_MAX_SINGLE_WRITE)
            .unwrap(),
        1000
    );
}

#[test]
fn largest_limits_do_not_overflow() {
    // libevent's ratelimit overflow regression: a bucket near the maximum, refilled, charged
    // and asked again.
    let tick = Duration::from_millis(1);
    let cfg = symmetric(RATE_LIMIT_MAX, RATE_LIMIT_MAX, tick);
    let t0 = Instant::now();
    let mut own = TokenBucket::new(&cfg, t0);
    let mut g = RateLimitGroup::new(cfg, t0);
    let m = MemberId(9);
    let _ = g.add_member(m);
    for k in 1..=3 {
        let _ = own.refill(&cfg, at_tick(t0, tick, k));
        let _ = g.refill(at_tick(t0, tick, k));
        assert_eq!(own.read_limit(), i64::MAX);
        assert_eq!(g.read_limit(), i64::MAX);
        let n = g.max_to_read(m, Some(&own), usize::MAX).unwrap();
        assert_eq!(n as u64, (i64::MAX as u64).min(usize::MAX as u64));
        let _ = own.charge_read(n);
        assert!(matches!(
            g.charge_read(m, n).unwrap(),
            GroupChange::Suspend(_)
        ));
        assert_eq!(own.read_limit(), 0);
    }
    // Totals saturate rather than wrap.
    let _ = g.charge_write(m, usize::MAX).unwrap();
    let _ = g.charge_write(m, usize::MAX).unwrap();
    let _ = g.charge_write(m, usize::MAX).unwrap();
    let expected = u64::try_from(3 * usize::MAX as u128).unwrap_or(u64::MAX);
    assert_eq!(g.totals().1, expected);
}
