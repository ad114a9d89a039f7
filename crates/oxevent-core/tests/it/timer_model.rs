//! A property test of the timer queue (heap plus common-timeout queues)
//! against a simple model, driven by a manual clock: random adds, deletes,
//! re-adds and clock advances; firing order and counts must match.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::{Clock, Config, EventBase, LoopFlags};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Add(usize, u64),
    Del(usize),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..16, 0u64..40).prop_map(|(i, ms)| Op::Add(i, ms)),
        1 => (0usize..16).prop_map(Op::Del),
        2 => (0u64..25).prop_map(Op::Advance),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]
    #[test]
    fn timers_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let (clock, hand) = Clock::manual();
        let mut base = EventBase::with_config(&Config::new().clock(clock)).unwrap();
        // Two durations are common timeouts, so both structures are exercised.
        base.init_common_timeout(Duration::from_millis(10)).unwrap();
        base.init_common_timeout(Duration::from_millis(20)).unwrap();
        let fired = Rc::new(RefCell::new(Vec::new()));
        let evs: Vec<_> = (0..16).map(|i| {
            let f = fired.clone();
            base.timer_new(move |_, _, _| f.borrow_mut().push(i))
        }).collect();
        // model: id -> (deadline ms, sequence of arming)
        let mut model: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
        let mut now = 0u64;
        let mut seq = 0u64;
        for op in ops {
            match op {
                Op::Add(i, ms) => {
                    base.add(evs[i], Some(Duration::from_millis(ms))).unwrap();
                    seq += 1;
                    model.insert(i, (now + ms, seq));
                }
                Op::Del(i) => {
                    base.del(evs[i]).unwrap();
                    model.remove(&i);
                }
                Op::Advance(ms) => {
                    now += ms;
                    hand.advance(Duration::from_millis(ms));
                    fired.borrow_mut().clear();
                    base.run(LoopFlags::NONBLOCK).unwrap();
                    let got = fired.borrow().clone();
                    let mut due: Vec<_> = model.iter().filter(|(_, v)| v.0 <= now).map(|(k, v)| (*k, v.0)).collect();
                    let deadlines: Vec<u64> = got.iter().map(|k| model[k].0).collect();
                    prop_assert!(deadlines.windows(2).all(|w| w[0] <= w[1]), "fired out of deadline order: {:?}", deadlines);
                    let mut got_sorted = got.clone();
                    got_sorted.sort_unstable();
                    due.sort_unstable();
                    prop_assert_eq!(got_sorted, due.iter().map(|d| d.0).collect::<Vec<_>>());
                    for (k, _) in due {
                        model.remove(&k);
                    }
                }
            }
        }
        let _ = seq;
    }
}
