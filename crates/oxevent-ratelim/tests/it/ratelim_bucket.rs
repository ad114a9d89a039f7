//! Token-bucket arithmetic against a fake time base.

use std::time::{Duration, Instant};

use oxevent_ratelim::{
    Direction, Directions, RATE_LIMIT_MAX, TokenBucket, TokenBucketConfig, Transition,
};

use crate::{at_tick, symmetric};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn a_fresh_bucket_holds_one_ticks_worth() {
    let cfg = TokenBucketConfig::new(100, 1000, 7, 70, SEC).unwrap();
    let b = TokenBucket::new(&cfg, Instant::now());
    assert_eq!((b.read_limit(), b.write_limit()), (100, 7));
    assert_eq!(b.suspended(), Directions::NONE);
    assert_eq!(b.last_refill_tick(), 0);
}

#[test]
fn refill_adds_the_rate_once_per_whole_tick() {
    let cfg = TokenBucketConfig::new(100, 1000, 10, 1000, SEC).unwrap();
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    let ms = Duration::from_millis;

    b.refill(&cfg, t0 + ms(999));
    assert_eq!(
        (b.read_limit(), b.write_limit()),
        (100, 10),
        "no whole tick yet"
    );
    b.refill(&cfg, t0 + ms(1000));
    assert_eq!((b.read_limit(), b.write_limit()), (200, 20));
    b.refill(&cfg, t0 + ms(1999));
    assert_eq!(b.read_limit(), 200, "same tick, nothing more");
    b.refill(&cfg, t0 + ms(2500));
    assert_eq!(b.read_limit(), 300);
    // Three ticks at once.
    b.refill(&cfg, t0 + ms(5001));
    assert_eq!((b.read_limit(), b.write_limit()), (600, 60));
    assert_eq!(b.last_refill_tick(), 5);
}

#[test]
fn ticks_are_counted_from_the_origin_not_from_the_last_refill() {
    // Refilling at odd moments must not drift: boundaries stay at origin + k × tick.
    let tick = Duration::from_millis(333);
    let cfg = symmetric(1, 1_000_000, tick);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    let mut now = t0;
    for _ in 0..3000 {
        now += Duration::from_millis(7);
        b.refill(&cfg, now);
    }
    // 21 s elapsed = 63 whole ticks of 333 ms (20.979 s), plus the initial 1.
    assert_eq!(b.read_limit(), 1 + 63);
    assert_eq!(b.next_tick_at(now), t0 + tick * 64);
}

#[test]
fn refill_caps_at_the_burst() {
    let cfg = symmetric(100, 250, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    b.refill(&cfg, at_tick(t0, SEC, 1));
    assert_eq!(b.read_limit(), 200);
    b.refill(&cfg, at_tick(t0, SEC, 2));
    assert_eq!(b.read_limit(), 250);
    b.refill(&cfg, at_tick(t0, SEC, 1000));
    assert_eq!((b.read_limit(), b.write_limit()), (250, 250));
}

#[test]
fn negative_limit_after_an_overlong_write_recovers_over_ticks() {
    let cfg = symmetric(100, 300, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    assert_eq!(b.charge_write(1000), Transition::Suspended);
    assert_eq!(b.write_limit(), -900);
    assert!(b.is_write_suspended());
    assert!(!b.is_read_suspended());
    assert_eq!(b.max_to_write(16384), 0);

    // Drive it like the bufferevent layer: one timer, re-armed each tick while suspended.
    let mut now = t0;
    let mut firings = 0;
    loop {
        now = b.next_tick_at(now);
        firings += 1;
        let resumed = b.refill(&cfg, now);
        if resumed.write {
            break;
        }
        assert!(b.is_write_suspended());
        assert!(firings < 100, "never resumed");
    }
    // -900 + 9 × 100 = 0 is still suspended; the 10th tick brings it to 100.
    assert_eq!(firings, 10);
    assert_eq!(b.write_limit(), 100);
    assert_eq!(now, at_tick(t0, SEC, 10));
}

#[test]
fn a_gap_of_a_hundred_years_does_not_overflow() {
    let hundred_years = Duration::from_secs(100 * 365 * 24 * 3600);
    let Some(_) = Instant::now().checked_add(hundred_years * 2) else {
        // This platform's Instant cannot reach that far; nothing to test.
        return;
    };
    // 1 ns ticks: 3.15e18 ticks in the gap, with the largest rates.
    let cfg = symmetric(RATE_LIMIT_MAX, RATE_LIMIT_MAX, Duration::from_nanos(1));
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    assert_eq!(b.decrement_read(i64::MAX), Transition::Suspended);
    assert_eq!(b.decrement_read(i64::MAX), Transition::Unchanged);
    assert_eq!(b.read_limit(), -i64::MAX);
    assert_eq!(b.decrement_read(i64::MAX), Transition::Unchanged);
    assert_eq!(b.read_limit(), i64::MIN, "saturates");
    let resumed = b.refill(&cfg, t0 + hundred_years);
    assert!(resumed.read);
    assert_eq!(b.read_limit(), i64::MAX);
    assert_eq!(b.write_limit(), i64::MAX);
    assert_eq!(
        b.next_tick_at(t0 + hundred_years),
        t0 + hundred_years + Duration::from_nanos(1)
    );

    // Small rates over the same gap land exactly on the burst.
    let small = symmetric(3, 1_000_000_007, Duration::from_nanos(1));
    let mut b = TokenBucket::new(&small, t0);
    b.refill(&small, t0 + hundred_years);
    assert_eq!(b.read_limit(), 1_000_000_007);
}

#[test]
fn huge_rates_one_tick_at_a_time() {
    let cfg = symmetric(RATE_LIMIT_MAX / 2 + 1, RATE_LIMIT_MAX, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    for k in 1..=5 {
        b.refill(&cfg, at_tick(t0, SEC, k));
        assert_eq!(b.read_limit(), i64::MAX);
    }
    let _ = b.charge_read(usize::MAX);
    assert!(b.read_limit() <= 0);
    b.refill(&cfg, at_tick(t0, SEC, 6));
    assert!(b.read_limit() > 0);
}

#[test]
fn a_clock_that_does_not_move_changes_nothing() {
    let cfg = symmetric(100, 1000, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    let _ = b.charge_read(150);
    let before = b.clone();
    for _ in 0..1000 {
        assert_eq!(b.refill(&cfg, t0), Directions::NONE);
    }
    assert_eq!(b, before);

    // Going back in time is ignored too, even to before the origin.
    b.refill(&cfg, at_tick(t0, SEC, 5));
    let after_five = b.clone();
    b.refill(&cfg, at_tick(t0, SEC, 3));
    b.refill(&cfg, t0.checked_sub(SEC * 10).unwrap_or(t0));
    assert_eq!(b, after_five);
    assert_eq!(b.read_limit(), -50 + 500);
}

#[test]
fn manual_decrement_reports_transitions_and_may_give_tokens_back() {
    let cfg = symmetric(100, 200, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    assert_eq!(b.decrement_read(40), Transition::Unchanged);
    assert_eq!(b.read_limit(), 60);
    assert_eq!(b.decrement_read(60), Transition::Suspended);
    assert_eq!(b.decrement_read(10), Transition::Unchanged);
    assert_eq!(b.decrement_read(-11), Transition::Resumed);
    assert_eq!(b.read_limit(), 1);
    // Tokens given back may exceed the burst until the next refill caps them.
    assert_eq!(b.decrement(Direction::Write, -1000), Transition::Unchanged);
    assert_eq!(b.write_limit(), 1100);
    b.refill(&cfg, at_tick(t0, SEC, 1));
    assert_eq!((b.read_limit(), b.write_limit()), (101, 200));
}

#[test]
fn max_to_read_and_write_cap_by_max_single_and_never_go_negative() {
    let cfg = TokenBucketConfig::new(50_000, 50_000, 10, 10, SEC).unwrap();
    let mut b = TokenBucket::new(&cfg, Instant::now());
    assert_eq!(b.max_to_read(16384), 16384);
    assert_eq!(b.max_to_read(usize::MAX), 50_000);
    assert_eq!(b.max_to_write(16384), 10);
    assert_eq!(b.max_to_write(3), 3);
    let _ = b.charge_write(25);
    assert_eq!(b.max_to_write(16384), 0);
    assert_eq!(b.limit(Direction::Write), -15);
}

#[test]
fn reconfigure_clips_downwards_only_and_keeps_the_tick_schedule() {
    let big = symmetric(100, 1000, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&big, t0);
    b.refill(&big, at_tick(t0, SEC, 20));
    assert_eq!(b.read_limit(), 1000);

    let small = symmetric(10, 50, SEC);
    b.reconfigure(&small, at_tick(t0, SEC, 20) + Duration::from_millis(500));
    assert_eq!(b.read_limit(), 50);
    assert_eq!(b.origin(), t0, "same tick length: schedule kept");
    let _ = b.charge_read(45);
    // Raising the burst does not add tokens now.
    b.reconfigure(&big, at_tick(t0, SEC, 20) + Duration::from_millis(600));
    assert_eq!(b.read_limit(), 5);
    b.refill(&big, at_tick(t0, SEC, 21));
    assert_eq!(b.read_limit(), 105);
}

#[test]
fn a_new_tick_length_restarts_tick_counting() {
    let cfg = symmetric(100, 1000, SEC);
    let t0 = Instant::now();
    let mut b = TokenBucket::new(&cfg, t0);
    let fast = symmetric(100, 1000, Duration::from_millis(10));
    let t1 = t0 + Duration::from_millis(1500);
    b.reconfigure(&fast, t1);
    assert_eq!((b.origin(), b.tick()), (t1, Duration::from_millis(10)));
    assert_eq!(b.next_tick_at(t1), t1 + Duration::from_millis(10));
    b.refill(&fast, t1 + Duration::from_millis(35));
    assert_eq!(b.read_limit(), 100 + 3 * 100);

    // Refilling with a configuration of another tick length re-anchors instead of
    // misreading tick numbers.
    let t2 = t1 + Duration::from_millis(40);
    assert_eq!(b.refill(&cfg, t2), Directions::NONE);
    assert_eq!((b.origin(), b.tick()), (t2, SEC));
    assert_eq!(b.read_limit(), 400);
}
