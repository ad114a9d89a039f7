//! The oxevent reactor: an [`EventBase`] runs callbacks when a file
//! descriptor is ready, a timer expires or a signal arrives (libevent's
//! `event.h` and `watch.h`).
//!
//! This crate sits above `oxevent-backend` (the backend contract) and the
//! backend crates, and below everything else: `oxevent-ratelim`,
//! `oxevent-bufferevent` and the protocol crates build on it, and the
//! `oxevent` facade re-exports it. On its own it is a complete minimal build:
//! the reactor plus this platform's default backends.
//!
//! ```
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use oxevent_core::{EventBase, What};
//!
//! let mut base = EventBase::new().unwrap();
//! let (mut a, b) = UnixStream::pair().unwrap();
//! let ev = base
//!     .event_new(b.as_raw_fd(), What::READ, |_base, _ev, what| {
//!         assert!(what.contains(What::READ));
//!     })
//!     .unwrap();
//! base.add(ev, None).unwrap();
//! a.write_all(b"x").unwrap();
//! base.dispatch().unwrap(); // runs the callback, then no events are left
//! ```
//!
//! # Semantics kept from libevent
//!
//! Level-triggered by default; several events per fd; non-persistent events
//! are deleted before their callback runs; persistent events re-arm their
//! timeout on every activation; priorities run lowest number first, one
//! non-empty queue per iteration; the loop exits when no events remain.
//!
//! # Feature flags
//!
//! - `backend-epoll` (enabled): the Linux epoll backend.
//! - `backend-poll` (enabled): the poll(2) backend.
//! - `backend-mio` (enabled): the portable mio backend.
//!
//! # Environment
//!
//! Unless [`Config::ignore_env`] is set: `EVENT_NO<METHOD>` (for example
//! `EVENT_NOEPOLL`) skips a backend, `EVENT_SHOW_METHOD` prints the chosen
//! one, `EVENT_PRECISE_TIMER` asks for the precise clock.

#![deny(unsafe_code)]

mod base;
mod clock;
mod config;
mod fdlist;
mod flags;
mod heap;
mod remote;
mod run;
mod signal;
pub mod sys;
mod watch;

pub use base::{Callback, Event, EventBase, EventInfo, MAX_COMMON_TIMEOUTS};
pub use clock::{Clock, ManualClock};
pub use config::{Config, MAX_PRIORITIES, default_methods, supported_methods};
pub use flags::{CountFlags, LoopFlags, What};
pub use oxevent_backend::{
    Backend, BackendConfig, BackendDescriptor, Features, Interest, RawFd, Ready, ReadyList, Wake,
    Waker,
};
pub use remote::Remote;
pub use run::LoopStatus;
pub use sys::{fdio, util};
pub use watch::{WatchInfo, Watcher};

/// The library version (`event_get_version`).
#[doc(alias = "event_get_version")]
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
