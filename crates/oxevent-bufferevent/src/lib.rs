//! Buffered I/O for oxevent: [`Buffer`], libevent's `evbuffer`.
//!
//! This crate sits above `oxevent-core` and `oxevent-ratelim`; the
//! bufferevent layer (socket, pair and filter bufferevents, listeners,
//! connect) is built on [`Buffer`].
//!
//! ```
//! use oxevent_bufferevent::{Buffer, EolStyle};
//!
//! let mut input = Buffer::new();
//! input.add(b"hello\r\nworld\n").unwrap();
//! let mut out = Buffer::new();
//! while let Some(line) = input.readln(EolStyle::Crlf, 1024).unwrap() {
//!     out.add(&line).unwrap();
//! }
//! assert_eq!(out.pullup(out.len()).unwrap(), b"helloworld");
//! ```

#![forbid(unsafe_code)]

pub mod buffer;
pub mod bufferevent;
pub mod listener;
pub mod slab;

pub use buffer::{
    Buffer, BufferError, BufferPos, BufferSide, CallbackId, CbInfo, EolStyle, FileSegment, Peek,
    PtrHow, Reserved, TailWriter,
};
pub use bufferevent::{
    BevEvent, BevFlags, BevOptions, BlockingResolver, BufferEvent, DEFAULT_MAX_SINGLE, Family,
    FilterFn, FilterResult, FlushMode, RateGroup, Resolve, ResolveDone, ResolvePart,
};
pub use listener::{ACCEPTS_PER_CALLBACK, BACKOFF_MAX, BACKOFF_MIN, Listener, ListenerOptions};
/// The token-bucket configuration of rate limits (`ev_token_bucket_cfg`).
pub use oxevent_ratelim::TokenBucketConfig;
