//! The echo benchmark's server on oxevent bufferevents.
//!
//! `echo_server -p PORT -T SECONDS`: listens on 127.0.0.1:PORT only (0 = a
//! free port; backlog 1024, as the C and tokio servers), prints
//! `READY port=PORT` once listening, exits on SIGTERM/SIGINT (a signal
//! event) or after SECONDS (default 60, `loopexit`). Every accepted
//! connection gets TCP_NODELAY and a socket [`BufferEvent`] whose read
//! callback moves the whole input buffer to the output buffer with
//! `add_buffer` (segments move, bytes are not copied); the event callback
//! frees it on EOF or error. The same program as
//! `benches/c/echo_server_libevent.c`, line for line.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use oxevent::bufferevent::{BevOptions, BufferEvent, Listener, ListenerOptions};
use oxevent::{EventBase, util};
use oxevent_benches::{Args, die, echo};

const USAGE: &str = "usage: echo_server -p PORT -T SECONDS";

/// Accept backlog, the same for every echo server.
const BACKLOG: i32 = 1024;

/// One accepted connection: TCP_NODELAY, then a bufferevent that echoes.
fn accept(base: &mut EventBase, fd: OwnedFd) -> std::io::Result<()> {
    let sock = socket2::Socket::from(fd);
    sock.set_tcp_nodelay(true)?;
    let bev = BufferEvent::socket(base, Some(sock.into()), BevOptions::CLOSE_ON_FREE)?;
    echo::serve(base, bev)
}

fn main() {
    let args = Args::parse("pT", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
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
        |base: &mut EventBase, _l: Listener, fd: OwnedFd, _peer: socket2::SockAddr| {
            if let Err(e) = accept(base, fd) {
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
