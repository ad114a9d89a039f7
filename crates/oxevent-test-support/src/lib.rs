//! Test helpers shared by the oxevent crates (work in progress).

#![forbid(unsafe_code)]
