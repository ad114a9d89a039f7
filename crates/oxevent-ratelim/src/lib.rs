//! Token buckets and rate-limit groups (work in progress; see the BufferEvent issue).

#![forbid(unsafe_code)]
