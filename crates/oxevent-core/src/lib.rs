//! The oxevent reactor (work in progress; see the core reactor issue).

#![deny(unsafe_code)]

pub mod sys;

pub use sys::fdio;
