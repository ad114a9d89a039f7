//! Integration tests of the mio backend: the shared conformance suite plus
//! mio-specific behaviour (level-triggering emulation).

#![cfg(unix)]

mod conformance {
    oxevent_backend::backend_conformance_tests!(oxevent_mio::DESCRIPTOR);
}

mod mio_specific;
