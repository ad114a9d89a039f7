//! Integration tests of the reactor, one binary for the whole crate.
//!
//! Modules named after a libevent test file port its intent in our own
//! words. Every test uses real fds (socketpairs, pipes), real signals sent
//! to this process, and real threads, and every loop is bounded.
//! The suite runs once per backend: `cargo xtask test` re-runs it with
//! `EVENT_NO<METHOD>` set, as libevent's `test.sh` does.

mod common;
mod regress;
mod regress_et;
mod regress_thread;
mod signals;
mod test_changelist;
mod test_eof;
mod test_time;
mod timer_model;
