//! Behaviour only the mio backend has: level triggering emulated over an
//! edge-triggered mechanism, mixed with native edge triggering.

use std::io::{Read, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use oxevent_backend::conformance::exclusive;
use oxevent_backend::{Backend, BackendConfig, Features, Interest, Ready, ReadyList};
use oxevent_mio::{DESCRIPTOR, Mio};

fn wait(m: &mut Mio, ms: u64) -> Vec<(i32, Ready)> {
    let mut list = ReadyList::new();
    m.wait(Some(Duration::from_millis(ms)), &mut list).unwrap();
    let mut v = list.events().to_vec();
    v.sort_unstable_by_key(|e| e.0);
    v
}

#[test]
fn descriptor() {
    assert_eq!(DESCRIPTOR.name, "mio");
    assert_eq!(
        DESCRIPTOR.features,
        Features::ET | Features::O1 | Features::EARLY_CLOSE
    );
    assert_eq!(DESCRIPTOR.env_var(), "EVENT_NOMIO");
}

#[test]
fn level_and_edge_side_by_side() {
    let _g = exclusive();
    let mut m = Mio::new(&BackendConfig::new()).unwrap();
    let (level, mut lp) = UnixStream::pair().unwrap();
    let (edge, mut ep) = UnixStream::pair().unwrap();
    let (lf, ef) = (level.as_raw_fd(), edge.as_raw_fd());
    m.set_interest(lf, Interest::empty(), Interest::READ, false)
        .unwrap();
    m.set_interest(
        ef,
        Interest::empty(),
        Interest::READ | Interest::EDGE,
        false,
    )
    .unwrap();
    lp.write_all(b"l").unwrap();
    ep.write_all(b"e").unwrap();
    let mut first = wait(&mut m, 2000);
    if first.len() < 2 {
        first.extend(wait(&mut m, 2000));
        first.sort_unstable_by_key(|e| e.0);
    }
    let mut want = vec![(lf, Ready::READ), (ef, Ready::READ)];
    want.sort_unstable_by_key(|e| e.0);
    assert_eq!(first, want);
    // Three more waits: the level fd every time, the edge fd never.
    for _ in 0..3 {
        assert_eq!(wait(&mut m, 2000), [(lf, Ready::READ)]);
    }
    // Draining the level fd stops its reports after one more re-check.
    let mut buf = [0u8; 4];
    assert_eq!((&level).read(&mut buf).unwrap(), 1);
    assert_eq!(wait(&mut m, 50), []);
}

#[test]
fn waker_is_shared_and_survives_two_reinits() {
    let _g = exclusive();
    let mut m = Mio::new(&BackendConfig::new()).unwrap();
    let w1 = m.waker().unwrap();
    let w2 = m.waker().unwrap();
    for _ in 0..2 {
        m.reinit().unwrap();
        w1.wake().unwrap();
        let mut list = ReadyList::new();
        m.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
        list.clear();
        w2.wake().unwrap();
        m.wait(Some(Duration::from_secs(5)), &mut list).unwrap();
        assert!(list.woken());
    }
}
