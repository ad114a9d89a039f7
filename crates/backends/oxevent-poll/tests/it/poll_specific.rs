//! Behaviour only the poll backend has: no edge triggering, regular files
//! accepted, O(1) slot bookkeeping under swap-removal.

use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use oxevent_backend::conformance::exclusive;
use oxevent_backend::{Backend, BackendConfig, Features, Interest, Ready, ReadyList};
use oxevent_poll::{DESCRIPTOR, Poll};

#[test]
fn descriptor_matches_libevent() {
    assert_eq!(DESCRIPTOR.name, "poll");
    assert!(DESCRIPTOR.features.contains(Features::FDS));
    assert!(!DESCRIPTOR.features.contains(Features::ET));
    assert_eq!(
        DESCRIPTOR.features.contains(Features::EARLY_CLOSE),
        cfg!(any(target_os = "linux", target_os = "android"))
    );
    let _g = exclusive();
    let p = Poll::new(&BackendConfig::new()).unwrap();
    assert!(!p.need_reinit());
    assert!(p.is_empty());
}

#[test]
fn edge_is_unsupported() {
    let _g = exclusive();
    let mut p = Poll::new(&BackendConfig::new()).unwrap();
    let (a, _b) = UnixStream::pair().unwrap();
    let err = p
        .set_interest(
            a.as_raw_fd(),
            Interest::empty(),
            Interest::READ | Interest::EDGE,
            false,
        )
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Unsupported);
    assert!(p.is_empty());
}

#[test]
fn regular_files_are_always_ready() {
    let _g = exclusive();
    let mut p = Poll::new(&BackendConfig::new()).unwrap();
    let file = std::fs::File::open("/proc/self/exe")
        .or_else(|_| std::fs::File::open("/etc/hosts"))
        .unwrap();
    let fd = file.as_raw_fd();
    p.set_interest(fd, Interest::empty(), Interest::READ, false)
        .unwrap();
    let mut list = ReadyList::new();
    p.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
    assert_eq!(list.events(), &[(fd, Ready::READ)]);
}

#[test]
fn swap_remove_keeps_the_index_right() {
    let _g = exclusive();
    let mut p = Poll::new(&BackendConfig::new()).unwrap();
    let pairs: Vec<_> = (0..8).map(|_| UnixStream::pair().unwrap()).collect();
    for (a, _) in &pairs {
        p.set_interest(a.as_raw_fd(), Interest::empty(), Interest::READ, false)
            .unwrap();
    }
    assert_eq!(p.len(), 8);
    // Remove the first, a middle one and the last; the moved entries must
    // still be found by fd.
    for i in [0, 4, 7] {
        p.set_interest(
            pairs[i].0.as_raw_fd(),
            Interest::READ,
            Interest::empty(),
            false,
        )
        .unwrap();
    }
    assert_eq!(p.len(), 5);
    for (i, (a, b)) in pairs.iter().enumerate() {
        (&*b).write_all(b"x").unwrap();
        // Switching to WRITE must hit this fd's own slot.
        if ![0, 4, 7].contains(&i) {
            p.set_interest(a.as_raw_fd(), Interest::READ, Interest::WRITE, false)
                .unwrap();
        }
    }
    let mut list = ReadyList::new();
    p.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
    let mut got: Vec<_> = list
        .events()
        .iter()
        .map(|&(fd, r)| (fd, r.bits()))
        .collect();
    got.sort_unstable();
    let mut want: Vec<_> = [1, 2, 3, 5, 6]
        .iter()
        .map(|&i| (pairs[i].0.as_raw_fd(), Ready::WRITE.bits()))
        .collect();
    want.sort_unstable();
    assert_eq!(got, want);
}
