//! The poll backend of oxevent (work in progress).
