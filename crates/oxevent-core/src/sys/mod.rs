//! Operating-system code of the core: the only place in `oxevent-core` where
//! `unsafe` is allowed.
//!
//! Contract: each submodule wraps raw system calls behind safe functions
//! whose arguments make misuse impossible (borrowed fds, slices), and each
//! `unsafe` block carries a `// SAFETY:` comment.
//!
//! - [`fdio`]: read/readv/write/writev/pread/sendfile/FIONREAD for the buffer layer.
//! - `clock`: the coarse monotonic clock.
//! - `hint`: cache prefetch hints for the dispatch path.
//! - `signal`: the async-signal-safe handler and the self-pipes.
//! - [`util`]: `mkfifo`, non-blocking mode (libevent's `evutil`).

#![allow(unsafe_code)]

pub(crate) mod clock;
pub mod fdio;
pub(crate) mod hint;
pub(crate) mod signal;
pub mod util;

pub use signal::{kill_self, raise, signal_disposition_is_default};
