//! Integration tests of `oxevent-openssl`: one binary, one module per topic.
