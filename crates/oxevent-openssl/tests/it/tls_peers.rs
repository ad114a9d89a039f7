//! Against OpenSSL's own tools: our server under `openssl s_client`, our
//! client against `openssl s_server`, and the client's verification
//! (wrong host name, untrusted CA) rejecting a real server.

use std::cell::RefCell;
use std::io::Write;
use std::net::SocketAddr;
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use openssl::ssl::SslConnector;
use openssl::x509::X509VerifyResult;
use oxevent_bufferevent::{BevFlags, BevOptions, BufferEvent, Listener, ListenerOptions};
use oxevent_core::What;
use oxevent_openssl::{SslBufferEvent, TlsError, TlsState};
use oxevent_test_support::{LineChild, TestPki, Watchdog};

use crate::common::{acceptor, base, pki, record_reads, run_until, s_server};

#[test]
fn our_server_answers_s_client() {
    let _w = Watchdog::new("server vs s_client", Duration::from_secs(30));
    let pki = pki();
    let acceptor = acceptor(&pki);
    let mut base = base();
    let accepted = Rc::new(RefCell::new(Vec::<BufferEvent>::new()));
    let acc = accepted.clone();
    let listener = Listener::bind(
        &mut base,
        "127.0.0.1:0".parse().unwrap(),
        ListenerOptions::CLOSE_ON_FREE | ListenerOptions::REUSEABLE,
        16,
        move |base, _l, fd, _peer| {
            let ssl = oxevent_openssl::server_ssl(&acceptor).unwrap();
            let bev = oxevent_openssl::socket_new(
                base,
                Some(fd),
                ssl,
                TlsState::Accepting,
                BevOptions::CLOSE_ON_FREE,
            )
            .unwrap();
            // Echo each line back with a prefix, then close cleanly.
            bev.on_read(base, |base, bev| {
                let line = bev
                    .input(base)
                    .unwrap()
                    .readln(oxevent_bufferevent::EolStyle::Lf, 1024)
                    .unwrap();
                if let Some(line) = line {
                    let mut reply = b"echo: ".to_vec();
                    reply.extend_from_slice(&line);
                    reply.push(b'\n');
                    bev.write(base, &reply).unwrap();
                    bev.on_write(base, |base, bev| {
                        // Freeing sends close_notify.
                        bev.free(base).unwrap();
                    })
                    .unwrap();
                }
            })
            .unwrap();
            bev.enable(base, What::READ | What::WRITE).unwrap();
            acc.borrow_mut().push(bev);
        },
    )
    .unwrap();
    let addr: SocketAddr = listener.local_addr(&mut base).unwrap().as_socket().unwrap();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect"])
        .arg(addr.to_string())
        .arg("-CAfile")
        .arg(pki.ca_pem_path())
        .args([
            "-verify_return_error",
            "-verify_hostname",
            "localhost",
            "-servername",
            "localhost",
            "-quiet",
        ]);
    let mut client = LineChild::spawn(&mut cmd);
    client
        .child()
        .stdin
        .as_mut()
        .unwrap()
        .write_all(b"hello tls\n")
        .unwrap();
    let mut status = None;
    assert!(
        run_until(&mut base, Duration::from_secs(20), |_| {
            status = client.child().try_wait().unwrap();
            status.is_some()
        }),
        "s_client did not finish"
    );
    assert!(status.unwrap().success(), "s_client failed: {status:?}");
    // The reader thread may still be passing the last lines on.
    assert!(
        client.wait_line("echo: hello tls", Duration::from_secs(10)),
        "s_client did not print the echo"
    );
    assert_eq!(accepted.borrow().len(), 1);
    let bev = accepted.borrow()[0];
    assert!(!bev.is_valid(&mut base), "freed after the reply");
}

/// Connects our client to `addr` with `ssl`; returns what it read, the
/// events it got and its error (if any).
fn fetch(
    addr: SocketAddr,
    ssl: openssl::ssl::Ssl,
    check: impl FnOnce(&mut oxevent_core::EventBase, BufferEvent) + 'static,
) -> (Vec<u8>, Vec<BevFlags>, Option<TlsError>) {
    let mut base = base();
    let bev = oxevent_openssl::socket_new(
        &mut base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap();
    assert_eq!(bev.fd(&mut base).unwrap(), None, "no socket yet");
    assert_eq!(bev.underlying(&mut base).unwrap(), None, "socket mode");
    let got = record_reads(&mut base, bev);
    let events = Rc::new(RefCell::new(Vec::new()));
    let error = Rc::new(RefCell::new(None));
    let (e, er) = (events.clone(), error.clone());
    let mut check = Some(check);
    bev.on_event(&mut base, move |base, bev, ev| {
        e.borrow_mut().push(ev.what);
        if ev.what.contains(BevFlags::CONNECTED) {
            if let Some(c) = check.take() {
                c(base, bev);
            }
            bev.write(base, b"GET / HTTP/1.0\r\n\r\n").unwrap();
        }
        if ev.what.contains(BevFlags::ERROR) {
            *er.borrow_mut() = bev.openssl_error(base).unwrap();
        }
    })
    .unwrap();
    bev.enable(&mut base, What::READ | What::WRITE).unwrap();
    oxevent_openssl::connect(&mut base, bev, addr).unwrap();
    assert!(bev.fd(&mut base).unwrap().is_some(), "the socket's fd");
    assert!(
        run_until(&mut base, Duration::from_secs(20), |_| events
            .borrow()
            .iter()
            .any(|w| w.intersects(BevFlags::EOF | BevFlags::ERROR))),
        "no end: events {:?}",
        events.borrow()
    );
    bev.free(&mut base).unwrap();
    let out = got.borrow().clone();
    let evs = events.borrow().clone();
    let err = error.borrow_mut().take();
    (out, evs, err)
}

#[test]
fn our_client_fetches_from_s_server() {
    let _w = Watchdog::new("client vs s_server", Duration::from_secs(30));
    let pki = pki();
    let (_server, addr) = s_server(&pki);
    let connector = pki.connector();
    let ssl = oxevent_openssl::client_ssl(&connector, "localhost").unwrap();
    let (body, events, err) = fetch(addr, ssl, |base, bev| {
        let ssl = bev.ssl(base).unwrap();
        assert_eq!(ssl.verify_result(), X509VerifyResult::OK);
        let peer = ssl.peer_certificate().expect("peer certificate");
        let cn = peer
            .subject_name()
            .entries_by_nid(openssl::nid::Nid::COMMONNAME)
            .next()
            .unwrap()
            .data()
            .as_slice()
            .to_vec();
        assert_eq!(cn, b"localhost");
        assert!(bev.is_handshake_done(base).unwrap());
    });
    assert_eq!(events[0], BevFlags::CONNECTED, "{events:?}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("HTTP/1.0 200 ok"), "{text}");
    // s_server -www closes with close_notify: a clean EOF.
    assert!(
        events.last().unwrap().contains(BevFlags::EOF),
        "{events:?} {err:?}"
    );
}

fn rejected(connector: &SslConnector, host: &str, pki: &TestPki) -> (Vec<BevFlags>, TlsError) {
    let (_server, addr) = s_server(pki);
    let ssl = oxevent_openssl::client_ssl(connector, host).unwrap();
    let (body, events, err) = fetch(addr, ssl, |_, _| panic!("must not connect"));
    assert!(body.is_empty());
    assert!(!events.iter().any(|e| e.contains(BevFlags::CONNECTED)));
    (events, err.expect("an error"))
}

#[test]
fn wrong_host_name_is_rejected() {
    let _w = Watchdog::new("wrong host name", Duration::from_secs(30));
    let pki = pki();
    let (events, err) = rejected(&pki.connector(), "wrong.example", &pki);
    assert!(events.last().unwrap().contains(BevFlags::ERROR));
    let stack = err.error_stack().expect("OpenSSL's error stack");
    assert!(
        format!("{stack}").contains("certificate verify failed"),
        "{stack}"
    );
    match &err {
        TlsError::Ssl(e) => assert!(e.ssl_error().is_some()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn untrusted_ca_is_rejected() {
    let _w = Watchdog::new("untrusted CA", Duration::from_secs(30));
    let (pki, other) = (pki(), pki());
    let (events, err) = rejected(&other.connector(), "localhost", &pki);
    assert!(events.last().unwrap().contains(BevFlags::ERROR));
    let stack = err.error_stack().expect("OpenSSL's error stack");
    assert!(
        format!("{stack}").contains("certificate verify failed"),
        "{stack}"
    );
}

#[test]
fn turning_verification_off_is_explicit() {
    let _w = Watchdog::new("insecure client", Duration::from_secs(30));
    let (pki, other) = (pki(), pki());
    let (_server, addr) = s_server(&pki);
    // Untrusted CA and the wrong name: accepted only by the insecure session.
    let ssl = oxevent_openssl::insecure_client_ssl(&other.connector(), "wrong.example").unwrap();
    let (body, events, _err) = fetch(addr, ssl, |_, _| {});
    assert_eq!(events[0], BevFlags::CONNECTED, "{events:?}");
    assert!(String::from_utf8_lossy(&body).starts_with("HTTP/1.0 200 ok"));
}
