//! `http-connect`: fetches a URL through an HTTP proxy's `CONNECT` tunnel, after libevent's
//! `sample/http-connect.c`.
//!
//! ```text
//! cargo run --features extra --example http-connect -- 127.0.0.1:3128 http://example.com/
//! ```
//!
//! Sends `CONNECT host:port` to the proxy, then, on the same connection (now a tunnel to the
//! origin server), `GET` for the URL's path and query. Prints the proxy's answer as
//! `CONNECT host:port: CODE REASON`, the origin's as `GET URL: CODE REASON`, then the body.
//! Exits with status 0 on a 2xx response, 1 otherwise.
//!
//! libevent's sample sends the absolute URL through the tunnel; this one sends the
//! origin-form target (`/path?query`), as RFC 9112 §3.2.1 asks of a request to the origin
//! server itself.

use std::cell::Cell;
use std::io::Write;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use oxevent::EventBase;
use oxevent::http::client::{Connection, Request, Response};
use oxevent::http::proto::Method;
use oxevent::http::uri::Uri;

/// Splits `host:port` or `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return None;
    }
    Some((host.to_owned(), port.parse().ok()?))
}

fn print_body(resp: &Response) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(resp.body());
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: http-connect PROXY_HOST:PORT URL");
        return ExitCode::from(2);
    }
    let Some((proxy_host, proxy_port)) = split_host_port(&args[1]) else {
        eprintln!("http-connect: bad proxy address {:?}", args[1]);
        return ExitCode::from(2);
    };
    let url = match Uri::parse(&args[2]) {
        Ok(u) if u.scheme() == Some("http") && u.host().is_some_and(|h| !h.is_empty()) => u,
        Ok(_) => {
            eprintln!(
                "http-connect: {} is not an http:// URL with a host",
                args[2]
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("http-connect: {}: {e}", args[2]);
            return ExitCode::from(2);
        }
    };
    let host = url.host().unwrap_or_default().to_owned();
    let port = url.port().unwrap_or(80);
    // `host` keeps an IPv6 literal's brackets, as the authority form wants.
    let authority = format!("{host}:{port}");
    let host_header = if port == 80 {
        host.clone()
    } else {
        authority.clone()
    };
    let target = url.request_target();
    let shown_url = url.to_string();

    let mut base = match EventBase::new() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("http-connect: {e}");
            return ExitCode::from(1);
        }
    };
    let conn = Connection::new(&mut base, &proxy_host, proxy_port);
    let _ = conn.set_timeout(&mut base, Duration::from_secs(30));
    let ok = Rc::new(Cell::new(false));
    let ok2 = Rc::clone(&ok);
    let connect_target = authority.clone();
    let connect = Request::new(Method::Connect, authority.clone(), move |base, result| {
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                eprintln!("http-connect: CONNECT {connect_target}: {e}");
                let _ = conn.free(base);
                return;
            }
        };
        println!(
            "CONNECT {connect_target}: {} {}",
            resp.code(),
            resp.reason()
        );
        if !(200..300).contains(&resp.code()) {
            print_body(&resp);
            let _ = conn.free(base);
            return;
        }
        // The connection is a tunnel to the origin now: talk to it directly.
        let get = Request::get(target, move |base, result| {
            match result {
                Ok(resp) => {
                    println!("GET {shown_url}: {} {}", resp.code(), resp.reason());
                    print_body(&resp);
                    ok2.set((200..300).contains(&resp.code()));
                }
                Err(e) => eprintln!("http-connect: GET {shown_url}: {e}"),
            }
            let _ = conn.free(base);
        })
        .header("Host", &host_header)
        .header("Connection", "close");
        if let Err(e) = conn.make_request(base, get) {
            eprintln!("http-connect: {e}");
            let _ = conn.free(base);
        }
    })
    .header("Host", &authority);
    if let Err(e) = conn.make_request(&mut base, connect) {
        eprintln!("http-connect: {e}");
        return ExitCode::from(1);
    }
    if let Err(e) = base.dispatch() {
        eprintln!("http-connect: {e}");
        return ExitCode::from(1);
    }
    if ok.get() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
