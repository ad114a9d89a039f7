//! Integration tests of `oxevent-openssl`: one binary, one module per topic.
//! Every peer is real (`openssl s_client`, `openssl s_server`, or OpenSSL
//! through the `openssl` crate on a thread), on loopback.

mod common;
mod regress_ssl;
mod socket_mode;
mod tls_peers;
