//! Signals sent to our own process, after the signal parts of
//! libevent's `regress.c`. Each test uses its own signal number because the
//! test harness runs tests on several threads at once.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::{LoopFlags, What, sys};

use crate::common::*;

#[test]
fn a_signal_event_fires_on_raise() {
    let _w = Watchdog::new("signal", Duration::from_secs(10));
    let mut base = base();
    let got = Rc::new(Cell::new(0u32));
    let g = got.clone();
    let ev = base
        .signal_new(libc::SIGUSR1, move |base, ev, what| {
            assert_eq!(what, What::SIGNAL);
            g.set(g.get() + 1);
            base.free(ev).unwrap();
        })
        .unwrap();
    base.add(ev, None).unwrap();
    sys::raise(libc::SIGUSR1).unwrap();
    base.dispatch().unwrap();
    assert_eq!(got.get(), 1);
}

#[test]
fn every_base_gets_the_signal() {
    let _w = Watchdog::new("signal many bases", Duration::from_secs(10));
    let mut bases: Vec<_> = (0..3).map(|_| base()).collect();
    let got = Rc::new(Cell::new(0u32));
    for b in &mut bases {
        let g = got.clone();
        let ev = b
            .signal_new(libc::SIGUSR2, move |_, _, _| g.set(g.get() + 1))
            .unwrap();
        b.add(ev, None).unwrap();
    }
    sys::raise(libc::SIGUSR2).unwrap();
    for b in &mut bases {
        b.run(LoopFlags::ONCE).unwrap();
    }
    assert_eq!(
        got.get(),
        3,
        "libevent gives a signal to one base; we give it to all"
    );
}

#[test]
fn repeated_signals_are_counted() {
    let _w = Watchdog::new("signal ncalls", Duration::from_secs(10));
    let sig = libc::SIGRTMIN() + 1;
    let mut base = base();
    let got = Rc::new(Cell::new(0u32));
    let g = got.clone();
    let ev = base
        .signal_new(sig, move |_, _, _| g.set(g.get() + 1))
        .unwrap();
    base.add(ev, None).unwrap();
    for _ in 0..3 {
        sys::raise(sig).unwrap();
    }
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(got.get(), 3, "the callback runs once per delivery (ncalls)");
}

#[test]
fn deleting_the_last_watcher_restores_the_disposition() {
    let sig = libc::SIGRTMIN() + 2;
    assert!(sys::signal_disposition_is_default(sig).unwrap());
    let mut base = base();
    let ev = base.signal_new(sig, |_, _, _| {}).unwrap();
    base.add(ev, None).unwrap();
    assert!(!sys::signal_disposition_is_default(sig).unwrap());
    let mut other = super::common::base();
    let ev2 = other.signal_new(sig, |_, _, _| {}).unwrap();
    other.add(ev2, None).unwrap();
    base.free(ev).unwrap();
    assert!(
        !sys::signal_disposition_is_default(sig).unwrap(),
        "another base still watches"
    );
    other.del(ev2).unwrap();
    assert!(sys::signal_disposition_is_default(sig).unwrap());
}

#[test]
fn a_signal_and_a_timer_together() {
    let _w = Watchdog::new("signal+timer", Duration::from_secs(10));
    let sig = libc::SIGRTMIN() + 3;
    let mut base = base();
    let order = log::<&str>();
    let o = order.clone();
    let s = base
        .signal_new(sig, move |base, ev, _| {
            o.borrow_mut().push("signal");
            base.del(ev).unwrap();
        })
        .unwrap();
    base.add(s, Some(Duration::from_secs(5))).unwrap();
    let o = order.clone();
    base.once(
        -1,
        What::TIMEOUT,
        Some(Duration::from_millis(5)),
        move |_, _| {
            o.borrow_mut().push("timer");
            sys::raise(sig).unwrap();
        },
    )
    .unwrap();
    base.dispatch().unwrap();
    assert_eq!(*order.borrow(), ["timer", "signal"]);
}
