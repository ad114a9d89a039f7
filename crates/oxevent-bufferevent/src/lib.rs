//! Buffered I/O for oxevent (work in progress).

#![forbid(unsafe_code)]
