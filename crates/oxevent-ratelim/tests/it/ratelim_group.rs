//! Rate-limit groups: shares, suspension and resumption, fairness, totals, membership.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use oxevent_ratelim::{
    DEFAULT_MAX_SINGLE_READ, DEFAULT_MIN_SHARE, Directions, Error, GroupChange, MemberId,
    RateLimitGroup, TokenBucket, TokenBucketConfig,
};

use crate::{at_tick, symmetric};

const TICK: Duration = Duration::from_millis(100);
const BIG: usize = usize::MAX;

fn group_with(rate: u64, burst: u64, members: u64) -> (RateLimitGroup, Vec<MemberId>, Instant) {
    let t0 = Instant::now();
    let mut g = RateLimitGroup::new(symmetric(rate, burst, TICK), t0);
    let ids: Vec<MemberId> = (0..members).map(|i| MemberId(100 + i)).collect();
    for &id in &ids {
        assert_eq!(g.add_member(id), Directions::NONE);
    }
    (g, ids, t0)
}

/// Reads greedily with every member in `order`, round after round, until the group suspends
/// reading. Returns what each member got.
fn drain_reading(g: &mut RateLimitGroup, order: &[MemberId]) -> HashMap<MemberId, u64> {
    let mut got = HashMap::new();
    for _round in 0..100_000 {
        for &m in order {
            let n = g.max_to_read(m, None, DEFAULT_MAX_SINGLE_READ).unwrap();
            *got.entry(m).or_insert(0) += n as u64;
            if let GroupChange::Suspend(all) = g.charge_read(m, n).unwrap() {
                assert_eq!(all.len(), order.len());
                return got;
            }
        }
    }
    panic!("the group never ran dry");
}

#[test]
fn members_asking_at_once_get_equal_shares() {
    let (g, ids, _) = group_with(8000, 8000, 8);
    for &id in &ids {
        assert_eq!(g.max_to_read(id, None, BIG).unwrap(), 1000);
        assert_eq!(g.max_to_write(id, None, BIG).unwrap(), 1000);
    }
    assert_eq!(
        g.max_to_read(ids[0], None, 300).unwrap(),
        300,
        "max single read caps"
    );
}

#[test]
fn shares_never_fall_below_the_min_share_nor_above_what_is_left() {
    // 100 members of a 1000-byte group: 10 each would be tiny; the min share gives 64.
    let (mut g, ids, _) = group_with(1000, 1000, 100);
    assert_eq!(g.min_share(), DEFAULT_MIN_SHARE);
    for &id in &ids {
        assert_eq!(g.max_to_read(id, None, BIG).unwrap(), 64);
    }
    // 15 members take 64 each (960), the 16th gets the 40 left, not 64.
    for &id in &ids[..15] {
        assert_eq!(g.charge_read(id, 64).unwrap(), GroupChange::Unchanged);
    }
    assert_eq!(g.max_to_read(ids[15], None, BIG).unwrap(), 40);
    let GroupChange::Suspend(all) = g.charge_read(ids[15], 40).unwrap() else {
        panic!("exhausting the group must suspend it");
    };
    assert_eq!(all.len(), 100);
    assert_eq!(g.read_limit(), 0);

    g.set_min_share(200).unwrap();
    assert_eq!(g.min_share(), 200);
    g.set_min_share(5000).unwrap();
    assert_eq!(g.min_share(), 1000, "capped by the rate");
}

#[test]
fn exhaustion_suspends_everyone_and_a_tick_resumes_everyone() {
    let (mut g, ids, t0) = group_with(1000, 1000, 4);
    let got = drain_reading(&mut g, &ids);
    assert_eq!(got.values().sum::<u64>(), 1000);
    assert!(g.is_read_suspended());
    assert!(!g.is_write_suspended(), "directions are independent");
    for &id in &ids {
        assert_eq!(g.max_to_read(id, None, BIG).unwrap(), 0);
        assert!(g.max_to_write(id, None, BIG).unwrap() > 0);
    }
    // Charging more while suspended does not report a second suspension.
    assert_eq!(g.charge_read(ids[0], 5).unwrap(), GroupChange::Unchanged);

    // Not yet a tick.
    let early = g.refill(t0 + TICK - Duration::from_nanos(1));
    assert_eq!(early.read, GroupChange::Unchanged);
    let tick = g.refill(at_tick(t0, TICK, 1));
    let GroupChange::Resume(order) = tick.read else {
        panic!("a tick must resume reading, got {:?}", tick.read);
    };
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(sorted, ids);
    assert_eq!(tick.write, GroupChange::Unchanged);
    assert_eq!(g.read_limit(), 995);
}

#[test]
fn a_deeply_overdrawn_group_stays_suspended_until_it_has_a_min_share() {
    let (mut g, ids, t0) = group_with(100, 100, 2);
    // One member overruns by a lot (an overlong write).
    assert!(matches!(
        g.charge_write(ids[0], 450).unwrap(),
        GroupChange::Suspend(_)
    ));
    assert_eq!(g.write_limit(), -350);
    g.set_min_share(50).unwrap();
    let mut resumed_at = None;
    for k in 1..=10 {
        let tick = g.refill(at_tick(t0, TICK, k));
        if let GroupChange::Resume(_) = tick.write {
            resumed_at = Some(k);
            break;
        }
        assert!(g.is_write_suspended());
    }
    // -350 + 4 × 100 = 50 reaches the min share at the 4th tick.
    assert_eq!(resumed_at, Some(4));
    assert_eq!(g.write_limit(), 50);
}

#[test]
fn the_first_member_served_rotates_fairly_across_ticks() {
    let (mut g, ids, t0) = group_with(500, 500, 5);
    let mut first_counts: HashMap<MemberId, u32> = HashMap::new();
    let mut order = ids.clone();
    for k in 1..=1000 {
        drain_reading(&mut g, &order);
        let tick = g.refill(at_tick(t0, TICK, k));
        let GroupChange::Resume(next) = tick.read else {
            panic!("tick {k} did not resume: {:?}", tick.read);
        };
        *first_counts.entry(next[0]).or_insert(0) += 1;
        order = next;
    }
    assert_eq!(first_counts.len(), 5);
    for (&m, &count) in &first_counts {
        assert_eq!(count, 200, "{m} was first {count} times out of 1000");
    }
}

#[test]
fn totals_count_charges_until_reset() {
    let (mut g, ids, t0) = group_with(1_000_000, 1_000_000, 3);
    let _ = g.charge_read(ids[0], 10).unwrap();
    let _ = g.charge_read(ids[1], 20).unwrap();
    let _ = g.charge_write(ids[2], 5).unwrap();
    assert_eq!(g.totals(), (30, 5));
    // Manual decrements are not traffic.
    let _ = g.decrement_read(1000);
    let _ = g.decrement_write(-1000);
    assert_eq!(g.totals(), (30, 5));
    let _ = g.refill(at_tick(t0, TICK, 1));
    assert_eq!(g.totals(), (30, 5), "ticks do not reset totals");
    g.reset_totals();
    assert_eq!(g.totals(), (0, 0));
    let _ = g.charge_write(ids[0], 7).unwrap();
    assert_eq!(g.totals(), (0, 7));
}

#[test]
fn removing_members_enlarges_the_shares_of_the_others() {
    let (mut g, ids, _) = group_with(9000, 9000, 3);
    assert_eq!(g.max_to_read(ids[0], None, BIG).unwrap(), 3000);
    assert!(g.remove_member(ids[1]));
    assert!(!g.remove_member(ids[1]));
    assert!(!g.contains(ids[1]));
    assert_eq!(g.len(), 2);
    assert_eq!(g.max_to_read(ids[0], None, BIG).unwrap(), 4500);
    assert_eq!(g.max_to_read(ids[2], None, BIG).unwrap(), 4500);
    assert_eq!(
        g.max_to_read(ids[1], None, BIG),
        Err(Error::UnknownMember(ids[1]))
    );
    assert_eq!(g.charge_read(ids[1], 1), Err(Error::UnknownMember(ids[1])));
    // A suspension lists only the current members.
    let change = g.decrement_read(10_000);
    let GroupChange::Suspend(mut all) = change else {
        panic!("expected a suspension, got {change:?}");
    };
    all.sort();
    assert_eq!(all, vec![ids[0], ids[2]]);
}

#[test]
fn a_member_joining_a_suspended_group_starts_suspended() {
    let (mut g, ids, t0) = group_with(1000, 1000, 2);
    let _ = g.decrement_write(1000);
    let late = MemberId(7);
    assert_eq!(
        g.add_member(late),
        Directions {
            read: false,
            write: true
        }
    );
    assert_eq!(g.max_to_write(late, None, BIG).unwrap(), 0);
    let tick = g.refill(at_tick(t0, TICK, 1));
    let GroupChange::Resume(order) = tick.write else {
        panic!("expected a resume");
    };
    assert_eq!(order.len(), 3);
    assert!(order.contains(&late) && order.contains(&ids[0]) && order.contains(&ids[1]));
}

#[test]
fn a_stricter_own_bucket_wins_over_the_group_share() {
    let (mut g, ids, t0) = group_with(10_000, 10_000, 2);
    let own_cfg = TokenBucketConfig::new(300, 300, 10_000, 10_000, TICK).unwrap();
    let mut own = TokenBucket::new(&own_cfg, t0);
    assert_eq!(g.max_to_read(ids[0], Some(&own), BIG).unwrap(), 300);
    assert_eq!(
        g.max_to_write(ids[0], Some(&own), BIG).unwrap(),
        5000,
        "group is stricter"
    );
    assert_eq!(g.max_to_read(ids[1], None, BIG).unwrap(), 5000);
    let _ = own.charge_read(300);
    let _ = g.charge_read(ids[0], 300).unwrap();
    assert_eq!(g.max_to_read(ids[0], Some(&own), BIG).unwrap(), 0);
    assert_eq!(g.max_to_read(ids[1], None, BIG).unwrap(), 4850);
    let _ = own.refill(&own_cfg, at_tick(t0, TICK, 1));
    assert_eq!(g.max_to_read(ids[0], Some(&own), 200).unwrap(), 200);
}

#[test]
fn manual_group_decrement_suspends_and_giving_tokens_back_resumes() {
    let (mut g, ids, _) = group_with(1000, 1000, 3);
    assert_eq!(g.decrement_read(400), GroupChange::Unchanged);
    assert_eq!(g.read_limit(), 600);
    let GroupChange::Suspend(all) = g.decrement_read(600) else {
        panic!("expected a suspension");
    };
    assert_eq!(all.len(), 3);
    assert_eq!(
        g.decrement_read(100),
        GroupChange::Unchanged,
        "already suspended"
    );
    assert_eq!(g.decrement_read(-50), GroupChange::Unchanged, "still empty");
    let GroupChange::Resume(order) = g.decrement_read(-150) else {
        panic!("expected a resume");
    };
    assert_eq!(order.len(), 3);
    assert_eq!(g.read_limit(), 100);
    assert!(!g.is_read_suspended());
    assert_eq!(
        g.max_to_read(ids[0], None, BIG).unwrap(),
        64,
        "min share of 100 left"
    );
}

#[test]
fn set_config_clips_the_group_bucket_and_applies_new_rates_next_tick() {
    let (mut g, ids, t0) = group_with(1000, 5000, 1);
    let _ = g.refill(at_tick(t0, TICK, 10));
    assert_eq!(g.read_limit(), 5000);
    let smaller = symmetric(10, 20, TICK);
    g.set_config(smaller, at_tick(t0, TICK, 10));
    assert_eq!((g.read_limit(), g.write_limit()), (20, 20));
    assert_eq!(g.min_share(), 10);
    assert_eq!(g.config(), &smaller);
    let _ = g.charge_read(ids[0], 20).unwrap();
    let tick = g.refill(at_tick(t0, TICK, 11));
    assert!(matches!(tick.read, GroupChange::Resume(_)));
    assert_eq!(g.read_limit(), 10);
    assert_eq!(g.next_tick_at(at_tick(t0, TICK, 11)), at_tick(t0, TICK, 12));
    assert_eq!(g.until_next_tick(at_tick(t0, TICK, 11)), TICK);
}
