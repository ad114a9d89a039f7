//! Edge-triggered events, after libevent's `regress_et.c`.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use oxevent_core::{Features, LoopFlags, What};

use crate::common::*;

#[test]
fn edge_triggered_fires_once_per_arrival() {
    let mut base = base();
    if !base.features().contains(Features::ET) {
        return; // poll has no edge mode; refusing it is tested in regress.rs
    }
    let (mut a, b) = socketpair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let ev = base
        .event_new(
            b.as_raw_fd(),
            What::READ | What::ET | What::PERSIST,
            move |_, _, _| h.set(h.get() + 1),
        )
        .unwrap();
    base.add(ev, None).unwrap();
    a.write_all(b"hello").unwrap();
    for _ in 0..5 {
        base.run(LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(hits.get(), 1, "not drained, yet reported once");
    a.write_all(b"more").unwrap();
    for _ in 0..5 {
        base.run(LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(hits.get(), 2, "new data is a new edge");
}

#[test]
fn level_triggered_fires_until_drained() {
    let mut base = base();
    let (mut a, mut b) = socketpair();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, move |_, _, _| {
            h.set(h.get() + 1)
        })
        .unwrap();
    base.add(ev, None).unwrap();
    a.write_all(b"hello").unwrap();
    for _ in 0..5 {
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(hits.get(), 5);
    oxevent_test_support::drain(&mut b).unwrap();
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    assert_eq!(hits.get(), 5, "drained: quiet");
}
