//! Integration tests of the facade: the examples, run as a user would run
//! them, and the facade's re-exports.

mod examples;
mod facade;
