//! Smoke tests of the TLS examples (`le-proxy --tls-cert/--tls-key`, `https-client`), against
//! OpenSSL peers (`openssl s_server`, and a client on the `openssl` crate).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use oxevent::openssl::openssl::ssl::{SslConnector, SslMethod};
use oxevent_test_support::{LineChild, TestPki, free_port};

#[cfg(feature = "extra")]
use crate::examples::wait_bounded;
use crate::examples::{echo_backend, example};

/// The certificates: a test CA and a leaf for `localhost` and 127.0.0.1.
fn pki() -> TestPki {
    TestPki::new("ex-tls")
}

#[test]
fn le_proxy_speaks_tls_on_the_listening_side() {
    let pki = pki();
    let (backend_addr, echo) = echo_backend();
    let mut proxy = None;
    let mut listen = SocketAddr::from(([127, 0, 0, 1], 0));
    for _ in 0..5 {
        listen.set_port(free_port());
        let g = LineChild::spawn(
            Command::new(example("le-proxy"))
                .args(["--listen", &listen.to_string()])
                .args(["--connect", &backend_addr.to_string()])
                .arg("--tls-cert")
                .arg(pki.cert_path())
                .arg("--tls-key")
                .arg(pki.key_path()),
        );
        if g.wait_line("listening on", Duration::from_secs(10)) {
            proxy = Some(g);
            break;
        }
    }
    let _proxy = proxy.expect("le-proxy did not start");

    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.set_ca_file(pki.ca_pem_path()).unwrap();
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

/// `openssl s_server -www` on a free port with the test leaf.
#[cfg(feature = "extra")]
fn s_server(pki: &TestPki) -> (LineChild, u16) {
    pki.s_server(pki.dir(), &["-www", "-naccept", "4"])
}

#[cfg(feature = "extra")]
fn https_client(args: &[&str]) -> std::process::Output {
    let child = Command::new(example("https-client"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn https-client");
    wait_bounded(child, Duration::from_secs(30))
}

// `https-client` uses the HTTP client (the `extra` feature).
#[cfg(feature = "extra")]
#[test]
fn https_client_fetches_and_verifies() {
    let pki = pki();
    let (_server, port) = s_server(&pki);
    let url = format!("https://localhost:{port}/");
    let ca = pki.ca_pem_path();
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
