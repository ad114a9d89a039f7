//! The epoll backend of oxevent (work in progress).
