//! Behaviour only the epoll backend has: `EPERM` for regular files, the
//! descriptor's name and features, and the precise-timer configurations.

use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use oxevent_backend::conformance::exclusive;
use oxevent_backend::{Backend, BackendConfig, Features, Interest, Ready, ReadyList};
use oxevent_epoll::{DESCRIPTOR, Epoll};

#[test]
fn descriptor_matches_libevent() {
    assert_eq!(DESCRIPTOR.name, "epoll");
    assert_eq!(
        DESCRIPTOR.features,
        Features::ET | Features::O1 | Features::EARLY_CLOSE
    );
    assert_eq!(DESCRIPTOR.env_var(), "EVENT_NOEPOLL");
    let _g = exclusive();
    let e = Epoll::new(&BackendConfig::new()).unwrap();
    assert!(e.need_reinit());
    assert_eq!(e.name(), "epoll");
}

#[test]
fn regular_file_is_eperm() {
    let _g = exclusive();
    let mut e = Epoll::new(&BackendConfig::new()).unwrap();
    let file = std::fs::File::open("/proc/self/exe").unwrap();
    let err = e
        .set_interest(file.as_raw_fd(), Interest::empty(), Interest::READ, false)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
}

#[test]
fn add_of_registered_fd_falls_back_to_mod() {
    let _g = exclusive();
    let mut e = Epoll::new(&BackendConfig::new()).unwrap();
    let (a, mut b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    e.set_interest(fd, Interest::empty(), Interest::WRITE, false)
        .unwrap();
    // The core lost track (old = empty) but the fd is registered: EEXIST -> MOD.
    e.set_interest(fd, Interest::empty(), Interest::READ, true)
        .unwrap();
    b.write_all(b"x").unwrap();
    let mut list = ReadyList::new();
    e.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
    assert_eq!(list.events(), &[(fd, Ready::READ)]);
}

#[test]
fn long_timeouts_are_accepted() {
    let _g = exclusive();
    let mut e = Epoll::new(&BackendConfig::new()).unwrap();
    let w = e.waker().unwrap();
    w.wake().unwrap();
    let mut list = ReadyList::new();
    // Far beyond the 35-minute cap and beyond i32 milliseconds.
    let t = Instant::now();
    e.wait(Some(Duration::from_secs(u64::MAX / 4)), &mut list)
        .unwrap();
    assert!(list.woken());
    assert!(t.elapsed() < Duration::from_secs(1));
}
