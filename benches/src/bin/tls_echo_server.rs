//! The TLS echo benchmark's server on oxevent's TLS bufferevents.
//!
//! `tls_echo_server -p PORT -T SECONDS -c CERT -k KEY`: listens on
//! 127.0.0.1:PORT only (0 = a free port; backlog 1024), prints
//! `READY port=PORT` once listening, exits on SIGTERM/SIGINT or after
//! SECONDS (default 60). Every accepted connection gets TCP_NODELAY and a
//! socket-mode TLS bufferevent (`oxevent::openssl::socket_new`, state
//! accepting) whose read callback moves the whole input to the output with
//! `add_buffer`; the event callback frees it on EOF or error.
//!
//! The OpenSSL context is the same in the three servers (this one,
//! `tls_echo_server_tokio` and `benches/c/tls_echo_server_libevent.c`):
//! TLS 1.3 only, the one cipher suite TLS_AES_128_GCM_SHA256,
//! `SSL_MODE_RELEASE_BUFFERS`, no renegotiation, the PEM chain and key given.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use oxevent::bufferevent::{BevOptions, Listener, ListenerOptions};
use oxevent::openssl::openssl::ssl::{
    SslAcceptor, SslFiletype, SslMethod, SslMode, SslOptions, SslVersion,
};
use oxevent::openssl::{self as tls, TlsState};
use oxevent::{EventBase, util};
use oxevent_benches::{Args, die, echo};

const USAGE: &str = "usage: tls_echo_server -p PORT -T SECONDS -c CERT -k KEY";

/// Accept backlog, the same for every echo server.
const BACKLOG: i32 = 1024;

/// The benchmark's context, identical on every side.
fn acceptor(cert: &Path, key: &Path) -> SslAcceptor {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())
        .unwrap_or_else(|e| die(&format!("SSL context: {e}")));
    b.set_min_proto_version(Some(SslVersion::TLS1_3))
        .unwrap_or_else(|e| die(&format!("TLS 1.3: {e}")));
    b.set_ciphersuites("TLS_AES_128_GCM_SHA256")
        .unwrap_or_else(|e| die(&format!("cipher suite: {e}")));
    b.set_mode(SslMode::RELEASE_BUFFERS);
    b.set_options(SslOptions::NO_RENEGOTIATION);
    b.set_certificate_chain_file(cert)
        .unwrap_or_else(|e| die(&format!("{}: {e}", cert.display())));
    b.set_private_key_file(key, SslFiletype::PEM)
        .unwrap_or_else(|e| die(&format!("{}: {e}", key.display())));
    b.build()
}

/// One accepted connection: TCP_NODELAY, then a TLS bufferevent that echoes.
fn accept(base: &mut EventBase, acceptor: &SslAcceptor, fd: OwnedFd) -> std::io::Result<()> {
    let sock = socket2::Socket::from(fd);
    sock.set_tcp_nodelay(true)?;
    let ssl = tls::server_ssl(acceptor).map_err(std::io::Error::other)?;
    let bev = tls::socket_new(
        base,
        Some(sock.into()),
        ssl,
        TlsState::Accepting,
        BevOptions::CLOSE_ON_FREE,
    )?;
    echo::serve(base, bev)
}

fn main() {
    let args = Args::parse("pTck", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
    let cert = args.str('c').unwrap_or_else(|| die(USAGE)).to_string();
    let key = args.str('k').unwrap_or_else(|| die(USAGE)).to_string();
    let acceptor = acceptor(Path::new(&cert), Path::new(&key));
    if let Err(e) = util::raise_fd_limit(65_536) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let mut base = EventBase::new().unwrap_or_else(|e| die(&format!("event base: {e}")));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let listener = Listener::bind(
        &mut base,
        addr,
        ListenerOptions::REUSEABLE | ListenerOptions::CLOSE_ON_FREE,
        BACKLOG,
        move |base: &mut EventBase, _l: Listener, fd: OwnedFd, _peer: socket2::SockAddr| {
            if let Err(e) = accept(base, &acceptor, fd) {
                eprintln!("warning: accepted connection: {e}");
            }
        },
    )
    .unwrap_or_else(|e| die(&format!("cannot listen on {addr}: {e}")));
    let port = listener
        .local_addr(&mut base)
        .ok()
        .and_then(|a| a.as_socket())
        .map_or_else(|| die("listener has no address"), |a| a.port());
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let ev = base
            .signal_new(sig, |base, _, _| base.loopbreak())
            .unwrap_or_else(|e| die(&format!("signal event: {e}")));
        base.add(ev, None)
            .unwrap_or_else(|e| die(&format!("adding the signal event: {e}")));
    }
    base.loopexit(Some(Duration::from_secs(secs)))
        .unwrap_or_else(|e| die(&format!("loopexit: {e}")));
    println!("READY port={port}");
    let _ = std::io::stdout().flush();
    base.dispatch()
        .unwrap_or_else(|e| die(&format!("dispatch: {e}")));
}
