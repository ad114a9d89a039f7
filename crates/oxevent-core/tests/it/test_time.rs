//! Timer accuracy under churn, after libevent's `test-time.c`: many timers
//! with random timeouts, re-armed from their callbacks; none fires early,
//! and each fires exactly as often as it is armed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent_core::{Config, Event, EventBase, What};

use crate::common::Watchdog;

/// Per timer: its event, the earliest instant it may fire, and its count.
type Timers = Rc<RefCell<Vec<(Option<Event>, Instant, u32)>>>;

fn churn(base: &mut EventBase) {
    const N: usize = 50;
    let state: Timers = Rc::new(RefCell::new(vec![(None, Instant::now(), 0); N]));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let first: Vec<u64> = (0..N).map(|_| rnd() % 20).collect();
    let rnd = Rc::new(RefCell::new(rnd));
    for (i, ms) in first.into_iter().enumerate() {
        let st = state.clone();
        let r = rnd.clone();
        let ev = base.timer_new(move |base, ev, what| {
            assert_eq!(what, What::TIMEOUT);
            let now = Instant::now();
            let mut s = st.borrow_mut();
            assert!(now >= s[i].1, "timer {i} fired {:?} early", s[i].1 - now);
            s[i].2 += 1;
            if s[i].2 < 5 {
                let ms = r.borrow_mut()() % 20;
                // Timeouts count from the base's cached time, as in libevent.
                s[i].1 = base.now() + Duration::from_millis(ms);
                base.add(ev, Some(Duration::from_millis(ms))).unwrap();
            }
        });
        state.borrow_mut()[i] = (Some(ev), base.now() + Duration::from_millis(ms), 0);
        base.add(ev, Some(Duration::from_millis(ms))).unwrap();
    }
    base.dispatch().unwrap();
    assert!(state.borrow().iter().all(|s| s.2 == 5));
}

#[test]
fn random_timers_never_fire_early_coarse_clock() {
    let _w = Watchdog::new("test-time coarse", Duration::from_secs(20));
    churn(&mut EventBase::new().unwrap());
}

#[test]
fn random_timers_never_fire_early_precise_clock() {
    let _w = Watchdog::new("test-time precise", Duration::from_secs(20));
    churn(&mut EventBase::with_config(&Config::new().precise_timer(true)).unwrap());
}
