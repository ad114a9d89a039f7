//! Integration tests of the epoll backend: the shared conformance suite plus
//! epoll-specific behaviour.

#![cfg(any(target_os = "linux", target_os = "android"))]

mod conformance {
    oxevent_backend::backend_conformance_tests!(oxevent_epoll::DESCRIPTOR);
}

mod epoll_specific;
