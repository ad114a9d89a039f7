//! The mio backend of oxevent (work in progress).
