//! The Linux epoll backend of oxevent.
//!
//! This crate sits just above `oxevent-backend` in the layer diagram: it
//! implements [`oxevent_backend::Backend`] over `epoll(7)` and is one of the
//! backends `oxevent-core` can drive (the default on Linux). It plays the
//! role of libevent's `epoll.c`.
//!
//! - Level-triggered readiness by default, edge-triggered (`EPOLLET`) for
//!   interest with [`Interest::EDGE`](oxevent_backend::Interest::EDGE).
//! - Early close detection: [`Interest::CLOSED`](oxevent_backend::Interest::CLOSED)
//!   maps to `EPOLLRDHUP` and is reported as
//!   [`Ready::CLOSED`](oxevent_backend::Ready::CLOSED).
//! - Errors and hang-ups (`EPOLLERR`, `EPOLLHUP`) are reported as
//!   `READ | WRITE` (and `CLOSED`), restricted to the fd's interest.
//! - Precise timers through `epoll_pwait2` or a timerfd.
//! - A waker over an eventfd that survives `reinit`.
//!
//! ```
//! # #[cfg(any(target_os = "linux", target_os = "android"))] {
//! use std::time::Duration;
//! use oxevent_backend::{Backend, BackendConfig, ReadyList};
//!
//! let mut backend = (oxevent_epoll::DESCRIPTOR.new)(&BackendConfig::new())?;
//! let waker = backend.waker()?;
//! waker.wake()?;
//! let mut ready = ReadyList::new();
//! backend.wait(Some(Duration::from_secs(5)), &mut ready)?;
//! assert!(ready.woken());
//! # }
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # Platform support
//!
//! Linux and Android only. On every other target this crate compiles to an
//! empty library: [`DESCRIPTOR`] and `Epoll` exist only on Linux and Android.

#![deny(unsafe_code)]

#[cfg(any(target_os = "linux", target_os = "android"))]
mod epoll;
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys;

#[cfg(any(target_os = "linux", target_os = "android"))]
pub use epoll::Epoll;

/// The descriptor of the epoll backend (libevent's `epollops` entry in
/// `eventops[]`): name `"epoll"`, features `ET | O1 | EARLY_CLOSE`.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[doc(alias = "epollops")]
pub static DESCRIPTOR: oxevent_backend::BackendDescriptor = oxevent_backend::BackendDescriptor {
    name: "epoll",
    features: epoll::FEATURES,
    new: Epoll::boxed,
};
