//! Integration tests of `oxevent-dns`: one binary, one module per topic.

mod common;
mod dns_fake;
mod dns_server;
mod happy_eyeballs;
mod regress_dns;
