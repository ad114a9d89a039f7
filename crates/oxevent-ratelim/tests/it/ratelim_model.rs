//! Property tests: the bucket against a model in wide integer arithmetic, and group invariants.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use oxevent_ratelim::{
    GroupChange, MemberId, RateLimitGroup, TokenBucket, TokenBucketConfig, Transition,
};

#[derive(Clone, Debug)]
enum Op {
    /// Advance the fake clock by this many nanoseconds.
    Advance(u64),
    Read(usize),
    Write(usize),
    DecrementRead(i64),
    DecrementWrite(i64),
}

fn op(tick_ns: u64, burst: u64) -> impl Strategy<Value = Op> {
    let n = 0..=(burst as usize * 3);
    prop_oneof![
        3 => (0..=tick_ns * 3).prop_map(Op::Advance),
        1 => (0..=tick_ns * 40).prop_map(Op::Advance),
        2 => n.clone().prop_map(Op::Read),
        2 => n.prop_map(Op::Write),
        1 => (0..=burst as i64 * 2).prop_map(Op::DecrementRead),
        1 => (0..=burst as i64 * 2).prop_map(Op::DecrementWrite),
    ]
}

/// `(cfg, ops)`: a configuration and a sequence of operations sized to it.
fn scenario() -> impl Strategy<Value = (TokenBucketConfig, Vec<Op>)> {
    (
        1u64..2000,
        1u64..6,
        1u64..2000,
        1u64..6,
        1u64..5_000_000_000,
    )
        .prop_flat_map(|(rr, rb, wr, wb, tick_ns)| {
            let cfg =
                TokenBucketConfig::new(rr, rr * rb, wr, wr * wb, Duration::from_nanos(tick_ns))
                    .expect("valid by construction");
            let burst = rr * rb.max(wb) + wr * wb;
            (Just(cfg), prop::collection::vec(op(tick_ns, burst), 1..200))
        })
}

/// The model: one direction of a bucket in `i128`, with ticks in `u128`.
#[derive(Debug)]
struct Model {
    limit: i128,
    rate: i128,
    burst: i128,
}

impl Model {
    fn refill(&mut self, ticks: u128) {
        if ticks > 0 {
            self.limit = (self.limit + ticks as i128 * self.rate).min(self.burst);
        }
    }

    fn take(&mut self, n: i128) -> Transition {
        let old = self.limit;
        self.limit -= n;
        match (old > 0, self.limit > 0) {
            (true, false) => Transition::Suspended,
            (false, true) => Transition::Resumed,
            _ => Transition::Unchanged,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bucket_matches_the_wide_integer_model((cfg, ops) in scenario()) {
        let t0 = Instant::now();
        let tick_ns = cfg.tick().as_nanos();
        let mut bucket = TokenBucket::new(&cfg, t0);
        let mut read = Model {
            limit: cfg.read_rate().into(),
            rate: cfg.read_rate().into(),
            burst: cfg.read_burst().into(),
        };
        let mut write = Model {
            limit: cfg.write_rate().into(),
            rate: cfg.write_rate().into(),
            burst: cfg.write_burst().into(),
        };
        let mut elapsed_ns: u128 = 0;
        let mut last_tick: u128 = 0;
        for op in ops {
            match op {
                Op::Advance(ns) => {
                    elapsed_ns += u128::from(ns);
                    let tick = elapsed_ns / tick_ns;
                    let (was_r, was_w) = (read.limit <= 0, write.limit <= 0);
                    read.refill(tick - last_tick);
                    write.refill(tick - last_tick);
                    last_tick = tick;
                    let now = t0 + Duration::from_nanos(elapsed_ns as u64);
                    let resumed = bucket.refill(&cfg, now);
                    prop_assert_eq!(resumed.read, was_r && read.limit > 0);
                    prop_assert_eq!(resumed.write, was_w && write.limit > 0);
                    // After a refill the limits never exceed the burst.
                    prop_assert!(i128::from(bucket.read_limit()) <= read.burst);
                    prop_assert!(i128::from(bucket.write_limit()) <= write.burst);
                    // One timer per tick: the next one is on the next boundary.
                    let next = t0 + Duration::from_nanos(((tick + 1) * tick_ns) as u64);
                    prop_assert_eq!(bucket.next_tick_at(now), next);
                }
                Op::Read(n) => {
                    prop_assert_eq!(bucket.charge_read(n), read.take(n as i128));
                }
                Op::Write(n) => {
                    prop_assert_eq!(bucket.charge_write(n), write.take(n as i128));
                }
                Op::DecrementRead(d) => {
                    prop_assert_eq!(bucket.decrement_read(d), read.take(d.into()));
                }
                Op::DecrementWrite(d) => {
                    prop_assert_eq!(bucket.decrement_write(d), write.take(d.into()));
                }
            }
            prop_assert_eq!(i128::from(bucket.read_limit()), read.limit);
            prop_assert_eq!(i128::from(bucket.write_limit()), write.limit);
            prop_assert!(read.limit <= read.burst && write.limit <= write.burst);
            prop_assert_eq!(bucket.is_read_suspended(), read.limit <= 0);
            prop_assert_eq!(bucket.is_write_suspended(), write.limit <= 0);
            let expect_max = read.limit.clamp(0, 16384) as usize;
            prop_assert_eq!(bucket.max_to_read(16384), expect_max);
        }
    }
}

#[derive(Clone, Debug)]
enum GroupOp {
    Add(u64),
    Remove(u64),
    /// Member `m` reads as much as it is offered (or `extra` more, an overrun).
    Read {
        m: u64,
        extra: usize,
    },
    Tick(u32),
    Drain(i64),
}

fn group_op() -> impl Strategy<Value = GroupOp> {
    prop_oneof![
        2 => (0u64..12).prop_map(GroupOp::Add),
        1 => (0u64..12).prop_map(GroupOp::Remove),
        6 => (0u64..12, prop_oneof![9 => Just(0usize), 1 => 0usize..5000])
            .prop_map(|(m, extra)| GroupOp::Read { m, extra }),
        2 => (0u32..4).prop_map(GroupOp::Tick),
        1 => (-500i64..500).prop_map(GroupOp::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn group_accounting_and_suspension_stay_consistent(
        rate in 1u64..5000,
        burst_mul in 1u64..4,
        min_share in 0u64..200,
        ops in prop::collection::vec(group_op(), 1..300),
    ) {
        let tick = Duration::from_millis(50);
        let cfg = TokenBucketConfig::new(rate, rate * burst_mul, rate, rate * burst_mul, tick)
            .unwrap();
        let t0 = Instant::now();
        let mut g = RateLimitGroup::new(cfg, t0);
        g.set_min_share(min_share).unwrap();
        let mut ticks = 0u32;
        let mut total_read = 0u64;
        // The group's read level, modelled in i128.
        let mut level = i128::from(rate);
        for op in ops {
            match op {
                GroupOp::Add(m) => {
                    let starts = g.add_member(MemberId(m));
                    prop_assert_eq!(starts.read, g.is_read_suspended());
                }
                GroupOp::Remove(m) => {
                    let was = g.contains(MemberId(m));
                    prop_assert_eq!(g.remove_member(MemberId(m)), was);
                }
                GroupOp::Read { m, extra } => {
                    let id = MemberId(m);
                    match g.max_to_read(id, None, 16384) {
                        Err(_) => prop_assert!(!g.contains(id)),
                        Ok(offer) => {
                            if g.is_read_suspended() {
                                prop_assert_eq!(offer, 0);
                            } else {
                                // Never more than what the group has left.
                                prop_assert!(offer as i128 <= level.max(0));
                            }
                            let n = offer + extra;
                            let was_suspended = g.is_read_suspended();
                            let change = g.charge_read(id, n).unwrap();
                            level -= n as i128;
                            total_read += n as u64;
                            match change {
                                GroupChange::Suspend(all) => {
                                    prop_assert!(!was_suspended && level <= 0);
                                    prop_assert_eq!(all.len(), g.len());
                                }
                                GroupChange::Unchanged => {
                                    prop_assert!(was_suspended || level > 0);
                                }
                                GroupChange::Resume(_) => prop_assert!(false, "a charge resumed"),
                            }
                        }
                    }
                }
                GroupOp::Tick(k) => {
                    ticks += k;
                    let was_suspended = g.is_read_suspended();
                    let refill = g.refill(t0 + tick * ticks);
                    if k > 0 {
                        level = (level + i128::from(k) * i128::from(rate))
                            .min(i128::from(rate * burst_mul));
                    }
                    if let GroupChange::Resume(order) = refill.read {
                        prop_assert!(was_suspended);
                        prop_assert!(level > 0 && level >= i128::from(g.min_share()));
                        let mut sorted = order.clone();
                        sorted.sort();
                        let mut members = g.members().to_vec();
                        members.sort();
                        prop_assert_eq!(sorted, members);
                    } else if was_suspended {
                        prop_assert!(level <= 0 || level < i128::from(g.min_share()));
                    }
                }
                GroupOp::Drain(d) => {
                    let _ = g.decrement_read(d);
                    level -= i128::from(d);
                }
            }
            prop_assert_eq!(i128::from(g.read_limit()), level);
            prop_assert_eq!(g.totals().0, total_read);
            if !g.is_read_suspended() {
                prop_assert!(level > 0, "not suspended with an empty bucket");
            }
        }
    }
}
