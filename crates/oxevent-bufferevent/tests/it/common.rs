//! Helpers shared by this crate's integration tests.

use std::time::{Duration, Instant};

use oxevent_core::{EventBase, LoopFlags};

/// A base on the backend the environment selects (`EVENT_NO<METHOD>`).
pub(crate) fn base() -> EventBase {
    EventBase::new().expect("event base")
}

/// Runs non-blocking loop iterations until `cond` holds or `limit` passes.
pub(crate) fn run_until(
    base: &mut EventBase,
    limit: Duration,
    mut cond: impl FnMut(&mut EventBase) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond(base) {
            return true;
        }
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK)
            .expect("loop");
        std::thread::sleep(Duration::from_micros(100));
    }
    cond(base)
}
