//! Ports of libevent's `regress_ssl.c` themes: filter mode over a pair,
//! large transfers with small watermarks, timeouts mid-handshake, dirty
//! shutdown, and decrypted data not stranded when reading pauses.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::OwnedFd;
use std::rc::Rc;
use std::time::Duration;

use openssl::ssl::{AlpnError, NameType, SslAcceptor, SslMethod, SslOptions};
use oxevent_bufferevent::{BevFlags, BevOptions, BufferEvent};
use oxevent_core::{EventBase, What};
use oxevent_openssl::{SslBufferEvent, TlsError, TlsState};
use oxevent_test_support::{TestPki, Watchdog, tcp_pair};

use crate::common::{Fnv, acceptor, base, pattern, pki, record_reads, run_until};

/// Records the events a bufferevent gets.
fn record_events(base: &mut EventBase, bev: BufferEvent) -> Rc<RefCell<Vec<BevFlags>>> {
    let evs = Rc::new(RefCell::new(Vec::new()));
    let e = evs.clone();
    bev.on_event(base, move |_, _, ev| e.borrow_mut().push(ev.what))
        .unwrap();
    evs
}

/// A client and a server TLS bufferevent joined by a loopback TCP
/// connection (socket mode).
fn over_tcp(base: &mut EventBase, pki: &TestPki) -> (BufferEvent, BufferEvent) {
    let (c, s) = tcp_pair();
    let connector = pki.connector();
    let cssl = oxevent_openssl::client_ssl(&connector, "localhost").unwrap();
    let client = oxevent_openssl::socket_new(
        base,
        Some(OwnedFd::from(c)),
        cssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let sssl = oxevent_openssl::server_ssl(&acceptor(pki)).unwrap();
    let server = oxevent_openssl::socket_new(
        base,
        Some(OwnedFd::from(s)),
        sssl,
        TlsState::Accepting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    (client, server)
}

#[test]
fn filter_mode_over_a_pair_with_sni_and_alpn() {
    let _w = Watchdog::new("filter over pair", Duration::from_secs(20));
    let pki = pki();
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();

    let mut ab = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    ab.set_certificate(pki.leaf()).unwrap();
    ab.set_private_key(pki.leaf_key()).unwrap();
    ab.set_options(SslOptions::NO_RENEGOTIATION);
    ab.set_alpn_select_callback(|_, client| {
        openssl::ssl::select_next_proto(b"\x08http/1.1", client).ok_or(AlpnError::NOACK)
    });
    let acceptor = ab.build();
    let mut cssl = oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap();
    cssl.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();

    let client = oxevent_openssl::filter_new(
        &mut base,
        a,
        cssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let server = oxevent_openssl::filter_new(
        &mut base,
        b,
        oxevent_openssl::server_ssl(&acceptor).unwrap(),
        TlsState::Accepting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    assert_eq!(client.underlying(&mut base).unwrap(), Some(a));
    assert_eq!(client.fd(&mut base).unwrap(), None);
    assert_eq!(
        client.initial_state(&mut base).unwrap(),
        TlsState::Connecting
    );
    let cev = record_events(&mut base, client);
    let sev = record_events(&mut base, server);
    // The server answers "ping" with "pong".
    server
        .on_read(&mut base, |base, bev| {
            let input = bev.input(base).unwrap();
            if input.len() >= 4 {
                assert_eq!(input.pullup(4).unwrap(), b"ping");
                input.drain(4).unwrap();
                bev.write(base, b"pong").unwrap();
            }
        })
        .unwrap();
    let got = record_reads(&mut base, client);
    server.enable(&mut base, What::READ).unwrap();
    client.enable(&mut base, What::READ).unwrap();
    // Written before the handshake: sent once it completes.
    client.write(&mut base, b"ping").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |_| {
        got.borrow().len() == 4
    }));
    assert_eq!(&*got.borrow(), b"pong");
    assert_eq!(cev.borrow().as_slice(), [BevFlags::CONNECTED]);
    assert_eq!(sev.borrow().as_slice(), [BevFlags::CONNECTED]);
    let s = server.ssl(&mut base).unwrap();
    assert_eq!(s.servername(NameType::HOST_NAME), Some("localhost"));
    assert_eq!(s.selected_alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(s.version_str(), "TLSv1.3");
    let c = client.ssl(&mut base).unwrap();
    assert_eq!(c.selected_alpn_protocol(), Some(&b"http/1.1"[..]));
    assert!(c.peer_certificate().is_some());
    assert!(matches!(
        client.renegotiate(&mut base).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::Unsupported)
    ));

    // Freeing the client sends close_notify: a clean EOF at the server.
    client.free(&mut base).unwrap();
    assert!(!a.is_valid(&mut base), "CLOSE_ON_FREE frees the pair end");
    assert!(run_until(&mut base, Duration::from_secs(5), |_| sev
        .borrow()
        .len()
        == 2));
    assert_eq!(
        sev.borrow()[1],
        BevFlags::READING | BevFlags::EOF,
        "{:?}",
        sev.borrow()
    );
    assert!(server.openssl_error(&mut base).unwrap().is_none());
    server.free(&mut base).unwrap();
}

/// One side of the bulk transfer: sends `total` bytes of its pattern and
/// checks what it receives.
struct Bulk {
    sent: Cell<u64>,
    sent_sum: RefCell<Fnv>,
    received: Cell<u64>,
    received_sum: RefCell<Fnv>,
    max_input: Cell<usize>,
}

fn bulk_side(base: &mut EventBase, bev: BufferEvent, seed: u64, total: u64) -> Rc<Bulk> {
    let st = Rc::new(Bulk {
        sent: Cell::new(0),
        sent_sum: RefCell::new(Fnv::new()),
        received: Cell::new(0),
        received_sum: RefCell::new(Fnv::new()),
        max_input: Cell::new(0),
    });
    let refill = {
        let st = st.clone();
        move |base: &mut EventBase, bev: BufferEvent| {
            let mut chunk = vec![0u8; 16 * 1024];
            while st.sent.get() < total && bev.output(base).unwrap().len() < 256 * 1024 {
                let n = (total - st.sent.get()).min(chunk.len() as u64) as usize;
                pattern(seed, st.sent.get(), &mut chunk[..n]);
                st.sent_sum.borrow_mut().update(&chunk[..n]);
                bev.write(base, &chunk[..n]).unwrap();
                st.sent.set(st.sent.get() + n as u64);
            }
        }
    };
    refill(base, bev);
    bev.on_write(base, refill).unwrap();
    let s2 = st.clone();
    bev.on_read(base, move |base, bev| {
        let input = bev.input(base).unwrap();
        s2.max_input.set(s2.max_input.get().max(input.len()));
        let mut v = vec![0; input.len()];
        input.remove(&mut v).unwrap();
        s2.received_sum.borrow_mut().update(&v);
        s2.received.set(s2.received.get() + v.len() as u64);
    })
    .unwrap();
    // Small watermarks: at most 4 KiB waits in the input, and the write
    // callback asks for more once 64 KiB are left.
    bev.set_watermark(base, What::READ, 0, 4096).unwrap();
    bev.set_watermark(base, What::WRITE, 64 * 1024, 0).unwrap();
    bev.enable(base, What::READ | What::WRITE).unwrap();
    st
}

#[test]
fn sixty_four_mib_both_ways_with_small_watermarks() {
    let _w = Watchdog::new("64 MiB both ways", Duration::from_secs(240));
    const TOTAL: u64 = 64 * 1024 * 1024;
    let pki = pki();
    let mut base = base();
    let (client, server) = over_tcp(&mut base, &pki);
    let cev = record_events(&mut base, client);
    let sev = record_events(&mut base, server);
    let c = bulk_side(&mut base, client, 1, TOTAL);
    let s = bulk_side(&mut base, server, 2, TOTAL);
    assert!(
        run_until(&mut base, Duration::from_secs(200), |_| {
            c.received.get() == TOTAL && s.received.get() == TOTAL
        }),
        "client got {} and server {} of {TOTAL}; events {:?} {:?}",
        c.received.get(),
        s.received.get(),
        cev.borrow(),
        sev.borrow()
    );
    assert_eq!(*c.received_sum.borrow(), *s.sent_sum.borrow());
    assert_eq!(*s.received_sum.borrow(), *c.sent_sum.borrow());
    assert!(c.max_input.get() <= 4096 && s.max_input.get() <= 4096);
    assert_eq!(cev.borrow().as_slice(), [BevFlags::CONNECTED]);
    assert_eq!(sev.borrow().as_slice(), [BevFlags::CONNECTED]);
    client.free(&mut base).unwrap();
    server.free(&mut base).unwrap();
}

#[test]
fn a_peer_that_stops_mid_handshake_times_out() {
    let _w = Watchdog::new("handshake timeout", Duration::from_secs(20));
    let pki = pki();
    let mut base = base();
    // A TCP peer that accepts (in the kernel) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let ssl = oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap();
    let client = oxevent_openssl::socket_new(
        &mut base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    client
        .set_timeouts(&mut base, Some(Duration::from_millis(200)), None)
        .unwrap();
    let cev = record_events(&mut base, client);
    oxevent_openssl::connect(&mut base, client, addr).unwrap();

    // And a server whose client connects and says nothing.
    let (quiet, s) = tcp_pair();
    let server = oxevent_openssl::socket_new(
        &mut base,
        Some(OwnedFd::from(s)),
        oxevent_openssl::server_ssl(&acceptor(&pki)).unwrap(),
        TlsState::Accepting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    server
        .set_timeouts(&mut base, Some(Duration::from_millis(200)), None)
        .unwrap();
    let sev = record_events(&mut base, server);

    assert!(run_until(&mut base, Duration::from_secs(10), |_| {
        !cev.borrow().is_empty() && !sev.borrow().is_empty()
    }));
    // (A handshake still wants its data: the timeout repeats until freed.)
    for evs in [&cev, &sev] {
        assert!(
            evs.borrow()
                .iter()
                .all(|&w| w == BevFlags::READING | BevFlags::TIMEOUT),
            "{:?}",
            evs.borrow()
        );
    }
    assert!(!client.is_handshake_done(&mut base).unwrap());
    client.free(&mut base).unwrap();
    server.free(&mut base).unwrap();
    drop(quiet);
}

/// A real OpenSSL server on a thread: handshakes, sends "bye", then closes
/// with close_notify (`clean`) or without.
fn closing_server(
    pki: &TestPki,
    clean: bool,
) -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = acceptor(pki);
    let h = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut tls = acceptor.accept(tcp).unwrap();
        tls.write_all(b"bye").unwrap();
        if clean {
            let _ = tls.shutdown();
        }
        // Dropping the stream closes the socket; without shutdown() that is
        // a close with no close_notify.
    });
    (addr, h)
}

fn end_of(
    pki: &TestPki,
    clean: bool,
    allow_dirty: bool,
) -> (Vec<u8>, Vec<BevFlags>, Option<TlsError>) {
    let (addr, server) = closing_server(pki, clean);
    let mut base = base();
    let ssl = oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap();
    let client = oxevent_openssl::socket_new(
        &mut base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    client
        .set_allow_dirty_shutdown(&mut base, allow_dirty)
        .unwrap();
    assert_eq!(client.allow_dirty_shutdown(&mut base).unwrap(), allow_dirty);
    let got = record_reads(&mut base, client);
    let evs = Rc::new(RefCell::new(Vec::new()));
    let err = Rc::new(RefCell::new(None));
    let (e, er) = (evs.clone(), err.clone());
    client
        .on_event(&mut base, move |base, bev, ev| {
            e.borrow_mut().push(ev.what);
            if ev.what.contains(BevFlags::ERROR) {
                *er.borrow_mut() = bev.openssl_error(base).unwrap();
            }
        })
        .unwrap();
    client.enable(&mut base, What::READ | What::WRITE).unwrap();
    oxevent_openssl::connect(&mut base, client, addr).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |_| evs
        .borrow()
        .iter()
        .any(|w| w.intersects(BevFlags::EOF | BevFlags::ERROR))));
    client.free(&mut base).unwrap();
    server.join().unwrap();
    let body = got.borrow().clone();
    let events = evs.borrow().clone();
    let error = err.borrow_mut().take();
    (body, events, error)
}

#[test]
fn clean_close_is_eof() {
    let _w = Watchdog::new("clean close", Duration::from_secs(20));
    let pki = pki();
    let (got, evs, err) = end_of(&pki, true, false);
    assert_eq!(got, b"bye");
    assert_eq!(
        evs,
        [BevFlags::CONNECTED, BevFlags::READING | BevFlags::EOF]
    );
    assert!(err.is_none());
}

#[test]
fn dirty_shutdown_is_an_error_unless_allowed() {
    let _w = Watchdog::new("dirty shutdown", Duration::from_secs(20));
    let pki = pki();
    let (got, evs, err) = end_of(&pki, false, false);
    assert_eq!(got, b"bye", "the data before the close is delivered");
    assert_eq!(
        evs,
        [BevFlags::CONNECTED, BevFlags::READING | BevFlags::ERROR]
    );
    assert!(matches!(err, Some(TlsError::UnexpectedEof)), "{err:?}");

    let (got, evs, err) = end_of(&pki, false, true);
    assert_eq!(got, b"bye");
    assert_eq!(
        evs,
        [BevFlags::CONNECTED, BevFlags::READING | BevFlags::EOF]
    );
    assert!(err.is_none());
}

/// libevent #690 / #854: with the input at its high watermark, records
/// already inside OpenSSL must come out when reading resumes, with no new
/// data from the network to wake anything up.
#[test]
fn decrypted_data_is_not_stranded_when_reading_resumes() {
    let _w = Watchdog::new("pending data", Duration::from_secs(30));
    const TOTAL: usize = 3 * 16 * 1024;
    let pki = pki();
    let mut base = base();
    let (a, b) = BufferEvent::pair(&mut base, BevOptions::empty()).unwrap();
    let client = oxevent_openssl::filter_new(
        &mut base,
        a,
        oxevent_openssl::client_ssl(&pki.connector(), "localhost").unwrap(),
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let server = oxevent_openssl::filter_new(
        &mut base,
        b,
        oxevent_openssl::server_ssl(&acceptor(&pki)).unwrap(),
        TlsState::Accepting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let mut data = vec![0u8; TOTAL];
    pattern(7, 0, &mut data);
    server.write(&mut base, &data).unwrap();
    let reads = Rc::new(Cell::new(0u32));
    let r = reads.clone();
    // The read callback takes nothing: the input stays at the watermark.
    client
        .on_read(&mut base, move |_, _| r.set(r.get() + 1))
        .unwrap();
    client
        .set_watermark(&mut base, What::READ, 0, 1000)
        .unwrap();
    client.enable(&mut base, What::READ).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |b| client
        .input(b)
        .unwrap()
        .len()
        == 1000));
    // Let everything settle: all the ciphertext reaches the client.
    for _ in 0..50 {
        base.run(oxevent_core::LoopFlags::ONCE | oxevent_core::LoopFlags::NONBLOCK)
            .unwrap();
    }
    assert_eq!(client.input(&mut base).unwrap().len(), 1000, "suspended");
    assert!(
        client.ssl(&mut base).unwrap().pending() > 0,
        "OpenSSL holds decrypted data"
    );
    assert!(server.output(&mut base).unwrap().is_empty());
    assert!(a.input(&mut base).unwrap().is_empty());

    // Resume by draining, from outside any callback, and by disable/enable.
    let mut got = Vec::new();
    let mut toggles = 0;
    assert!(run_until(&mut base, Duration::from_secs(10), |base| {
        let input = client.input(base).unwrap();
        let mut v = vec![0; input.len()];
        input.remove(&mut v).unwrap();
        got.extend_from_slice(&v);
        if got.len() == TOTAL / 2 && toggles == 0 {
            toggles += 1;
            client.disable(base, What::READ).unwrap();
            client.enable(base, What::READ).unwrap();
        }
        got.len() == TOTAL
    }));
    assert_eq!(got, data);
    assert!(reads.get() > 1);
    client.free(&mut base).unwrap();
    server.free(&mut base).unwrap();
}

/// After a read timeout (which disables reading), enabling reading again
/// resumes it: the socket under the TLS bufferevent reads again.
#[test]
fn reading_resumes_after_a_read_timeout() {
    let _w = Watchdog::new("timeout then resume", Duration::from_secs(20));
    let pki = pki();
    let mut base = base();
    let (client, server) = over_tcp(&mut base, &pki);
    let cev = record_events(&mut base, client);
    let sev = record_events(&mut base, server);
    let got = record_reads(&mut base, client);
    client.enable(&mut base, What::READ).unwrap();
    server.enable(&mut base, What::READ).unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |_| {
        !cev.borrow().is_empty() && !sev.borrow().is_empty()
    }));
    assert_eq!(cev.borrow().as_slice(), [BevFlags::CONNECTED]);
    client
        .set_timeouts(&mut base, Some(Duration::from_millis(100)), None)
        .unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |_| cev
        .borrow()
        .len()
        == 2));
    assert_eq!(cev.borrow()[1], BevFlags::READING | BevFlags::TIMEOUT);
    assert!(!client.enabled(&mut base).unwrap().contains(What::READ));
    client.set_timeouts(&mut base, None, None).unwrap();
    client.enable(&mut base, What::READ).unwrap();
    server.write(&mut base, b"late").unwrap();
    assert!(run_until(&mut base, Duration::from_secs(10), |_| got
        .borrow()
        .len()
        == 4));
    assert_eq!(&*got.borrow(), b"late");
    client.free(&mut base).unwrap();
    server.free(&mut base).unwrap();
}

#[test]
fn ciphertext_waiting_below_a_fast_peer_stays_bounded() {
    // The reader sets no watermark and takes everything at once, but the
    // private socket reads up to 64 KiB a pass while a run decrypts 16 KiB:
    // the ciphertext queued under it must still stay bounded while a fast
    // peer sends 32 MiB.
    let _w = Watchdog::new("bounded ciphertext", Duration::from_secs(120));
    const TOTAL: u64 = 32 * 1024 * 1024;
    let pki = pki();
    let mut base = base();
    let (client, server) = over_tcp(&mut base, &pki);
    let s = bulk_side(&mut base, server, 3, TOTAL);
    let got = Rc::new(Cell::new(0u64));
    let max_queued = Rc::new(Cell::new(0usize));
    let (g, m) = (got.clone(), max_queued.clone());
    client
        .on_read(&mut base, move |base, bev| {
            let queued = bev.pending_ciphertext(base).unwrap();
            m.set(m.get().max(queued));
            let input = bev.input(base).unwrap();
            g.set(g.get() + input.len() as u64);
            input.drain(input.len()).unwrap();
        })
        .unwrap();
    client.enable(&mut base, What::READ).unwrap();
    assert!(
        run_until(&mut base, Duration::from_secs(100), |_| got.get() == TOTAL),
        "client got {} of {TOTAL}",
        got.get()
    );
    assert_eq!(s.sent.get(), TOTAL);
    // Four records in the TLS layer, 128 KiB below it, and one 64 KiB read.
    assert!(
        max_queued.get() <= 4 * (16 * 1024 + 256) + 192 * 1024,
        "{} bytes of ciphertext waited to be decrypted",
        max_queued.get()
    );
    client.free(&mut base).unwrap();
    server.free(&mut base).unwrap();
}
