//! Test helpers shared by the oxevent crates: loopback socket pairs and free
//! ports, a watchdog that turns a hang into a failure, bounded waiting,
//! temporary directories, child processes killed on every path (with their
//! stdout lines read under a deadline), and, with the `tls` feature, a test
//! PKI.
//!
//! This crate is `publish = false` and depends on nothing but `std` (and the
//! `openssl` crate with the optional `tls` feature), never on an oxevent
//! crate, so any crate of the workspace can use it as a dev-dependency
//! without a cycle. Helpers that need an `EventBase` live in each crate's
//! tests. Every network helper binds to loopback only, on port 0.

#![forbid(unsafe_code)]

#[cfg(feature = "tls")]
pub mod pki;
pub mod process;
mod temp;

#[cfg(feature = "tls")]
pub use pki::TestPki;
pub use process::{ChildGuard, LineChild};
pub use temp::TempDir;

use std::io::{self, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A connected pair of non-blocking Unix stream sockets
/// (libevent's tests use `evutil_socketpair` the same way).
///
/// # Panics
///
/// If the OS refuses to create the pair (a broken test environment).
#[must_use]
pub fn socketpair() -> (UnixStream, UnixStream) {
    let (a, b) = UnixStream::pair().expect("socketpair");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// A connected pair of non-blocking TCP sockets over 127.0.0.1.
///
/// # Panics
///
/// If loopback networking is unavailable.
#[must_use]
pub fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("bind loopback");
    let a = TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
    let (b, _) = l.accept().expect("accept");
    a.set_nonblocking(true).expect("nonblocking");
    b.set_nonblocking(true).expect("nonblocking");
    (a, b)
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound on port 0, then
/// released). Another process may take it before the caller binds it, so
/// callers that hand it to a server retry with a fresh port when the server
/// fails to start.
///
/// # Panics
///
/// If loopback networking is unavailable.
#[must_use]
pub fn free_port() -> u16 {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .expect("bind loopback")
        .port()
}

/// Reads everything available from a non-blocking reader without blocking.
///
/// # Errors
///
/// Any error other than `WouldBlock`.
pub fn drain(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// Aborts the whole test process if it is still alive after `limit`, so a
/// hang becomes a loud failure instead of a stuck CI run. Dropping the
/// watchdog disarms it.
#[derive(Debug)]
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    /// Arms a watchdog named `what` for `limit`.
    #[must_use]
    pub fn new(what: &'static str, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < limit {
                if d.load(Ordering::Acquire) {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            if !d.load(Ordering::Acquire) {
                eprintln!("watchdog: {what} still running after {limit:?}; aborting");
                std::process::abort();
            }
        });
        Self { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

/// Polls `cond` every millisecond until it holds or `limit` passes; returns
/// whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    cond()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn pairs_are_connected_and_nonblocking() {
        let (mut a, mut b) = socketpair();
        a.write_all(b"hi").unwrap();
        assert!(wait_until(Duration::from_secs(1), || b
            .read(&mut [0u8; 0])
            .is_ok()));
        let mut got = Vec::new();
        assert!(wait_until(Duration::from_secs(1), || {
            got.extend(drain(&mut b).unwrap());
            got.len() == 2
        }));
        assert_eq!(got, b"hi");
        let (mut c, mut d) = tcp_pair();
        c.write_all(b"x").unwrap();
        let mut got = Vec::new();
        assert!(wait_until(Duration::from_secs(1), || {
            got.extend(drain(&mut d).unwrap());
            !got.is_empty()
        }));
        assert_eq!(got, b"x");
    }

    #[test]
    fn watchdog_disarms_on_drop() {
        let w = Watchdog::new("quick", Duration::from_millis(100));
        drop(w);
        thread::sleep(Duration::from_millis(150));
    }
}
