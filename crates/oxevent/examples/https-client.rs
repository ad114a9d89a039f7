//! `https-client`: fetches a URL over TLS and prints the status and the
//! body, after libevent's `sample/https-client.c`.
//!
//! ```text
//! cargo run --features openssl --example https-client -- https://localhost:8443/ [--ca FILE] [--insecure]
//! ```
//!
//! The peer's certificate is verified against the system's roots (plus
//! `--ca FILE`, a PEM bundle) and its name against the URL's host, unless
//! `--insecure` turns verification off. It speaks raw HTTP/1.0 over a
//! socket-mode TLS bufferevent (`Connection: close`, the body ends at the
//! close; a `Content-Length` that does not match is an error). Prints
//! `Response line: CODE REASON`, then the body; exits 1 on any error, with
//! OpenSSL's error stack when TLS failed.

use std::cell::RefCell;
use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use oxevent::bufferevent::{BevFlags, BevOptions};
use oxevent::openssl::{self as tls, SslBufferEvent, TlsState};
use oxevent::{EventBase, What};

/// The most the response may hold.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

struct Url {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Result<Url, String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("{url}: only https:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("{url}: bad host"));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{url}: bad IPv6 host"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("{url}: bad port"))?,
            None => 443,
        };
        (h.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse().map_err(|_| format!("{url}: bad port"))?,
            ),
            None => (authority.to_string(), 443),
        }
    };
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!("{url}: bad path"));
    }
    Ok(Url {
        host,
        port,
        path: path.to_string(),
    })
}

fn fail(msg: &str) -> ! {
    eprintln!("https-client: {msg}");
    std::process::exit(1)
}

/// Splits the response into the status line's code and reason, and the body.
fn print_response(resp: &[u8]) -> Result<(), String> {
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response head")?;
    let head = std::str::from_utf8(&resp[..head_end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let mut parts = status.splitn(3, ' ');
    let (version, code, reason) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if !version.starts_with("HTTP/1.") || code.len() != 3 || code.parse::<u16>().is_err() {
        return Err(format!("bad status line `{status}`"));
    }
    let body = &resp[head_end + 4..];
    for l in lines {
        if let Some((name, value)) = l.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length `{value}`"))?;
                if n != body.len() {
                    return Err(format!("truncated body: {} of {n} bytes", body.len()));
                }
            }
        }
    }
    println!("Response line: {code} {reason}");
    let mut out = std::io::stdout();
    out.write_all(body).map_err(|e| e.to_string())?;
    out.flush().map_err(|e| e.to_string())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut url = None;
    let mut ca: Option<PathBuf> = None;
    let mut insecure = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ca" => {
                ca = Some(
                    it.next()
                        .unwrap_or_else(|| fail("--ca needs a file"))
                        .into(),
                )
            }
            "--insecure" => insecure = true,
            u if url.is_none() && !u.starts_with('-') => url = Some(u.to_string()),
            _ => {
                eprintln!("usage: https-client URL [--ca FILE] [--insecure]");
                std::process::exit(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("usage: https-client URL [--ca FILE] [--insecure]");
        std::process::exit(2);
    };
    let url = parse_url(&url).unwrap_or_else(|e| fail(&e));
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut a| a.next().ok_or_else(|| "no address".to_string()))
        .unwrap_or_else(|e| fail(&format!("{}: {e}", url.host)));

    let connector =
        tls::client_connector(ca.as_deref()).unwrap_or_else(|e| fail(&format!("TLS setup: {e}")));
    let ssl = if insecure {
        tls::insecure_client_ssl(&connector, &url.host)
    } else {
        tls::client_ssl(&connector, &url.host)
    }
    .unwrap_or_else(|e| fail(&format!("TLS setup: {e}")));

    let mut base = EventBase::new().unwrap_or_else(|e| fail(&format!("event base: {e}")));
    let bev = tls::socket_new(
        &mut base,
        None,
        ssl,
        TlsState::Connecting,
        BevOptions::CLOSE_ON_FREE,
    )
    .unwrap_or_else(|e| fail(&format!("bufferevent: {e}")));
    // HTTP/1.0 with Connection: close ends the body at the close; many
    // servers skip close_notify there (a Content-Length is checked).
    bev.set_allow_dirty_shutdown(&mut base, true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let _ = bev.set_timeouts(
        &mut base,
        Some(Duration::from_secs(30)),
        Some(Duration::from_secs(30)),
    );
    let response = Rc::new(RefCell::new(Vec::new()));
    let outcome: Rc<RefCell<Option<Result<(), String>>>> = Rc::new(RefCell::new(None));
    let r = response.clone();
    bev.on_read(&mut base, move |base, bev| {
        let Ok(input) = bev.input(base) else { return };
        let n = input.len();
        let mut v = vec![0; n];
        let _ = input.remove(&mut v);
        let mut r = r.borrow_mut();
        r.extend_from_slice(&v);
        if r.len() > MAX_RESPONSE {
            fail("the response is too large");
        }
    })
    .unwrap_or_else(|e| fail(&e.to_string()));
    let (o, request) = (outcome.clone(), {
        format!(
            "GET {} HTTP/1.0\r\nHost: {}\r\nConnection: close\r\nUser-Agent: oxevent-https-client\r\n\r\n",
            url.path, url.host
        )
    });
    bev.on_event(&mut base, move |base, bev, ev| {
        if ev.what.contains(BevFlags::CONNECTED) {
            let _ = bev.write(base, request.as_bytes());
            return;
        }
        let result = if ev.what.contains(BevFlags::EOF) {
            Ok(())
        } else if ev.what.contains(BevFlags::TIMEOUT) {
            Err("timed out".to_string())
        } else {
            let why = match bev.openssl_error(base) {
                Ok(Some(e)) => format!("{e}"),
                _ => ev
                    .io_error()
                    .map_or_else(|| "connection error".to_string(), |e| e.to_string()),
            };
            let verify = bev
                .ssl(base)
                .map(|s| s.verify_result().error_string().to_string())
                .unwrap_or_default();
            Err(format!("{why} (certificate check: {verify})"))
        };
        *o.borrow_mut() = Some(result);
        let _ = bev.free(base);
    })
    .unwrap_or_else(|e| fail(&e.to_string()));
    bev.enable(&mut base, What::READ | What::WRITE)
        .unwrap_or_else(|e| fail(&e.to_string()));
    tls::connect(&mut base, bev, addr).unwrap_or_else(|e| fail(&format!("connect {addr}: {e}")));
    base.dispatch()
        .unwrap_or_else(|e| fail(&format!("dispatch: {e}")));
    match outcome.borrow_mut().take() {
        Some(Ok(())) => print_response(&response.borrow()).unwrap_or_else(|e| fail(&e)),
        Some(Err(e)) => fail(&e),
        None => fail("the connection ended without a result"),
    }
}
