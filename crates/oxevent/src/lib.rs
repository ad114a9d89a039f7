//! libevent, rebuilt in Rust (work in progress).

#![forbid(unsafe_code)]
