//! TLS bufferevents over the `openssl` crate (libevent's `bufferevent_ssl.h`).
//!
//! Work in progress: see issue 5.

#![forbid(unsafe_code)]
