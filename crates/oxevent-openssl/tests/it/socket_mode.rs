//! Socket mode against a real OpenSSL peer: records of every size (around
//! the sizes where reads split: the header, 1 KiB, a full 16 KiB record)
//! arrive whole and in order, and a connection reset in the middle of a
//! record is an error, not a hang.

use std::cell::RefCell;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::thread::JoinHandle;
use std::time::Duration;

use oxevent_bufferevent::{BevFlags, BevOptions, BufferEvent};
use oxevent_core::{EventBase, What};
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
    let ssl = oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap();
    let bev = oxevent_openssl::socket_new(
        base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
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
