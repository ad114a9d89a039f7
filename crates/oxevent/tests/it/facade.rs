//! The facade re-exports what a libevent user reaches for.

use std::time::Duration;

use oxevent::{Config, EventBase, LoopFlags, What};

#[test]
fn the_facade_is_enough_for_a_timer_loop() {
    let mut base = EventBase::with_config(&Config::new()).unwrap();
    let mut n = 0;
    let ev = base
        .event_new(-1, What::PERSIST, move |base, ev, _| {
            n += 1;
            if n == 2 {
                base.free(ev).unwrap();
            }
        })
        .unwrap();
    base.add(ev, Some(Duration::from_millis(1))).unwrap();
    base.run(LoopFlags::empty()).unwrap();
    assert!(!base.is_valid(ev));
    assert!(oxevent::supported_methods().contains(&base.method()));
    assert!(!oxevent::VERSION.is_empty());
}
