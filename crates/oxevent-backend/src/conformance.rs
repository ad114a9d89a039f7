//! The backend conformance suite: one function per property every
//! [`Backend`] must have, run against real file descriptors (socket pairs
//! and pipes).
//!
//! Each backend crate runs the whole suite from its integration test binary
//! with [`backend_conformance_tests!`](crate::backend_conformance_tests):
//!
//! ```ignore
//! // crates/backends/oxevent-epoll/tests/it/main.rs
//! mod conformance {
//!     oxevent_backend::backend_conformance_tests!(oxevent_epoll::DESCRIPTOR);
//! }
//! ```
//!
//! The functions can also be called one by one (see `ALL`), for example to
//! run a case against a descriptor whose constructor applies a different
//! [`BackendConfig`].
//!
//! Properties that depend on a feature ([`Features::ET`],
//! [`Features::EARLY_CLOSE`]) check the feature's semantics when the
//! backend advertises it, and otherwise check that the backend degrades as
//! the contract says (for example, rejecting [`Interest::EDGE`]).
//!
//! [`Backend`]: crate::Backend
//! [`BackendConfig`]: crate::BackendConfig
//! [`Features::ET`]: crate::Features::ET
//! [`Features::EARLY_CLOSE`]: crate::Features::EARLY_CLOSE
//! [`Interest::EDGE`]: crate::Interest::EDGE
//!
//! # Rules the suite keeps
//!
//! - Every wait is bounded: each call passes `Some(timeout)`, except the
//!   blocking-waker case, where a watchdog thread makes a registered fd
//!   readable after a few seconds so a broken waker fails the test instead
//!   of hanging it.
//! - The cases take a process-wide lock, so they run one at a time even
//!   under the parallel test harness. That keeps fd numbers predictable for
//!   the fd-reuse case and keeps timing assertions meaningful on small
//!   machines.
//! - After every wait the harness checks the contract's reporting rules:
//!   only fds with non-empty interest are reported, and only directions
//!   that were asked for.
//!
//! # Platform support
//!
//! Unix only (the suite uses `UnixStream` pairs and pipes); on other targets
//! the module is empty and the macro expands to nothing.

#[cfg(unix)]
pub use self::unix::*;

#[cfg(unix)]
mod unix {
    use std::collections::{HashMap, HashSet};
    use std::io::{self, Read, Write};
    use std::os::unix::io::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::sync::{Mutex, MutexGuard};
    use std::thread;
    use std::time::{Duration, Instant};

    use crate::{
        Backend, BackendConfig, BackendDescriptor, Features, Interest, RawFd, Ready, ReadyList,
    };

    /// How long a case waits for readiness that must come.
    const PATIENCE: Duration = Duration::from_secs(5);
    /// How long a case watches for readiness that must not come.
    const QUIET: Duration = Duration::from_millis(60);

    static SERIAL: Mutex<()> = Mutex::new(());

    /// The lock every conformance case holds while it runs (see the module
    /// docs). Backend-specific tests that share the test binary and create
    /// file descriptors should hold it too, so they cannot take the fd
    /// number the fd-reuse case waits for. A case that panicked poisons
    /// nothing of value, so poisoning is ignored.
    pub fn exclusive() -> MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The readiness directions an interest allows.
    fn allowed(interest: Interest) -> Ready {
        let mut r = Ready::empty();
        r.set(Ready::READ, interest.contains(Interest::READ));
        r.set(Ready::WRITE, interest.contains(Interest::WRITE));
        r.set(Ready::CLOSED, interest.contains(Interest::CLOSED));
        r
    }

    /// A non-blocking connected socket pair.
    fn pair() -> (UnixStream, UnixStream) {
        let (a, b) = UnixStream::pair().expect("socketpair");
        a.set_nonblocking(true).expect("nonblocking");
        b.set_nonblocking(true).expect("nonblocking");
        (a, b)
    }

    /// Reads everything available on a non-blocking socket; returns the
    /// byte count.
    fn drain(mut s: &UnixStream) -> usize {
        let mut buf = [0u8; 4096];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) => return total,
                Ok(n) => total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return total,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// A backend plus the interest the suite told it, so every report can
    /// be checked against the contract.
    struct Harness {
        name: &'static str,
        backend: Box<dyn Backend>,
        interest: HashMap<RawFd, Interest>,
        list: ReadyList,
        woken: bool,
    }

    impl Harness {
        fn new(d: &BackendDescriptor) -> Self {
            Self::with_config(d, &BackendConfig::new())
        }

        fn with_config(d: &BackendDescriptor, config: &BackendConfig) -> Self {
            let backend =
                (d.new)(config).unwrap_or_else(|e| panic!("creating backend {}: {e}", d.name));
            assert_eq!(
                backend.name(),
                d.name,
                "instance and descriptor names differ"
            );
            assert_eq!(
                backend.features(),
                d.features,
                "instance and descriptor features differ"
            );
            Self {
                name: d.name,
                backend,
                interest: HashMap::new(),
                list: ReadyList::with_capacity(64),
                woken: false,
            }
        }

        fn features(&self) -> Features {
            self.backend.features()
        }

        fn current(&self, fd: RawFd) -> Interest {
            self.interest.get(&fd).copied().unwrap_or_default()
        }

        /// Changes the interest on `fd`, telling the backend the old one.
        fn try_set(&mut self, fd: RawFd, new: Interest) -> io::Result<()> {
            let old = self.current(fd);
            self.backend.set_interest(fd, old, new, false)?;
            self.interest.insert(fd, new);
            Ok(())
        }

        fn set(&mut self, fd: RawFd, new: Interest) {
            self.try_set(fd, new)
                .unwrap_or_else(|e| panic!("{}: set_interest({fd}, {new:?}): {e}", self.name));
        }

        /// `set_interest` with `fresh = true` and an explicit `old`.
        fn set_fresh(&mut self, fd: RawFd, old: Interest, new: Interest) {
            self.backend
                .set_interest(fd, old, new, true)
                .unwrap_or_else(|e| {
                    panic!("{}: fresh set_interest({fd}, {new:?}): {e}", self.name)
                });
            self.interest.insert(fd, new);
        }

        /// One wait; returns the merged readiness per fd after checking the
        /// contract's reporting rules.
        fn wait(&mut self, timeout: Option<Duration>) -> HashMap<RawFd, Ready> {
            self.list.clear();
            self.backend
                .wait(timeout, &mut self.list)
                .unwrap_or_else(|e| panic!("{}: wait: {e}", self.name));
            self.woken |= self.list.woken();
            let mut merged: HashMap<RawFd, Ready> = HashMap::new();
            for &(fd, r) in self.list.events() {
                assert!(!r.is_empty(), "{}: empty readiness pushed", self.name);
                let interest = self.current(fd);
                assert!(
                    !interest.directions().is_empty(),
                    "{}: fd {fd} reported ({r:?}) with no interest",
                    self.name
                );
                assert!(
                    allowed(interest).contains(r),
                    "{}: fd {fd} reported {r:?} but only {interest:?} was asked",
                    self.name
                );
                *merged.entry(fd).or_default() |= r;
            }
            merged
        }

        /// Waits until `fd` is reported with every flag of `want`; returns
        /// the union of what was reported for it meanwhile.
        fn wait_for(&mut self, fd: RawFd, want: Ready) -> Ready {
            let deadline = Instant::now() + PATIENCE;
            let mut seen = Ready::empty();
            loop {
                if let Some(&r) = self.wait(Some(Duration::from_millis(100))).get(&fd) {
                    seen |= r;
                    if r.contains(want) {
                        return seen;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "{}: fd {fd} not reported {want:?} within {PATIENCE:?} (saw {seen:?})",
                    self.name
                );
            }
        }

        /// Asserts `fd` is not reported for [`QUIET`].
        fn assert_quiet(&mut self, fd: RawFd, why: &str) {
            let deadline = Instant::now() + QUIET;
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return;
                }
                let got = self.wait(Some(deadline - now));
                assert!(
                    !got.contains_key(&fd),
                    "{}: fd {fd} reported {:?} but should not be ({why})",
                    self.name,
                    got[&fd]
                );
            }
        }
    }

    /// A `cat` child process: its stdin and stdout are the two ends of two
    /// pipes, which gives the suite pipes without any `unsafe`. Killed on
    /// drop.
    struct Cat(Child);

    impl Cat {
        fn spawn() -> Self {
            let child = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawning cat for a pipe");
            Self(child)
        }
    }

    impl Drop for Cat {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// Data on a socket is reported as readable, again and again while it
    /// is not drained (level-triggered), and no more once drained.
    pub fn read_level_triggered(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::READ);
        h.assert_quiet(fd, "no data yet");
        b.write_all(b"hello").unwrap();
        assert_eq!(h.wait_for(fd, Ready::READ), Ready::READ);
        // Not drained: reported again by the next waits.
        for _ in 0..3 {
            h.wait_for(fd, Ready::READ);
        }
        assert_eq!(drain(&a), 5);
        h.assert_quiet(fd, "drained");
        b.write_all(b"again").unwrap();
        h.wait_for(fd, Ready::READ);
    }

    /// A socket with room in its send buffer is reported writable; a full
    /// one is not, until the peer reads.
    pub fn write_readiness(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (mut a, b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::WRITE);
        assert_eq!(h.wait_for(fd, Ready::WRITE), Ready::WRITE);
        h.wait_for(fd, Ready::WRITE);
        // Fill the socket until the kernel refuses more.
        let chunk = [0x55u8; 4096];
        let mut filled = 0usize;
        loop {
            match a.write(&chunk) {
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
            assert!(filled < 64 << 20, "socket never filled");
        }
        h.assert_quiet(fd, "send buffer full");
        let mut drained = 0;
        let deadline = Instant::now() + PATIENCE;
        while drained < filled {
            drained += drain(&b);
            assert!(Instant::now() < deadline, "could not drain the peer");
        }
        h.wait_for(fd, Ready::WRITE);
    }

    /// Interest moves from READ to WRITE to nothing and back; each step is
    /// honoured and nothing that was not asked is reported.
    pub fn interest_change(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        b.write_all(b"x").unwrap();
        h.set(fd, Interest::READ);
        assert_eq!(h.wait_for(fd, Ready::READ), Ready::READ);
        h.set(fd, Interest::WRITE);
        assert_eq!(h.wait_for(fd, Ready::WRITE), Ready::WRITE);
        h.set(fd, Interest::READ | Interest::WRITE);
        h.wait_for(fd, Ready::READ | Ready::WRITE);
        h.set(fd, Interest::empty());
        h.assert_quiet(fd, "interest removed");
        h.set(fd, Interest::READ);
        assert_eq!(h.wait_for(fd, Ready::READ), Ready::READ);
    }

    /// Removing the interest of a ready fd stops its reports at once, and
    /// removing it twice is harmless.
    pub fn remove_interest_stops_reports(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let (c, _peer_c) = pair();
        let fd = a.as_raw_fd();
        b.write_all(b"data").unwrap();
        h.set(fd, Interest::READ);
        h.set(c.as_raw_fd(), Interest::WRITE);
        h.wait_for(fd, Ready::READ);
        h.set(fd, Interest::empty());
        h.assert_quiet(fd, "interest removed while ready");
        // The other fd is unaffected.
        h.wait_for(c.as_raw_fd(), Ready::WRITE);
        // Removing again is not an error.
        h.backend
            .set_interest(fd, Interest::empty(), Interest::empty(), false)
            .expect("removing nothing");
    }

    /// `wait(Some(50 ms))` with nothing ready returns after at least 50 ms
    /// and well before a generous bound; `wait(Some(0))` does not block but
    /// still reports what is ready; a sub-millisecond timeout never returns
    /// early.
    pub fn timeout_honoured(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        h.set(a.as_raw_fd(), Interest::READ);
        check_timeouts(&mut h);
        b.write_all(b"!").unwrap();
        // Give the data a moment to be visible, then poll without blocking.
        h.wait_for(a.as_raw_fd(), Ready::READ);
        let t = Instant::now();
        let got = h.wait(Some(Duration::ZERO));
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(got.get(&a.as_raw_fd()), Some(&Ready::READ));
    }

    fn check_timeouts(h: &mut Harness) {
        let t = Instant::now();
        let got = h.wait(Some(Duration::from_millis(50)));
        let el = t.elapsed();
        assert!(got.is_empty(), "{}: spurious report {got:?}", h.name);
        assert!(
            el >= Duration::from_millis(50),
            "{}: woke early after {el:?}",
            h.name
        );
        assert!(el < Duration::from_secs(2), "{}: overslept: {el:?}", h.name);

        let t = Instant::now();
        h.wait(Some(Duration::ZERO));
        let el = t.elapsed();
        assert!(
            el < Duration::from_secs(1),
            "{}: zero timeout blocked {el:?}",
            h.name
        );

        for us in [1500u64, 300] {
            let want = Duration::from_micros(us);
            let t = Instant::now();
            h.wait(Some(want));
            let el = t.elapsed();
            assert!(
                el >= want,
                "{}: {want:?} wait returned after {el:?}",
                h.name
            );
            assert!(el < Duration::from_secs(2), "{}: overslept: {el:?}", h.name);
        }
    }

    /// The same timeout rules with [`BackendConfig::precise_timer`] on (and
    /// with the timerfd disallowed), plus I/O still being reported.
    pub fn timeout_precise(d: &BackendDescriptor) {
        let _g = exclusive();
        for config in [
            BackendConfig::new().precise_timer(true),
            BackendConfig::new()
                .precise_timer(true)
                .disallow_timerfd(true),
        ] {
            let mut h = Harness::with_config(d, &config);
            let (a, mut b) = pair();
            h.set(a.as_raw_fd(), Interest::READ);
            check_timeouts(&mut h);
            b.write_all(b"!").unwrap();
            h.wait_for(a.as_raw_fd(), Ready::READ);
            let waker = h.backend.waker().expect("waker");
            waker.wake().unwrap();
            let t = Instant::now();
            while !h.woken {
                h.wait(Some(Duration::from_millis(100)));
                assert!(
                    t.elapsed() < PATIENCE,
                    "{}: precise waker never fired",
                    h.name
                );
            }
        }
    }

    /// A [`crate::Waker`] used from another thread wakes a `wait(None)`.
    ///
    /// A watchdog makes a registered fd readable after five seconds, so a
    /// broken waker fails this case instead of hanging it.
    pub fn waker_wakes_blocking_wait(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let waker = h.backend.waker().expect("waker");
        let (watch, mut watchdog) = pair();
        h.set(watch.as_raw_fd(), Interest::READ);
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            waker.wake().expect("wake");
            if stop_rx.recv_timeout(Duration::from_secs(5)).is_err() {
                let _ = watchdog.write_all(b"watchdog");
            }
        });
        let t = Instant::now();
        let got = h.wait(None);
        let el = t.elapsed();
        let _ = stop_tx.send(());
        thread.join().expect("waker thread");
        assert!(
            !got.contains_key(&watch.as_raw_fd()),
            "{}: the watchdog fired: the waker did not wake wait(None)",
            h.name
        );
        assert!(h.woken, "{}: wait(None) returned without woken()", h.name);
        assert!(
            el >= Duration::from_millis(30),
            "{}: returned before the wake",
            h.name
        );
    }

    /// Wakes before a wait are not lost, several are coalesced, and a
    /// consumed wake does not fire again.
    pub fn waker_coalesces(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let w1 = h.backend.waker().expect("waker");
        let w2 = h.backend.waker().expect("second waker");
        for _ in 0..3 {
            w1.wake().unwrap();
        }
        w2.clone().wake().unwrap();
        let t = Instant::now();
        h.wait(Some(PATIENCE));
        assert!(h.woken, "{}: a wake before the wait was lost", h.name);
        assert!(t.elapsed() < Duration::from_secs(2));
        h.woken = false;
        let t = Instant::now();
        h.wait(Some(Duration::from_millis(50)));
        assert!(!h.woken, "{}: a consumed wake fired again", h.name);
        assert!(t.elapsed() >= Duration::from_millis(50));
        // Still works after being consumed.
        w2.wake().unwrap();
        h.wait(Some(PATIENCE));
        assert!(h.woken, "{}: waker stopped working", h.name);
    }

    /// A peer close is reported as READ (end of file) and keeps being
    /// reported while the fd is not removed.
    pub fn peer_close_reports_read(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::READ);
        h.assert_quiet(fd, "peer still open");
        drop(b);
        h.wait_for(fd, Ready::READ);
        assert_eq!(drain(&a), 0, "end of file expected");
        h.wait_for(fd, Ready::READ);
    }

    /// With [`Features::EARLY_CLOSE`], [`Interest::CLOSED`] reports a peer
    /// close as [`Ready::CLOSED`]; interest in CLOSED alone is not woken by
    /// mere data. Without the feature, a close is still seen as READ.
    pub fn peer_close_reports_closed(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        if !h.features().contains(Features::EARLY_CLOSE) {
            h.set(fd, Interest::READ | Interest::CLOSED);
            drop(b);
            h.wait_for(fd, Ready::READ);
            return;
        }
        h.set(fd, Interest::CLOSED);
        b.write_all(b"data is not a close").unwrap();
        h.assert_quiet(fd, "only CLOSED asked and the peer is open");
        h.set(fd, Interest::READ | Interest::CLOSED);
        assert_eq!(h.wait_for(fd, Ready::READ), Ready::READ);
        drain(&a);
        h.set(fd, Interest::CLOSED);
        drop(b);
        assert_eq!(h.wait_for(fd, Ready::CLOSED), Ready::CLOSED);

        let (c, e) = pair();
        let fd = c.as_raw_fd();
        h.set(fd, Interest::READ | Interest::CLOSED);
        e.shutdown(std::net::Shutdown::Write).unwrap();
        h.wait_for(fd, Ready::READ | Ready::CLOSED);
    }

    /// A hang-up or error is reported in the directions that were asked for,
    /// and only those: a socket whose peer is gone, asked for WRITE only,
    /// is reported WRITE (never READ); asked for both, it is reported both;
    /// a pipe whose reader is gone is reported WRITE.
    pub fn hangup_restricted_to_interest(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, b) = pair();
        let (c, e) = pair();
        h.set(a.as_raw_fd(), Interest::WRITE);
        h.set(c.as_raw_fd(), Interest::READ | Interest::WRITE);
        h.wait_for(a.as_raw_fd(), Ready::WRITE);
        drop(b);
        drop(e);
        // The harness fails the case if READ is reported for `a`.
        for _ in 0..3 {
            assert_eq!(h.wait_for(a.as_raw_fd(), Ready::WRITE), Ready::WRITE);
        }
        h.wait_for(c.as_raw_fd(), Ready::READ | Ready::WRITE);

        let mut cat = Cat::spawn();
        let stdin = cat.0.stdin.take().expect("cat stdin");
        h.set(stdin.as_raw_fd(), Interest::WRITE);
        h.wait_for(stdin.as_raw_fd(), Ready::WRITE);
        // Kill the reader: the write end is now in error (EPIPE).
        cat.0.kill().expect("kill cat");
        cat.0.wait().expect("reap cat");
        h.wait_for(stdin.as_raw_fd(), Ready::WRITE);
        let err = (&stdin)
            .write(b"x")
            .expect_err("write to a pipe without reader");
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
        h.set(stdin.as_raw_fd(), Interest::empty());
    }

    /// Adding interest on an fd that is not open fails with an error (and
    /// no panic); removing interest from a closed fd succeeds.
    pub fn invalid_fd_is_an_error(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let closed = {
            let (a, _b) = pair();
            a.as_raw_fd()
        };
        h.backend
            .set_interest(closed, Interest::empty(), Interest::READ, false)
            .expect_err("adding interest on a closed fd must fail");
        h.backend
            .set_interest(-1, Interest::empty(), Interest::READ, false)
            .expect_err("adding interest on fd -1 must fail");
        // A registered fd that is closed behind the backend's back can still
        // be removed.
        let (a, _b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::READ);
        drop(a);
        h.backend
            .set_interest(fd, Interest::READ, Interest::empty(), false)
            .expect("removing interest from a closed fd is not an error");
        h.interest.remove(&fd);
        // The backend is still usable.
        let (c, mut e) = pair();
        h.set(c.as_raw_fd(), Interest::READ);
        e.write_all(b"ok").unwrap();
        h.wait_for(c.as_raw_fd(), Ready::READ);
    }

    /// An fd closed while registered, whose number is then reused by a new
    /// socket, works again after `set_interest(.., fresh = true)`.
    pub fn fd_reuse_with_fresh(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::READ);
        b.write_all(b"old").unwrap();
        h.wait_for(fd, Ready::READ);
        drop(a);
        drop(b);
        // The lowest free number is handed out first; keep every socket
        // until one lands on `fd`.
        let mut keep = Vec::new();
        let (new, mut peer) = loop {
            let (x, y) = pair();
            if x.as_raw_fd() == fd {
                break (x, y);
            }
            if y.as_raw_fd() == fd {
                break (y, x);
            }
            keep.push((x, y));
            assert!(keep.len() < 64, "fd {fd} was never reused");
        };
        h.set_fresh(fd, Interest::READ, Interest::READ);
        h.assert_quiet(fd, "the new socket has no data");
        peer.write_all(b"new").unwrap();
        h.wait_for(fd, Ready::READ);
        let mut buf = [0u8; 8];
        let n = (&new).read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"new", "readiness reported for the wrong file");
        h.assert_quiet(fd, "new socket drained");
        // A fresh change of directions works too.
        h.set_fresh(fd, Interest::READ, Interest::READ | Interest::WRITE);
        assert_eq!(h.wait_for(fd, Ready::WRITE), Ready::WRITE);
    }

    /// With [`Features::ET`], [`Interest::EDGE`] reports readiness once per
    /// change: not again until new data arrives. Without it, asking for
    /// EDGE is refused.
    pub fn edge_triggered(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        if !h.features().contains(Features::ET) {
            h.backend
                .set_interest(
                    fd,
                    Interest::empty(),
                    Interest::READ | Interest::EDGE,
                    false,
                )
                .expect_err("EDGE without Features::ET must be refused");
            return;
        }
        h.set(fd, Interest::READ | Interest::EDGE);
        h.assert_quiet(fd, "no data yet");
        b.write_all(b"one").unwrap();
        h.wait_for(fd, Ready::READ);
        h.assert_quiet(fd, "edge-triggered: no new data since the last report");
        b.write_all(b"two").unwrap();
        h.wait_for(fd, Ready::READ);
        h.assert_quiet(fd, "edge-triggered again");
        assert_eq!(drain(&a), 6);

        // Writable once, then quiet.
        let (c, _e) = pair();
        h.set(c.as_raw_fd(), Interest::WRITE | Interest::EDGE);
        h.wait_for(c.as_raw_fd(), Ready::WRITE);
        h.assert_quiet(c.as_raw_fd(), "edge-triggered write");

        // Switching back to level triggering reports pending data again.
        b.write_all(b"three").unwrap();
        h.wait_for(fd, Ready::READ);
        h.set(fd, Interest::READ);
        h.wait_for(fd, Ready::READ);
        h.wait_for(fd, Ready::READ);
    }

    /// Many fds (more than any initial event array) are all reported.
    pub fn many_fds(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let mut pairs = Vec::new();
        for _ in 0..1000 {
            match UnixStream::pair() {
                Ok(p) => pairs.push(p),
                // Small fd limits (macOS defaults to 256): use what we got.
                Err(e) if e.raw_os_error().is_some() && pairs.len() >= 100 => break,
                Err(e) => panic!("socketpair: {e}"),
            }
        }
        // Leave room for what the backend itself may need.
        pairs.truncate(pairs.len() - pairs.len() / 10);
        let mut want = HashSet::new();
        for (a, b) in &pairs {
            (&*b).write_all(b"x").unwrap();
            h.set(a.as_raw_fd(), Interest::READ);
            want.insert(a.as_raw_fd());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seen = HashSet::new();
        while seen.len() < want.len() {
            for (fd, r) in h.wait(Some(Duration::from_millis(200))) {
                assert_eq!(r, Ready::READ);
                seen.insert(fd);
            }
            assert!(
                Instant::now() < deadline,
                "{}: only {} of {} fds reported",
                h.name,
                seen.len(),
                want.len()
            );
        }
        assert_eq!(seen, want);
        // And one big wait reports more than the initial array size once the
        // array has grown.
        let mut biggest = 0;
        for _ in 0..12 {
            biggest = biggest.max(h.wait(Some(Duration::from_millis(100))).len());
        }
        assert!(biggest > 64, "{}: at most {biggest} fds per wait", h.name);
    }

    /// After `reinit` the backend knows no fd; re-adding with `fresh`
    /// works, and a waker handed out before still wakes it.
    pub fn reinit_then_readd(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let waker = h.backend.waker().expect("waker");
        let (a, mut b) = pair();
        let fd = a.as_raw_fd();
        h.set(fd, Interest::READ);
        b.write_all(b"x").unwrap();
        h.wait_for(fd, Ready::READ);
        h.backend.reinit().expect("reinit");
        h.interest.clear();
        h.assert_quiet(fd, "reinit forgets every fd");
        h.set_fresh(fd, Interest::empty(), Interest::READ);
        h.wait_for(fd, Ready::READ);

        let thread = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            waker.wake().expect("wake after reinit");
        });
        let deadline = Instant::now() + PATIENCE;
        h.set(fd, Interest::empty());
        while !h.woken {
            h.wait(Some(Duration::from_millis(200)));
            assert!(
                Instant::now() < deadline,
                "{}: old waker dead after reinit",
                h.name
            );
        }
        thread.join().expect("waker thread");
        // A second reinit works as well.
        h.backend.reinit().expect("second reinit");
        h.interest.clear();
        h.set_fresh(fd, Interest::empty(), Interest::READ);
        h.wait_for(fd, Ready::READ);
    }

    /// Pipes (not sockets) work: the read end reports data and end of file,
    /// the write end reports writability.
    pub fn pipe_works(d: &BackendDescriptor) {
        let _g = exclusive();
        let mut h = Harness::new(d);
        let mut cat = Cat::spawn();
        let mut stdin = cat.0.stdin.take().expect("cat stdin");
        let mut stdout = cat.0.stdout.take().expect("cat stdout");
        let (rfd, wfd) = (stdout.as_raw_fd(), stdin.as_raw_fd());
        h.set(rfd, Interest::READ);
        h.set(wfd, Interest::WRITE);
        h.wait_for(wfd, Ready::WRITE);
        h.set(wfd, Interest::empty());
        h.assert_quiet(rfd, "nothing written to the pipe yet");
        stdin.write_all(b"ping\n").unwrap();
        stdin.flush().unwrap();
        let mut got = Vec::new();
        let deadline = Instant::now() + PATIENCE;
        while got.len() < 5 {
            h.wait_for(rfd, Ready::READ);
            let mut buf = [0u8; 16];
            let n = stdout.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
            assert!(Instant::now() < deadline);
        }
        assert_eq!(got, b"ping\n");
        h.assert_quiet(rfd, "pipe drained");
        drop(stdin);
        h.wait_for(rfd, Ready::READ);
        let mut buf = [0u8; 16];
        assert_eq!(stdout.read(&mut buf).unwrap(), 0, "end of file expected");
        h.set(rfd, Interest::empty());
    }

    /// One conformance case: runs against the backend the descriptor builds
    /// and panics on a violation.
    pub type Case = fn(&BackendDescriptor);

    /// Every case of the suite, by name, in the order
    /// [`backend_conformance_tests!`](crate::backend_conformance_tests)
    /// runs them.
    pub const ALL: &[(&str, Case)] = &[
        ("read_level_triggered", read_level_triggered),
        ("write_readiness", write_readiness),
        ("interest_change", interest_change),
        (
            "remove_interest_stops_reports",
            remove_interest_stops_reports,
        ),
        ("timeout_honoured", timeout_honoured),
        ("timeout_precise", timeout_precise),
        ("waker_wakes_blocking_wait", waker_wakes_blocking_wait),
        ("waker_coalesces", waker_coalesces),
        ("peer_close_reports_read", peer_close_reports_read),
        ("peer_close_reports_closed", peer_close_reports_closed),
        (
            "hangup_restricted_to_interest",
            hangup_restricted_to_interest,
        ),
        ("invalid_fd_is_an_error", invalid_fd_is_an_error),
        ("fd_reuse_with_fresh", fd_reuse_with_fresh),
        ("edge_triggered", edge_triggered),
        ("many_fds", many_fds),
        ("reinit_then_readd", reinit_then_readd),
        ("pipe_works", pipe_works),
    ];
}

/// Generates one `#[test]` per conformance case for a backend descriptor.
///
/// Invoke it once, in the backend crate's integration test binary
/// (`tests/it/main.rs`), with an expression of type
/// [`BackendDescriptor`](crate::BackendDescriptor) (usually the crate's
/// `DESCRIPTOR` static):
///
/// ```ignore
/// mod conformance {
///     oxevent_backend::backend_conformance_tests!(oxevent_poll::DESCRIPTOR);
/// }
/// ```
///
/// On targets other than unix it expands to nothing.
#[cfg(unix)]
#[macro_export]
macro_rules! backend_conformance_tests {
    ($descriptor:expr) => {
        $crate::backend_conformance_tests!(@cases $descriptor;
            read_level_triggered,
            write_readiness,
            interest_change,
            remove_interest_stops_reports,
            timeout_honoured,
            timeout_precise,
            waker_wakes_blocking_wait,
            waker_coalesces,
            peer_close_reports_read,
            peer_close_reports_closed,
            hangup_restricted_to_interest,
            invalid_fd_is_an_error,
            fd_reuse_with_fresh,
            edge_triggered,
            many_fds,
            reinit_then_readd,
            pipe_works,
        );
    };
    (@cases $descriptor:expr; $($case:ident,)*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$descriptor);
            }
        )*
    };
}

/// Generates one `#[test]` per conformance case for a backend descriptor.
///
/// On targets other than unix the suite is not available and this expands
/// to nothing.
#[cfg(not(unix))]
#[macro_export]
macro_rules! backend_conformance_tests {
    ($descriptor:expr) => {};
}
