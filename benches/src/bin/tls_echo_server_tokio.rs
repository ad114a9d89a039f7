//! The TLS echo benchmark's Rust anchor: tokio (current-thread runtime) with
//! tokio-openssl, what a Rust user would write instead of oxevent.
//!
//! `tls_echo_server_tokio -p PORT -T SECONDS -c CERT -k KEY`: listens on
//! 127.0.0.1:PORT only (0 = a free port), prints `READY port=PORT` once
//! listening, exits on SIGTERM/SIGINT or after SECONDS (default 60). One
//! task per connection (TCP_NODELAY): the TLS accept, then reads into its
//! own 16 KiB buffer and writes what it read back with `write_all`, until
//! EOF or an error. The OpenSSL context is the one of the other two TLS
//! echo servers (TLS 1.3, TLS_AES_128_GCM_SHA256, `SSL_MODE_RELEASE_BUFFERS`).
//!
//! Benchmark-only: tokio is not a dependency of any library crate.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslMode, SslOptions, SslVersion};
use oxevent_benches::{Args, die};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};
use tokio_openssl::SslStream;

const USAGE: &str = "usage: tls_echo_server_tokio -p PORT -T SECONDS -c CERT -k KEY";

/// Read buffer of each connection.
const BUF: usize = 16 * 1024;

/// Accept backlog, the same for every echo server.
const BACKLOG: u32 = 1024;

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

async fn echo(acceptor: Arc<SslAcceptor>, s: TcpStream) {
    let Ok(ssl) = openssl::ssl::Ssl::new(acceptor.context()) else {
        return;
    };
    let Ok(mut s) = SslStream::new(ssl, s) else {
        return;
    };
    if Pin::new(&mut s).accept().await.is_err() {
        return;
    }
    let mut buf = vec![0u8; BUF];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if s.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn main() {
    let args = Args::parse("pTck", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
    let cert = args.str('c').unwrap_or_else(|| die(USAGE)).to_string();
    let key = args.str('k').unwrap_or_else(|| die(USAGE)).to_string();
    let acceptor = Arc::new(acceptor(Path::new(&cert), Path::new(&key)));
    if let Err(e) = oxevent::util::raise_fd_limit(65_536) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap_or_else(|e| die(&format!("tokio runtime: {e}")));
    rt.block_on(serve(acceptor, port, Duration::from_secs(secs)));
}

async fn serve(acceptor: Arc<SslAcceptor>, port: u16, limit: Duration) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let sock = tokio::net::TcpSocket::new_v4().unwrap_or_else(|e| die(&format!("socket: {e}")));
    sock.set_reuseaddr(true)
        .unwrap_or_else(|e| die(&format!("SO_REUSEADDR: {e}")));
    sock.bind(addr)
        .unwrap_or_else(|e| die(&format!("cannot bind {addr}: {e}")));
    let listener: TcpListener = sock
        .listen(BACKLOG)
        .unwrap_or_else(|e| die(&format!("listen: {e}")));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| die(&format!("local_addr: {e}")))
        .port();
    let mut term = signal(SignalKind::terminate()).unwrap_or_else(|e| die(&format!("{e}")));
    let mut int = signal(SignalKind::interrupt()).unwrap_or_else(|e| die(&format!("{e}")));
    let deadline = tokio::time::sleep(limit);
    tokio::pin!(deadline);
    println!("READY port={port}");
    let _ = std::io::stdout().flush();
    loop {
        tokio::select! {
            _ = &mut deadline => break,
            _ = term.recv() => break,
            _ = int.recv() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => {
                    if let Err(e) = s.set_nodelay(true) {
                        eprintln!("warning: TCP_NODELAY: {e}");
                    }
                    tokio::spawn(echo(acceptor.clone(), s));
                }
                Err(e) => {
                    eprintln!("warning: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}
