//! `time-test`: a persistent timer printing the elapsed time, after
//! libevent's `sample/time-test.c`.
//!
//! ```text
//! cargo run --example time-test -- [--interval SECS] [--count N]
//! ```
//!
//! Fires every `--interval` seconds (default 2) and stops after `--count`
//! ticks (default 3; 0 runs until interrupted).

use std::time::{Duration, Instant};

use oxevent::{EventBase, What};

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} needs a number"))
        })
}

fn main() -> std::io::Result<()> {
    let interval = Duration::from_secs_f64(arg("--interval", 2.0));
    let count = arg("--count", 3.0) as u64;
    let mut base = EventBase::new()?;
    println!(
        "time-test: method {}, a tick every {interval:?}",
        base.method()
    );
    let start = Instant::now();
    let mut last = start;
    let mut ticks = 0u64;
    let ev = base.event_new(-1, What::PERSIST, move |base, ev, _| {
        let now = Instant::now();
        ticks += 1;
        println!(
            "timeout_cb called at {:.3}: {:.3} seconds elapsed.",
            now.duration_since(start).as_secs_f64(),
            now.duration_since(last).as_secs_f64()
        );
        last = now;
        if count != 0 && ticks >= count {
            base.free(ev).expect("free our own timer");
        }
    })?;
    base.add(ev, Some(interval))?;
    base.dispatch()?;
    Ok(())
}
