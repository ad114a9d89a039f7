//! `event-read-fifo`: creates a FIFO and prints what is written to it,
//! after libevent's `sample/event-read-fifo.c`.
//!
//! ```text
//! cargo run --example event-read-fifo -- /tmp/event.fifo
//! echo hello > /tmp/event.fifo
//! ```
//!
//! Stops at end of file (the last writer closed it) or on SIGINT, and
//! removes the FIFO.

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use oxevent::{EventBase, What, util};

fn main() -> io::Result<()> {
    let path: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("event.fifo"));
    match std::fs::symlink_metadata(&path) {
        Ok(m) if std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {}
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a FIFO", path.display()),
            ));
        }
        Err(_) => util::mkfifo(&path, 0o600)?,
    }
    // O_RDWR would never see EOF; open read-only and non-blocking, as the C sample does.
    let mut fifo = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)?;
    let mut base = EventBase::new()?;
    let fd = fifo.as_raw_fd();
    let ev = base.event_new(fd, What::READ | What::PERSIST, move |base, ev, _| {
        let mut buf = [0u8; 255];
        match fifo.read(&mut buf) {
            Ok(0) => {
                println!("Connection closed");
                base.free(ev).expect("free our own event");
                base.loopbreak();
            }
            Ok(n) => print!("Read: {}", String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                eprintln!("read: {e}");
                base.loopbreak();
            }
        }
    })?;
    base.add(ev, None)?;
    let sig = base.signal_new(libc::SIGINT, |base, _, _| base.loopbreak())?;
    base.add(sig, None)?;
    println!("event-read-fifo: reading {}", path.display());
    base.dispatch()?;
    std::fs::remove_file(&path)?;
    Ok(())
}
