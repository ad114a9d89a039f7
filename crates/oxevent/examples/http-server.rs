//! `http-server`: serves the files and directory listings of a directory, after libevent's
//! `sample/http-server.c`.
//!
//! ```text
//! cargo run --example http-server --features extra -- [--addr 127.0.0.1:8080] [--docroot DIR] [--threads N]
//! curl http://127.0.0.1:8080/
//! ```
//!
//! - Files go out with `sendfile` (a file segment of the connection's output buffer); nothing
//!   is read into memory.
//! - Directories get an HTML listing (names HTML-escaped, links percent-encoded).
//! - Paths that would escape the document root (`..`, percent-encoded `..` or `/`, NUL,
//!   symbolic links pointing outside) get 404.
//! - `--threads N` runs N servers, one per thread, each with its own event base, sharing the
//!   port through `SO_REUSEPORT`: the kernel spreads connections over them.
//! - Prints `listening on http://ADDR` once bound; SIGINT or SIGTERM drains the servers
//!   (requests in flight finish) and exits.
//! - `--tls-cert F --tls-key F` serve HTTPS instead (PEM files), through a bufferevent
//!   factory that wraps each accepted socket in a TLS bufferevent; this needs the `openssl`
//!   feature (`--features extra,openssl`), and without it the program says so and exits.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::mpsc;

use oxevent::EventBase;
use oxevent::bufferevent::{FileSegment, ListenerOptions};
use oxevent::http::server::{Request, Server};
use oxevent::http::uri;

struct Args {
    addr: SocketAddr,
    docroot: PathBuf,
    threads: usize,
    tls: Option<(PathBuf, PathBuf)>,
}

fn usage(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{msg}\nusage: http-server [--addr 127.0.0.1:8080] [--docroot DIR] [--threads N] \
             [--tls-cert F --tls-key F]"
        ),
    )
}

fn parse_args() -> io::Result<Args> {
    let mut args = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        docroot: PathBuf::from("."),
        threads: 1,
        tls: None,
    };
    let (mut cert, mut key) = (None, None);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--addr" => {
                args.addr = value()?
                    .parse()
                    .map_err(|e| usage(&format!("--addr: {e}")))?
            }
            "--docroot" => args.docroot = PathBuf::from(value()?),
            "--threads" => {
                args.threads = value()?
                    .parse()
                    .ok()
                    .filter(|&n| (1..=256).contains(&n))
                    .ok_or_else(|| usage("--threads: a number from 1 to 256"))?;
            }
            "--tls-cert" => cert = Some(PathBuf::from(value()?)),
            "--tls-key" => key = Some(PathBuf::from(value()?)),
            _ => return Err(usage(&format!("unknown argument {a}"))),
        }
    }
    match (cert, key) {
        (Some(c), Some(k)) => args.tls = Some((c, k)),
        (None, None) => {}
        _ => return Err(usage("--tls-cert and --tls-key go together")),
    }
    Ok(args)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "md" | "rs" | "toml" | "c" | "h" => "text/plain; charset=utf-8",
        "css" => "text/css",
        "js" => "text/javascript",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The file `target` names under `root` (canonical), or `None` if it would escape it.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let raw = target.split(['?', '#']).next().unwrap_or("/");
    let decoded = uri::decode(raw, false).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    if decoded.contains('\0') || !decoded.starts_with('/') {
        return None;
    }
    let mut path = root.to_path_buf();
    for c in Path::new(&decoded).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => path.push(part),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    // Symbolic links may point anywhere: the real path must still be under the root.
    let real = path.canonicalize().ok()?;
    real.starts_with(root).then_some(real)
}

fn listing(dir: &Path, shown: &str) -> io::Result<String> {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| {
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (e.file_name().to_string_lossy().into_owned(), is_dir)
        })
        .collect();
    names.sort();
    let title = uri::html_escape(shown);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1>\n<ul>\n"
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        page.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            uri::encode(name.as_bytes(), false),
            uri::html_escape(&name)
        ));
    }
    page.push_str("</ul></body></html>\n");
    Ok(page)
}

fn serve(base: &mut EventBase, root: &Path, mut req: Request) {
    let Some(path) = resolve(root, req.uri()) else {
        let _ = req.send_error(base, 404, None);
        return;
    };
    if path.is_dir() {
        let shown = req.path().into_owned();
        if !shown.ends_with('/') {
            let location = format!("{}/", req.uri().split('?').next().unwrap_or("/"));
            req.output_headers_mut().append("Location", location);
            let _ = req.send_reply(base, 301, ());
            return;
        }
        match listing(&path, &shown) {
            Ok(page) => {
                req.output_headers_mut()
                    .append("Content-Type", "text/html; charset=utf-8");
                let _ = req.send_reply(base, 200, page);
            }
            Err(_) => {
                let _ = req.send_error(base, 403, None);
            }
        }
        return;
    }
    let file = File::open(&path).and_then(|f| {
        let len = f.metadata()?.len();
        Ok((f, len))
    });
    match file {
        Ok((f, len)) => match FileSegment::new(f, 0, len) {
            Ok(seg) => {
                req.output_headers_mut()
                    .append("Content-Type", content_type(&path));
                let _ = req.send_reply(base, 200, seg);
            }
            Err(_) => {
                let _ = req.send_error(base, 500, None);
            }
        },
        Err(_) => {
            let _ = req.send_error(base, 404, None);
        }
    }
}

/// The TLS server context, when HTTPS was asked for and is built in.
#[cfg(feature = "openssl")]
type Tls = Option<oxevent::openssl::openssl::ssl::SslAcceptor>;
/// Without the `openssl` feature there is no context; the type stays `Clone` (not `Copy`) as
/// the real one is.
#[cfg(not(feature = "openssl"))]
type Tls = Option<std::sync::Arc<()>>;

/// Makes each accepted socket a TLS bufferevent, in the accepting state.
#[cfg(feature = "openssl")]
fn use_tls(base: &mut EventBase, server: Server, tls: Tls) -> io::Result<()> {
    use oxevent::bufferevent::BevOptions;
    use oxevent::openssl::{TlsState, server_ssl, socket_new};
    let Some(acceptor) = tls else { return Ok(()) };
    server.set_bevcb(base, move |base, fd| {
        let ssl = server_ssl(&acceptor).map_err(io::Error::other)?;
        socket_new(
            base,
            Some(fd),
            ssl,
            TlsState::Accepting,
            BevOptions::CLOSE_ON_FREE,
        )
    })
}

#[cfg(not(feature = "openssl"))]
fn use_tls(_base: &mut EventBase, _server: Server, _tls: Tls) -> io::Result<()> {
    Ok(())
}

/// One server on this thread's base; returns when a signal has drained it.
fn run_server(
    addr: SocketAddr,
    root: PathBuf,
    reuseport: bool,
    tls: Tls,
    ready: mpsc::Sender<io::Result<SocketAddr>>,
) -> io::Result<()> {
    let mut base = EventBase::new()?;
    let server = Server::new(&mut base);
    server.set_gencb(&mut base, move |base, req| serve(base, &root, req))?;
    use_tls(&mut base, server, tls)?;
    let mut options = ListenerOptions::REUSEABLE;
    if reuseport {
        options |= ListenerOptions::REUSEABLE_PORT;
    }
    let bound = match server.bind_with_options(&mut base, addr, options) {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(io::Error::new(e.kind(), format!("bind {addr}: {e}"))));
            return Err(e);
        }
    };
    let local = bound.local_addr(&mut base)?.unwrap_or(addr);
    for signum in [libc::SIGINT, libc::SIGTERM] {
        let ev = base.signal_new(signum, move |base, ev, _| {
            let _ = base.free(ev);
            // Finish what is in flight, then leave the loop.
            if server
                .drain(base, |base| {
                    let _ = base.loopexit(None);
                })
                .is_err()
            {
                let _ = base.loopexit(None);
            }
        })?;
        base.add(ev, None)?;
    }
    let _ = ready.send(Ok(local));
    base.dispatch()?;
    let _ = server.free(&mut base);
    Ok(())
}

/// The server context for `--tls-cert` / `--tls-key`.
#[cfg(feature = "openssl")]
fn tls_context(files: Option<&(PathBuf, PathBuf)>) -> io::Result<Tls> {
    let Some((cert, key)) = files else {
        return Ok(None);
    };
    oxevent::openssl::server_acceptor(cert, key)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("TLS: {e}")))
}

#[cfg(not(feature = "openssl"))]
fn tls_context(files: Option<&(PathBuf, PathBuf)>) -> io::Result<Tls> {
    if files.is_some() {
        eprintln!("http-server: built without TLS support (enable the `openssl` feature)");
        std::process::exit(2);
    }
    Ok(None)
}

fn main() -> io::Result<()> {
    let args = parse_args()?;
    let tls = tls_context(args.tls.as_ref())?;
    let root = args.docroot.canonicalize().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("--docroot {}: {e}", args.docroot.display()),
        )
    })?;
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    let reuseport = args.threads > 1;
    let mut addr = args.addr;
    for i in 0..args.threads {
        let (tx, root, ctx) = (tx.clone(), root.clone(), tls.clone());
        threads.push(std::thread::spawn(move || {
            run_server(addr, root, reuseport, ctx, tx)
        }));
        // The first server picks the port (for port 0); the others share it.
        let local = rx
            .recv()
            .map_err(|_| io::Error::other("server thread died"))??;
        if i == 0 {
            addr = local;
            let scheme = if tls.is_some() { "https" } else { "http" };
            println!("listening on {scheme}://{local}");
        }
    }
    let mut result = Ok(());
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(io::Error::other("server thread panicked")),
        }
    }
    println!("http-server: done");
    result
}
