//! Cross-thread use through `Remote`, after libevent's `regress_thread.c`.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use oxevent_core::{LoopFlags, LoopStatus, What};

use crate::common::*;

#[test]
fn remote_is_send_sync_clone() {
    fn check<T: Send + Sync + Clone>() {}
    check::<oxevent_core::Remote>();
}

#[test]
fn loopbreak_sent_before_the_loop_runs_is_not_lost() {
    let _w = Watchdog::new("early loopbreak", Duration::from_secs(10));
    let mut base = base();
    let remote = base.remote().unwrap();
    thread::spawn(move || remote.loopbreak().unwrap())
        .join()
        .unwrap();
    // libevent #573: the break arrived before the loop started.
    assert_eq!(
        base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap(),
        LoopStatus::Done
    );
    assert!(base.got_break());
}

#[test]
fn closures_from_many_threads_all_run_on_the_loop() {
    let _w = Watchdog::new("remote closures", Duration::from_secs(20));
    let mut base = base();
    let remote = base.remote().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let loop_thread = thread::current().id();
    const THREADS: usize = 4;
    const EACH: usize = 500;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let r = remote.clone();
            let c = count.clone();
            thread::spawn(move || {
                for _ in 0..EACH {
                    let c = c.clone();
                    r.run_in_loop(move |base| {
                        assert_eq!(thread::current().id(), loop_thread);
                        if c.fetch_add(1, Ordering::SeqCst) + 1 == THREADS * EACH {
                            base.loopbreak();
                        }
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(count.load(Ordering::SeqCst), THREADS * EACH);
}

#[test]
fn remote_activate_and_loopexit() {
    let _w = Watchdog::new("remote activate", Duration::from_secs(10));
    let mut base = base();
    let hits = Rc::new(Cell::new(What::empty()));
    let h = hits.clone();
    let ev = base.user_new(move |_, _, w| h.set(w));
    let remote = base.remote().unwrap();
    let r = remote.clone();
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        r.activate(ev, What::WRITE).unwrap();
        r.loopexit(Some(Duration::from_millis(10))).unwrap();
    });
    let start = Instant::now();
    base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
    t.join().unwrap();
    assert_eq!(hits.get(), What::WRITE);
    assert!(base.got_exit());
    assert!(start.elapsed() >= Duration::from_millis(25));
    // A stale handle sent from another thread is ignored, not a crash.
    base.free(ev).unwrap();
    remote.activate(ev, What::READ).unwrap();
    remote.loopbreak().unwrap();
    base.run(LoopFlags::NO_EXIT_ON_EMPTY).unwrap();
}

#[test]
fn a_base_per_thread() {
    let _w = Watchdog::new("base per thread", Duration::from_secs(20));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut base = base();
                let n = Rc::new(Cell::new(0));
                let m = n.clone();
                let t = base
                    .event_new(-1, What::PERSIST, move |base, ev, _| {
                        m.set(m.get() + 1);
                        if m.get() == 10 {
                            base.free(ev).unwrap();
                        }
                    })
                    .unwrap();
                base.add(t, Some(Duration::from_millis(1 + i))).unwrap();
                base.dispatch().unwrap();
                n.get()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 10);
    }
}
