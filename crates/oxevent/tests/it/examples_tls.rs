//! Smoke tests of the TLS examples (`le-proxy --tls-cert/--tls-key`, `https-client`), against
//! OpenSSL peers (`openssl s_server`, and a client on the `openssl` crate).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use oxevent::openssl::openssl::ssl::{SslConnector, SslMethod};

use crate::examples::example;
#[cfg(feature = "extra")]
use crate::examples::wait_bounded;

/// A self-signed certificate for `localhost` and 127.0.0.1 (its own CA),
/// made with the `openssl` command in a private directory removed on drop.
struct Cert {
    dir: PathBuf,
}

impl Cert {
    fn new() -> Cert {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "oxevent-ex-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-keyout",
            ])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl req");
        assert!(st.success());
        Cert { dir }
    }

    fn cert(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.join("key.pem")
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process killed on drop, with its stdout lines on a channel.
struct Guard {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Guard {
    fn spawn(mut cmd: Command) -> Guard {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Guard { child, lines: rx }
    }

    fn wait_line(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Ok(l) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if l.contains(needle) {
                return true;
            }
        }
        false
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn le_proxy_speaks_tls_on_the_listening_side() {
    let cert = Cert::new();
    // The backend: a plain echo of one connection.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = backend.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut proxy = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    for _ in 0..5 {
        listen.set_port(free_port());
        let mut cmd = Command::new(example("le-proxy"));
        cmd.args(["--listen", &listen.to_string()])
            .args(["--connect", &backend_addr.to_string()])
            .arg("--tls-cert")
            .arg(cert.cert())
            .arg("--tls-key")
            .arg(cert.key());
        let g = Guard::spawn(cmd);
        if g.wait_line("listening on") {
            proxy = Some(g);
            break;
        }
    }
    let _proxy = proxy.expect("le-proxy did not start");

    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(cert.cert()).unwrap();
    let connector = b.build();
    let tcp = TcpStream::connect(listen).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut tls = connector.connect("localhost", tcp).expect("TLS handshake");
    tls.write_all(b"hello through the proxy\n").unwrap();
    let mut got = vec![0u8; 24];
    tls.read_exact(&mut got).unwrap();
    assert_eq!(got, b"hello through the proxy\n");
    let _ = tls.shutdown();
    drop(tls);
    echo.join().unwrap();
}

/// `openssl s_server -www` on a free port with `cert`.
#[cfg(feature = "extra")]
fn s_server(cert: &Cert) -> (Guard, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut cmd = Command::new("openssl");
        cmd.args(["s_server", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(cert.cert())
            .arg("-key")
            .arg(cert.key())
            .args(["-www", "-naccept", "4"]);
        let g = Guard::spawn(cmd);
        if g.wait_line("ACCEPT") {
            return (g, port);
        }
    }
    panic!("openssl s_server did not start");
}

#[cfg(feature = "extra")]
fn https_client(args: &[&str]) -> std::process::Output {
    let child = Command::new(example("https-client"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn https-client");
    wait_bounded(child, Duration::from_secs(30))
}

// `https-client` uses the HTTP client (the `extra` feature).
#[cfg(feature = "extra")]
#[test]
fn https_client_fetches_and_verifies() {
    let cert = Cert::new();
    let (_server, port) = s_server(&cert);
    let url = format!("https://localhost:{port}/");
    let ca = cert.cert();
    let ca = ca.to_str().unwrap();

    let out = https_client(&[&url, "--ca", ca]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.starts_with("Response line: 200 ok"), "{text}");
    assert!(text.contains("<HTML>") || text.contains("<html>"), "{text}");

    // Not trusted without --ca: verification fails, with OpenSSL's reason.
    let out = https_client(&[&url]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate verify failed"), "{err}");

    // --insecure turns verification off.
    let out = https_client(&[&url, "--insecure"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Response line: 200 ok"));
}
