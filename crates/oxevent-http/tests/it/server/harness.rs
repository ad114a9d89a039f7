//! A server on its own thread (an `EventBase` is one thread's), driven through `Remote`, and
//! raw-socket helpers. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use oxevent_core::{EventBase, LoopFlags, Remote};
use oxevent_http::server::Server;

/// A running server; dropping it stops the loop and joins the thread.
pub(crate) struct TestServer {
    pub(crate) addr: SocketAddr,
    pub(crate) remote: Remote,
    pub(crate) server: Server,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server bound to 127.0.0.1:0, configured by `setup` on its thread.
    pub(crate) fn start(setup: impl FnOnce(&mut EventBase, Server) + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut base = EventBase::new().expect("base");
            let server = Server::new(&mut base);
            setup(&mut base, server);
            let bound = server
                .bind(&mut base, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
                .expect("bind");
            let addr = bound.local_addr(&mut base).expect("addr").expect("tcp");
            let remote = base.remote().expect("remote");
            tx.send((addr, remote, server)).expect("send");
            base.run(LoopFlags::NO_EXIT_ON_EMPTY).expect("loop");
        });
        let (addr, remote, server) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server start");
        Self {
            addr,
            remote,
            server,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Runs `f` on the server's loop and waits for its result.
    pub(crate) fn on_loop<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut EventBase, Server) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        let server = self.server;
        self.remote
            .run_in_loop(move |base| {
                let _ = tx.send(f(base, server));
            })
            .expect("run_in_loop");
        rx.recv_timeout(Duration::from_secs(10)).expect("loop ran")
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.remote.loopbreak();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads until EOF (bounded by the socket's read timeout); `None` if the peer did not close.
pub(crate) fn read_to_close(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(out),
            Err(_) => return None,
        }
    }
}

/// Sends `wire` and returns everything until the server closes; panics if it does not.
pub(crate) fn exchange_to_close(server: &TestServer, wire: &[u8]) -> String {
    let mut s = server.connect();
    s.write_all(wire).expect("write");
    let got = read_to_close(&mut s).expect("the server closes the connection");
    String::from_utf8_lossy(&got).into_owned()
}

/// One response off a keep-alive connection: head and `Content-Length` body.
pub(crate) fn read_response(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).expect("read head");
        assert_eq!(n, 1, "eof in head: {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
        assert!(buf.len() < 65536, "head too long");
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = header(&head, "content-length").map_or(0, |v| v.parse::<usize>().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("read body");
    (head, body)
}

/// The value of a header in a response head.
pub(crate) fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code of a response.
pub(crate) fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Runs a command to completion within `limit` (killed after), returning its output.
pub(crate) use oxevent_test_support::process::run_within as run;
