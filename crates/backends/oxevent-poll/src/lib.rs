//! The POSIX `poll(2)` backend of oxevent: the portable fallback.
//!
//! This crate sits just above `oxevent-backend` in the layer diagram: it
//! implements [`oxevent_backend::Backend`] over `poll(2)` and is the backend
//! `oxevent-core` falls back on when nothing better is available. It plays
//! the role of libevent's `poll.c`.
//!
//! - Level-triggered only: asking for
//!   [`Interest::EDGE`](oxevent_backend::Interest::EDGE) fails with
//!   `Unsupported`.
//! - Works with any fd (pipes, terminals, character devices):
//!   [`Features::FDS`](oxevent_backend::Features::FDS).
//! - `POLLERR`, `POLLHUP` and `POLLNVAL` are reported as `READ | WRITE`
//!   restricted to the fd's interest.
//! - O(1) interest changes through an fd-to-slot index; O(n) waits.
//!
//! ```
//! # #[cfg(unix)] {
//! use std::time::Duration;
//! use oxevent_backend::{Backend, BackendConfig, ReadyList};
//!
//! let mut backend = (oxevent_poll::DESCRIPTOR.new)(&BackendConfig::new())?;
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
//! Every unix. Early close detection (`POLLRDHUP`,
//! [`Features::EARLY_CLOSE`](oxevent_backend::Features::EARLY_CLOSE)) exists
//! on Linux and Android only. The waker is an eventfd on Linux and Android
//! and a pipe elsewhere. On non-unix targets this crate is empty.

#![deny(unsafe_code)]

#[cfg(unix)]
mod poll;
#[cfg(unix)]
mod sys;

#[cfg(unix)]
pub use poll::Poll;

/// The descriptor of the poll backend (libevent's `pollops` entry in
/// `eventops[]`): name `"poll"`, features `FDS` (plus `EARLY_CLOSE` on
/// Linux and Android).
#[cfg(unix)]
#[doc(alias = "pollops")]
pub static DESCRIPTOR: oxevent_backend::BackendDescriptor = oxevent_backend::BackendDescriptor {
    name: "poll",
    features: poll::FEATURES,
    new: Poll::boxed,
};
