//! The client against Python's `http.server` (a script server with keep-alive and chunked
//! responses, and `python3 -m http.server` itself) and against raw std sockets for the
//! failure cases: silent servers, dropped connections, malformed responses.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use oxevent_core::EventBase;
use oxevent_http::client::{ClientError, Connection, Flow, Request, Response, TimeoutKind};
use oxevent_http::proto::Method;
use oxevent_http::uri::{Uri, UriFlags};
use oxevent_test_support::process::{python_http_server, python_script_server};
use oxevent_test_support::{LineChild, TempDir, Watchdog, free_port};

const SCRIPT: &str = r#"
import http.server, itertools, sys
counter = itertools.count(1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def setup(self):
        super().setup()
        self.conn_id = next(counter)
    def send_body(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Conn", str(self.conn_id))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
    def do_HEAD(self):
        self.do_GET()
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/hello":
            self.send_body(200, b"Hello, World!")
        elif path == "/echo-path":
            self.send_body(200, self.path.encode())
        elif path == "/chunked":
            n = int(query or "3")
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Conn", str(self.conn_id))
            self.end_headers()
            for i in range(n):
                piece = ("chunk%d;" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/big":
            self.send_body(200, b"x" * int(query))
        elif path == "/bighead":
            self.send_body(200, b"", [("X-Big", "y" * int(query))])
        elif path == "/close":
            self.send_body(200, b"bye", [("Connection", "close")])
        else:
            self.send_body(404, b"not found")
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.send_body(200, b"got:" + body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
print("READY port=%d" % srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn script_server() -> (LineChild, u16) {
    python_script_server(SCRIPT, std::iter::empty::<&str>())
}

pub(crate) type Results = Rc<RefCell<Vec<Result<Response, ClientError>>>>;

/// A completion callback that records its result, and frees `conn` once `expect` results
/// are in (which lets the loop exit).
fn record(
    results: &Results,
    conn: Connection,
    expect: usize,
) -> impl FnOnce(&mut EventBase, Result<Response, ClientError>) + 'static {
    let results = Rc::clone(results);
    move |base, r| {
        results.borrow_mut().push(r);
        if results.borrow().len() == expect {
            let _ = conn.free(base);
        }
    }
}

pub(crate) fn run(base: &mut EventBase) {
    let _w = Watchdog::new("client test loop", Duration::from_secs(60));
    base.dispatch().expect("loop runs");
}

/// A completion callback, as [`exchange`] hands it to the request it builds.
type Done = Box<dyn FnOnce(&mut EventBase, Result<Response, ClientError>)>;

/// Makes `n` requests on `conn` in order, request `i` built by `make(i, done)` around a
/// callback that records its result; runs the loop until all are answered (the connection
/// is then freed) and returns the results in the order they completed.
pub(crate) fn exchange(
    base: &mut EventBase,
    conn: Connection,
    n: usize,
    mut make: impl FnMut(usize, Done) -> Request,
) -> Vec<Result<Response, ClientError>> {
    let results: Results = Rc::default();
    for i in 0..n {
        conn.make_request(base, make(i, Box::new(record(&results, conn, n))))
            .unwrap();
    }
    run(base);
    results.take()
}

/// [`exchange`] with GETs of `targets`.
pub(crate) fn get_all(
    base: &mut EventBase,
    conn: Connection,
    targets: &[&str],
) -> Vec<Result<Response, ClientError>> {
    exchange(base, conn, targets.len(), |i, done| {
        Request::get(targets[i], done)
    })
}

/// [`exchange`] with one request.
pub(crate) fn one(
    base: &mut EventBase,
    conn: Connection,
    make: impl FnOnce(Done) -> Request,
) -> Result<Response, ClientError> {
    let mut make = Some(make);
    let mut results = exchange(base, conn, 1, |_, done| {
        (make.take().expect("one request"))(done)
    });
    assert_eq!(results.len(), 1, "the request completed");
    results.remove(0)
}

/// GETs `first` and, right behind it, `queued`; `first`'s completion callback makes a GET
/// of `then` (a request made from inside a callback). Runs the loop until all are answered
/// and returns the results in the order they completed.
fn get_then(
    base: &mut EventBase,
    conn: Connection,
    first: &str,
    then: &'static str,
    queued: &[&str],
) -> Vec<Result<Response, ClientError>> {
    let results: Results = Rc::default();
    let n = 2 + queued.len();
    let r2 = Rc::clone(&results);
    conn.make_request(
        base,
        Request::get(first, move |base, r| {
            r2.borrow_mut().push(r);
            conn.make_request(base, Request::get(then, record(&r2, conn, n)))
                .unwrap();
        }),
    )
    .unwrap();
    for t in queued {
        conn.make_request(base, Request::get(*t, record(&results, conn, n)))
            .unwrap();
    }
    run(base);
    results.take()
}

/// A listener on a free loopback port, and the port.
pub(crate) fn listen() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Sets a short connect timeout on `conn`, whose peer never completes the connection (a
/// full backlog, a silent TLS server), and checks that a GET fails with it.
pub(crate) fn assert_connect_times_out(base: &mut EventBase, conn: Connection) {
    conn.set_connect_timeout(base, Duration::from_millis(100))
        .unwrap();
    let r = get_root(base, conn);
    assert!(
        matches!(r, Err(ClientError::Timeout(TimeoutKind::Connect))),
        "{r:?}"
    );
}

/// [`one`] with a GET of `/`.
pub(crate) fn get_root(base: &mut EventBase, conn: Connection) -> Result<Response, ClientError> {
    one(base, conn, |done| Request::get("/", done))
}

fn ok(r: &Result<Response, ClientError>) -> &Response {
    match r {
        Ok(resp) => resp,
        Err(e) => panic!("request failed: {e}"),
    }
}

fn conn_id(r: &Response) -> String {
    r.header("X-Conn").expect("X-Conn header").to_owned()
}

#[test]
fn python_http_server_get_and_head() {
    let dir = TempDir::new("httpc");
    std::fs::write(dir.join("a.txt"), b"file contents\n").unwrap();
    let (_server, port) = python_http_server(dir.path());

    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results = exchange(&mut base, conn, 3, |i, done| match i {
        0 => Request::get("/a.txt", done),
        1 => Request::new(Method::Head, "/a.txt", done),
        _ => Request::get("/missing", done),
    });
    assert_eq!(results.len(), 3);
    let get = ok(&results[0]);
    assert_eq!(get.code(), 200);
    assert_eq!(get.reason(), "OK");
    assert_eq!(get.body(), b"file contents\n");
    let head = ok(&results[1]);
    assert_eq!(head.code(), 200);
    assert_eq!(head.header("Content-Length"), Some("14"));
    assert!(head.body().is_empty());
    assert_eq!(ok(&results[2]).code(), 404);
}

#[test]
fn keep_alive_reuses_one_connection() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    // One request now, one queued behind it, one made from the first one's callback.
    let results = get_then(&mut base, conn, "/hello", "/hello", &["/hello"]);
    assert_eq!(results.len(), 3);
    for r in results.iter() {
        assert_eq!(ok(r).body(), b"Hello, World!");
    }
    // The server numbers its connections: all three came on its first.
    assert!(results.iter().all(|r| conn_id(ok(r)) == "1"));
}

#[test]
fn head_and_post() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results = exchange(&mut base, conn, 3, |i, done| match i {
        0 => Request::new(Method::Head, "/big?5000", done),
        1 => Request::new(Method::Post, "/submit", done).body(b"abc".to_vec()),
        _ => Request::get("/hello", done),
    });
    let head = ok(&results[0]);
    assert_eq!(head.header("Content-Length"), Some("5000"));
    assert!(head.body().is_empty());
    assert_eq!(ok(&results[1]).body(), b"got:abc");
    // The HEAD response's missing body did not confuse the framing of what followed.
    assert_eq!(ok(&results[2]).body(), b"Hello, World!");
    assert!(
        results
            .iter()
            .all(|r| conn_id(ok(r)) == conn_id(ok(&results[0])))
    );
}

#[test]
fn connection_close_reconnects_and_calls_closecb() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let closes = Rc::new(RefCell::new(0));
    let c2 = Rc::clone(&closes);
    conn.set_closecb(&mut base, move |_, _| *c2.borrow_mut() += 1)
        .unwrap();
    let results = get_all(&mut base, conn, &["/close", "/hello"]);
    assert_eq!(ok(&results[0]).body(), b"bye");
    assert_eq!(ok(&results[1]).body(), b"Hello, World!");
    assert_ne!(conn_id(ok(&results[0])), conn_id(ok(&results[1])));
    assert_eq!(*closes.borrow(), 1);
}

#[test]
fn pipelined_requests_answer_in_order() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_pipelining(&mut base, 4).unwrap();
    let results = exchange(&mut base, conn, 10, |i, done| {
        Request::get(format!("/echo-path?{i}"), done)
    });
    assert_eq!(results.len(), 10);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(ok(r).body(), format!("/echo-path?{i}").as_bytes());
        assert_eq!(conn_id(ok(r)), "1");
    }
}

/// A raw server that reads three request heads before it answers any: only a client that
/// pipelines gets its responses.
#[test]
fn pipelining_really_sends_ahead() {
    let (listener, port) = listen();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while count(&got, b"\r\n\r\n") < 3 {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "client closed before sending three requests");
            got.extend_from_slice(&buf[..n]);
        }
        for i in 0..3 {
            let body = format!("r{i}");
            write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        }
        String::from_utf8(got).unwrap()
    });
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_pipelining(&mut base, 3).unwrap();
    let results = exchange(&mut base, conn, 3, |i, done| {
        Request::get(format!("/{i}"), done)
    });
    let sent = server.join().unwrap();
    assert!(sent.starts_with("GET /0 HTTP/1.1\r\n"));
    assert_eq!(count(sent.as_bytes(), b"Host: 127.0.0.1:"), 3);
    let bodies: Vec<&[u8]> = results.iter().map(|r| ok(r).body()).collect();
    assert_eq!(bodies, [b"r0", b"r1", b"r2"]);
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

#[test]
fn chunked_response_streamed_with_backpressure() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let pieces = Rc::new(RefCell::new(Vec::<u8>::new()));
    let calls = Rc::new(RefCell::new(0usize));
    let heads = Rc::new(RefCell::new(Vec::new()));
    let results: Results = Rc::default();
    let (p2, c2, h2) = (Rc::clone(&pieces), Rc::clone(&calls), Rc::clone(&heads));
    let req = Request::get("/chunked?50", record(&results, conn, 2))
        .on_head(move |_, _, head| h2.borrow_mut().push(head.status))
        .on_chunk(move |base, handle, data| {
            p2.borrow_mut().extend_from_slice(data);
            *c2.borrow_mut() += 1;
            // Pause after every piece; a timer resumes reading a moment later.
            base.once(
                -1,
                oxevent_core::What::empty(),
                Some(Duration::from_millis(1)),
                move |base, _| {
                    assert!(handle.resume(base));
                },
            )
            .unwrap();
            Flow::Pause
        });
    conn.make_request(&mut base, req).unwrap();
    // A buffered request behind the streamed one on the same connection.
    conn.make_request(
        &mut base,
        Request::get("/chunked?4", record(&results, conn, 2)),
    )
    .unwrap();
    run(&mut base);
    let want: String = (0..50).map(|i| format!("chunk{i};")).collect();
    assert_eq!(String::from_utf8(pieces.borrow().clone()).unwrap(), want);
    assert!(*calls.borrow() >= 1);
    assert_eq!(*heads.borrow(), [200]);
    let results = results.borrow();
    assert!(
        ok(&results[0]).body().is_empty(),
        "a streamed body is not kept"
    );
    assert_eq!(ok(&results[1]).body(), b"chunk0;chunk1;chunk2;chunk3;");
    assert_eq!(conn_id(ok(&results[0])), conn_id(ok(&results[1])));
}

/// Accepts connections and never answers; keeps them open until the test ends.
fn silent_listener() -> (u16, Arc<AtomicUsize>) {
    let (listener, port) = listen();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a2 = Arc::clone(&accepted);
    thread::spawn(move || {
        let mut keep = Vec::new();
        while let Ok((s, _)) = listener.accept() {
            a2.fetch_add(1, Ordering::SeqCst);
            keep.push(s);
            if keep.len() > 8 {
                break;
            }
        }
        thread::sleep(Duration::from_secs(30));
    });
    (port, accepted)
}

#[test]
fn read_timeout_against_a_silent_server() {
    let (port, _) = silent_listener();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_read_timeout(&mut base, Duration::from_millis(100))
        .unwrap();
    let r = get_root(&mut base, conn);
    assert!(
        matches!(r, Err(ClientError::Timeout(TimeoutKind::Read))),
        "{r:?}"
    );
}

#[test]
fn connect_refused_is_a_connect_error() {
    let port = free_port();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    match &get_root(&mut base, conn) {
        Err(ClientError::Connect(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn unresolvable_host_is_a_connect_error() {
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "no-such-host.invalid", 80);
    assert!(matches!(
        get_root(&mut base, conn),
        Err(ClientError::Connect(_))
    ));
}

#[test]
fn connect_retries_with_backoff_then_fail() {
    let port = free_port();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_retries(&mut base, 3).unwrap();
    conn.set_initial_retry(&mut base, Duration::from_millis(1))
        .unwrap();
    let results: Results = Rc::default();
    let attempts = Rc::new(RefCell::new(0));
    let a2 = Rc::clone(&attempts);
    let r2 = Rc::clone(&results);
    conn.make_request(
        &mut base,
        Request::get("/", move |base, r| {
            *a2.borrow_mut() = conn.connect_count(base).unwrap();
            r2.borrow_mut().push(r);
            conn.free(base).unwrap();
        }),
    )
    .unwrap();
    run(&mut base);
    assert!(matches!(results.borrow()[0], Err(ClientError::Connect(_))));
    assert_eq!(*attempts.borrow(), 4, "one attempt and three retries");
}

/// A raw server: the first connection reads a request and closes without a word; the
/// second answers.
fn drop_first_then_answer() -> (u16, thread::JoinHandle<usize>) {
    let (listener, port) = listen();
    let h = thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming().take(2) {
            let mut s = stream.unwrap();
            n += 1;
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            read_head(&mut s);
            if n == 2 {
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .unwrap();
                // Wait for the client to close.
                let _ = s.read(&mut [0u8; 16]);
            }
        }
        n
    });
    (port, h)
}

/// Reads one request: the head byte by byte, then a `Content-Length` body.
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => got.push(b[0]),
            _ => return got,
        }
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if s.read_exact(&mut body).is_ok() {
        got.extend_from_slice(&body);
    }
    got
}

#[test]
fn idempotent_request_retried_after_a_dropped_connection() {
    let (port, server) = drop_first_then_answer();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_retries(&mut base, 1).unwrap();
    conn.set_initial_retry(&mut base, Duration::from_millis(1))
        .unwrap();
    assert_eq!(ok(&get_root(&mut base, conn)).body(), b"ok");
    assert_eq!(server.join().unwrap(), 2, "the server saw two connections");
}

#[test]
fn dropped_connection_without_retries_is_eof() {
    let (port, _server) = drop_first_then_answer();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    // POST is not idempotent: never retried after it was sent, even with retries set.
    conn.set_retries(&mut base, 2).unwrap();
    let r = one(&mut base, conn, |done| {
        Request::new(Method::Post, "/", done).body(b"x".to_vec())
    });
    assert!(matches!(r, Err(ClientError::Eof)), "{r:?}");
}

#[test]
fn cancel_from_callbacks() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results: Results = Rc::default();
    // The third request is queued; the first one's head callback cancels it.
    let third = Rc::new(RefCell::new(None));
    let t2 = Rc::clone(&third);
    // The first request cancels itself from its own chunk callback.
    let first = Request::get("/chunked?20", record(&results, conn, 3))
        .on_head(move |base, _, _| {
            let h: oxevent_http::client::RequestHandle = t2.borrow().expect("made");
            assert!(h.cancel(base));
            assert!(!h.cancel(base), "already cancelled");
        })
        .on_chunk(|base, handle, _| {
            assert!(handle.cancel(base));
            Flow::Continue
        });
    conn.make_request(&mut base, first).unwrap();
    conn.make_request(&mut base, Request::get("/hello", record(&results, conn, 3)))
        .unwrap();
    let h = conn
        .make_request(&mut base, Request::get("/hello", record(&results, conn, 3)))
        .unwrap();
    *third.borrow_mut() = Some(h);
    run(&mut base);
    let results = results.borrow();
    assert_eq!(results.len(), 3);
    let cancelled = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::Cancelled)))
        .count();
    assert_eq!(cancelled, 2);
    let hello: Vec<&Response> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(hello.len(), 1);
    assert_eq!(hello[0].body(), b"Hello, World!");
}

#[test]
fn cancel_before_the_loop_runs() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results: Results = Rc::default();
    let h = conn
        .make_request(&mut base, Request::get("/hello", record(&results, conn, 2)))
        .unwrap();
    conn.make_request(&mut base, Request::get("/hello", record(&results, conn, 2)))
        .unwrap();
    assert!(h.cancel(&mut base));
    assert_eq!(conn.pending(&mut base).unwrap(), 1);
    run(&mut base);
    let results = results.borrow();
    assert!(matches!(results[0], Err(ClientError::Cancelled)));
    assert_eq!(ok(&results[1]).body(), b"Hello, World!");
}

#[test]
fn body_and_header_limits_give_typed_errors() {
    let (_server, port) = script_server();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_max_body_size(&mut base, 100).unwrap();
    conn.set_max_headers_size(&mut base, 1024).unwrap();
    let targets = ["/big?1000", "/chunked?40", "/bighead?4000", "/big?100"];
    let results = get_all(&mut base, conn, &targets);
    for r in &results[..3] {
        assert!(matches!(r, Err(ClientError::DataTooLong(_))), "{r:?}");
    }
    // The connection recovers: the last one fits exactly.
    assert_eq!(ok(&results[3]).body().len(), 100);
}

/// One raw connection answering every request with `reply`, then closing.
fn raw_reply(reply: &'static [u8]) -> u16 {
    let (listener, port) = listen();
    thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut s) = stream else { return };
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            read_head(&mut s);
            let _ = s.write_all(reply);
        }
    });
    port
}

#[test]
fn malformed_responses_are_errors_not_panics() {
    type Check = fn(&ClientError) -> bool;
    let cases: [(&'static [u8], Check); 5] = [
        (b"NOT HTTP AT ALL\r\n\r\n", |e| {
            matches!(e, ClientError::InvalidHeader(_))
        }),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            |e| matches!(e, ClientError::InvalidHeader(_)),
        ),
        (b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", |e| {
            matches!(e, ClientError::InvalidHeader(_))
        }),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n",
            |e| matches!(e, ClientError::InvalidBody(_)),
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", |e| {
            matches!(e, ClientError::Eof)
        }),
    ];
    for (reply, check) in cases {
        let port = raw_reply(reply);
        let mut base = EventBase::new().unwrap();
        let conn = Connection::new(&mut base, "127.0.0.1", port);
        match &get_root(&mut base, conn) {
            Err(e) => assert!(check(e), "{:?}: {e:?}", String::from_utf8_lossy(reply)),
            Ok(r) => panic!("{:?} accepted: {r:?}", String::from_utf8_lossy(reply)),
        }
    }
}

#[test]
fn close_delimited_body_ends_at_eof() {
    let port = raw_reply(b"HTTP/1.0 200 OK\r\nX: y\r\n\r\nuntil the end");
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    // The raw server closes after its reply only when its thread moves on: it does, for
    // the next accept.
    assert_eq!(ok(&get_root(&mut base, conn)).body(), b"until the end");
}

#[test]
fn invalid_requests_are_refused_up_front() {
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", 9);
    let r = conn.make_request(
        &mut base,
        Request::get("/", |_, _| panic!("never runs")).header("X", "a\r\nInjected: 1"),
    );
    assert!(matches!(r, Err(ClientError::InvalidRequest(_))));
    let r = conn.make_request(&mut base, Request::get("/a b", |_, _| panic!("never runs")));
    assert!(matches!(r, Err(ClientError::InvalidRequest(_))));
    // The connection owns the framing: no lying Content-Length, no unknown coding.
    let r = conn.make_request(
        &mut base,
        Request::new(Method::Post, "/", |_, _| panic!("never runs"))
            .header("Content-Length", "10")
            .body(b"short".to_vec()),
    );
    assert!(matches!(r, Err(ClientError::InvalidRequest(_))));
    let r = conn.make_request(
        &mut base,
        Request::new(Method::Post, "/", |_, _| panic!("never runs"))
            .header("Transfer-Encoding", "gzip"),
    );
    assert!(matches!(r, Err(ClientError::InvalidRequest(_))));
    conn.set_max_queue(&mut base, 1).unwrap();
    conn.make_request(&mut base, Request::get("/", |_, _| {}))
        .unwrap();
    let r = conn.make_request(&mut base, Request::get("/", |_, _| panic!("never runs")));
    assert!(matches!(r, Err(ClientError::QueueFull)));
    conn.free(&mut base).unwrap();
    assert!(conn.free(&mut base).is_err());
    assert!(!conn.is_valid(&mut base));
}

#[test]
fn freeing_with_requests_pending_reports_closed() {
    let (port, _) = silent_listener();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results: Results = Rc::default();
    let r2 = Rc::clone(&results);
    conn.make_request(
        &mut base,
        Request::get("/", move |_, r| r2.borrow_mut().push(r)),
    )
    .unwrap();
    // Free once the request is on the wire.
    let timer = base.timer_new(move |base, _, _| conn.free(base).unwrap());
    base.add(timer, Some(Duration::from_millis(50))).unwrap();
    run(&mut base);
    assert!(matches!(results.borrow()[0], Err(ClientError::Closed)));
}

#[test]
fn unix_socket_connection() {
    let dir = std::env::temp_dir().join(format!("oxevent-httpc-unix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let _ = std::fs::remove_file(&path);
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
            got.push(b[0]);
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nunix")
            .unwrap();
        String::from_utf8(got).unwrap()
    });
    let mut base = EventBase::new().unwrap();
    let uri = Uri::parse_with(
        &format!("http://unix:{}:/x?y=1", path.display()),
        UriFlags::UNIX_SOCKET,
    )
    .unwrap();
    let conn = Connection::for_uri(&mut base, &uri).unwrap();
    assert_eq!(conn.peer(&mut base).unwrap().0, path.display().to_string());
    let r = one(&mut base, conn, |done| {
        Request::get(uri.request_target(), done)
    });
    let sent = server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(sent.starts_with("GET /x?y=1 HTTP/1.1\r\n"), "{sent}");
    assert!(sent.contains("Host: localhost\r\n"));
    assert_eq!(ok(&r).body(), b"unix");
}

/// A listener whose accept queue is full drops further SYNs (Linux), so a connect to it
/// hangs until the connect timeout.
#[test]
fn connect_timeout_against_a_full_backlog() {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue: these are never accepted.
    let fillers: Vec<TcpStream> = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok())
        .collect();
    assert!(!fillers.is_empty());
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", addr.port());
    assert_connect_times_out(&mut base, conn);
    drop(fillers);
}

/// A kept-alive connection that the server closes as the next request goes out: the
/// request is sent again on a fresh connection, even with no retries set.
#[test]
fn stale_keep_alive_connection_is_retried_once() {
    let (listener, port) = listen();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
            .unwrap();
        read_head(&mut s);
        drop(s);
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        read_head(&mut s);
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
            .unwrap();
        let _ = s.read(&mut [0u8; 16]);
    });
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results = get_then(&mut base, conn, "/1", "/2", &[]);
    server.join().unwrap();
    assert_eq!(ok(&results[0]).body(), b"first");
    assert_eq!(ok(&results[1]).body(), b"second");
}

#[test]
fn local_address_and_port_are_bound() {
    let (listener, port) = listen();
    let local_port = free_port();
    let server = thread::spawn(move || {
        let (mut s, peer) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        read_head(&mut s);
        s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
        let _ = s.read(&mut [0u8; 16]);
        peer
    });
    let mut base = EventBase::new().unwrap();
    let uri = Uri::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let conn = Connection::for_uri(&mut base, &uri).unwrap();
    conn.set_local_address(&mut base, Some("127.0.0.1".parse().unwrap()))
        .unwrap();
    conn.set_local_port(&mut base, Some(local_port)).unwrap();
    assert_eq!(ok(&get_root(&mut base, conn)).code(), 204);
    let peer = server.join().unwrap();
    assert_eq!(peer.port(), local_port);
    assert!(Connection::for_uri(&mut base, &Uri::parse("ftp://h/").unwrap()).is_err());
    // HTTPS needs the `openssl` feature (see `client_https`).
    #[cfg(not(feature = "openssl"))]
    assert!(Connection::for_uri(&mut base, &Uri::parse("https://h/").unwrap()).is_err());
    assert!(Connection::for_uri(&mut base, &Uri::parse("/relative").unwrap()).is_err());
}

/// A server that never reads: a large body fills the socket buffers and the write timeout
/// fires.
#[test]
fn write_timeout_against_a_server_that_does_not_read() {
    let (port, _) = silent_listener();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_write_timeout(&mut base, Duration::from_millis(100))
        .unwrap();
    let body = vec![b'x'; 64 * 1024 * 1024];
    let r = one(&mut base, conn, |done| {
        Request::new(Method::Put, "/", done).body(body)
    });
    assert!(
        matches!(r, Err(ClientError::Timeout(TimeoutKind::Write))),
        "{r:?}"
    );
}

/// Our client against our server, on one loop: keep-alive, pipelining, a streamed reply
/// read as a stream, a POST body and HEAD.
#[test]
fn against_our_server() {
    use oxevent_http::server::Server;
    let mut base = EventBase::new().unwrap();
    let server = Server::new(&mut base);
    server
        .set_cb(&mut base, "/peer", |base, req| {
            let peer = req.peer().map(|p| p.port()).unwrap_or(0);
            let _ = req.send_reply(base, 200, format!("{peer}"));
        })
        .unwrap();
    server
        .set_cb(&mut base, "/echo", |base, mut req| {
            let body = req.take_body();
            let _ = req.send_reply(base, 200, body);
        })
        .unwrap();
    server
        .set_cb(&mut base, "/stream", |base, req| {
            let Ok(r) = req.send_reply_start(base, 200) else {
                return;
            };
            for i in 0..5 {
                let _ = r.send_chunk(base, format!("part{i};"));
            }
            let _ = r.send_end(base);
        })
        .unwrap();
    let bound = server
        .bind(&mut base, "127.0.0.1:0".parse().unwrap())
        .unwrap();
    let port = bound.local_addr(&mut base).unwrap().unwrap().port();

    let conn = Connection::new(&mut base, "127.0.0.1", port);
    conn.set_pipelining(&mut base, 8).unwrap();
    let results: Results = Rc::default();
    let streamed = Rc::new(RefCell::new(Vec::new()));
    let total = 8;
    let done = {
        let results = Rc::clone(&results);
        move |base: &mut EventBase, r| {
            results.borrow_mut().push(r);
            if results.borrow().len() == total {
                let _ = conn.free(base);
                let _ = server.free(base);
            }
        }
    };
    for _ in 0..3 {
        let d = done.clone();
        conn.make_request(&mut base, Request::get("/peer", d))
            .unwrap();
    }
    let s2 = Rc::clone(&streamed);
    conn.make_request(
        &mut base,
        Request::get("/stream", done.clone()).on_chunk(move |_, _, data| {
            s2.borrow_mut().extend_from_slice(data);
            Flow::Continue
        }),
    )
    .unwrap();
    conn.make_request(
        &mut base,
        Request::new(Method::Post, "/echo", done.clone()).body(b"posted".to_vec()),
    )
    .unwrap();
    conn.make_request(
        &mut base,
        Request::new(Method::Post, "/echo", done.clone())
            .header("Transfer-Encoding", "chunked")
            .body(b"sent chunked".to_vec()),
    )
    .unwrap();
    conn.make_request(&mut base, Request::new(Method::Head, "/peer", done.clone()))
        .unwrap();
    conn.make_request(&mut base, Request::get("/nowhere", done))
        .unwrap();
    run(&mut base);

    let results = results.borrow();
    assert_eq!(results.len(), total);
    let peers: Vec<&[u8]> = results[..3].iter().map(|r| ok(r).body()).collect();
    assert!(
        peers.iter().all(|p| *p == peers[0]),
        "one connection: {peers:?}"
    );
    assert_eq!(
        String::from_utf8(streamed.borrow().clone()).unwrap(),
        "part0;part1;part2;part3;part4;"
    );
    assert!(ok(&results[3]).body().is_empty());
    assert_eq!(ok(&results[4]).body(), b"posted");
    assert_eq!(ok(&results[5]).body(), b"sent chunked");
    assert_eq!(ok(&results[6]).code(), 200);
    assert!(ok(&results[6]).body().is_empty());
    assert_eq!(ok(&results[7]).code(), 404);
}

/// A connection over a bufferevent connected beforehand; once the server closes it, the
/// connection makes its own.
#[test]
fn from_an_already_connected_bufferevent() {
    use oxevent_bufferevent::{BevOptions, BufferEvent};
    let (_server, port) = script_server();
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut base = EventBase::new().unwrap();
    let bev = BufferEvent::socket(
        &mut base,
        Some(std::os::fd::OwnedFd::from(stream)),
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    let conn = Connection::from_bufferevent(&mut base, bev, "127.0.0.1", port).unwrap();
    assert!(conn.is_connected(&mut base).unwrap());
    let results = get_all(&mut base, conn, &["/hello", "/close", "/hello"]);
    assert_eq!(conn_id(ok(&results[0])), conn_id(ok(&results[1])));
    assert_ne!(conn_id(ok(&results[1])), conn_id(ok(&results[2])));
    assert_eq!(ok(&results[2]).body(), b"Hello, World!");
}

/// The `i`th byte of the test bodies.
fn pattern(i: usize) -> u8 {
    (i * 7 % 251) as u8
}

/// A body source of `pieces` pieces of `size` bytes of [`pattern`], which says
/// [`BodyChunk::Wait`] before every `wait_every`th piece and resumes itself from a zero
/// timer.
fn source(
    pieces: usize,
    size: usize,
    wait_every: usize,
) -> impl FnMut(&mut EventBase, oxevent_http::client::RequestHandle) -> oxevent_http::client::BodyChunk
{
    use oxevent_http::client::BodyChunk;
    let (mut next, mut waited) = (0usize, false);
    move |base, handle| {
        if next == pieces {
            return BodyChunk::End;
        }
        if wait_every > 0 && next % wait_every == 0 && !waited {
            waited = true;
            base.once(
                -1,
                oxevent_core::What::empty(),
                Some(Duration::ZERO),
                move |base, _| {
                    assert!(handle.resume_body(base));
                },
            )
            .unwrap();
            return BodyChunk::Wait;
        }
        waited = false;
        let start = next * size;
        next += 1;
        BodyChunk::Data((start..start + size).map(pattern).collect())
    }
}

/// Streamed request bodies: chunked and with a known length (pausing and resuming), to our
/// server and to Python's; the connection is reused after them; a body whose length differs
/// from the announced one fails the request.
#[test]
fn streamed_request_bodies() {
    use oxevent_http::proto::EncodeError;
    use oxevent_http::server::Server;
    let mut base = EventBase::new().unwrap();
    let server = Server::new(&mut base);
    server.set_max_body_size(&mut base, 8 << 20).unwrap();
    server
        .set_cb(&mut base, "/echo", |base, mut req| {
            let body = req.take_body();
            let te = req
                .input_headers()
                .get_str("transfer-encoding")
                .map(str::to_owned);
            req.output_headers_mut()
                .append("X-TE", te.unwrap_or_else(|| "-".into()));
            let _ = req.send_reply(base, 200, body);
        })
        .unwrap();
    let bound = server
        .bind(&mut base, "127.0.0.1:0".parse().unwrap())
        .unwrap();
    let port = bound.local_addr(&mut base).unwrap().unwrap().port();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let results: Results = Rc::default();
    for i in 0..4 {
        let r = Rc::clone(&results);
        let done = move |base: &mut EventBase, res| {
            r.borrow_mut().push(res);
            if r.borrow().len() == 4 {
                let _ = conn.free(base);
                let _ = server.free(base);
            }
        };
        let req = Request::new(Method::Post, "/echo", done);
        let req = match i {
            0 => req.body_stream(None, source(200, 5000, 10)),
            1 => req.body_stream(Some(50 * 3000), source(50, 3000, 7)),
            2 => req.body_stream(Some(0), source(0, 1, 0)),
            // Too short for its length.
            _ => req.body_stream(Some(100), source(1, 50, 0)),
        };
        conn.make_request(&mut base, req).unwrap();
    }
    run(&mut base);
    let results = results.take();
    assert_eq!(results.len(), 4);
    let want = |n: usize| (0..n).map(pattern).collect::<Vec<u8>>();
    let chunked = ok(&results[0]);
    assert_eq!(chunked.header("X-TE"), Some("chunked"));
    assert_eq!(chunked.body(), want(200 * 5000));
    let sized = ok(&results[1]);
    assert_eq!(sized.header("X-TE"), Some("-"));
    assert_eq!(sized.body(), want(50 * 3000));
    assert_eq!(ok(&results[2]).body(), b"");
    assert!(
        matches!(
            results[3],
            Err(ClientError::InvalidRequest(EncodeError::BodyLengthMismatch))
        ),
        "{:?}",
        results[3]
    );

    // Python's http.server reads a Content-Length body.
    let (_py, port) = script_server();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let r = one(&mut base, conn, |done| {
        Request::new(Method::Post, "/submit", done).body_stream(Some(4 * 1000), source(4, 1000, 2))
    });
    let mut want_py = b"got:".to_vec();
    want_py.extend(want(4000));
    assert_eq!(ok(&r).body(), want_py);

    // A whole body and a stream at once, or a stream contradicting its headers, are refused.
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    for req in [
        Request::new(Method::Post, "/", |_, _| {})
            .body(b"x".to_vec())
            .body_stream(None, source(1, 1, 0)),
        Request::new(Method::Post, "/", |_, _| {})
            .header("Content-Length", "5")
            .body_stream(Some(6), source(1, 6, 0)),
        Request::new(Method::Post, "/", |_, _| {})
            .header("Content-Length", "5")
            .body_stream(None, source(1, 5, 0)),
    ] {
        assert!(matches!(
            conn.make_request(&mut base, req),
            Err(ClientError::InvalidRequest(_))
        ));
    }
    let _ = conn.free(&mut base);
}

/// Backpressure: a server that does not read gets no more than what fits in the
/// connection's output buffer and the socket buffers; the rest is asked for as it reads.
#[test]
fn streamed_request_body_waits_for_a_slow_reader() {
    const PIECE: usize = 64 * 1024;
    const PIECES: usize = 1024; // 64 MiB
    let (listener, port) = listen();
    let produced = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&produced);
    let peer = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // The head only, byte by byte: the body is read below.
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
            s.read_exact(&mut b).unwrap();
            head.push(b[0]);
        }
        assert!(
            String::from_utf8_lossy(&head).contains("Content-Length: 67108864"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        // Read nothing until the client has stopped producing (bounded: 20 s).
        let mut last = usize::MAX;
        let mut stable = 0;
        for _ in 0..200 {
            let now = seen.load(Ordering::SeqCst);
            stable = if now == last { stable + 1 } else { 0 };
            last = now;
            if stable == 3 {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        let stalled_at = seen.load(Ordering::SeqCst);
        let mut got = 0usize;
        let mut buf = vec![0u8; 1 << 16];
        while got < PIECE * PIECES {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "eof after {got} body bytes");
            got += n;
        }
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .unwrap();
        (stable, stalled_at, got)
    });
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new(&mut base, "127.0.0.1", port);
    let mut next = 0;
    let r = one(&mut base, conn, |done| {
        Request::new(Method::Put, "/", done).body_stream(
            Some((PIECE * PIECES) as u64),
            move |_, _| {
                if next == PIECES {
                    return oxevent_http::client::BodyChunk::End;
                }
                next += 1;
                produced.fetch_add(PIECE, Ordering::SeqCst);
                oxevent_http::client::BodyChunk::Data(vec![b'u'; PIECE])
            },
        )
    });
    assert_eq!(ok(&r).body(), b"ok");
    let (stable, stalled_at, got) = peer.join().unwrap();
    assert_eq!(
        stable, 3,
        "the client kept producing while the server did not read"
    );
    assert_eq!(got, PIECE * PIECES);
    // 64 KiB in the output buffer plus the kernel's socket buffers: far below the body.
    assert!(
        stalled_at < PIECE * PIECES / 2,
        "{stalled_at} bytes produced unread"
    );
}
