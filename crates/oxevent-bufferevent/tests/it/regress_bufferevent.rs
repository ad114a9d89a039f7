//! Bufferevents, after libevent's `regress_bufferevent.c`: pairs, sockets
//! over real socketpairs and loopback TCP, connect (refused, hostname,
//! every address tried), watermarks, timeouts, filters, deferred
//! callbacks, and freeing from callbacks and from other threads.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use oxevent_bufferevent::{
    BevEvent, BevFlags, BevOptions, BlockingResolver, Buffer, BufferEvent, Family, FilterResult,
    FlushMode, Resolve, ResolveDone,
};
use oxevent_core::{EventBase, LoopFlags, What};
use oxevent_test_support::{Watchdog, socketpair};

use crate::common::{base, run_until};

fn events_log() -> Rc<RefCell<Vec<BevEvent>>> {
    Rc::new(RefCell::new(Vec::new()))
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn pair_moves_data_and_honours_watermarks() {
    let _w = Watchdog::new("pair watermarks", Duration::from_secs(10));
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
    assert_eq!(a.pair_partner(&mut base).unwrap(), Some(b));
    b.set_watermark(&mut base, What::READ, 10, 20).unwrap();
    let reads = Rc::new(Cell::new(0));
    let r = reads.clone();
    b.on_read(&mut base, move |_, _| r.set(r.get() + 1))
        .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"12345").unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(b.input(&mut base).unwrap().len(), 5);
    assert_eq!(reads.get(), 0, "below the low watermark: no callback");
    a.write(&mut base, &[b'x'; 100]).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        b.input(&mut base).unwrap().len(),
        20,
        "stopped at the high watermark"
    );
    assert_eq!(
        a.output(&mut base).unwrap().len(),
        85,
        "the rest waits in the writer"
    );
    assert!(reads.get() >= 1);
    b.input(&mut base).unwrap().drain(20).unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(
        b.input(&mut base).unwrap().len(),
        20,
        "resumed after draining"
    );
    b.input(&mut base).unwrap().drain(20).unwrap();
    for _ in 0..10 {
        base.run(LoopFlags::NONBLOCK).unwrap();
        let n = b.input(&mut base).unwrap().len();
        b.input(&mut base).unwrap().drain(n).unwrap();
    }
    assert!(a.output(&mut base).unwrap().is_empty());
}

#[test]
fn pair_finish_and_free_give_eof() {
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
    let got = events_log();
    let g = got.clone();
    b.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"last words").unwrap();
    assert!(
        a.flush(&mut base, What::WRITE, FlushMode::Finished)
            .unwrap()
    );
    assert_eq!(b.input(&mut base).unwrap().len(), 10);
    assert_eq!(
        got.borrow().last().map(|e| e.what),
        Some(BevFlags::READING | BevFlags::EOF)
    );
    a.free(&mut base).unwrap();
    assert_eq!(
        got.borrow().len(),
        2,
        "freeing one side is EOF for the other"
    );
    assert_eq!(b.pair_partner(&mut base).unwrap(), None);
    assert_eq!(
        a.write(&mut base, b"x").unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

fn socket_pair_bevs(base: &mut EventBase, opts: BevOptions) -> (BufferEvent, BufferEvent) {
    let (x, y) = socketpair();
    let a = BufferEvent::socket(
        base,
        Some(OwnedFd::from(x)),
        opts | BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let b = BufferEvent::socket(
        base,
        Some(OwnedFd::from(y)),
        opts | BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    (a, b)
}

#[test]
fn socket_bufferevents_move_a_mebibyte_with_small_watermarks() {
    let _w = Watchdog::new("socket transfer", Duration::from_secs(20));
    let mut base = base();
    let (a, b) = socket_pair_bevs(&mut base, BevOptions::empty());
    let data = pattern(1 << 20);
    a.write(&mut base, &data).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    b.set_watermark(&mut base, What::READ, 0, 4096).unwrap();
    b.on_read(&mut base, move |base, bev| {
        let input = bev.input(base).unwrap();
        let n = input.len().min(1000);
        let mut chunk = vec![0u8; n];
        input.remove(&mut chunk).unwrap();
        g.borrow_mut().extend_from_slice(&chunk);
    })
    .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    let want = data.len();
    // The reader takes at most 1000 bytes per callback, so the input keeps
    // hitting the high watermark; the tail end is left in the input.
    let ok = run_until(&mut base, Duration::from_secs(15), |base| {
        got.borrow().len() + b.input(base).map_or(0, |i| i.len()) == want
    });
    assert!(ok, "got {} of {want}", got.borrow().len());
    let rest = b.input(&mut base).unwrap().len();
    let mut tail = vec![0u8; rest];
    b.read(&mut base, &mut tail).unwrap();
    got.borrow_mut().extend_from_slice(&tail);
    assert!(*got.borrow() == data, "bytes arrive intact and in order");
    assert!(a.output(&mut base).unwrap().is_empty());
    assert!(
        rest <= 4096,
        "the input never went past the high watermark ({rest})"
    );
}

#[test]
fn echo_over_socketpair_with_write_callback() {
    let mut base = base();
    let (a, b) = socket_pair_bevs(&mut base, BevOptions::empty());
    b.on_read(&mut base, |base, bev| {
        let (input, output) = bev.buffers(base).unwrap();
        output.add_buffer(input).unwrap();
    })
    .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    let drained = Rc::new(Cell::new(0));
    let d = drained.clone();
    a.on_write(&mut base, move |_, _| d.set(d.get() + 1))
        .unwrap();
    a.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"ping").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |b| a
        .input(b)
        .map(|i| i.len())
        .unwrap_or(0)
        == 4));
    assert_eq!(a.input(&mut base).unwrap().pullup(4).unwrap(), b"ping");
    assert!(
        drained.get() >= 1,
        "the write callback ran once the output drained"
    );
    assert!(a.fd(&mut base).unwrap().is_some());
}

#[test]
fn peer_close_is_eof_and_write_error_carries_errno() {
    let _w = Watchdog::new("eof", Duration::from_secs(10));
    let mut base = base();
    let (x, y) = socketpair();
    let bev =
        BufferEvent::socket(&mut base, Some(OwnedFd::from(x)), BevOptions::CLOSE_ON_FREE).unwrap();
    let got = events_log();
    let g = got.clone();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.enable(&mut base, What::READ).unwrap();
    drop(y);
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0].what, BevFlags::READING | BevFlags::EOF);
    assert!(
        !bev.enabled(&mut base).unwrap().contains(What::READ),
        "EOF disables reading"
    );
    bev.write(&mut base, &[0u8; 100]).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| got
        .borrow()
        .len()
        >= 2));
    let ev = got.borrow()[1];
    assert_eq!(ev.what, BevFlags::WRITING | BevFlags::ERROR);
    let kind = ev.io_error().expect("errno is readable").kind();
    assert!(
        matches!(
            kind,
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ),
        "{kind:?}"
    );
}

#[test]
fn connect_succeeds_and_refused_reports_errno() {
    let _w = Watchdog::new("connect", Duration::from_secs(10));
    let mut base = base();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket_connect(&mut base, addr, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.write(&mut base, b"hello after connect").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0].what, BevFlags::CONNECTED);
    let (mut peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 19];
    // The data written before the connect finished is sent after it.
    let start = Instant::now();
    let mut n = 0;
    while n < buf.len() && start.elapsed() < Duration::from_secs(5) {
        base.run(LoopFlags::NONBLOCK).unwrap();
        peer.set_nonblocking(true).unwrap();
        match peer.read(&mut buf[n..]) {
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(&buf, b"hello after connect");

    // Refused: a port nobody listens on any more.
    drop(listener);
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket_connect(&mut base, addr, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    let ev = got.borrow()[0];
    assert!(ev.what.contains(BevFlags::ERROR), "{ev:?}");
    assert_eq!(
        ev.io_error().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
}

/// A resolver that answers from a fixed list, or fails.
struct Fixed(io::Result<Vec<SocketAddr>>);

impl Resolve for Fixed {
    fn resolve(
        &self,
        base: &mut EventBase,
        _host: &str,
        port: u16,
        _family: Family,
        done: ResolveDone,
    ) {
        let r = match &self.0 {
            Ok(v) => Ok(v
                .iter()
                .map(|a| SocketAddr::new(a.ip(), if a.port() == 0 { port } else { a.port() }))
                .collect()),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        };
        done(base, r);
    }
}

#[test]
fn connect_hostname_tries_every_address() {
    let _w = Watchdog::new("connect_hostname", Duration::from_secs(10));
    let mut base = base();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let good = listener.local_addr().unwrap();
    let dead = {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        l.local_addr().unwrap()
    };
    let resolver = Fixed(Ok(vec![dead, dead, good]));
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.connect_hostname(&mut base, &resolver, Family::Any, "example.test", 0)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(
        got.borrow()[0].what,
        BevFlags::CONNECTED,
        "libevent would have stopped at the first address"
    );
    assert!(listener.accept().is_ok());

    // The system resolver for "localhost".
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.connect_hostname(
        &mut base,
        &BlockingResolver,
        Family::V4,
        "localhost",
        good.port(),
    )
    .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0].what, BevFlags::CONNECTED);

    // Every address dead: the last error; a failed lookup: the DNS error.
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.connect_hostname(&mut base, &Fixed(Ok(vec![dead, dead])), Family::Any, "x", 0)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(
        got.borrow()[0].io_error().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
    let got = events_log();
    let g = got.clone();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    let nx = Fixed(Err(io::Error::new(
        io::ErrorKind::NotFound,
        "name does not exist",
    )));
    bev.connect_hostname(&mut base, &nx, Family::Any, "nx.test", 80)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0].what, BevFlags::ERROR);
    assert_eq!(
        bev.dns_error(&mut base).unwrap().as_deref(),
        Some("name does not exist")
    );
}

#[test]
fn read_timeout_fires_and_disables_reading() {
    let _w = Watchdog::new("timeout", Duration::from_secs(10));
    let mut base = base();
    let (a, _b) = socket_pair_bevs(&mut base, BevOptions::empty());
    let got = events_log();
    let g = got.clone();
    a.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    a.set_timeouts(&mut base, Some(Duration::from_millis(30)), None)
        .unwrap();
    a.enable(&mut base, What::READ).unwrap();
    let start = Instant::now();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| !got
        .borrow()
        .is_empty()));
    assert!(start.elapsed() >= Duration::from_millis(25));
    assert_eq!(got.borrow()[0].what, BevFlags::READING | BevFlags::TIMEOUT);
    assert!(!a.enabled(&mut base).unwrap().contains(What::READ));
}

#[test]
fn freeing_from_callbacks_stops_all_callbacks() {
    let _w = Watchdog::new("free in callback", Duration::from_secs(10));
    let mut base = base();
    let (a, b) = socket_pair_bevs(&mut base, BevOptions::empty());
    let (c, d) = socket_pair_bevs(&mut base, BevOptions::empty());
    let calls = Rc::new(Cell::new(0));
    let cl = calls.clone();
    b.on_read(&mut base, move |base, me| {
        cl.set(cl.get() + 1);
        me.free(base).unwrap();
        d.free(base).unwrap(); // another one, whose data is also pending
        assert!(me.free(base).is_err());
    })
    .unwrap();
    let cl = calls.clone();
    d.on_read(&mut base, move |_, _| cl.set(cl.get() + 100))
        .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    d.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"one").unwrap();
    c.write(&mut base, b"two").unwrap();
    for _ in 0..20 {
        base.run(LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let n = calls.get();
    assert!(
        n == 1 || n == 101,
        "b's callback ran once; d's never after it was freed ({n})"
    );
    assert!(!b.is_valid(&mut base) && !d.is_valid(&mut base));
}

#[test]
fn filter_transforms_both_ways() {
    let _w = Watchdog::new("filter", Duration::from_secs(10));
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
    // Inbound: upper-case whole lines only (NeedMore until a newline).
    let upper: oxevent_bufferevent::FilterFn =
        Box::new(|src: &mut Buffer, dst: &mut Buffer, _limit, _mode| {
            let mut produced = false;
            while let Some(line) = src.readln(oxevent_bufferevent::EolStyle::Lf, 1024).unwrap() {
                dst.add(&line.to_ascii_uppercase()).unwrap();
                dst.add(b"\n").unwrap();
                produced = true;
            }
            if produced {
                FilterResult::Ok
            } else {
                FilterResult::NeedMore
            }
        });
    // Outbound: frame each write with its length.
    let frame: oxevent_bufferevent::FilterFn =
        Box::new(|src: &mut Buffer, dst: &mut Buffer, _limit, _mode| {
            let n = src.len();
            if n == 0 {
                return FilterResult::NeedMore;
            }
            dst.add(format!("{n}:").as_bytes()).unwrap();
            src.remove_buffer(dst, n).unwrap();
            FilterResult::Ok
        });
    let f = BufferEvent::filter(
        &mut base,
        b,
        Some(upper),
        Some(frame),
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    assert_eq!(f.underlying(&mut base).unwrap(), Some(b));
    let lines = Rc::new(RefCell::new(Vec::new()));
    let l = lines.clone();
    f.on_read(&mut base, move |base, me| {
        let n = me.input(base).unwrap().len();
        let mut v = vec![0u8; n];
        me.read(base, &mut v).unwrap();
        l.borrow_mut().extend_from_slice(&v);
    })
    .unwrap();
    f.enable(&mut base, What::READ | What::WRITE).unwrap();
    a.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"hello ").unwrap();
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert!(
        lines.borrow().is_empty(),
        "half a line: the filter needs more"
    );
    a.write(&mut base, b"world\n").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| lines
        .borrow()
        .len()
        == 12));
    assert_eq!(&*lines.borrow(), b"HELLO WORLD\n");
    f.write(&mut base, b"abc").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |b| a
        .input(b)
        .unwrap()
        .len()
        == 5));
    assert_eq!(a.input(&mut base).unwrap().pullup(5).unwrap(), b"3:abc");
    f.free(&mut base).unwrap();
    assert!(
        !b.is_valid(&mut base),
        "CLOSE_ON_FREE frees the underlying bufferevent"
    );
}

#[test]
fn deferred_callbacks_run_from_the_loop() {
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::DEFER_CALLBACKS).unwrap();
    let order = Rc::new(RefCell::new(Vec::new()));
    let o = order.clone();
    b.on_read(&mut base, move |_, _| o.borrow_mut().push("read"))
        .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"x").unwrap();
    b.trigger(&mut base, What::READ, true, true).unwrap();
    assert!(
        order.borrow().is_empty(),
        "deferred: nothing ran inside trigger"
    );
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert!(!order.borrow().is_empty());
}

#[test]
fn max_single_read_bounds_each_read() {
    let mut base = base();
    let (a, b) = socket_pair_bevs(&mut base, BevOptions::empty());
    b.set_max_single_read(&mut base, 3).unwrap();
    assert!(b.set_max_single_read(&mut base, 0).is_err());
    let sizes = Rc::new(RefCell::new(Vec::new()));
    let s = sizes.clone();
    b.on_read(&mut base, move |base, me| {
        let n = me.input(base).unwrap().len();
        s.borrow_mut().push(n);
        me.input(base).unwrap().drain(n).unwrap();
    })
    .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"0123456789").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| sizes
        .borrow()
        .iter()
        .sum::<usize>()
        == 10));
    assert!(
        sizes.borrow().iter().all(|&n| n <= 3),
        "{:?}",
        sizes.borrow()
    );
}

/// Over TCP (where `TCP_INQ` tells the reader what is left): reads that take
/// exactly the max single read, with nothing or something left behind,
/// then more data after a pause, then the peer's end: every byte and the
/// end of file arrive.
#[test]
fn tcp_reads_of_exactly_the_max_lose_nothing() {
    let _w = Watchdog::new("tcp max reads", Duration::from_secs(20));
    let mut base = base();
    let (mut peer, ours) = oxevent_test_support::tcp_pair();
    let b = BufferEvent::socket(
        &mut base,
        Some(OwnedFd::from(ours)),
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    b.set_max_single_read(&mut base, 100).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    b.on_read(&mut base, move |base, me| {
        let input = me.input(base).unwrap();
        let n = input.len();
        assert!(n <= 100, "one read of at most the max: {n}");
        let mut chunk = vec![0; n];
        assert_eq!(input.remove(&mut chunk).unwrap(), n);
        g.borrow_mut().extend(chunk);
    })
    .unwrap();
    let eof = Rc::new(Cell::new(false));
    let e = eof.clone();
    b.on_event(&mut base, move |_, _, ev| {
        if ev.what.contains(BevFlags::EOF) {
            e.set(true);
        }
    })
    .unwrap();
    b.enable(&mut base, What::READ).unwrap();
    let data = pattern(100 + 100 + 250);
    let mut sent = 0;
    for chunk in [100, 100, 250] {
        peer.write_all(&data[sent..sent + chunk]).unwrap();
        sent += chunk;
        assert!(
            run_until(&mut base, Duration::from_secs(5), |_b| got.borrow().len()
                == sent),
            "{} of {sent}",
            got.borrow().len()
        );
    }
    drop(peer);
    assert!(run_until(&mut base, Duration::from_secs(5), |_b| eof.get()));
    assert_eq!(*got.borrow(), data);
}

/// The inodes of the sockets this process has open (other tests run in
/// parallel, so counting fds would be racy; inodes identify our sockets).
fn open_socket_inodes() -> std::collections::HashSet<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| std::fs::metadata(e.ok()?.path()).ok())
                .filter(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
                .map(|m| m.ino())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn free_from_other_threads_while_traffic_flows() {
    let _w = Watchdog::new("cross-thread free", Duration::from_secs(30));
    const N: usize = 64;
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    // The loop thread: N echoing bufferevents, their peers handed out.
    let looper = std::thread::spawn(move || {
        let mut base = base();
        let remote = base.remote().unwrap();
        let mut peers = Vec::new();
        let mut bevs = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..N {
            let (x, y) = std::os::unix::net::UnixStream::pair().unwrap();
            {
                use std::os::unix::fs::MetadataExt;
                let ino = |s: &std::os::unix::net::UnixStream| {
                    std::fs::metadata(format!(
                        "/proc/self/fd/{}",
                        std::os::fd::AsRawFd::as_raw_fd(s)
                    ))
                    .unwrap()
                    .ino()
                };
                ours.push(ino(&x));
                ours.push(ino(&y));
            }
            let bev =
                BufferEvent::socket(&mut base, Some(OwnedFd::from(x)), BevOptions::CLOSE_ON_FREE)
                    .unwrap();
            bev.on_read(&mut base, |base, me| {
                let (i, o) = me.buffers(base).unwrap();
                o.add_buffer(i).unwrap();
            })
            .unwrap();
            bev.on_event(&mut base, |base, me, _| {
                let _ = me.free(base);
            })
            .unwrap();
            bev.enable(&mut base, What::READ).unwrap();
            peers.push(y);
            bevs.push(bev);
        }
        tx.send((remote, bevs, peers, ours)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while !stop2.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < deadline {
            base.run(LoopFlags::ONCE)
                .unwrap_or(oxevent_core::LoopStatus::Done);
            if base.num_events(oxevent_core::CountFlags::ADDED) == 0 {
                break;
            }
        }
        base.run(LoopFlags::NONBLOCK).unwrap();
    });
    let (remote, bevs, peers, ours) = rx.recv().unwrap();
    // Writers keep traffic going on every peer; freers free every bufferevent.
    let writer = std::thread::spawn(move || {
        let mut peers = peers;
        let end = Instant::now() + Duration::from_millis(500);
        while Instant::now() < end {
            for p in &mut peers {
                let _ = p.write(b"traffic");
                p.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 64];
                let _ = p.read(&mut buf);
            }
        }
        peers
    });
    let chunks: Vec<Vec<BufferEvent>> = bevs.chunks(N / 4).map(<[BufferEvent]>::to_vec).collect();
    let freers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let r = remote.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                let mut freed = 0;
                for bev in chunk {
                    match bev.free_from(&r) {
                        Ok(()) => freed += 1,
                        Err(e) => assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}"),
                    }
                }
                freed
            })
        })
        .collect();
    let freed: usize = freers.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(freed, N, "every free returned after the loop did it");
    let peers = writer.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Release);
    remote.loopbreak().unwrap();
    looper.join().unwrap();
    drop(peers);
    let open = open_socket_inodes();
    let leaked: Vec<_> = ours.iter().filter(|i| open.contains(i)).collect();
    assert!(
        leaked.is_empty(),
        "sockets still open after their bufferevents were freed: {leaked:?}"
    );
}

/// A base on a manual clock, so token-bucket ticks happen when the test says.
fn manual_base() -> (EventBase, oxevent_core::ManualClock) {
    let (clock, hand) = oxevent_core::Clock::manual();
    (
        EventBase::with_config(&oxevent_core::Config::new().clock(clock)).unwrap(),
        hand,
    )
}

fn spin(base: &mut EventBase, n: usize) {
    for _ in 0..n {
        base.run(LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn rate_limit_reads_per_tick() {
    let _w = Watchdog::new("ratelim read", Duration::from_secs(20));
    let (mut base, hand) = manual_base();
    let (mut writer, reader) = socketpair();
    writer.write_all(&pattern(5000)).unwrap();
    let bev = BufferEvent::socket(
        &mut base,
        Some(OwnedFd::from(reader)),
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let cfg = oxevent_ratelim::TokenBucketConfig::new(100, 100, 1000, 1000, Duration::from_secs(1))
        .unwrap();
    bev.set_rate_limit(&mut base, Some(cfg)).unwrap();
    let got = Rc::new(Cell::new(0usize));
    let callbacks = Rc::new(Cell::new(0usize));
    let (g, c) = (got.clone(), callbacks.clone());
    bev.on_read(&mut base, move |base, me| {
        let n = me.input(base).unwrap().len();
        me.input(base).unwrap().drain(n).unwrap();
        g.set(g.get() + n);
        c.set(c.get() + 1);
    })
    .unwrap();
    bev.enable(&mut base, What::READ).unwrap();
    spin(&mut base, 20);
    assert_eq!(
        got.get(),
        100,
        "the first tick's worth, and nothing more without time passing"
    );
    assert_eq!(bev.rate_limits(&mut base).unwrap().0, 0);
    assert_eq!(bev.max_to_transfer(&mut base).unwrap().0, 0);
    let cb_before = callbacks.get();
    for tick in 2..=5 {
        hand.advance(Duration::from_secs(1));
        spin(&mut base, 10);
        assert_eq!(got.get(), 100 * tick, "tick {tick}");
    }
    assert!(
        callbacks.get() - cb_before <= 8,
        "no busy reading while suspended"
    );
    // Manual decrement, then lift the limit.
    bev.decrement_limit(&mut base, What::READ, -50).unwrap();
    spin(&mut base, 10);
    assert_eq!(got.get(), 550, "tokens given back by hand are used");
    bev.set_rate_limit(&mut base, None).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_| got.get() == 5000));
}

#[test]
fn rate_limit_writes_per_tick() {
    let _w = Watchdog::new("ratelim write", Duration::from_secs(20));
    let (mut base, hand) = manual_base();
    let (writer, mut reader) = socketpair();
    let bev = BufferEvent::socket(
        &mut base,
        Some(OwnedFd::from(writer)),
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let cfg = oxevent_ratelim::TokenBucketConfig::new(1000, 1000, 300, 300, Duration::from_secs(1))
        .unwrap();
    bev.set_rate_limit(&mut base, Some(cfg)).unwrap();
    bev.write(&mut base, &pattern(1000)).unwrap();
    let mut total = 0;
    let mut buf = [0u8; 4096];
    for tick in 0..4 {
        spin(&mut base, 10);
        total += oxevent_test_support::drain(&mut reader).unwrap().len();
        let _ = &mut buf;
        assert_eq!(total, (300 * (tick + 1)).min(1000), "tick {tick}");
        hand.advance(Duration::from_secs(1));
    }
}

#[test]
fn rate_limit_group_shares_one_bucket() {
    let _w = Watchdog::new("ratelim group", Duration::from_secs(20));
    let (mut base, hand) = manual_base();
    let cfg =
        oxevent_ratelim::TokenBucketConfig::new(200, 200, 10_000, 10_000, Duration::from_secs(1))
            .unwrap();
    let group = oxevent_bufferevent::RateGroup::new(&mut base, cfg).unwrap();
    group.set_min_share(&mut base, 10).unwrap();
    let got = Rc::new(RefCell::new(vec![0usize; 4]));
    let mut writers = Vec::new();
    for i in 0..4 {
        let (mut w, r) = socketpair();
        w.write_all(&pattern(2000)).unwrap();
        writers.push(w);
        let bev = BufferEvent::socket(&mut base, Some(OwnedFd::from(r)), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        bev.add_to_group(&mut base, group).unwrap();
        let g = got.clone();
        bev.on_read(&mut base, move |base, me| {
            let n = me.input(base).unwrap().len();
            me.input(base).unwrap().drain(n).unwrap();
            g.borrow_mut()[i] += n;
        })
        .unwrap();
        bev.enable(&mut base, What::READ).unwrap();
    }
    for tick in 1..=5usize {
        spin(&mut base, 10);
        let total: usize = got.borrow().iter().sum();
        assert!(
            total <= 200 * tick,
            "tick {tick}: {total} exceeds the group's budget"
        );
        hand.advance(Duration::from_secs(1));
    }
    let total: usize = got.borrow().iter().sum();
    assert!(total >= 200 * 4, "the group's budget is used: {total}");
    assert!(
        got.borrow().iter().all(|&n| n > 0),
        "every member got a share: {:?}",
        got.borrow()
    );
    assert_eq!(group.totals(&mut base).unwrap().0 as usize, total);
    group.reset_totals(&mut base).unwrap();
    assert_eq!(group.totals(&mut base).unwrap(), (0, 0));
    group.free(&mut base).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_| got
        .borrow()
        .iter()
        .sum::<usize>()
        == 8000));
}

#[test]
fn deferred_buffer_callbacks_run_from_the_loop() {
    let _w = Watchdog::new("deferred buffer callbacks", Duration::from_secs(10));
    let mut base = base();
    let (a, b) = socket_pair_bevs(&mut base, BevOptions::empty());
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let input = b.input(&mut base).unwrap();
    input.defer_callbacks();
    input.add_cb(move |info| s.borrow_mut().push((info.n_added, info.n_deleted)));
    b.enable(&mut base, What::READ).unwrap();
    a.write(&mut base, b"hello").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_| !seen
        .borrow()
        .is_empty()));
    assert_eq!(
        seen.borrow()[0],
        (5, 0),
        "the read reached the callback, from the loop"
    );
    b.input(&mut base).unwrap().drain(5).unwrap();
    assert_eq!(
        seen.borrow().len(),
        1,
        "deferred: nothing runs inside the drain"
    );
    base.run(LoopFlags::NONBLOCK).unwrap();
    assert_eq!(seen.borrow().last().copied(), Some((0, 5)));
}

#[test]
fn dropping_the_base_closes_only_the_fds_it_owns() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let ino_of_fd = |fd: i32| {
        std::fs::metadata(format!("/proc/self/fd/{fd}"))
            .ok()
            .map(|m| m.ino())
    };
    let (x, _peer_x) = socketpair();
    let (y, _peer_y) = socketpair();
    let (x_ino, y_ino) = (
        ino_of_fd(x.as_raw_fd()).unwrap(),
        ino_of_fd(y.as_raw_fd()).unwrap(),
    );
    let kept = OwnedFd::from(x.try_clone().unwrap());
    let kept_raw = kept.as_raw_fd();
    let mut base = base();
    BufferEvent::socket(&mut base, Some(kept), BevOptions::empty()).unwrap();
    BufferEvent::socket(&mut base, Some(OwnedFd::from(y)), BevOptions::CLOSE_ON_FREE).unwrap();
    drop(base);
    // Without CLOSE_ON_FREE the fd stays open, still the same socket (the
    // test leaks this one descriptor: only unsafe code could adopt it back).
    assert_eq!(
        ino_of_fd(kept_raw),
        Some(x_ino),
        "the caller's fd was left open"
    );
    // With CLOSE_ON_FREE the base closed it.
    assert!(
        !open_socket_inodes().contains(&y_ino),
        "the owned fd was closed"
    );
}

/// Reads `bev` until its event callback reports something; returns what was
/// read and the events seen.
fn read_to_event(base: &mut EventBase, bev: BufferEvent) -> (Vec<u8>, Vec<BevEvent>) {
    let got = Rc::new(RefCell::new(Vec::new()));
    let events = events_log();
    let g = got.clone();
    bev.on_read(base, move |base, bev| {
        let input = bev.input(base).unwrap();
        let mut chunk = vec![0; input.len()];
        let n = input.remove(&mut chunk).unwrap();
        g.borrow_mut().extend_from_slice(&chunk[..n]);
    })
    .unwrap();
    let e = events.clone();
    bev.on_event(base, move |_, _, ev| e.borrow_mut().push(ev))
        .unwrap();
    bev.enable(base, What::READ).unwrap();
    assert!(
        run_until(base, Duration::from_secs(5), |_| !events
            .borrow()
            .is_empty()),
        "no event after {} bytes (input {})",
        got.borrow().len(),
        bev.input(base).unwrap().len()
    );
    let data = got.borrow().clone();
    let evs = events.borrow().clone();
    (data, evs)
}

#[test]
fn data_and_end_of_stream_queued_together_are_both_seen() {
    // With edge-triggered events the end of stream that came with the last
    // data raises no edge of its own: it must still be reported (over a
    // socketpair and over TCP, short and longer than one max single read).
    let _w = Watchdog::new("data then eof", Duration::from_secs(20));
    for len in [100, 16_384, 16_385, 40_000] {
        let data = pattern(len);
        let (x, mut y) = socketpair();
        y.write_all(&data).unwrap();
        y.shutdown(std::net::Shutdown::Write).unwrap();
        let mut base = base();
        let bev = BufferEvent::socket(&mut base, Some(OwnedFd::from(x)), BevOptions::CLOSE_ON_FREE)
            .unwrap();
        let (got, evs) = read_to_event(&mut base, bev);
        assert_eq!(got, data, "socketpair, {len} bytes");
        assert_eq!(evs[0].what, BevFlags::READING | BevFlags::EOF);

        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client.write_all(&data).unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let bev = BufferEvent::socket(
            &mut base,
            Some(OwnedFd::from(server)),
            BevOptions::CLOSE_ON_FREE,
        )
        .unwrap();
        let (got, evs) = read_to_event(&mut base, bev);
        assert_eq!(got, data, "tcp, {len} bytes");
        assert_eq!(evs[0].what, BevFlags::READING | BevFlags::EOF);
    }
}

#[test]
fn reading_resumed_finds_data_that_came_while_it_was_off() {
    let _w = Watchdog::new("resume", Duration::from_secs(10));
    let mut base = base();
    let (x, mut y) = socketpair();
    let bev =
        BufferEvent::socket(&mut base, Some(OwnedFd::from(x)), BevOptions::CLOSE_ON_FREE).unwrap();
    let reads = Rc::new(Cell::new(0usize));
    let r = reads.clone();
    bev.on_read(&mut base, move |_, _| r.set(r.get() + 1))
        .unwrap();
    bev.enable(&mut base, What::READ).unwrap();
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    bev.disable(&mut base, What::READ).unwrap();
    // Let the disable reach the kernel, then send: the data's edge (if any)
    // comes while reading is off.
    base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    y.write_all(&pattern(5000)).unwrap();
    for _ in 0..5 {
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    }
    assert_eq!(reads.get(), 0, "reading is off");
    bev.enable(&mut base, What::READ).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |b| bev
        .input(b)
        .unwrap()
        .len()
        == 5000));
    assert!(reads.get() >= 1);
}

/// Answers A at once and AAAA `aaaa_after` later, as two parts (a resolver
/// that asks for both families separately).
struct SplitResolver {
    v4: SocketAddr,
    v6: SocketAddr,
    aaaa_after: Duration,
}

impl Resolve for SplitResolver {
    fn resolve(&self, base: &mut EventBase, _: &str, _: u16, _: Family, done: ResolveDone) {
        done(base, Ok(vec![self.v6, self.v4]));
    }

    fn resolve_parts(
        &self,
        base: &mut EventBase,
        _: &str,
        _: u16,
        _: Family,
        mut part: oxevent_bufferevent::ResolvePart,
    ) {
        part(base, Ok(vec![self.v4]), false);
        let v6 = self.v6;
        base.once(-1, What::empty(), Some(self.aaaa_after), move |base, _| {
            part(base, Ok(vec![v6]), true);
        })
        .unwrap();
    }
}

/// Which family `connect_hostname` connects on when A arrives first and
/// AAAA `aaaa_after` later, with a listener on each loopback address.
fn family_connected_with_aaaa_after(aaaa_after: Duration) -> &'static str {
    let l4 = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let l6 = TcpListener::bind((std::net::Ipv6Addr::LOCALHOST, 0)).unwrap();
    let resolver = SplitResolver {
        v4: l4.local_addr().unwrap(),
        v6: l6.local_addr().unwrap(),
        aaaa_after,
    };
    let mut base = base();
    let bev = BufferEvent::socket(&mut base, None, BevOptions::CLOSE_ON_FREE).unwrap();
    let got = events_log();
    let g = got.clone();
    bev.on_event(&mut base, move |_, _, ev| g.borrow_mut().push(ev))
        .unwrap();
    bev.connect_hostname(&mut base, &resolver, Family::Any, "dual.test", 0)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(5), |_| !got
        .borrow()
        .is_empty()));
    assert_eq!(got.borrow()[0].what, BevFlags::CONNECTED);
    l4.set_nonblocking(true).unwrap();
    l6.set_nonblocking(true).unwrap();
    let family = match (l4.accept().is_ok(), l6.accept().is_ok()) {
        (false, true) => "v6",
        (true, false) => "v4",
        other => panic!("accepted on (v4, v6) = {other:?}"),
    };
    bev.free(&mut base).unwrap();
    family
}

#[test]
fn happy_eyeballs_waits_the_resolution_delay_for_aaaa() {
    // RFC 8305 section 3: A first, AAAA 10 ms later (inside the 50 ms
    // resolution delay): the first attempt is on IPv6.
    let _w = Watchdog::new("resolution delay", Duration::from_secs(20));
    assert_eq!(
        family_connected_with_aaaa_after(Duration::from_millis(10)),
        "v6"
    );
}

#[test]
fn happy_eyeballs_starts_on_ipv4_when_aaaa_is_late() {
    // AAAA 2 s after A, past the 50 ms resolution delay: IPv4 goes ahead
    // (and connects long before AAAA comes).
    let _w = Watchdog::new("late aaaa", Duration::from_secs(20));
    assert_eq!(
        family_connected_with_aaaa_after(Duration::from_secs(2)),
        "v4"
    );
}
