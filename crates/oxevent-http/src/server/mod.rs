//! The HTTP/1.1 server (libevent's `evhttp`): work in progress, see issue 6.
