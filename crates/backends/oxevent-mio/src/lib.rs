//! The portable backend of oxevent, over [mio](https://docs.rs/mio).
//!
//! This crate sits just above `oxevent-backend` in the layer diagram: it
//! implements [`oxevent_backend::Backend`] over `mio::Poll` and is the
//! backend `oxevent-core` uses by default where epoll is not available
//! (kqueue on macOS and the BSDs). libevent has no such method; this one
//! stands in for `kqueue.c`.
//!
//! - Tokens are fd values; fds are registered through
//!   `mio::unix::SourceFd`.
//! - mio is edge-triggered, so level triggering is emulated: a reported fd
//!   whose interest lacks [`Interest::EDGE`](oxevent_backend::Interest::EDGE)
//!   is re-registered before the next wait, and the kernel reports it again
//!   if it is still ready. EDGE interest is passed through natively.
//! - A peer close is reported as [`Ready::CLOSED`](oxevent_backend::Ready::CLOSED)
//!   when mio says the read side closed.
//! - The waker is a `mio::Waker` and keeps working across `reinit`.
//!
//! ```
//! # #[cfg(unix)] {
//! use std::time::Duration;
//! use oxevent_backend::{Backend, BackendConfig, ReadyList};
//!
//! let mut backend = (oxevent_mio::DESCRIPTOR.new)(&BackendConfig::new())?;
//! backend.waker()?.wake()?;
//! let mut ready = ReadyList::new();
//! backend.wait(Some(Duration::from_secs(5)), &mut ready)?;
//! assert!(ready.woken());
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Platform support
//!
//! Every unix mio supports (epoll on Linux and Android, kqueue on macOS, iOS
//! and the BSDs). On other targets (Windows, where mio uses IOCP and fds are
//! sockets) the crate compiles, [`DESCRIPTOR`] exists, and its constructor
//! returns `Unsupported`.

#![forbid(unsafe_code)]

use oxevent_backend::{BackendDescriptor, Features};

#[cfg(unix)]
mod mio_backend;

#[cfg(unix)]
pub use mio_backend::Mio;

/// The features of the mio backend: `ET | O1 | EARLY_CLOSE`.
const FEATURES: Features = Features::ET
    .union(Features::O1)
    .union(Features::EARLY_CLOSE);

#[cfg(not(unix))]
fn unsupported(
    _: &oxevent_backend::BackendConfig,
) -> std::io::Result<Box<dyn oxevent_backend::Backend>> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "the mio backend supports unix targets only",
    ))
}

/// The descriptor of the mio backend: name `"mio"`, features
/// `ET | O1 | EARLY_CLOSE`.
#[doc(alias = "kqueueops")]
pub static DESCRIPTOR: BackendDescriptor = BackendDescriptor {
    name: "mio",
    features: FEATURES,
    #[cfg(unix)]
    new: Mio::boxed,
    #[cfg(not(unix))]
    new: unsupported,
};
