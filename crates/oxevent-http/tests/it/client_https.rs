//! HTTPS with the client (the `openssl` feature): against `openssl s_server -WWW` (TLS
//! verification on with the test CA, off with `insecure`, and failing without the CA or
//! for another name) and against Python's `http.server` wrapped in `ssl` (keep-alive reuse
//! over TLS, chunked and large bodies, close-delimited bodies with and without
//! close_notify). The certificates are made in the test with the `openssl` crate.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxevent_core::EventBase;
use oxevent_http::client::{ClientError, Connection, Request, Response, TlsConfig, TlsFailure};
use oxevent_http::uri::Uri;
use oxevent_openssl::openssl::nid::Nid;
use oxevent_openssl::openssl::x509::X509VerifyResult;
use oxevent_test_support::{LineChild, TestPki, process::python_script_server};

use crate::client::{Results, assert_connect_times_out, get_all, listen, one};

// ---------------------------------------------------------------------------------------
// the test PKI and peers

/// A test CA and a leaf for `localhost` and 127.0.0.1 (`oxevent-test-support`).
fn pki() -> TestPki {
    TestPki::new("https-client")
}

/// Verification on, trusting the test CA.
fn tls(pki: &TestPki) -> TlsConfig {
    TlsConfig::with_ca_file(pki.ca_pem_path()).unwrap()
}

/// `openssl s_server -WWW` with the test leaf, serving the files of `docroot`, on a free
/// loopback port. Its responses are HTTP/1.0, delimited by the close.
fn s_server(pki: &TestPki, docroot: &Path) -> (LineChild, u16) {
    pki.s_server(docroot, &["-WWW", "-naccept", "16"])
}

/// Python's `http.server` over TLS: HTTP/1.1 with keep-alive, numbering its connections
/// (`X-Conn`); `/hello`, `/chunked?N`, `/big?N`, and `/eof-clean` / `/eof-dirty` (a body
/// delimited by the close, ended with or without close_notify).
const PY_TLS: &str = r#"
import http.server, itertools, ssl, sys
counter = itertools.count(1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def setup(self):
        super().setup()
        self.conn_id = next(counter)
    def send_body(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Conn", str(self.conn_id))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/hello":
            self.send_body(200, b"Hello over TLS")
        elif path == "/close":
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.send_header("X-Conn", str(self.conn_id))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"bye")
        elif path == "/host":
            self.send_body(200, self.headers.get("Host", "").encode())
        elif path == "/big":
            self.send_body(200, bytes(i % 251 for i in range(int(query))))
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Conn", str(self.conn_id))
            self.end_headers()
            for i in range(int(query or "3")):
                piece = ("chunk%d;" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        elif path in ("/eof-clean", "/eof-dirty"):
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the close")
            self.wfile.flush()
            if path == "/eof-clean":
                try:
                    self.connection.unwrap()
                except Exception:
                    pass
        else:
            self.send_body(404, b"not found")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("READY port=%d" % srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn python_tls(pki: &TestPki) -> (LineChild, u16) {
    python_script_server(PY_TLS, [pki.cert_path(), pki.key_path()])
}

// ---------------------------------------------------------------------------------------
// driving the client (one or more GETs: `get_all` and `one` of the plain client's tests)

/// Runs the loop until `done` holds or 30 s pass (checked every 20 ms by a timer).
fn run_until(base: &mut EventBase, done: impl Fn() -> bool + 'static) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let check = base.timer_new(move |base, ev, _| {
        if done() || Instant::now() >= deadline {
            base.loopbreak();
        } else {
            let _ = base.add(ev, Some(Duration::from_millis(20)));
        }
    });
    base.add(check, Some(Duration::ZERO)).unwrap();
    base.dispatch().unwrap();
    let _ = base.free(check);
}

/// One GET, answered (the loop runs until then; the connection is then freed).
fn fetch(base: &mut EventBase, conn: Connection, target: &str) -> Result<Response, ClientError> {
    one(base, conn, |done| Request::get(target, done))
}

fn ok(r: Result<Response, ClientError>) -> Response {
    r.unwrap_or_else(|e| panic!("request failed: {e}"))
}

fn tls_failure(r: Result<Response, ClientError>) -> Arc<TlsFailure> {
    match r {
        Err(ClientError::Tls(f)) => f,
        Err(e) => panic!("expected a TLS failure, got {e:?}"),
        Ok(resp) => panic!("expected a TLS failure, got {}", resp.code()),
    }
}

fn docroot(pki: &TestPki) -> PathBuf {
    let dir = pki.dir().join("www");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.txt"), b"served over TLS\n").unwrap();
    dir
}

// ---------------------------------------------------------------------------------------
// verification, against openssl s_server

#[test]
fn verification_on_with_the_ca_fetches() {
    let pki = pki();
    let (_server, port) = s_server(&pki, &docroot(&pki));
    for host in ["localhost", "127.0.0.1"] {
        let mut base = EventBase::new().unwrap();
        // s_server ends its close-delimited bodies with close_notify.
        let tls = tls(&pki);
        assert!(tls.verifies());
        let conn = Connection::new_https(&mut base, host, port, tls);
        let resp = ok(fetch(&mut base, conn, "/index.txt"));
        assert_eq!(resp.code(), 200, "{host}");
        assert_eq!(resp.body(), b"served over TLS\n", "{host}");
    }
}

#[test]
fn an_untrusted_certificate_fails_with_a_tls_error() {
    let pki = pki();
    let (_server, port) = s_server(&pki, &docroot(&pki));
    let mut base = EventBase::new().unwrap();
    // The system's roots only: the test CA is unknown.
    let conn = Connection::new_https(&mut base, "localhost", port, TlsConfig::new().unwrap());
    let f = tls_failure(fetch(&mut base, conn, "/index.txt"));
    assert!(matches!(*f, TlsFailure::Handshake { .. }), "{f:?}");
    let verify = f.verify_result().unwrap();
    assert_ne!(verify, X509VerifyResult::OK);
    assert!(f.error_stack().is_some(), "{f:?}");
    let text = ClientError::Tls(f).to_string();
    assert!(text.contains("certificate verify failed"), "{text}");
}

#[test]
fn a_certificate_for_another_name_fails() {
    let pki = pki();
    let (_server, port) = s_server(&pki, &docroot(&pki));
    let mut base = EventBase::new().unwrap();
    // Trusted CA, but the leaf is for localhost and 127.0.0.1, not this name.
    let tls = tls(&pki).server_name("www.example.com");
    let conn = Connection::new_https(&mut base, "127.0.0.1", port, tls);
    let f = tls_failure(fetch(&mut base, conn, "/index.txt"));
    let verify = f.verify_result().expect("a handshake failure");
    // X509_V_ERR_HOSTNAME_MISMATCH
    assert_eq!(verify.as_raw(), 62, "{}", verify.error_string());
}

#[test]
fn insecure_accepts_an_untrusted_certificate() {
    let pki = pki();
    let (_server, port) = s_server(&pki, &docroot(&pki));
    let mut base = EventBase::new().unwrap();
    let tls = TlsConfig::new()
        .unwrap()
        .insecure()
        .server_name("www.example.com");
    assert!(!tls.verifies());
    let conn = Connection::new_https(&mut base, "127.0.0.1", port, tls);
    let resp = ok(fetch(&mut base, conn, "/index.txt"));
    assert_eq!(resp.body(), b"served over TLS\n");
}

#[test]
fn for_uri_takes_https_uris() {
    let pki = pki();
    let (_server, port) = s_server(&pki, &docroot(&pki));
    let mut base = EventBase::new().unwrap();
    let uri = Uri::parse(&format!("https://localhost:{port}/index.txt")).unwrap();
    let conn = Connection::for_uri_with_tls(&mut base, &uri, tls(&pki)).unwrap();
    assert_eq!(
        conn.peer(&mut base).unwrap(),
        ("localhost".to_owned(), port)
    );
    let resp = ok(fetch(&mut base, conn, &uri.request_target()));
    assert_eq!(resp.body(), b"served over TLS\n");

    // `for_uri` gives HTTPS the default configuration (the system's roots): the test CA
    // is not trusted there.
    let conn = Connection::for_uri(&mut base, &uri).unwrap();
    let f = tls_failure(fetch(&mut base, conn, "/index.txt"));
    assert!(f.verify_result().is_some(), "{f:?}");
    // Port 443 by default; and `for_uri_with_tls` wants an https URI.
    let conn =
        Connection::for_uri(&mut base, &Uri::parse("https://example.com/").unwrap()).unwrap();
    assert_eq!(conn.peer(&mut base).unwrap().1, 443);
    conn.free(&mut base).unwrap();
    let plain = Uri::parse("http://localhost/").unwrap();
    assert!(Connection::for_uri_with_tls(&mut base, &plain, tls(&pki)).is_err());
}

#[test]
fn a_stalled_handshake_hits_the_connect_timeout() {
    // The kernel accepts the TCP connection; nobody ever answers the ClientHello.
    let (listener, port) = listen();
    let pki = pki();
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new_https(&mut base, "127.0.0.1", port, tls(&pki));
    assert_connect_times_out(&mut base, conn);
    drop(listener);
}

// ---------------------------------------------------------------------------------------
// keep-alive and framing over TLS, against Python

#[test]
fn keep_alive_reuses_one_tls_connection() {
    let pki = pki();
    let (_server, port) = python_tls(&pki);
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new_https(&mut base, "localhost", port, tls(&pki));
    let seen_cert = Rc::new(RefCell::new(None));
    let results: Results = Rc::default();
    let targets = ["/hello", "/chunked?5", "/big?1000000", "/host", "/hello"];
    for (i, t) in targets.iter().enumerate() {
        let (r, seen) = (Rc::clone(&results), Rc::clone(&seen_cert));
        conn.make_request(
            &mut base,
            Request::get(*t, move |base, res| {
                if i == 0 {
                    // The session is reachable: the server's certificate is the leaf.
                    let cn = conn
                        .tls_session(base)
                        .unwrap()
                        .and_then(|s| s.peer_certificate())
                        .and_then(|c| {
                            let e = c.subject_name().entries_by_nid(Nid::COMMONNAME).next()?;
                            e.data().to_string().ok()
                        });
                    *seen.borrow_mut() = cn;
                }
                r.borrow_mut().push(res);
                if r.borrow().len() == targets.len() {
                    let _ = conn.free(base);
                }
            }),
        )
        .unwrap();
    }
    let r = Rc::clone(&results);
    run_until(&mut base, move || r.borrow().len() == targets.len());
    assert_eq!(seen_cert.borrow().as_deref(), Some("localhost"));
    let results: Vec<Response> = results.borrow_mut().drain(..).map(ok).collect();
    assert_eq!(results.len(), targets.len());
    assert_eq!(results[0].body(), b"Hello over TLS");
    assert_eq!(
        results[1].body(),
        b"chunk0;chunk1;chunk2;chunk3;chunk4;".as_slice()
    );
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(results[2].body(), big.as_slice());
    // The Host header leaves out only HTTPS's default port.
    assert_eq!(results[3].body(), format!("localhost:{port}").as_bytes());
    // All five on the server's first connection.
    for r in &results[..3] {
        assert_eq!(r.header("X-Conn"), Some("1"));
    }
    assert_eq!(results[4].header("X-Conn"), Some("1"));
}

#[test]
fn pipelining_over_tls() {
    let pki = pki();
    let (_server, port) = python_tls(&pki);
    let mut base = EventBase::new().unwrap();
    let conn = Connection::new_https(&mut base, "127.0.0.1", port, tls(&pki));
    conn.set_pipelining(&mut base, 4).unwrap();
    let results: Results = Rc::default();
    let n = 20;
    for _ in 0..n {
        let r = Rc::clone(&results);
        conn.make_request(
            &mut base,
            Request::get("/hello", move |_, res| r.borrow_mut().push(res)),
        )
        .unwrap();
    }
    let r = Rc::clone(&results);
    run_until(&mut base, move || r.borrow().len() == n);
    let results: Vec<Response> = results.borrow_mut().drain(..).map(ok).collect();
    assert_eq!(results.len(), n);
    assert!(results.iter().all(|r| r.body() == b"Hello over TLS"));
    // All on one socket, the server's first connection.
    assert_eq!(conn.connect_count(&mut base).unwrap(), 1);
    assert!(results.iter().all(|r| r.header("X-Conn") == Some("1")));
    conn.free(&mut base).unwrap();
}

#[test]
fn close_delimited_bodies_need_close_notify() {
    let pki = pki();
    let (_server, port) = python_tls(&pki);
    let mut base = EventBase::new().unwrap();

    // The server ends the body with close_notify: complete.
    let conn = Connection::new_https(&mut base, "localhost", port, tls(&pki));
    let resp = ok(fetch(&mut base, conn, "/eof-clean"));
    assert_eq!(resp.body(), b"until the close");

    // A bare TCP close: the body may be truncated.
    let conn = Connection::new_https(&mut base, "localhost", port, tls(&pki));
    let f = tls_failure(fetch(&mut base, conn, "/eof-dirty"));
    assert!(matches!(*f, TlsFailure::Truncated), "{f:?}");

    // Unless the configuration accepts it.
    let tls = tls(&pki).allow_truncation(true);
    let conn = Connection::new_https(&mut base, "localhost", port, tls);
    let resp = ok(fetch(&mut base, conn, "/eof-dirty"));
    assert_eq!(resp.body(), b"until the close");
}

#[test]
fn a_new_socket_after_a_close_does_tls_again_over_the_factorys_socket() {
    let pki = pki();
    let (_server, port) = python_tls(&pki);
    let mut base = EventBase::new().unwrap();
    // A factory of plain sockets (counted), and TLS put over each.
    let made = Rc::new(RefCell::new(0u32));
    let m = Rc::clone(&made);
    let factory = Box::new(move |base: &mut EventBase| {
        *m.borrow_mut() += 1;
        let bev = oxevent_bufferevent::BufferEvent::socket(
            base,
            None,
            oxevent_bufferevent::BevOptions::CLOSE_ON_FREE,
        )?;
        Ok(bev)
    });
    let conn = Connection::with_factory(&mut base, "localhost", port, factory);
    conn.set_tls(&mut base, Some(tls(&pki))).unwrap();
    let results = get_all(&mut base, conn, &["/close", "/hello"]);
    let results: Vec<Response> = results.into_iter().map(ok).collect();
    assert_eq!(results[0].body(), b"bye");
    assert_eq!(results[0].header("X-Conn"), Some("1"));
    // The server closed after the first: the second came on a new TLS connection.
    assert_eq!(results[1].body(), b"Hello over TLS");
    assert_eq!(results[1].header("X-Conn"), Some("2"));
    assert_eq!(*made.borrow(), 2);
}
