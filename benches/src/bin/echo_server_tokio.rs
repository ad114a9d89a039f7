//! The echo benchmark's Rust anchor: what a Rust user would write instead of
//! oxevent, on tokio with a current-thread runtime.
//!
//! `echo_server_tokio -p PORT -T SECONDS`: listens on 127.0.0.1:PORT only
//! (0 = a free port), prints `READY port=PORT` once listening, exits on
//! SIGTERM/SIGINT or after SECONDS (default 60). One task per connection
//! (TCP_NODELAY) reads into its own 16 KiB buffer and writes what it read
//! back with `write_all`, until EOF or an error. The buffer is allocated when
//! the connection is accepted, as in tokio's own echo example (which uses
//! 1 KiB; 16 KiB lets a 16 KiB message come back in one read).
//!
//! Benchmark-only: tokio is not a dependency of any library crate.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use oxevent_benches::{Args, die};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::signal::unix::{SignalKind, signal};

const USAGE: &str = "usage: echo_server_tokio -p PORT -T SECONDS";

/// Read buffer of each connection.
const BUF: usize = 16 * 1024;

/// Accept backlog, the same for every echo server (tokio's default too).
const BACKLOG: u32 = 1024;

async fn echo(mut s: TcpStream) {
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
    let args = Args::parse("pT", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
    if let Err(e) = oxevent::util::raise_fd_limit(65_536) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .unwrap_or_else(|e| die(&format!("tokio runtime: {e}")));
    rt.block_on(serve(port, Duration::from_secs(secs)));
}

async fn serve(port: u16, limit: Duration) {
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
                    tokio::spawn(echo(s));
                }
                // EMFILE & co.: report, and go on after a pause like libevent's listener
                Err(e) => {
                    eprintln!("warning: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}
