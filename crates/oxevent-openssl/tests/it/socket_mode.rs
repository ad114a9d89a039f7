//! Socket mode against a real OpenSSL peer: records of every size (around
//! the sizes where reads split: the header, 1 KiB, a full 16 KiB record)
//! arrive whole and in order, a connection reset in the middle of a record
//! is an error, not a hang, decrypted data is not stranded when reading
//! resumes (on an edge-triggered and a level-triggered backend), a flush
//! with `Finished` sends close_notify after the data, and a write timeout
//! against a peer that stopped reading is reported once.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;

use oxevent_bufferevent::FlushMode;
use oxevent_bufferevent::{BevFlags, BevOptions, BufferEvent};
use oxevent_core::{EventBase, LoopFlags, What};
use oxevent_openssl::{SslBufferEvent, TlsError, TlsState};
use oxevent_test_support::{TestPki, Watchdog};

use crate::common::{acceptor, base, pattern, pki, record_reads, run_until};

/// A real OpenSSL server on a thread: accepts one connection, handshakes,
/// then runs `then` on the TLS stream.
fn peer(
    pki: &TestPki,
    then: impl FnOnce(openssl::ssl::SslStream<TcpStream>) + Send + 'static,
) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = acceptor(pki);
    let h = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        tcp.set_write_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        then(acceptor.accept(tcp).unwrap());
    });
    (addr, h)
}

/// A socket-mode client bufferevent (no fd yet) for `localhost`, verified
/// against the test CA.
fn new_client(base: &mut EventBase, pki: &TestPki) -> BufferEvent {
    let ssl = oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap();
    oxevent_openssl::socket_new(
        base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap()
}

/// Our socket-mode client connected to `addr`, recording what it reads
/// and the events (with the error behind an `ERROR`).
#[allow(clippy::type_complexity)]
fn client(
    base: &mut EventBase,
    pki: &TestPki,
    addr: SocketAddr,
) -> (
    BufferEvent,
    Rc<RefCell<Vec<u8>>>,
    Rc<RefCell<Vec<BevFlags>>>,
    Rc<RefCell<Option<TlsError>>>,
) {
    let bev = new_client(base, pki);
    let got = record_reads(base, bev);
    let evs = Rc::new(RefCell::new(Vec::new()));
    let err = Rc::new(RefCell::new(None));
    let (e, er) = (evs.clone(), err.clone());
    bev.on_event(base, move |base, bev, ev| {
        e.borrow_mut().push(ev.what);
        if ev.what.contains(BevFlags::ERROR) {
            *er.borrow_mut() = bev.openssl_error(base).unwrap();
        }
    })
    .unwrap();
    bev.enable(base, What::READ | What::WRITE).unwrap();
    oxevent_openssl::connect(base, bev, addr).unwrap();
    (bev, got, evs, err)
}

#[test]
fn records_of_every_size_arrive_whole_and_in_order() {
    let _w = Watchdog::new("records of every size", Duration::from_secs(60));
    let pki = pki();
    // Sizes around a record header, 1 KiB and the 16 KiB record, then a
    // run of full records: 1 MiB and more in all.
    let mut sizes = vec![
        1, 4, 5, 6, 1000, 1018, 1019, 1020, 1024, 1025, 4096, 16_383, 16_384,
    ];
    sizes.extend(std::iter::repeat_n(16_384, 64));
    let total: usize = sizes.iter().sum();
    let mut expected = vec![0; total];
    pattern(7, 0, &mut expected);
    let data = expected.clone();
    let (addr, server) = peer(&pki, move |mut tls| {
        let mut at = 0;
        for n in sizes {
            // One SSL_write, one record, each.
            tls.write_all(&data[at..at + n]).unwrap();
            at += n;
        }
        let _ = tls.shutdown();
    });
    let mut base = base();
    let (bev, got, evs, err) = client(&mut base, &pki, addr);
    assert!(run_until(&mut base, Duration::from_secs(30), |_| evs
        .borrow()
        .iter()
        .any(|w| w.intersects(BevFlags::EOF | BevFlags::ERROR))));
    bev.free(&mut base).unwrap();
    server.join().unwrap();
    let got = got.borrow();
    assert_eq!(got.len(), total);
    assert!(*got == expected, "the bytes differ");
    assert_eq!(
        *evs.borrow(),
        [BevFlags::CONNECTED, BevFlags::READING | BevFlags::EOF]
    );
    assert!(err.borrow().is_none());
}

#[test]
fn a_reset_in_the_middle_of_a_record_is_an_error() {
    let _w = Watchdog::new("reset mid-record", Duration::from_secs(30));
    let pki = pki();
    let (addr, server) = peer(&pki, |mut tls| {
        tls.write_all(b"hello").unwrap();
        // A record header announcing 16,401 bytes, and 4,000 of them: the
        // reset comes while OpenSSL waits for the rest of the record.
        let tcp = tls.get_mut();
        let mut raw = vec![0x17, 0x03, 0x03, 0x40, 0x11];
        raw.resize(5 + 4000, 0xa5);
        tcp.write_all(&raw).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // SO_LINGER 0: closing sends a reset.
        socket2::SockRef::from(&*tcp)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    });
    let mut base = base();
    let (bev, got, evs, err) = client(&mut base, &pki, addr);
    assert!(run_until(&mut base, Duration::from_secs(20), |_| evs
        .borrow()
        .iter()
        .any(|w| w.intersects(BevFlags::EOF | BevFlags::ERROR))));
    server.join().unwrap();
    bev.free(&mut base).unwrap();
    assert_eq!(*got.borrow(), b"hello");
    let evs = evs.borrow();
    assert_eq!(evs[0], BevFlags::CONNECTED);
    assert!(
        evs[1].contains(BevFlags::READING | BevFlags::ERROR),
        "{evs:?}"
    );
    assert!(err.borrow().is_some(), "the error is kept");
}

/// The default base (edge-triggered epoll, or whatever the environment
/// selects, as in `cargo xtask test`'s mio pass) and, where the
/// environment leaves it available, a level-triggered poll one.
fn bases() -> Vec<EventBase> {
    let poll = oxevent_core::Config::new()
        .avoid_method("epoll")
        .avoid_method("mio");
    let mut v = vec![base()];
    if let Ok(lt) = EventBase::with_config(&poll) {
        assert_eq!(lt.method(), "poll");
        v.push(lt);
    }
    v
}

/// libevent #690 / #854 in socket mode: with the input at its high
/// watermark, the rest of a record already decrypted inside OpenSSL, and
/// the records still in the socket, come out when reading resumes, with no
/// new data from the network.
#[test]
fn socket_mode_does_not_strand_data_when_reading_resumes() {
    let _w = Watchdog::new("socket mode pending data", Duration::from_secs(60));
    let pki = pki();
    for mut base in bases() {
        stranded(&mut base, &pki);
    }
}

fn stranded(base: &mut EventBase, pki: &TestPki) {
    const TOTAL: usize = 3 * 16 * 1024;
    let mut data = vec![0u8; TOTAL];
    pattern(9, 0, &mut data);
    let sent = data.clone();
    let (addr, server) = peer(pki, move |mut tls| {
        tls.write_all(&sent).unwrap();
        // Stay until the client says it is done.
        let mut b = [0u8; 1];
        let _ = tls.read(&mut b);
    });
    let bev = new_client(base, pki);
    let reads = Rc::new(Cell::new(0u32));
    let r = reads.clone();
    // The read callback takes nothing: the input stays at the watermark.
    bev.on_read(base, move |_, _| r.set(r.get() + 1)).unwrap();
    bev.set_watermark(base, What::READ, 0, 1000).unwrap();
    bev.enable(base, What::READ | What::WRITE).unwrap();
    oxevent_openssl::connect(base, bev, addr).unwrap();
    assert!(run_until(base, Duration::from_secs(10), |b| bev
        .input(b)
        .unwrap()
        .len()
        == 1000));
    // Let the rest of the data reach the client's socket.
    for _ in 0..50 {
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(bev.input(base).unwrap().len(), 1000, "suspended");
    assert!(
        bev.ssl(base).unwrap().pending() > 0,
        "OpenSSL holds decrypted data"
    );
    // Resume by draining, from outside any callback, and by disable/enable.
    let mut got = Vec::new();
    let mut toggled = false;
    assert!(run_until(base, Duration::from_secs(10), |base| {
        let input = bev.input(base).unwrap();
        let mut v = vec![0; input.len()];
        input.remove(&mut v).unwrap();
        got.extend_from_slice(&v);
        if got.len() >= TOTAL / 2 && !toggled {
            toggled = true;
            bev.disable(base, What::READ).unwrap();
            bev.enable(base, What::READ).unwrap();
        }
        got.len() == TOTAL
    }));
    assert!(got == data, "the bytes differ");
    assert!(reads.get() > 1);
    assert_eq!(bev.pending_ciphertext(base).unwrap(), 0);
    bev.write(base, b"k").unwrap();
    for _ in 0..5 {
        base.run(LoopFlags::ONCE | LoopFlags::NONBLOCK).unwrap();
    }
    bev.free(base).unwrap();
    server.join().unwrap();
}

/// `flush(WRITE, Finished)` on a socket-mode TLS bufferevent sends what
/// the output holds, then close_notify: the peer reads the data, then a
/// clean end of stream.
#[test]
fn flush_finished_sends_close_notify_after_the_data() {
    let _w = Watchdog::new("flush finished", Duration::from_secs(30));
    let pki = pki();
    for mut base in bases() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (addr, server) = peer(&pki, move |mut tls| {
            let mut got = Vec::new();
            // Ends without error only at a close_notify.
            let r = tls.read_to_end(&mut got).map(|_| got);
            tx.send(r.map_err(|e| e.to_string())).unwrap();
        });
        let (bev, _got, evs, _err) = client(&mut base, &pki, addr);
        assert!(run_until(&mut base, Duration::from_secs(10), |_| !evs
            .borrow()
            .is_empty()));
        assert_eq!(evs.borrow()[0], BevFlags::CONNECTED);
        assert!(
            bev.fd(&mut base).unwrap().is_some(),
            "socket mode shows its socket"
        );
        assert_eq!(bev.underlying(&mut base).unwrap(), None);
        bev.write(&mut base, b"last words").unwrap();
        bev.flush(&mut base, What::WRITE, FlushMode::Finished)
            .unwrap();
        let mut result = None;
        assert!(run_until(&mut base, Duration::from_secs(10), |_| {
            result = rx.try_recv().ok();
            result.is_some()
        }));
        assert_eq!(result.unwrap().as_deref(), Ok(&b"last words"[..]));
        bev.free(&mut base).unwrap();
        server.join().unwrap();
    }
}

/// A peer that stops reading: the write timeout fires once (`TIMEOUT |
/// WRITING`), writing is disabled, and the ciphertext waiting for the
/// socket does not re-arm the write event (no repeated timeouts).
#[test]
fn a_write_timeout_against_a_stalled_peer_is_reported_once() {
    let _w = Watchdog::new("write timeout", Duration::from_secs(40));
    let pki = pki();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (addr, server) = peer(&pki, move |tls| {
        // Handshaken; now read nothing until told to go.
        let _ = rx.recv_timeout(Duration::from_secs(30));
        drop(tls);
    });
    let mut base = base();
    let (bev, _got, evs, _err) = client(&mut base, &pki, addr);
    assert!(run_until(&mut base, Duration::from_secs(10), |_| !evs
        .borrow()
        .is_empty()));
    assert_eq!(evs.borrow()[0], BevFlags::CONNECTED);
    bev.set_timeouts(&mut base, None, Some(Duration::from_millis(200)))
        .unwrap();
    // More than the kernel's buffers on both sides can hold.
    let chunk = vec![0x5a; 1 << 20];
    for _ in 0..16 {
        bev.write(&mut base, &chunk).unwrap();
    }
    assert!(run_until(&mut base, Duration::from_secs(15), |_| evs
        .borrow()
        .len()
        >= 2));
    assert_eq!(evs.borrow()[1], BevFlags::WRITING | BevFlags::TIMEOUT);
    assert!(!bev.enabled(&mut base).unwrap().contains(What::WRITE));
    // Three more timeout periods: nothing more is reported.
    let until = std::time::Instant::now() + Duration::from_millis(600);
    run_until(&mut base, Duration::from_millis(700), |_| {
        std::time::Instant::now() > until
    });
    assert_eq!(evs.borrow().len(), 2, "{:?}", evs.borrow());
    assert!(
        !bev.output(&mut base).unwrap().is_empty(),
        "the peer stalled"
    );
    tx.send(()).unwrap();
    bev.free(&mut base).unwrap();
    server.join().unwrap();
}
