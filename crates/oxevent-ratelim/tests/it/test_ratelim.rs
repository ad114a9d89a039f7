//! The intent of libevent's `test/test-ratelim.c`, as a simulation with no sockets: many
//! connections move data as fast as their limits allow, through a group limit, a connection
//! limit, or both (with and without a group drain), and the achieved totals and the fairness
//! between connections are checked. Time is simulated tick by tick.

use std::time::{Duration, Instant};

use oxevent_ratelim::{
    DEFAULT_MAX_SINGLE_READ, Direction, GroupChange, MemberId, RateLimitGroup, TokenBucket,
    TokenBucketConfig,
};

use crate::symmetric;

const TICK: Duration = Duration::from_millis(100);

struct Setup {
    members: u64,
    ticks: u32,
    group: Option<TokenBucketConfig>,
    conn: Option<TokenBucketConfig>,
    /// Bytes taken from the group by hand on each tick (test-ratelim's `-G`).
    group_drain: i64,
    direction: Direction,
}

struct Outcome {
    per_member: Vec<u64>,
    group_totals: Option<(u64, u64)>,
}

impl Outcome {
    fn total(&self) -> u64 {
        self.per_member.iter().sum()
    }

    fn mean(&self) -> f64 {
        self.total() as f64 / self.per_member.len() as f64
    }

    fn max_relative_deviation(&self) -> f64 {
        let mean = self.mean();
        self.per_member
            .iter()
            .map(|&x| (x as f64 - mean).abs() / mean)
            .fold(0.0, f64::max)
    }
}

/// Runs the simulation. Every member is greedy: within a tick it is offered the loop in the
/// order the group last resumed members (the order the bufferevent layer would activate them
/// in), moves whatever it is allowed, and the loop goes round until nobody may move anything.
/// At each tick the own buckets and the group are refilled, as their timers would.
fn simulate(setup: &Setup) -> Outcome {
    let t0 = Instant::now();
    let ids: Vec<MemberId> = (0..setup.members).map(MemberId).collect();
    let mut group = setup.group.map(|cfg| {
        let mut g = RateLimitGroup::new(cfg, t0);
        for &id in &ids {
            let _ = g.add_member(id);
        }
        g
    });
    let mut own: Vec<Option<TokenBucket>> = ids
        .iter()
        .map(|_| setup.conn.map(|cfg| TokenBucket::new(&cfg, t0)))
        .collect();
    let mut per_member = vec![0u64; ids.len()];
    let mut order = ids.clone();

    for k in 0..=setup.ticks {
        let now = t0 + TICK * k;
        if k > 0 {
            for bucket in own.iter_mut().flatten() {
                let _ = bucket.refill(setup.conn.as_ref().unwrap(), now);
            }
            if let Some(g) = group.as_mut() {
                let refill = g.refill(now);
                let change = match setup.direction {
                    Direction::Read => refill.read,
                    Direction::Write => refill.write,
                };
                if let GroupChange::Resume(next) = change {
                    order = next;
                }
                if setup.group_drain != 0 {
                    let _ = g.decrement(setup.direction, setup.group_drain);
                }
            }
        }
        // Everyone moves data until no one is allowed to move any more this tick.
        let mut rounds = 0;
        loop {
            let mut moved = false;
            for &id in &order {
                let i = id.0 as usize;
                let n = match group.as_ref() {
                    Some(g) => g
                        .max_to(
                            setup.direction,
                            id,
                            own[i].as_ref(),
                            DEFAULT_MAX_SINGLE_READ,
                        )
                        .unwrap(),
                    None => {
                        let bucket = own[i].as_ref().expect("some limit is configured");
                        match setup.direction {
                            Direction::Read => bucket.max_to_read(DEFAULT_MAX_SINGLE_READ),
                            Direction::Write => bucket.max_to_write(DEFAULT_MAX_SINGLE_READ),
                        }
                    }
                };
                if n == 0 {
                    continue;
                }
                moved = true;
                per_member[i] += n as u64;
                if let Some(bucket) = own[i].as_mut() {
                    let _ = bucket.decrement(setup.direction, n as i64);
                }
                if let Some(g) = group.as_mut() {
                    let _ = g.charge(setup.direction, id, n).unwrap();
                }
            }
            if !moved {
                break;
            }
            rounds += 1;
            assert!(rounds < 100_000, "tick {k} never ran dry");
        }
    }
    Outcome {
        per_member,
        group_totals: group.map(|g| g.totals()),
    }
}

#[test]
fn group_limit_ten_greedy_members_share_fairly() {
    const R: u64 = 100_000;
    let setup = Setup {
        members: 10,
        ticks: 1000,
        group: Some(symmetric(R, R, TICK)),
        conn: None,
        group_drain: 0,
        direction: Direction::Read,
    };
    let out = simulate(&setup);
    let total = out.total();
    // The group gives R per tick for 1000 ticks, plus the initial tick's worth (R), and no more
    // than one tick's worth plus a burst beyond R × 1000.
    let expected = R * 1000;
    assert!(
        total.abs_diff(expected) <= R + R,
        "total {total}, expected about {expected}"
    );
    assert_eq!(
        total,
        R * 1001,
        "a group whose members honour their shares never overdraws"
    );
    assert_eq!(out.group_totals, Some((total, 0)));
    let dev = out.max_relative_deviation();
    assert!(
        dev < 0.02,
        "per-member totals {:?} deviate by {dev}",
        out.per_member
    );
}

#[test]
fn group_limit_writes_with_a_larger_burst() {
    const R: u64 = 50_000;
    const BURST: u64 = 4 * R;
    let setup = Setup {
        members: 10,
        ticks: 1000,
        group: Some(symmetric(R, BURST, TICK)),
        conn: None,
        group_drain: 0,
        direction: Direction::Write,
    };
    let out = simulate(&setup);
    let total = out.total();
    assert!(
        total.abs_diff(R * 1000) <= R + BURST,
        "total {total}, expected about {}",
        R * 1000
    );
    assert_eq!(out.group_totals, Some((0, total)));
    let dev = out.max_relative_deviation();
    assert!(
        dev < 0.02,
        "per-member totals {:?} deviate by {dev}",
        out.per_member
    );
}

#[test]
fn connection_limit_each_member_gets_its_own_rate() {
    const C: u64 = 3_000;
    let setup = Setup {
        members: 10,
        ticks: 1000,
        group: None,
        conn: Some(symmetric(C, C, TICK)),
        group_drain: 0,
        direction: Direction::Read,
    };
    let out = simulate(&setup);
    for &got in &out.per_member {
        assert_eq!(got, C * 1001);
    }
}

#[test]
fn both_limits_the_stricter_one_governs() {
    // Connection limits add up to 10 × 3000 = 30 000 per tick, under the group's 100 000:
    // the connection limit governs.
    let loose_group = Setup {
        members: 10,
        ticks: 500,
        group: Some(symmetric(100_000, 100_000, TICK)),
        conn: Some(symmetric(3_000, 3_000, TICK)),
        group_drain: 0,
        direction: Direction::Read,
    };
    let out = simulate(&loose_group);
    for &got in &out.per_member {
        assert_eq!(got, 3_000 * 501);
    }

    // Connection limits add up to 10 × 20 000 = 200 000 per tick, over the group's 50 000:
    // the group governs, and still shares fairly.
    let tight_group = Setup {
        members: 10,
        ticks: 500,
        group: Some(symmetric(50_000, 50_000, TICK)),
        conn: Some(symmetric(20_000, 20_000, TICK)),
        group_drain: 0,
        direction: Direction::Read,
    };
    let out = simulate(&tight_group);
    let total = out.total();
    assert!(total.abs_diff(50_000 * 500) <= 100_000, "total {total}");
    let dev = out.max_relative_deviation();
    assert!(
        dev < 0.05,
        "per-member totals {:?} deviate by {dev}",
        out.per_member
    );
}

#[test]
fn both_limits_with_a_group_drain() {
    // test-ratelim's -G: the group loses DRAIN bytes by hand every tick, so members share
    // what is left.
    const R: u64 = 60_000;
    const DRAIN: u64 = 20_000;
    let setup = Setup {
        members: 10,
        ticks: 1000,
        group: Some(symmetric(R, R, TICK)),
        conn: Some(symmetric(10_000, 10_000, TICK)),
        group_drain: DRAIN as i64,
        direction: Direction::Read,
    };
    let out = simulate(&setup);
    let total = out.total();
    let expected = (R - DRAIN) * 1000;
    assert!(
        total.abs_diff(expected) <= R + R,
        "total {total}, expected about {expected}"
    );
    let dev = out.max_relative_deviation();
    assert!(
        dev < 0.05,
        "per-member totals {:?} deviate by {dev}",
        out.per_member
    );
}
