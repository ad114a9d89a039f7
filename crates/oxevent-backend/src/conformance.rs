//! The backend conformance suite (work in progress).
