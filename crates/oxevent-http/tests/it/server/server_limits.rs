//! Limits and timeouts: slowloris, oversized heads, large bodies, the connection limit, and
//! a graceful drain with a request in flight.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use oxevent_core::What;
use oxevent_test_support::{Watchdog, wait_until};

use super::harness::{TestServer, exchange_to_close, header, read_response, read_to_close, status};

const LIMIT: Duration = Duration::from_secs(30);

fn hello(base: &mut oxevent_core::EventBase, server: oxevent_http::server::Server) {
    server
        .set_gencb(base, |base, mut req| {
            let n = req.take_body().len();
            req.send_reply(base, 200, format!("got {n}")).unwrap();
        })
        .unwrap();
}

#[test]
fn slowloris_gets_a_timeout() {
    let _w = Watchdog::new("slowloris", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server
            .set_read_timeout(base, Some(Duration::from_millis(500)))
            .unwrap();
    });
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let wire = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: {}", "a".repeat(1000));
    let mut got = Vec::new();
    let mut closed = false;
    // One byte per 100 ms (the read timeout is the pause); bounded by the wire's length.
    for b in wire.bytes() {
        if s.write_all(&[b]).is_err() {
            break;
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    if !closed {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        got.extend(read_to_close(&mut s).expect("closed after the timeout"));
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status(&text), 408, "{text}");
}

#[test]
fn idle_keep_alive_connections_are_closed() {
    let _w = Watchdog::new("idle", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server
            .set_idle_timeout(base, Some(Duration::from_millis(200)))
            .unwrap();
    });
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (head, _) = read_response(&mut s);
    assert_eq!(status(&head), 200);
    assert_eq!(read_to_close(&mut s).expect("closed when idle"), b"");
}

/// Each reply restarts the idle period: a connection busy for longer than the idle timeout,
/// with pauses well under it, stays open, and closes once it falls idle.
#[test]
fn requests_restart_the_idle_period() {
    let _w = Watchdog::new("idle restart", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server
            .set_idle_timeout(base, Some(Duration::from_millis(1000)))
            .unwrap();
    });
    let mut s = server.connect();
    // Eight requests 200 ms apart: 1.6 s in all, longer than the idle timeout.
    for _ in 0..8 {
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let (head, _) = read_response(&mut s);
        assert_eq!(status(&head), 200, "{head}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(read_to_close(&mut s).expect("closed when idle"), b"");
}

/// Lingering close: after a 413 the server shuts its write side down, so the client reads
/// the reply and then end of file while it is still sending (the server keeps reading and
/// discarding), instead of waiting for the server to close or getting a reset.
#[test]
fn an_error_reply_is_followed_by_eof_while_the_client_still_sends() {
    let _w = Watchdog::new("linger", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server.set_max_body_size(base, 1000).unwrap();
        server
            .set_linger(base, Duration::from_secs(20), 16 << 20)
            .unwrap();
    });
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        .unwrap();
    // The body keeps coming, 1 KiB every 20 ms for at most 4 s: the server never has a
    // quiet period to close on, so only the shutdown of its write side can give the
    // client end of file before the writer stops.
    let mut w = s.try_clone().unwrap();
    let writing = Arc::new(AtomicBool::new(true));
    let flag = writing.clone();
    let writer = std::thread::spawn(move || {
        for _ in 0..200 {
            if w.write_all(&[b'z'; 1024]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        flag.store(false, Ordering::SeqCst);
        w
    });
    let got = read_to_close(&mut s).expect("end of file after the reply");
    let still_writing = writing.load(Ordering::SeqCst);
    let text = String::from_utf8_lossy(&got).into_owned();
    assert_eq!(status(&text), 413, "{text}");
    assert!(
        still_writing,
        "end of file came only after the client stopped sending"
    );
    // The server was still reading: the writes made so far were not refused.
    let w = writer.join().unwrap();
    drop(w);
}

#[test]
fn oversized_head_gets_431() {
    let _w = Watchdog::new("431", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server.set_max_headers_size(base, 1024).unwrap();
        server.set_max_headers(base, 10).unwrap();
    });
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2000)
    );
    let text = exchange_to_close(&server, big.as_bytes());
    assert_eq!(status(&text), 431, "{text}");
    let mut many = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
    for i in 0..20 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let text = exchange_to_close(&server, many.as_bytes());
    assert_eq!(status(&text), 431, "{text}");
}

#[test]
fn big_bodies_get_413_not_a_reset() {
    let _w = Watchdog::new("413", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server.set_max_body_size(base, 1000).unwrap();
    });
    // Declared: refused at the head, while the client is still sending the body.
    let mut s = server.connect();
    s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
        .unwrap();
    let _ = s.write_all(&vec![b'x'; 100_000]);
    let got = read_to_close(&mut s).expect("closed");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status(&text), 413, "{text}");
    // Chunked: refused once it grows past the limit.
    let mut wire = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        wire.extend_from_slice(b"200\r\n");
        wire.extend_from_slice(&[b'y'; 0x200]);
        wire.extend_from_slice(b"\r\n");
    }
    let text = exchange_to_close(&server, &wire);
    assert_eq!(status(&text), 413, "{text}");
    // Within the limit: fine.
    let text = exchange_to_close(
        &server,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    );
    assert!(text.ends_with("got 3"), "{text}");
}

#[test]
fn connections_past_the_limit_get_503() {
    let _w = Watchdog::new("503", LIMIT);
    let server = TestServer::start(|base, server| {
        hello(base, server);
        server.set_max_connections(base, 1).unwrap();
    });
    let mut first = server.connect();
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(status(&read_response(&mut first).0), 200);
    let text = exchange_to_close(&server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status(&text), 503, "{text}");
    // The first connection still works; once it is gone, a new one is served.
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(status(&read_response(&mut first).0), 200);
    drop(first);
    assert!(wait_until(Duration::from_secs(10), || {
        server.on_loop(|base, s| s.connection_count(base).unwrap()) == 0
    }));
    let text = exchange_to_close(
        &server,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status(&text), 200, "{text}");
}

#[test]
fn drain_finishes_the_request_in_flight_and_closes_idle_connections() {
    let _w = Watchdog::new("drain", LIMIT);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let started_tx = std::sync::Mutex::new(started_tx);
    let server = TestServer::start(move |base, server| {
        server
            .set_cb(base, "/slow", move |base, req| {
                let _ = started_tx.lock().unwrap().send(());
                let mut req = Some(req);
                base.once(
                    -1,
                    What::empty(),
                    Some(Duration::from_millis(300)),
                    move |base, _| {
                        if let Some(r) = req.take() {
                            r.send_reply(base, 200, "finished").unwrap();
                        }
                    },
                )
                .unwrap();
            })
            .unwrap();
        hello(base, server);
    });
    // An idle keep-alive connection.
    let mut idle = server.connect();
    idle.write_all(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_eq!(status(&read_response(&mut idle).0), 200);
    // A request in flight.
    let mut busy = server.connect();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    started_rx.recv_timeout(LIMIT).expect("handler started");
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    server.on_loop(move |base, s| {
        s.drain(base, move |_| done2.store(true, Ordering::SeqCst))
            .unwrap();
    });
    // New connections are refused now.
    assert!(TcpStream::connect(server.addr).is_err());
    // The idle one is closed; the busy one gets its reply, with Connection: close.
    assert_eq!(read_to_close(&mut idle).expect("idle closed"), b"");
    let got = read_to_close(&mut busy).expect("busy closed after its reply");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(header(&text, "connection"), Some("close"));
    assert!(text.ends_with("finished"));
    assert!(wait_until(Duration::from_secs(10), || done.load(Ordering::SeqCst)));
}
