//! The server against curl, Python's http.client, ab and raw sockets.
//!
//! - `harness`: a server on its own thread and loop, and raw-socket helpers;
//! - `server_basic`: curl (keep-alive, chunked upload, HEAD, Expect), Python, ab, pipelining,
//!   virtual hosts, methods, Unix sockets;
//! - `server_strict`: every strict-parsing rule through a real socket (400 and close);
//! - `server_limits`: slowloris, 431, 413, 503, drain;
//! - `server_stream`: streamed request bodies with backpressure, streamed replies.

mod harness;
mod server_basic;
mod server_limits;
mod server_stream;
mod server_strict;
