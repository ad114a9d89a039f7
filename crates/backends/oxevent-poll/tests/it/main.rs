//! Integration tests of the poll backend: the shared conformance suite plus
//! poll-specific behaviour.

#![cfg(unix)]

mod conformance {
    oxevent_backend::backend_conformance_tests!(oxevent_poll::DESCRIPTOR);
}

mod poll_specific;
