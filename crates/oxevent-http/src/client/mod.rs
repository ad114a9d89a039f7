//! The HTTP/1.1 client (libevent's `evhttp_connection` and `evhttp_make_request`): work in progress, see issue 6.
