//! Shared helpers: a dnsmasq started on a free loopback port (killed on
//! drop), a bounded loop runner, free ports. (Kill-on-drop guards come from
//! `oxevent-test-support`.)

use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent_core::{EventBase, LoopFlags};
use oxevent_test_support::ChildGuard;

/// A shared log of callback outcomes.
pub(crate) type Log<T> = Rc<RefCell<Vec<T>>>;

pub(crate) fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Runs the loop until `cond` holds or `limit` passes; returns whether it held.
pub(crate) fn run_until(
    base: &mut EventBase,
    limit: Duration,
    mut cond: impl FnMut() -> bool,
) -> bool {
    run_until_b(base, limit, |_| cond())
}

/// A free UDP port on 127.0.0.1 (also free for TCP, most likely).
pub(crate) fn free_port() -> u16 {
    for _ in 0..50 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = u.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port")
}

/// A temporary file removed on drop.
pub(crate) struct TempFile(pub(crate) PathBuf);

impl TempFile {
    pub(crate) fn new(tag: &str, text: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "oxevent-dns-{tag}-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::write(&p, text).unwrap();
        Self(p)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The hosts file the tests' dnsmasq serves.
pub(crate) const HOSTS: &str = "\
10.1.0.1 a.test
fd00::1 a.test
10.1.0.2 b.test
10.1.0.3 x.search.test
10.1.0.4 multi.test
10.1.0.5 multi.test
10.1.0.6 two.dots.test
10.1.0.7 two.dots.test.search.test
10.1.0.8 local.test
";

/// dnsmasq on 127.0.0.1, killed on drop.
pub(crate) struct Dnsmasq {
    child: ChildGuard,
    pub(crate) addr: SocketAddr,
    _hosts: TempFile,
}

impl Dnsmasq {
    pub(crate) fn start() -> Self {
        for _ in 0..5 {
            let hosts = TempFile::new("hosts", HOSTS);
            let port = free_port();
            let child = ChildGuard::new(
                Command::new("dnsmasq")
                    .args([
                        "--no-daemon",
                        "--conf-file=/dev/null",
                        "--no-resolv",
                        "--no-hosts",
                        "--listen-address=127.0.0.1",
                        "--bind-interfaces",
                        "--cache-size=1000",
                        "--local=/test/",
                        "--cname=alias.test,a.test",
                        "--cname=alias2.test,alias.test",
                        "--pid-file=",
                        "--local-ttl=300",
                    ])
                    .arg(format!("--port={port}"))
                    .arg(format!("--addn-hosts={}", hosts.0.display()))
                    .arg(format!("--user={}", whoami()))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("dnsmasq is installed"),
            );
            let mut d = Self {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                _hosts: hosts,
            };
            if d.wait_ready() {
                return d;
            }
            // Dropping `d` kills it (its guard); try another port.
        }
        panic!("dnsmasq did not start")
    }

    /// Queries `a.test` with a blocking socket until dnsmasq answers.
    fn wait_ready(&mut self) -> bool {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let q = [
            0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 4, b't', b'e', b's', b't', 0, 0, 1,
            0, 1,
        ];
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.child().try_wait() {
                return false;
            }
            let _ = u.send_to(&q, self.addr);
            let mut buf = [0u8; 512];
            if u.recv_from(&mut buf).is_ok() {
                return true;
            }
        }
        false
    }
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => "root".into(),
    }
}

/// Runs `cmd` while turning the loop, until it exits (bounded); returns its
/// stdout.
pub(crate) fn run_child_with_loop(base: &mut EventBase, cmd: &mut Command) -> String {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let mut guard = ChildGuard::new(child);
    let mut done = false;
    run_until(base, Duration::from_secs(20), || {
        done = matches!(guard.child().try_wait(), Ok(Some(_)));
        done
    });
    assert!(done, "the child did not finish");
    let mut out = String::new();
    if let Some(mut s) = guard.child().stdout.take() {
        use std::io::Read;
        let _ = s.read_to_string(&mut out);
    }
    out
}

/// [`run_until`] with the base given to the condition.
pub(crate) fn run_until_b(
    base: &mut EventBase,
    limit: Duration,
    mut cond: impl FnMut(&mut EventBase) -> bool,
) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond(base) {
            return true;
        }
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK)
            .expect("loop");
        std::thread::sleep(Duration::from_micros(200));
    }
    cond(base)
}

/// A UDP socket and a TCP listener on the same free loopback port.
pub(crate) fn udp_and_tcp() -> (UdpSocket, std::net::TcpListener) {
    for _ in 0..100 {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(t) = std::net::TcpListener::bind(u.local_addr().unwrap()) {
            return (u, t);
        }
    }
    panic!("no port free for both UDP and TCP")
}
