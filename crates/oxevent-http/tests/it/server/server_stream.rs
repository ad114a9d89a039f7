//! Streaming: request bodies handed to the handler with backpressure, replies streamed at
//! the pace of the connection's write buffer, HTTP/1.0 close-delimited replies.

use std::cell::Cell;
use std::io::{Read, Write};
use std::process::Command;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use oxevent_core::{EventBase, What};
use oxevent_http::server::{BodyEvent, Responder};
use oxevent_test_support::Watchdog;

use super::harness::{TestServer, exchange_to_close, header, read_response, run, status};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn streamed_body_backpressure_pauses_reading() {
    let _w = Watchdog::new("body backpressure", LIMIT);
    const TOTAL: usize = 32 << 20;
    const WINDOW: usize = 16 * 1024;
    let max_backlog = Arc::new(AtomicUsize::new(0));
    let mb = max_backlog.clone();
    let server = TestServer::start(move |base, server| {
        server.set_max_body_size(base, 1 << 30).unwrap();
        server.set_body_buffer_size(base, WINDOW).unwrap();
        server
            .set_streaming_cb(base, "/upload", move |base, req| {
                let r = req.responder();
                let received = Rc::new(Cell::new(0usize));
                let gate_open = Rc::new(Cell::new(false));
                let req = Rc::new(std::cell::RefCell::new(Some(req)));
                let (rcv, gate, mb, req2) =
                    (received.clone(), gate_open.clone(), mb.clone(), req.clone());
                r.set_body_cb(base, move |base, r, ev| match ev {
                    BodyEvent::Data(buf) => {
                        mb.fetch_max(buf.len(), Ordering::SeqCst);
                        if gate.get() {
                            rcv.set(rcv.get() + buf.len());
                            buf.clear().unwrap();
                        }
                    }
                    BodyEvent::End => {
                        if let Some(req) = req2.borrow_mut().take() {
                            req.send_reply(base, 200, rcv.get().to_string()).unwrap();
                        }
                        let _ = r;
                    }
                    BodyEvent::Error(e) => panic!("body error {e}"),
                    _ => {}
                })
                .unwrap();
                // The handler is "behind" for a while, then catches up.
                base.once(
                    -1,
                    What::empty(),
                    Some(Duration::from_millis(300)),
                    move |base, _| {
                        gate_open.set(true);
                        r.resume_body(base).unwrap();
                    },
                )
                .unwrap();
            })
            .unwrap();
    });
    let mut s = server.connect();
    let addr = server.addr;
    let writer = std::thread::spawn(move || {
        let _ = addr;
        let head = format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\n\r\n");
        let mut w = s.try_clone().unwrap();
        w.write_all(head.as_bytes()).unwrap();
        let chunk = vec![b'z'; 1 << 20];
        for _ in 0..TOTAL / chunk.len() {
            w.write_all(&chunk).unwrap();
        }
        let (head, body) = read_response(&mut s);
        (head, body)
    });
    let (head, body) = writer.join().unwrap();
    assert_eq!(status(&head), 200);
    assert_eq!(String::from_utf8_lossy(&body), TOTAL.to_string());
    let backlog = max_backlog.load(Ordering::SeqCst);
    // The body buffer never held much more than the window plus one read.
    assert!(backlog < WINDOW + 64 * 1024, "backlog reached {backlog}");
}

/// Sends `n` chunks of `size` bytes, each one from the previous one's drain callback, and
/// records the most output ever pending when a chunk is sent.
fn pump(base: &mut EventBase, r: Responder, left: usize, chunk: Bytes, max: Arc<AtomicUsize>) {
    if left == 0 {
        r.send_end(base).unwrap();
        return;
    }
    max.fetch_max(r.pending_output(base).unwrap(), Ordering::SeqCst);
    let c2 = chunk.clone();
    r.send_chunk_with_cb(base, chunk, move |base, r| pump(base, r, left - 1, c2, max))
        .unwrap();
}

#[test]
fn chunked_reply_respects_the_write_buffer() {
    let _w = Watchdog::new("chunked reply", LIMIT);
    const CHUNK: usize = 64 * 1024;
    const N: usize = 64;
    let max_pending = Arc::new(AtomicUsize::new(0));
    let mp = max_pending.clone();
    let server = TestServer::start(move |base, server| {
        server
            .set_cb(base, "/stream", move |base, mut req| {
                req.output_headers_mut()
                    .append("Content-Type", "text/plain");
                let r = req.send_reply_start(base, 200).unwrap();
                let chunk = Bytes::from(vec![b'c'; CHUNK]);
                pump(base, r, N, chunk, mp.clone());
            })
            .unwrap();
    });
    let out = run(
        Command::new("curl")
            .args(["-s", "-D", "/dev/stderr"])
            .arg(server.url("/stream")),
        LIMIT,
    );
    let head = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        header(&head, "transfer-encoding"),
        Some("chunked"),
        "{head}"
    );
    assert_eq!(out.stdout.len(), CHUNK * N);
    // Each chunk was sent only once the one before had drained: at most the reply head was
    // ever waiting, never a chunk.
    let max = max_pending.load(Ordering::SeqCst);
    assert!(max < 1024, "{max} bytes were pending");
}

#[test]
fn http10_streaming_reply_is_close_delimited() {
    let _w = Watchdog::new("http/1.0 stream", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_cb(base, "/s", |base, req| {
                let r = req.send_reply_start(base, 200).unwrap();
                r.send_chunk(base, "part one, ").unwrap();
                r.send_chunk(base, "part two").unwrap();
                r.send_end(base).unwrap();
            })
            .unwrap();
    });
    let text = exchange_to_close(&server, b"GET /s HTTP/1.0\r\n\r\n");
    assert_eq!(status(&text), 200, "{text}");
    assert_eq!(header(&text, "transfer-encoding"), None);
    assert_eq!(header(&text, "content-length"), None);
    assert!(text.ends_with("\r\n\r\npart one, part two"), "{text}");
    // Over HTTP/1.1 the same reply is chunked and the connection stays.
    let mut s = server.connect();
    s.write_all(b"GET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let want = b"0\r\n\r\n";
    while got.windows(want.len()).filter(|w| w == want).count() < 2 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert!(
        text.contains("a\r\npart one, \r\n8\r\npart two\r\n0\r\n\r\n"),
        "{text}"
    );
}

#[test]
fn an_early_reply_to_a_streamed_upload_closes_after_it() {
    let _w = Watchdog::new("early reply", LIMIT);
    let server = TestServer::start(|base, server| {
        server.set_max_body_size(base, 1 << 30).unwrap();
        server
            .set_streaming_cb(base, "/up", |base, req| {
                // Refuse at once, without reading the body.
                req.send_reply(base, 403, "no thanks").unwrap();
            })
            .unwrap();
    });
    let mut s = server.connect();
    s.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    let _ = s.write_all(&[b'u'; 100_000]);
    let got = super::harness::read_to_close(&mut s).expect("closed after the reply");
    let text = String::from_utf8_lossy(&got);
    assert_eq!(status(&text), 403, "{text}");
    assert_eq!(header(&text, "connection"), Some("close"));
    assert!(text.ends_with("no thanks"));
}

#[test]
fn head_of_a_streamed_reply_has_no_body() {
    let _w = Watchdog::new("head stream", LIMIT);
    let server = TestServer::start(|base, server| {
        server
            .set_cb(base, "/s", |base, req| {
                let r = req.send_reply_start(base, 200).unwrap();
                r.send_chunk(base, "ignored for HEAD").unwrap();
                r.send_end(base).unwrap();
            })
            .unwrap();
    });
    let mut s = server.connect();
    s.write_all(b"HEAD /s HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = super::harness::read_to_close(&mut s).expect("closed");
    let text = String::from_utf8_lossy(&got);
    // The HEAD answer is a head alone; the GET that follows is chunked.
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("ignored for HEAD").count(), 1, "{text}");
}
