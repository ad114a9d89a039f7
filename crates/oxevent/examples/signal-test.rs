//! `signal-test`: catches SIGINT and exits on the second one, after
//! libevent's `sample/signal-test.c`.
//!
//! ```text
//! cargo run --example signal-test      # then press Ctrl-C twice
//! ```

use oxevent::{EventBase, What};

fn main() -> std::io::Result<()> {
    let mut base = EventBase::new()?;
    let mut called = 0;
    let ev = base.signal_new(libc::SIGINT, move |base, ev, what| {
        assert!(what.contains(What::SIGNAL));
        called += 1;
        println!("signal_cb: got signal {}", libc::SIGINT);
        if called >= 2 {
            base.del(ev).expect("delete our own signal event");
        }
    })?;
    base.add(ev, None)?;
    println!(
        "signal-test: waiting for SIGINT (twice to exit), pid {}",
        std::process::id()
    );
    base.dispatch()?;
    println!("signal-test: done");
    Ok(())
}
