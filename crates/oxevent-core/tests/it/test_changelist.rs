//! The changelist, after libevent's `test-changelist.c`: flapping interest
//! within one iteration costs no backend call, and an fd closed and reused
//! within one iteration still works.

use std::cell::Cell;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::{
    Backend, Config, EventBase, Features, Interest, LoopFlags, RawFd, ReadyList, What,
};

use crate::common::*;

#[derive(Debug)]
struct Spy {
    inner: Box<dyn Backend>,
    calls: Rc<Cell<u32>>,
}

impl Backend for Spy {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn features(&self) -> Features {
        self.inner.features()
    }
    fn set_interest(
        &mut self,
        fd: RawFd,
        old: Interest,
        new: Interest,
        fresh: bool,
    ) -> io::Result<()> {
        self.calls.set(self.calls.get() + 1);
        self.inner.set_interest(fd, old, new, fresh)
    }
    fn wait(&mut self, timeout: Option<Duration>, ready: &mut ReadyList) -> io::Result<()> {
        self.inner.wait(timeout, ready)
    }
    fn waker(&mut self) -> io::Result<oxevent_core::Waker> {
        self.inner.waker()
    }
    fn reinit(&mut self) -> io::Result<()> {
        self.inner.reinit()
    }
}

fn spied(changelist: bool) -> (EventBase, Rc<Cell<u32>>) {
    let calls = Rc::new(Cell::new(0));
    let d = oxevent_core::default_methods()
        .into_iter()
        .find(|d| std::env::var_os(d.env_var()).is_none())
        .expect("a backend");
    let inner = (d.new)(&oxevent_core::BackendConfig::new()).unwrap();
    let base = EventBase::with_backend_and_config(
        Spy {
            inner,
            calls: calls.clone(),
        },
        &Config::new().changelist(changelist),
    )
    .unwrap();
    (base, calls)
}

#[test]
fn delete_then_add_in_one_iteration_costs_nothing() {
    let (mut base, calls) = spied(true);
    let (_a, b) = socketpair();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    base.add(ev, None).unwrap();
    assert_eq!(calls.get(), 1, "the first add registers at once");
    for _ in 0..100 {
        base.del(ev).unwrap();
        base.add(ev, None).unwrap();
    }
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(calls.get(), 1, "flapping coalesced away");
    base.del(ev).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        calls.get(),
        2,
        "a real delete reaches the backend at the next wait"
    );
}

#[test]
fn without_the_changelist_every_change_is_immediate() {
    let (mut base, calls) = spied(false);
    let (_a, b) = socketpair();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ, |_, _, _| {})
        .unwrap();
    base.add(ev, None).unwrap();
    base.del(ev).unwrap();
    base.add(ev, None).unwrap();
    assert_eq!(calls.get(), 3);
}

#[test]
fn fd_closed_and_reused_within_one_iteration() {
    let _w = Watchdog::new("fd reuse", Duration::from_secs(10));
    let mut base = base();
    let (a1, b1) = socketpair();
    let fd = b1.as_raw_fd();
    let old = base
        .event_new(fd, What::READ | What::PERSIST, |_, _, _| {
            panic!("old event must not run")
        })
        .unwrap();
    base.add(old, None).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    // Same iteration: free the event, close the fd, get the same number back.
    base.free(old).unwrap();
    drop(b1);
    drop(a1);
    // The lowest free numbers come back, possibly swapped (other test
    // threads may race for them; then this checks the ordinary path).
    let (x, y) = socketpair();
    let (mut writer, reader) = if x.as_raw_fd() == fd { (y, x) } else { (x, y) };
    if reader.as_raw_fd() != fd {
        eprintln!("fd {fd} was not reused by this thread; checking the ordinary path");
    }
    let hit = Rc::new(Cell::new(false));
    let h = hit.clone();
    let new = base
        .event_new(reader.as_raw_fd(), What::READ, move |_, _, _| h.set(true))
        .unwrap();
    base.add(new, None).unwrap();
    writer.write_all(b"x").unwrap();
    assert!(
        run_until(&mut base, Duration::from_secs(5), || hit.get()),
        "the reused fd is watched"
    );
}

#[test]
fn changing_interest_on_a_live_fd_is_coalesced() {
    let (mut base, calls) = spied(true);
    let (_a, b) = socketpair();
    let r = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    let w = base
        .event_new(b.as_raw_fd(), What::WRITE | What::PERSIST, |base, ev, _| {
            base.del(ev).unwrap()
        })
        .unwrap();
    base.add(r, None).unwrap();
    assert_eq!(calls.get(), 1);
    base.add(w, None).unwrap();
    base.del(w).unwrap();
    base.add(w, None).unwrap();
    base.run(LoopFlags::ONCE).unwrap();
    assert_eq!(calls.get(), 2, "READ to READ|WRITE once");
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(calls.get(), 3, "back to READ once");
}

#[test]
fn a_closing_fd_needs_no_removal() {
    let (mut base, calls) = spied(true);
    let (a, b) = socketpair();
    let ev = base
        .event_new(b.as_raw_fd(), What::READ | What::PERSIST, |_, _, _| {})
        .unwrap();
    base.add(ev, None).unwrap();
    assert_eq!(calls.get(), 1);
    base.free(ev).unwrap();
    base.fd_closing(b.as_raw_fd());
    drop(b);
    drop(a);
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        calls.get(),
        1,
        "the kernel forgot the fd on close; nothing was sent"
    );
    // While an event still watches the fd, the hint is ignored.
    let (_c, d) = socketpair();
    let ev = base
        .event_new(d.as_raw_fd(), What::READ, |_, _, _| {})
        .unwrap();
    base.add(ev, None).unwrap();
    base.fd_closing(d.as_raw_fd());
    base.del(ev).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(calls.get(), 3, "add and the real removal");
}
