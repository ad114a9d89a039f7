//! `le-proxy`: a TCP proxy on bufferevents with watermarks, after
//! libevent's `sample/le-proxy.c`.
//!
//! ```text
//! cargo run --example le-proxy -- --listen 127.0.0.1:8080 --connect 127.0.0.1:80
//! ```
//!
//! Each accepted connection gets a connection to the backend; data moves
//! between them without copying. When one side's output holds more than
//! 512 KiB, reading from the other side stops until it drains to half of
//! that. Prints `listening on ADDR` once bound; exits on SIGINT.
//!
//! With `--tls-cert FILE --tls-key FILE` (PEM; needs the `openssl`
//! feature), the listening side speaks TLS: each accepted connection is a
//! socket-mode TLS bufferevent, and the backend is still reached in plain
//! TCP (libevent's sample wraps the other side; the bufferevent code is
//! the same either way).
//!
//! ```text
//! cargo run --features openssl --example le-proxy -- --listen 127.0.0.1:8443 \
//!     --connect 127.0.0.1:80 --tls-cert cert.pem --tls-key key.pem
//! ```

use std::net::SocketAddr;

use oxevent::bufferevent::{BevFlags, BevOptions, BufferEvent, Listener, ListenerOptions};
use oxevent::{EventBase, What};

const MAX_OUTPUT: usize = 512 * 1024;

fn arg_str<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn arg(args: &[String], name: &str) -> Option<SocketAddr> {
    let v = arg_str(args, name)?;
    match v.parse() {
        Ok(a) => Some(a),
        Err(e) => {
            eprintln!("{name} {v}: {e}");
            std::process::exit(2);
        }
    }
}

/// Moves what `from` read to `to`, and stops reading `from` while `to` is behind.
fn forward(base: &mut EventBase, from: BufferEvent, to: BufferEvent) {
    if from.transfer(base, to).is_err() {
        return;
    }
    if to.output(base).is_ok_and(|o| o.len() >= MAX_OUTPUT) {
        // The destination is slow: stop reading until it drained to half.
        let _ = to.set_watermark(base, What::WRITE, MAX_OUTPUT / 2, MAX_OUTPUT);
        let _ = to.on_write(base, move |base, to| {
            let _ = to.on_write(base, |_, _| {});
            let _ = to.set_watermark(base, What::WRITE, 0, 0);
            let _ = from.enable(base, What::READ);
        });
        let _ = from.disable(base, What::READ);
    }
}

/// One side ended: flush what the other side still has to send, then close both.
fn finish(base: &mut EventBase, me: BufferEvent, partner: BufferEvent, what: BevFlags) {
    if what.contains(BevFlags::ERROR) {
        eprintln!("connection error");
    }
    // Hand over what we read but did not forward yet.
    let _ = me.transfer(base, partner);
    let _ = me.free(base);
    let pending = partner.output(base).map_or(0, |o| o.len());
    if pending == 0 {
        let _ = partner.free(base);
    } else {
        let _ = partner.disable(base, What::READ);
        let _ = partner.set_watermark(base, What::WRITE, 0, 0);
        let _ = partner.on_write(base, |base, p| {
            let _ = p.free(base);
        });
    }
}

/// The listening side's TLS context, from `--tls-cert` and `--tls-key`.
#[cfg(feature = "openssl")]
type Tls = Option<oxevent::openssl::openssl::ssl::SslAcceptor>;
#[cfg(not(feature = "openssl"))]
type Tls = Option<std::convert::Infallible>;

#[cfg(feature = "openssl")]
fn tls_setup(cert: Option<&str>, key: Option<&str>) -> Tls {
    match (cert, key) {
        (None, None) => None,
        (Some(c), Some(k)) => match oxevent::openssl::server_acceptor(c.as_ref(), k.as_ref()) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("TLS certificate {c} / key {k}: {e}");
                std::process::exit(2);
            }
        },
        _ => {
            eprintln!("--tls-cert and --tls-key go together");
            std::process::exit(2);
        }
    }
}

#[cfg(not(feature = "openssl"))]
fn tls_setup(cert: Option<&str>, key: Option<&str>) -> Tls {
    if cert.is_some() || key.is_some() {
        eprintln!("le-proxy was built without the `openssl` feature: no TLS");
        std::process::exit(2);
    }
    None
}

/// The bufferevent of an accepted client: TLS (accepting) or plain.
fn client_bev(
    base: &mut EventBase,
    fd: std::os::fd::OwnedFd,
    tls: &Tls,
) -> std::io::Result<BufferEvent> {
    match tls {
        #[cfg(feature = "openssl")]
        Some(acceptor) => {
            let ssl = oxevent::openssl::server_ssl(acceptor).map_err(std::io::Error::other)?;
            oxevent::openssl::socket_new(
                base,
                Some(fd),
                ssl,
                oxevent::openssl::TlsState::Accepting,
                BevOptions::CLOSE_ON_FREE,
            )
        }
        #[cfg(not(feature = "openssl"))]
        Some(never) => match *never {},
        None => BufferEvent::socket(base, Some(fd), BevOptions::CLOSE_ON_FREE),
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(listen), Some(connect)) = (arg(&args, "--listen"), arg(&args, "--connect")) else {
        eprintln!("usage: le-proxy --listen ADDR --connect ADDR [--tls-cert FILE --tls-key FILE]");
        std::process::exit(2);
    };
    let tls = tls_setup(arg_str(&args, "--tls-cert"), arg_str(&args, "--tls-key"));
    let mut base = EventBase::new()?;
    let listener = Listener::bind(
        &mut base,
        listen,
        ListenerOptions::REUSEABLE | ListenerOptions::CLOSE_ON_FREE,
        -1,
        move |base, _l, fd, _peer| {
            let client = match client_bev(base, fd, &tls) {
                Ok(b) => b,
                Err(e) => return eprintln!("client bufferevent: {e}"),
            };
            let server = match BufferEvent::socket_connect(base, connect, BevOptions::CLOSE_ON_FREE)
            {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("connect {connect}: {e}");
                    let _ = client.free(base);
                    return;
                }
            };
            for (me, other) in [(client, server), (server, client)] {
                let _ = me.on_read(base, move |base, me| forward(base, me, other));
                let _ = me.on_event(base, move |base, me, ev| {
                    if ev.what.intersects(BevFlags::EOF | BevFlags::ERROR) {
                        finish(base, me, other, ev.what);
                    }
                });
                let _ = me.enable(base, What::READ | What::WRITE);
            }
        },
    )?;
    let local = listener
        .local_addr(&mut base)?
        .as_socket()
        .expect("an IP listener has an IP address");
    let sig = base.signal_new(libc::SIGINT, |base, _, _| base.loopbreak())?;
    base.add(sig, None)?;
    println!("listening on {local}");
    base.dispatch()?;
    Ok(())
}
