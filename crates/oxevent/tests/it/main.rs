//! Integration tests of the facade: the examples, run as a user would run
//! them, and the facade's re-exports.

mod examples;
#[cfg(feature = "extra")]
mod examples_dns;
#[cfg(feature = "extra")]
mod examples_http;
#[cfg(feature = "extra")]
mod examples_http_client;
#[cfg(feature = "openssl")]
mod examples_tls;
mod facade;
