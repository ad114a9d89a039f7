//! The HTTP benchmark's server on hyper 1.x, the anchor a Rust user would pick instead: a
//! current-thread tokio runtime per thread.
//!
//! `http_hello_hyper -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]`: the same CLI and
//! routes as `http_hello` (`GET /`: 13-byte `Hello, World!` as `text/plain`; `GET /large`:
//! LARGE_BYTES of `x` from one shared `Bytes`; 404 otherwise), 127.0.0.1 only, backlog 1024,
//! `-N` for TCP_NODELAY, `-j` for one runtime per thread sharing the port through
//! SO_REUSEPORT. Prints `READY port=PORT`; exits on SIGTERM/SIGINT or after SECONDS. An
//! accept error (such as running out of descriptors) is logged and retried after a pause.

#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use oxevent_benches::{Args, die};
use tokio::net::TcpListener;

const USAGE: &str = "usage: http_hello_hyper -p PORT -b LARGE_BYTES -T SECONDS [-N] [-j THREADS]";

const HELLO: &[u8] = b"Hello, World!";

fn respond(req: &Request<Incoming>, large: &Bytes) -> Response<Full<Bytes>> {
    let body = match (req.method(), req.uri().path()) {
        (&Method::GET, "/") => Bytes::from_static(HELLO),
        (&Method::GET, "/large") => large.clone(),
        _ => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NOT_FOUND;
            return r;
        }
    };
    let mut r = Response::new(Full::new(body));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain"),
    );
    r
}

fn listener(port: u16, reuseport: bool) -> std::io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    if reuseport {
        sock.set_reuse_port(true)?;
    }
    sock.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    sock.listen(1024)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

async fn serve(lis: std::net::TcpListener, nodelay: bool, large: Bytes) {
    let lis = TcpListener::from_std(lis).unwrap_or_else(|e| die(&format!("listener: {e}")));
    loop {
        let (stream, _) = match lis.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("warning: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if nodelay {
            let _ = stream.set_nodelay(true);
        }
        let large = large.clone();
        tokio::task::spawn_local(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let r = respond(&req, &large);
                async move { Ok::<_, Infallible>(r) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn run_thread(lis: std::net::TcpListener, nodelay: bool, large: Bytes, secs: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| die(&format!("runtime: {e}")));
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .unwrap_or_else(|e| die(&format!("signal: {e}")));
        tokio::select! {
            () = serve(lis, nodelay, large) => {}
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            () = tokio::time::sleep(Duration::from_secs(secs)) => {}
        }
    });
}

fn main() {
    let args = Args::parse("pbTj", USAGE);
    let port = u16::try_from(args.num('p', 0)).unwrap_or_else(|_| die(USAGE));
    let large = usize::try_from(args.num('b', 1 << 20)).unwrap_or_else(|_| die(USAGE));
    let secs = args.num('T', 60).max(1);
    let threads = args.num('j', 1).clamp(1, 64);
    let nodelay = args.flag('N');
    if let Err(e) = oxevent::util::raise_fd_limit(65_536) {
        eprintln!("warning: raising RLIMIT_NOFILE: {e}");
    }
    let large = Bytes::from(vec![b'x'; large]);
    let first = listener(port, threads > 1).unwrap_or_else(|e| die(&format!("listen: {e}")));
    let port = first
        .local_addr()
        .unwrap_or_else(|e| die(&format!("local_addr: {e}")))
        .port();
    let mut listeners = vec![first];
    for _ in 1..threads {
        listeners.push(listener(port, true).unwrap_or_else(|e| die(&format!("listen: {e}"))));
    }
    let (tx, rx) = mpsc::channel::<()>();
    let handles: Vec<_> = listeners
        .into_iter()
        .map(|lis| {
            let (large, tx) = (large.clone(), tx.clone());
            std::thread::spawn(move || {
                run_thread(lis, nodelay, large, secs);
                let _ = tx.send(());
            })
        })
        .collect();
    println!("READY port={port}");
    let _ = std::io::stdout().flush();
    // The first thread to stop (signal or time limit) ends the process.
    let _ = rx.recv();
    drop(handles);
    std::process::exit(0);
}
