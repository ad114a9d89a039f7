//! Integration tests of `oxevent-bufferevent` (one binary).

mod buffer_model;
mod common;
mod regress_buffer;
mod regress_bufferevent;
mod regress_listener;
