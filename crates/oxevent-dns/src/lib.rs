//! Async DNS for oxevent (libevent's `evdns`).
//!
//! Work in progress: see issue 7.

#![forbid(unsafe_code)]
