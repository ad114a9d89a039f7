//! `https-client`: fetches a URL over HTTPS with the HTTP client and prints the status and
//! the body, after libevent's `sample/https-client.c`.
//!
//! ```text
//! cargo run --features extra,openssl --example https-client -- https://localhost:8443/ [--ca FILE] [--insecure]
//! ```
//!
//! The peer's certificate is verified against the system's roots (plus `--ca FILE`, a PEM
//! bundle) and its name against the URL's host, unless `--insecure` turns verification off
//! (`TlsConfig::insecure`). The request is an HTTP/1.1 `GET` made with
//! `Connection::for_uri_with_tls`; the response's framing (Content-Length, chunked, or the
//! close, which must then come with TLS's close_notify) is checked by the client. Prints
//! `Response line: CODE REASON`, then the body; exits 1 on any error, with OpenSSL's
//! error stack and the certificate check's result when TLS failed.

use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use oxevent::EventBase;
use oxevent::http::client::{ClientError, Connection, Request, Response, TlsConfig};
use oxevent::http::uri::Uri;

fn usage() -> ExitCode {
    eprintln!("usage: https-client URL [--ca FILE] [--insecure]");
    ExitCode::from(2)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("https-client: {msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut url = None;
    let mut ca: Option<PathBuf> = None;
    let mut insecure = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--ca" => match it.next() {
                Some(f) => ca = Some(f.into()),
                None => return usage(),
            },
            "--insecure" => insecure = true,
            u if url.is_none() && !u.starts_with('-') => url = Some(u.to_owned()),
            _ => return usage(),
        }
    }
    let Some(url) = url else {
        return usage();
    };
    let uri = match Uri::parse(&url) {
        Ok(u) if u.scheme().is_some_and(|s| s.eq_ignore_ascii_case("https")) => u,
        Ok(_) => return fail(&format!("{url}: only https:// URLs are supported")),
        Err(e) => return fail(&format!("{url}: {e}")),
    };

    let tls = match &ca {
        Some(ca) => TlsConfig::with_ca_file(ca),
        None => TlsConfig::new(),
    };
    let mut tls = match tls {
        Ok(t) => t,
        Err(e) => return fail(&format!("TLS setup: {e}")),
    };
    if insecure {
        tls = tls.insecure();
    }

    let mut base = match EventBase::new() {
        Ok(b) => b,
        Err(e) => return fail(&format!("event base: {e}")),
    };
    let conn = match Connection::for_uri_with_tls(&mut base, &uri, tls) {
        Ok(c) => c,
        Err(e) => return fail(&format!("{url}: {e}")),
    };
    if let Err(e) = conn.set_timeout(&mut base, Duration::from_secs(30)) {
        return fail(&e.to_string());
    }
    let outcome: Rc<RefCell<Option<Result<Response, ClientError>>>> = Rc::default();
    let o = Rc::clone(&outcome);
    let req = Request::get(uri.request_target(), move |base, result| {
        *o.borrow_mut() = Some(result);
        // Nothing else keeps the loop running: it exits.
        let _ = conn.free(base);
    })
    .header("User-Agent", "oxevent-https-client");
    if let Err(e) = conn.make_request(&mut base, req) {
        return fail(&e.to_string());
    }
    if let Err(e) = base.dispatch() {
        return fail(&format!("dispatch: {e}"));
    }
    let result = outcome.borrow_mut().take();
    match result {
        Some(Ok(resp)) => {
            println!("Response line: {} {}", resp.code(), resp.reason());
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(resp.body()).and_then(|()| out.flush()) {
                return fail(&e.to_string());
            }
            ExitCode::SUCCESS
        }
        Some(Err(e)) => fail(&e.to_string()),
        None => fail("the loop ended without a response"),
    }
}
