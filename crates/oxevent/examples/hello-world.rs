//! `hello-world`: writes "Hello, World!" to each client and closes it,
//! after libevent's `sample/hello-world.c`.
//!
//! ```text
//! cargo run --example hello-world -- [--addr 127.0.0.1:9995]
//! nc 127.0.0.1 9995
//! ```
//!
//! Prints `listening on ADDR` once bound; on SIGINT it exits cleanly after
//! two seconds, as the C sample does.

use std::net::SocketAddr;
use std::time::Duration;

use oxevent::bufferevent::{BevFlags, BevOptions, BufferEvent, Listener, ListenerOptions};
use oxevent::{EventBase, What};

const MESSAGE: &[u8] = b"Hello, World!\n";

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let addr: SocketAddr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .map_or("127.0.0.1:9995", String::as_str)
        .parse()
        .map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--addr: {e}"))
        })?;
    let mut base = EventBase::new()?;
    let listener = Listener::bind(
        &mut base,
        addr,
        ListenerOptions::REUSEABLE | ListenerOptions::CLOSE_ON_FREE,
        -1,
        |base, _listener, fd, _peer| {
            let bev = match BufferEvent::socket(base, Some(fd), BevOptions::CLOSE_ON_FREE) {
                Ok(bev) => bev,
                Err(e) => {
                    eprintln!("Error constructing bufferevent: {e}");
                    base.loopbreak();
                    return;
                }
            };
            // Once the whole message is out, close the connection.
            let _ = bev.on_write(base, |base, bev| {
                if bev.output(base).is_ok_and(|o| o.is_empty()) {
                    println!("flushed answer");
                    let _ = bev.free(base);
                }
            });
            let _ = bev.on_event(base, |base, bev, ev| {
                if ev.what.contains(BevFlags::EOF) {
                    println!("Connection closed.");
                } else if ev.what.contains(BevFlags::ERROR) {
                    println!("Got an error on the connection: {:?}", ev.io_error());
                }
                let _ = bev.free(base);
            });
            let _ = bev.disable(base, What::READ);
            let _ = bev.write(base, MESSAGE);
        },
    )?;
    let local = listener
        .local_addr(&mut base)?
        .as_socket()
        .expect("an IP listener has an IP address");
    let sig = base.signal_new(libc::SIGINT, |base, _, _| {
        println!("Caught an interrupt signal; exiting cleanly in two seconds.");
        let _ = base.loopexit(Some(Duration::from_secs(2)));
    })?;
    base.add(sig, None)?;
    println!("listening on {local}");
    base.dispatch()?;
    listener.free(&mut base)?;
    println!("done");
    Ok(())
}
