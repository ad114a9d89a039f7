//! Smoke tests of the HTTP client examples (`http-connect`): through a small python3
//! CONNECT proxy to Python's `http.server`.

use std::process::{Command, Stdio};
use std::time::Duration;

use oxevent_test_support::TempDir;
use oxevent_test_support::process::{python_http_server, python_script_server};

use crate::examples::{example, wait_bounded};

/// A CONNECT-only proxy: answers `200` and relays bytes both ways. It prints the targets
/// it tunnelled to on stdout after its `READY` line.
const PROXY: &str = r#"
import select, socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print("READY port=%d" % ls.getsockname()[1], flush=True)
def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        d = c.recv(4096)
        if not d:
            return
        data += d
    head, _, rest = data.partition(b"\r\n\r\n")
    method, target, _ = head.split(b"\r\n")[0].decode().split(" ")
    if method != "CONNECT":
        c.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        c.close()
        return
    host, port = target.rsplit(":", 1)
    u = socket.create_connection((host.strip("[]"), int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    if rest:
        u.sendall(rest)
    while True:
        r, _, _ = select.select([c, u], [], [], 30)
        if not r:
            break
        for s in r:
            d = s.recv(65536)
            if not d:
                c.close()
                u.close()
                return
            (u if s is c else c).sendall(d)
while True:
    c, _ = ls.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
"#;

#[test]
fn http_connect_fetches_through_a_tunnel() {
    let dir = TempDir::new("http-connect");
    std::fs::write(dir.join("greeting.txt"), b"hello through the tunnel\n").unwrap();
    let (_origin, origin_port) = python_http_server(dir.path());
    let (_proxy, proxy_port) = python_script_server(PROXY, std::iter::empty::<&str>());

    let url = format!("http://127.0.0.1:{origin_port}/greeting.txt");
    let child = Command::new(example("http-connect"))
        .arg(format!("127.0.0.1:{proxy_port}"))
        .arg(&url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{out:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("CONNECT 127.0.0.1:{origin_port}: 200")),
        "{text}"
    );
    assert!(text.contains(&format!("GET {url}: 200 OK")), "{text}");
    assert!(text.ends_with("hello through the tunnel\n"), "{text}");
}

#[test]
fn http_connect_reports_a_refusing_proxy() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(example("http-connect"))
        .arg(format!("127.0.0.1:{port}"))
        .arg("http://127.0.0.1:1/")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = wait_bounded(child, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not connect"), "{err}");
}
