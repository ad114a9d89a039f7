//! Integration tests of `oxevent-dns`: one binary, one module per topic.
