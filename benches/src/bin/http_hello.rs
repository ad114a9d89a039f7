//! The HTTP benchmark's server on oxevent's `http::server`.
//!
//! `http_hello -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]`: listens on
//! 127.0.0.1:PORT only (0 = a free port; backlog 1024), serves `GET /` with the 13-byte
//! `Hello, World!` as `text/plain` and `GET /large` with LARGE_BYTES (default 1 MiB) of `x`
//! (one shared `Bytes`: every reply hands the same memory to the socket, nothing is copied
//! per request), 404 otherwise. `-N` sets TCP_NODELAY on accepted sockets. `-j THREADS`
//! runs one server per thread, each with its own event base, sharing the port through
//! SO_REUSEPORT. Prints `READY port=PORT` once listening; exits on SIGTERM/SIGINT or after
//! SECONDS (default 60). The same program as `http_hello_hyper.rs` and
//! `benches/c/http_hello_libevent.c`.

#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use oxevent::bufferevent::{Listener, ListenerOptions};
use oxevent::http::server::Server;
use oxevent::{EventBase, util};
use oxevent_benches::{Args, die};

const USAGE: &str = "usage: http_hello -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]";

/// Accept backlog, the same for every HTTP server of the benchmark.
const BACKLOG: i32 = 1024;

struct Opts {
    port: u16,
    secs: u64,
    nodelay: bool,
    reuseport: bool,
    large: Bytes,
}

/// One server on this thread; sends the bound port, then runs until a signal or the time
/// limit.
fn serve(o: &Opts, ready: &mpsc::Sender<u16>) -> std::io::Result<()> {
    let mut base = EventBase::new()?;
    let server = Server::new(&mut base);
    server.set_nodelay(&mut base, o.nodelay)?;
    server.set_default_content_type(&mut base, Some("text/plain"))?;
    server.set_cb(&mut base, "/", |base, req| {
        let _ = req.send_reply(base, 200, "Hello, World!");
    })?;
    let large = o.large.clone();
    server.set_cb(&mut base, "/large", move |base, req| {
        let _ = req.send_reply(base, 200, large.clone());
    })?;
    let mut options = ListenerOptions::REUSEABLE | ListenerOptions::CLOSE_ON_FREE;
    if o.reuseport {
        options |= ListenerOptions::REUSEABLE_PORT;
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, o.port));
    // The server replaces this accept callback.
    let lis = Listener::bind(
        &mut base,
        addr,
        options,
        BACKLOG,
        |_, _, _fd: OwnedFd, _| {},
    )?;
    let bound = server.bind_listener(&mut base, lis)?;
    let port = bound.local_addr(&mut base)?.map_or(o.port, |a| a.port());
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let ev = base.signal_new(sig, |base, _, _| base.loopbreak())?;
        base.add(ev, None)?;
    }
    base.loopexit(Some(Duration::from_secs(o.secs)))?;
    let _ = ready.send(port);
    base.dispatch()?;
    Ok(())
}

fn main() {
    let args = Args::parse("pbTj", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let large = usize::try_from(args.num('b', 1 << 20)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
    let threads = args.num('j', 1).clamp(1, 64);
    if let Err(e) = util::raise_fd_limit(65_536) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let mut opts = Opts {
        port,
        secs,
        nodelay: args.flag('N'),
        reuseport: threads > 1,
        large: Bytes::from(vec![b'x'; large]),
    };
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for i in 0..threads {
        let o = Opts {
            large: opts.large.clone(),
            ..opts
        };
        let tx = tx.clone();
        handles.push(std::thread::spawn(move || {
            if let Err(e) = serve(&o, &tx) {
                die(&format!("http_hello: {e}"));
            }
        }));
        let bound = rx
            .recv()
            .unwrap_or_else(|_| die("http_hello: a server thread failed"));
        if i == 0 {
            // The others share the port the first one got.
            opts.port = bound;
        }
    }
    println!("READY port={}", opts.port);
    let _ = std::io::stdout().flush();
    for h in handles {
        let _ = h.join();
    }
}
