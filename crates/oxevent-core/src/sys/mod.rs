//! Operating-system code of the core: the only place in `oxevent-core` where
//! `unsafe` is allowed.
//!
//! Contract: each submodule wraps raw system calls behind safe functions
//! whose arguments make misuse impossible (borrowed fds, slices), and each
//! `unsafe` block carries a `// SAFETY:` comment.
//!
//! - [`fdio`]: read/readv/write/writev/pread/sendfile/FIONREAD for the buffer layer.

#![allow(unsafe_code)]

pub mod fdio;
