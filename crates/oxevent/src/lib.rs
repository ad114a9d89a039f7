//! libevent, rebuilt in Rust: a callback-style event notification library.
//!
//! An [`EventBase`] runs callbacks when a file descriptor is ready, a timer
//! expires or a signal arrives. This facade puts the layered crates together
//! with features that mirror libevent's library split.
//!
//! ```
//! use std::time::Duration;
//! use oxevent::{EventBase, What};
//!
//! let mut base = EventBase::new().unwrap();
//! let mut ticks = 0;
//! let ev = base
//!     .event_new(-1, What::PERSIST, move |base, ev, _| {
//!         ticks += 1;
//!         if ticks == 3 {
//!             base.free(ev).unwrap();
//!         }
//!     })
//!     .unwrap();
//! base.add(ev, Some(Duration::from_millis(1))).unwrap();
//! base.dispatch().unwrap(); // returns once the timer is freed
//! ```
//!
//! # Feature flags
//!
//! - `core` (enabled): libevent_core — the reactor ([`EventBase`], events,
//!   timers, signals, [`Remote`]), buffers and bufferevents, rate limits, and
//!   this platform's backends.
//! - `backend-epoll`, `backend-poll`, `backend-mio` (enabled with `core`):
//!   the individual backends.
//! - `full`: everything available.
//!
//! HTTP and DNS (`extra`, libevent_extra) and TLS (`openssl`,
//! libevent_openssl) arrive with their crates.
//!
//! # Swapping the backend
//!
//! Any [`Backend`] works, including one from your own crate:
//! [`EventBase::with_backend`], or list descriptors in
//! [`Config::methods`]. The code using the base does not change.

#![forbid(unsafe_code)]

/// The backend contract (`oxevent-backend`), for writing a backend.
pub use oxevent_backend as backend;

#[cfg(feature = "core")]
pub use oxevent_core::{
    Backend, BackendConfig, BackendDescriptor, Callback, Clock, Config, CountFlags, Event,
    EventBase, EventInfo, Features, Interest, LoopFlags, LoopStatus, MAX_COMMON_TIMEOUTS,
    MAX_PRIORITIES, ManualClock, RawFd, Ready, ReadyList, Remote, VERSION, Wake, Waker, WatchInfo,
    Watcher, What, default_methods, fdio, supported_methods, sys, util,
};

/// Buffered I/O: `Buffer` (evbuffer) and, later, bufferevents.
#[cfg(feature = "core")]
pub use oxevent_bufferevent as bufferevent;

/// Rate limiting: token buckets and groups.
#[cfg(feature = "core")]
pub use oxevent_ratelim as ratelim;

/// TLS bufferevents over OpenSSL (libevent_openssl).
#[cfg(feature = "openssl")]
pub use oxevent_openssl as openssl;

/// HTTP/1.1 server, client and URI functions (part of libevent_extra).
#[cfg(feature = "extra")]
pub use oxevent_http as http;

/// Async DNS: resolver, getaddrinfo and server ports (part of libevent_extra).
#[cfg(feature = "extra")]
pub use oxevent_dns as dns;
