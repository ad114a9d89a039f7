//! Helpers for the reactor tests.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::{EventBase, LoopFlags};

pub use oxevent_test_support::{Watchdog, socketpair};

/// A base from the environment-selected backend.
pub fn base() -> EventBase {
    EventBase::new().expect("event base")
}

/// A shared log the callbacks append to.
pub type Log<T> = Rc<RefCell<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Runs non-blocking iterations until `cond` holds, at most `limit` long.
pub fn run_until(base: &mut EventBase, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK)
            .expect("loop");
        std::thread::sleep(Duration::from_micros(200));
    }
    cond()
}
