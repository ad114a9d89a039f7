//! End of file and write errors, after libevent's `test-eof.c`,
//! `test-weof.c` and `test-closed.c`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use oxevent_core::{Features, LoopFlags, What};

use crate::common::*;

#[test]
fn reader_sees_data_then_eof() {
    let _w = Watchdog::new("eof", Duration::from_secs(10));
    let mut base = base();
    let (mut a, b) = socketpair();
    a.write_all(b"test string").unwrap();
    drop(a);
    let got = Rc::new(RefCell::new(Vec::new()));
    let eof = Rc::new(Cell::new(false));
    let (g, e) = (got.clone(), eof.clone());
    let b = Rc::new(RefCell::new(b));
    let bb = b.clone();
    let fd = b.borrow().as_raw_fd();
    base.event_new(fd, What::READ | What::PERSIST, move |base, ev, _| {
        let mut buf = [0u8; 256];
        match bb.borrow_mut().read(&mut buf) {
            Ok(0) => {
                e.set(true);
                base.del(ev).unwrap();
            }
            Ok(n) => g.borrow_mut().extend_from_slice(&buf[..n]),
            Err(err) => panic!("read: {err}"),
        }
    })
    .map(|ev| base.add(ev, None).unwrap())
    .unwrap();
    base.dispatch().unwrap();
    assert_eq!(&*got.borrow(), b"test string");
    assert!(eof.get());
}

#[test]
fn writer_gets_epipe_after_peer_close() {
    let _w = Watchdog::new("weof", Duration::from_secs(10));
    let mut base = base();
    let (a, b) = socketpair();
    drop(b);
    let result = Rc::new(Cell::new(None));
    let r = result.clone();
    let a = Rc::new(RefCell::new(a));
    let aa = a.clone();
    let fd = a.borrow().as_raw_fd();
    let ev = base
        .event_new(fd, What::WRITE | What::PERSIST, move |base, ev, _| match aa
            .borrow_mut()
            .write(b"x")
        {
            Ok(_) => {}
            Err(e) => {
                r.set(Some(e.kind()));
                base.del(ev).unwrap();
            }
        })
        .unwrap();
    base.add(ev, None).unwrap();
    base.dispatch().unwrap();
    assert_eq!(result.get(), Some(io::ErrorKind::BrokenPipe));
}

#[test]
fn closed_event_fires_without_reading() {
    let mut base = base();
    let (a, b) = oxevent_test_support::tcp_pair();
    if !base.features().contains(Features::EARLY_CLOSE) {
        assert!(
            base.event_new(b.as_raw_fd(), What::CLOSED, |_, _, _| {})
                .is_err()
        );
        return;
    }
    let got = Rc::new(Cell::new(What::empty()));
    let g = got.clone();
    let ev = base
        .event_new(b.as_raw_fd(), What::CLOSED, move |_, _, w| g.set(w))
        .unwrap();
    base.add(ev, Some(Duration::from_secs(5))).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(got.get(), What::empty(), "open: nothing yet");
    drop(a);
    base.dispatch().unwrap();
    assert_eq!(got.get(), What::CLOSED);
}
