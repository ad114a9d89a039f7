//! Listeners, after libevent's `regress_listener.c`: accepting over real
//! loopback sockets (IPv4, IPv6, Unix-domain), enable and disable, freeing
//! from inside the callbacks, wrapping an existing socket, the socket
//! options, the flags of accepted sockets, the accepts-per-wake-up bound,
//! and the back-off when `accept` fails (out of descriptors, in a child
//! process run under `prlimit`).

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent_bufferevent::{ACCEPTS_PER_CALLBACK, BACKOFF_MIN, Listener, ListenerOptions};
use oxevent_core::{EventBase, LoopFlags};
use oxevent_test_support::Watchdog;
use socket2::{SockAddr, SockRef};

use crate::common::{base, run_until};

/// Runs the loop for `d` whatever happens.
fn run_for(base: &mut EventBase, d: Duration) {
    let _ = run_until(base, d, |_| false);
}

fn localhost_v4() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn port_of(base: &mut EventBase, lis: Listener) -> u16 {
    lis.local_addr(base)
        .unwrap()
        .as_socket()
        .expect("an inet address")
        .port()
}

/// Accepted sockets and their peer addresses, in order.
type Accepted = Rc<RefCell<Vec<(OwnedFd, SockAddr)>>>;

fn collector() -> (
    Accepted,
    impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
) {
    let got: Accepted = Rc::default();
    let g = got.clone();
    (
        got,
        move |_: &mut EventBase, _: Listener, fd: OwnedFd, peer: SockAddr| {
            g.borrow_mut().push((fd, peer));
        },
    )
}

/// Binds `addr` or explains why this host cannot (no IPv6, for instance).
fn try_bind(
    base: &mut EventBase,
    addr: SocketAddr,
    options: ListenerOptions,
    cb: impl FnMut(&mut EventBase, Listener, OwnedFd, SockAddr) + 'static,
) -> Option<Listener> {
    match Listener::bind(base, addr, options, -1, cb) {
        Ok(l) => Some(l),
        Err(e) if addr.is_ipv6() => {
            eprintln!("skipping: cannot bind {addr} on this host: {e}");
            None
        }
        Err(e) => panic!("bind {addr}: {e}"),
    }
}

/// Connects `n` clients, accepts them all, and checks every peer address.
fn accept_n_and_check_peers(addr: SocketAddr) {
    let mut base = base();
    let (got, cb) = collector();
    let Some(lis) = try_bind(&mut base, addr, ListenerOptions::REUSEABLE, cb) else {
        return;
    };
    let local = lis.local_addr(&mut base).unwrap().as_socket().unwrap();
    assert_eq!(local.ip(), addr.ip());
    assert_ne!(local.port(), 0, "port 0 picks a port");
    let clients: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(local).unwrap()).collect();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == clients.len()));
    run_for(&mut base, Duration::from_millis(20));
    assert_eq!(
        got.borrow().len(),
        clients.len(),
        "one callback per connection, no more"
    );
    let want: BTreeSet<SocketAddr> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
    let seen: BTreeSet<SocketAddr> = got
        .borrow()
        .iter()
        .map(|(_, p)| p.as_socket().unwrap())
        .collect();
    assert_eq!(seen, want, "the callback gets each peer's address");
    // Each accepted socket is the server end of its client.
    for (fd, peer) in got.borrow_mut().drain(..) {
        let mut server = TcpStream::from(fd);
        server.write_all(b"hi").unwrap();
        let client = clients
            .iter()
            .find(|c| c.local_addr().unwrap() == peer.as_socket().unwrap())
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut buf = [0u8; 2];
        (&*client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hi");
    }
    lis.free(&mut base).unwrap();
}

#[test]
fn accepts_every_connection_with_its_peer_address_v4() {
    let _w = Watchdog::new("listener accept v4", Duration::from_secs(10));
    accept_n_and_check_peers(localhost_v4());
}

#[test]
fn accepts_every_connection_with_its_peer_address_v6() {
    let _w = Watchdog::new("listener accept v6", Duration::from_secs(10));
    accept_n_and_check_peers(SocketAddr::from((Ipv6Addr::LOCALHOST, 0)));
}

#[test]
fn disable_queues_connections_and_enable_resumes() {
    let _w = Watchdog::new("listener disable/enable", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    // DISABLED: created without accepting.
    let lis = Listener::bind(&mut base, localhost_v4(), ListenerOptions::DISABLED, 16, cb).unwrap();
    assert!(!lis.is_enabled(&mut base).unwrap());
    let port = port_of(&mut base, lis);
    let _c: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap())
        .collect();
    run_for(&mut base, Duration::from_millis(100));
    assert_eq!(
        got.borrow().len(),
        0,
        "disabled: connections wait in the backlog"
    );
    lis.enable(&mut base).unwrap();
    lis.enable(&mut base).unwrap(); // twice is harmless
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 3));

    // Disabling from the accept callback stops the current round at once.
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    lis.set_callback(&mut base, move |base, lis, _fd, _peer| {
        c.set(c.get() + 1);
        lis.disable(base).unwrap();
    })
    .unwrap();
    let _d: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    assert!(run_until(&mut base, Duration::from_secs(2), |_| count
        .get()
        == 1));
    run_for(&mut base, Duration::from_millis(100));
    assert_eq!(
        count.get(),
        1,
        "disabled inside the callback: no further accepts"
    );
    assert!(!lis.is_enabled(&mut base).unwrap());
    for want in 2..=3 {
        lis.enable(&mut base).unwrap();
        assert!(run_until(&mut base, Duration::from_secs(2), |_| count
            .get()
            == want));
    }
    lis.free(&mut base).unwrap();
}

#[test]
fn free_inside_the_accept_callback() {
    let _w = Watchdog::new("listener free in callback", Duration::from_secs(10));
    let mut base = base();
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::empty(),
        -1,
        move |base, lis, _fd, _peer| {
            c.set(c.get() + 1);
            lis.free(base).unwrap();
            assert!(!lis.is_valid(base));
            assert_eq!(lis.free(base).unwrap_err().kind(), io::ErrorKind::NotFound);
        },
    )
    .unwrap();
    let port = port_of(&mut base, lis);
    let _c: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(20));
    // The listener was the only event: once it frees itself the loop ends.
    let start = Instant::now();
    base.dispatch().unwrap();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(
        calls.get(),
        1,
        "no callback after free, though connections were queued"
    );
    for r in [
        lis.enable(&mut base),
        lis.disable(&mut base),
        lis.free(&mut base),
    ] {
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::NotFound);
    }
    assert_eq!(
        lis.fd(&mut base).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    assert_eq!(
        lis.local_addr(&mut base).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
    // bind made the socket, so free closed it.
    let e = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
}

#[test]
fn no_callback_after_free_from_outside() {
    let _w = Watchdog::new("listener free outside", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    let lis = Listener::bind(&mut base, localhost_v4(), ListenerOptions::empty(), -1, cb).unwrap();
    let port = port_of(&mut base, lis);
    let _c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    // A connection is pending when the listener goes: it is never accepted.
    lis.free(&mut base).unwrap();
    run_for(&mut base, Duration::from_millis(50));
    assert_eq!(got.borrow().len(), 0);
}

#[test]
fn set_callback_inside_the_callback_takes_over() {
    let _w = Watchdog::new("listener set_cb", Duration::from_secs(10));
    let mut base = base();
    let first = Rc::new(Cell::new(0));
    let second = Rc::new(Cell::new(0));
    let (f, s) = (first.clone(), second.clone());
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::empty(),
        -1,
        move |base, lis, _fd, _| {
            f.set(f.get() + 1);
            let s = s.clone();
            lis.set_callback(base, move |_, _, _, _| s.set(s.get() + 1))
                .unwrap();
        },
    )
    .unwrap();
    let port = port_of(&mut base, lis);
    let _c: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap())
        .collect();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| first
        .get()
        + second.get()
        == 3));
    assert_eq!((first.get(), second.get()), (1, 2));
    lis.free(&mut base).unwrap();
}

#[test]
fn from_fd_wraps_a_std_listener() {
    let _w = Watchdog::new("listener from_fd", Duration::from_secs(10));
    let mut base = base();

    // Already listening (backlog 0), closed on free.
    let std_lis = TcpListener::bind(localhost_v4()).unwrap();
    let addr = std_lis.local_addr().unwrap();
    let raw = std_lis.as_raw_fd();
    let (got, cb) = collector();
    let lis = Listener::from_fd(
        &mut base,
        OwnedFd::from(std_lis),
        ListenerOptions::CLOSE_ON_FREE,
        0,
        cb,
    )
    .unwrap();
    assert_eq!(lis.fd(&mut base).unwrap(), raw);
    assert_eq!(lis.local_addr(&mut base).unwrap().as_socket(), Some(addr));
    let c = TcpStream::connect(addr).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    assert_eq!(got.borrow()[0].1.as_socket(), Some(c.local_addr().unwrap()));
    lis.free(&mut base).unwrap();
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        io::ErrorKind::ConnectionRefused
    );

    // Not closed on free without CLOSE_ON_FREE: the socket keeps listening.
    let std_lis = TcpListener::bind(localhost_v4()).unwrap();
    let addr = std_lis.local_addr().unwrap();
    let keep = std_lis.try_clone().unwrap(); // to close it at the end
    let (_got, cb) = collector();
    let lis = Listener::from_fd(
        &mut base,
        OwnedFd::from(std_lis),
        ListenerOptions::empty(),
        0,
        cb,
    )
    .unwrap();
    let raw = lis.fd(&mut base).unwrap();
    lis.free(&mut base).unwrap();
    assert!(
        std::fs::symlink_metadata(format!("/proc/self/fd/{raw}")).is_ok(),
        "the fd stays open without CLOSE_ON_FREE"
    );
    let mut c = TcpStream::connect(addr).unwrap();
    let (mut s, _) = keep.accept().unwrap();
    c.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    // `raw` itself is left open: the test has no safe way to close a raw fd
    // (the kernel closes it at exit), which is exactly the documented contract.
    drop(keep);

    // A socket that is not listening yet: a positive backlog listens.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&localhost_v4().into()).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let (got, cb) = collector();
    let lis = Listener::from_fd(
        &mut base,
        OwnedFd::from(sock),
        ListenerOptions::CLOSE_ON_FREE,
        4,
        cb,
    )
    .unwrap();
    let _c = TcpStream::connect(addr).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    lis.free(&mut base).unwrap();

    // Backlog 0 on a socket that is not listening, and a datagram socket, are refused.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let r = Listener::from_fd(
        &mut base,
        OwnedFd::from(sock),
        ListenerOptions::CLOSE_ON_FREE,
        0,
        |_, _, _, _| {},
    );
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let udp = std::net::UdpSocket::bind(localhost_v4()).unwrap();
    let r = Listener::from_fd(
        &mut base,
        OwnedFd::from(udp),
        ListenerOptions::CLOSE_ON_FREE,
        0,
        |_, _, _, _| {},
    );
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidInput);
}

fn temp_socket_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("oxevent-lis-{}-{tag}.sock", std::process::id()))
}

#[test]
fn bind_unix_accepts_unix_connections() {
    let _w = Watchdog::new("listener unix", Duration::from_secs(10));
    let mut base = base();
    let path = temp_socket_path("accept");
    let _ = std::fs::remove_file(&path);
    let (got, cb) = collector();
    let lis = Listener::bind_unix(&mut base, &path, ListenerOptions::empty(), -1, cb).unwrap();
    assert_eq!(
        lis.local_addr(&mut base).unwrap().as_pathname(),
        Some(path.as_path())
    );
    let mut clients: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&path).unwrap())
        .collect();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 3));
    for ((fd, _peer), client) in got.borrow_mut().drain(..).zip(clients.iter_mut()) {
        let mut server = UnixStream::from(fd);
        server.write_all(b"u").unwrap();
        let mut b = [0u8; 1];
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        client.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"u");
    }
    // The path is taken while it exists.
    let e = Listener::bind_unix(
        &mut base,
        &path,
        ListenerOptions::empty(),
        -1,
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    lis.free(&mut base).unwrap();
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn accepted_sockets_are_nonblocking_and_cloexec() {
    let _w = Watchdog::new("listener accepted flags", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::CLOSE_ON_EXEC,
        -1,
        cb,
    )
    .unwrap();
    let port = port_of(&mut base, lis);
    let _c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    let (fd, _) = got.borrow_mut().pop().unwrap();
    let fdinfo_flags = |fd: i32| -> i32 {
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        let line = info.lines().find(|l| l.starts_with("flags:")).unwrap();
        i32::from_str_radix(line["flags:".len()..].trim(), 8).unwrap()
    };
    let flags = fdinfo_flags(fd.as_raw_fd());
    assert_ne!(
        flags & libc::O_CLOEXEC,
        0,
        "accepted socket is close-on-exec ({flags:o})"
    );
    assert_ne!(
        flags & libc::O_NONBLOCK,
        0,
        "accepted socket is non-blocking ({flags:o})"
    );
    let mut s = TcpStream::from(fd);
    assert_eq!(
        s.read(&mut [0u8; 8]).unwrap_err().kind(),
        io::ErrorKind::WouldBlock
    );
    let lflags = fdinfo_flags(lis.fd(&mut base).unwrap());
    assert_ne!(lflags & libc::O_CLOEXEC, 0, "the listening socket too");
    assert_ne!(lflags & libc::O_NONBLOCK, 0);
    lis.free(&mut base).unwrap();
}

#[test]
fn accepts_at_most_a_bounded_number_per_wakeup() {
    let _w = Watchdog::new("listener accepts per callback", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    let lis = Listener::bind(&mut base, localhost_v4(), ListenerOptions::empty(), 128, cb).unwrap();
    let port = port_of(&mut base, lis);
    let n = ACCEPTS_PER_CALLBACK + 8;
    let _c: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(50));
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        got.borrow().len(),
        ACCEPTS_PER_CALLBACK,
        "one wake-up accepts at most the bound"
    );
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == n));
    lis.free(&mut base).unwrap();
}

#[test]
fn reuseable_port_lets_two_listeners_share_a_port() {
    let _w = Watchdog::new("listener reuseport", Duration::from_secs(10));
    let mut base = base();
    let opts = ListenerOptions::REUSEABLE | ListenerOptions::REUSEABLE_PORT;
    let (got_a, cb_a) = collector();
    let a = Listener::bind(&mut base, localhost_v4(), opts, -1, cb_a).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port_of(&mut base, a)));
    let (got_b, cb_b) = collector();
    let b = Listener::bind(&mut base, addr, opts, -1, cb_b).unwrap();
    assert_eq!(port_of(&mut base, b), addr.port());
    // Without the option on the newcomer the port is taken.
    let e = Listener::bind(
        &mut base,
        addr,
        ListenerOptions::REUSEABLE,
        -1,
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
    // Both listeners accept; the kernel spreads the connections over them.
    let _c: Vec<TcpStream> = (0..32).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| {
        got_a.borrow().len() + got_b.borrow().len() == 32
    }));
    assert!(
        !got_a.borrow().is_empty() && !got_b.borrow().is_empty(),
        "both got connections"
    );
    a.free(&mut base).unwrap();
    b.free(&mut base).unwrap();
}

#[test]
fn reuseable_rebinds_despite_time_wait() {
    let _w = Watchdog::new("listener reuseaddr", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::REUSEABLE,
        -1,
        cb,
    )
    .unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port_of(&mut base, lis)));
    let mut client = TcpStream::connect(addr).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    // The server closes first, so its side of the connection goes to TIME_WAIT.
    drop(got.borrow_mut().pop());
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(client.read(&mut [0u8; 1]).unwrap(), 0);
    drop(client);
    lis.free(&mut base).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let (_got, cb) = collector();
    let again = Listener::bind(&mut base, addr, ListenerOptions::REUSEABLE, -1, cb).unwrap();
    again.free(&mut base).unwrap();
}

#[test]
fn ipv6_only_and_dual_stack() {
    let _w = Watchdog::new("listener ipv6only", Duration::from_secs(10));
    let mut base = base();
    let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0));
    // IPV6_ONLY with an IPv4 address makes no sense.
    let e = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::IPV6_ONLY,
        -1,
        |_, _, _, _| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    let (got, cb) = collector();
    let Some(v6only) = try_bind(&mut base, any6, ListenerOptions::IPV6_ONLY, cb) else {
        return;
    };
    let port = port_of(&mut base, v6only);
    let e = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap_err();
    assert_eq!(
        e.kind(),
        io::ErrorKind::ConnectionRefused,
        "IPv6-only refuses IPv4"
    );
    let _c6 = TcpStream::connect((Ipv6Addr::LOCALHOST, port)).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    v6only.free(&mut base).unwrap();

    // Without the option, [::] is dual-stack whatever the system default.
    let (got, cb) = collector();
    let dual = try_bind(&mut base, any6, ListenerOptions::empty(), cb).unwrap();
    let port = port_of(&mut base, dual);
    let c4 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    let peer = got.borrow()[0].1.as_socket().unwrap();
    let SocketAddr::V6(peer6) = peer else {
        panic!("an IPv6 socket reports IPv6 peers, got {peer}");
    };
    assert_eq!(
        peer6.ip().to_ipv4_mapped(),
        Some(Ipv4Addr::LOCALHOST),
        "a v4-mapped peer"
    );
    assert_eq!(peer6.port(), c4.local_addr().unwrap().port());
    dual.free(&mut base).unwrap();
}

#[cfg(any(target_os = "linux", target_os = "android"))]
#[test]
fn deferred_accept_waits_for_data() {
    let _w = Watchdog::new("listener deferred accept", Duration::from_secs(10));
    let mut base = base();
    let (got, cb) = collector();
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::DEFERRED_ACCEPT,
        -1,
        cb,
    )
    .unwrap();
    let port = port_of(&mut base, lis);
    let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    run_for(&mut base, Duration::from_millis(150));
    assert_eq!(
        got.borrow().len(),
        0,
        "no data yet: the kernel holds the connection"
    );
    c.write_all(b"GET").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(2), |_| got
        .borrow()
        .len()
        == 1));
    let mut s = TcpStream::from(got.borrow_mut().pop().unwrap().0);
    let mut b = [0u8; 3];
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"GET", "the data is there on accept");
    lis.free(&mut base).unwrap();
}

/// When each error callback ran, and its errno.
type ErrorLog = Rc<RefCell<Vec<(Instant, Option<i32>)>>>;

/// A listening socket that stops listening under the listener (shut down
/// for reading: accept then fails with EINVAL, and the socket polls
/// readable for ever). The error reaches the error callback, the listener
/// backs off instead of spinning, and the error callback may free it.
#[test]
fn unexpected_accept_errors_are_reported_and_backed_off() {
    let _w = Watchdog::new("listener accept error", Duration::from_secs(10));
    let mut base = base();
    let std_lis = TcpListener::bind(localhost_v4()).unwrap();
    let handle = std_lis.try_clone().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let a = accepted.clone();
    let lis = Listener::from_fd(
        &mut base,
        OwnedFd::from(std_lis),
        ListenerOptions::CLOSE_ON_FREE,
        0,
        move |_, _, _, _| {
            a.set(a.get() + 1);
        },
    )
    .unwrap();
    let errors: ErrorLog = Rc::default();
    let e = errors.clone();
    lis.set_error_callback(&mut base, move |_, _, err| {
        e.borrow_mut().push((Instant::now(), err.raw_os_error()))
    })
    .unwrap();
    SockRef::from(&handle).shutdown(Shutdown::Read).unwrap();
    let start = Instant::now();
    run_for(&mut base, Duration::from_millis(400));
    let n = errors.borrow().len();
    assert!(
        n >= 2,
        "the error is reported, and retried after the back-off ({n})"
    );
    assert!(n <= 4, "backed off, not spinning: {n} errors in 400 ms");
    assert_eq!(errors.borrow()[0].1, Some(libc::EINVAL));
    let first_gap = errors.borrow()[1].0 - errors.borrow()[0].0;
    assert!(
        first_gap >= BACKOFF_MIN - Duration::from_millis(5),
        "paused {first_gap:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(accepted.get(), 0);

    // Freed from inside the error callback: nothing runs afterwards.
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    lis.set_error_callback(&mut base, move |base, lis, _| {
        c.set(c.get() + 1);
        lis.free(base).unwrap();
    })
    .unwrap();
    let start = Instant::now();
    base.dispatch().unwrap(); // ends once the listener is gone
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(calls.get(), 1);
    assert!(!lis.is_valid(&mut base));
    drop(handle);
}

/// The environment variable that makes [`emfile_child`] do its work.
const EMFILE_CHILD_ENV: &str = "OXEVENT_LISTENER_EMFILE_CHILD";

/// Runs the descriptor-exhaustion scenario in a child process whose
/// descriptor limit `prlimit` lowered to 64, and checks its report.
#[test]
fn emfile_backs_off_and_resumes() {
    let _w = Watchdog::new("listener emfile parent", Duration::from_secs(15));
    if std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: prlimit (util-linux) is not installed");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("prlimit")
        .arg("--nofile=64:64")
        .arg("--")
        .arg(exe)
        .args([
            "regress_listener::emfile_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(EMFILE_CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("EMFILE-CHILD ").map(|at| &l[at..]))
        .unwrap_or_else(|| {
            panic!("no report from the child\nstdout:\n{stdout}\nstderr:\n{stderr}")
        });
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {line}"))
            .parse()
            .unwrap()
    };
    let errors = field("errors");
    assert!(
        errors >= 2,
        "the error callback saw EMFILE, again after a pause: {line}"
    );
    assert!(errors < 50, "backed off instead of spinning: {line}");
    assert_eq!(field("emfile"), errors, "every error was EMFILE: {line}");
    assert_eq!(
        field("resumed"),
        1,
        "accepting resumed once descriptors were free: {line}"
    );
    assert!(
        field("resume_ms") <= u64::try_from(2 * 1600).unwrap(),
        "{line}"
    );
    assert_eq!(
        field("second"),
        1,
        "after resuming, a new connection is accepted at once: {line}"
    );
}

/// The child side of [`emfile_backs_off_and_resumes`]; does nothing unless
/// started by it (under a low descriptor limit).
#[test]
#[ignore = "helper: run by emfile_backs_off_and_resumes under prlimit"]
fn emfile_child() {
    if std::env::var_os(EMFILE_CHILD_ENV).is_none() {
        eprintln!("emfile_child only runs from emfile_backs_off_and_resumes");
        return;
    }
    let _w = Watchdog::new("listener emfile child", Duration::from_secs(8));
    let mut base = base();
    let accepted: Rc<RefCell<Vec<OwnedFd>>> = Rc::default();
    let a = accepted.clone();
    let lis = Listener::bind(
        &mut base,
        localhost_v4(),
        ListenerOptions::empty(),
        -1,
        move |_, _, fd, _| {
            a.borrow_mut().push(fd);
        },
    )
    .unwrap();
    let errors = Rc::new(Cell::new(0u64));
    let emfile = Rc::new(Cell::new(0u64));
    let (e, m) = (errors.clone(), emfile.clone());
    lis.set_error_callback(&mut base, move |_, _, err| {
        e.set(e.get() + 1);
        if err.raw_os_error() == Some(libc::EMFILE) {
            m.set(m.get() + 1);
        }
    })
    .unwrap();
    let port = port_of(&mut base, lis);
    // The client's descriptor first, then use up every other one.
    let _client = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let mut hog = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => hog.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("open: {e}"),
        }
        assert!(
            hog.len() < 10_000,
            "the descriptor limit is not low: run under prlimit"
        );
    }
    // A second out of descriptors: with a spinning listener this would be
    // hundreds of thousands of errors.
    run_for(&mut base, Duration::from_secs(1));
    // Give descriptors back; the back-off timer resumes accepting.
    hog.truncate(hog.len().saturating_sub(8));
    let start = Instant::now();
    let resumed = run_until(&mut base, Duration::from_secs(3), |_| {
        accepted.borrow().len() == 1
    });
    let resume_ms = start.elapsed().as_millis();
    // After a success the listener is back to normal: no pause.
    let _client2 = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    let second = run_until(&mut base, Duration::from_millis(300), |_| {
        accepted.borrow().len() == 2
    });
    println!(
        "EMFILE-CHILD errors={} emfile={} resumed={} resume_ms={resume_ms} second={}",
        errors.get(),
        emfile.get(),
        u8::from(resumed),
        u8::from(second)
    );
    lis.free(&mut base).unwrap();
}
