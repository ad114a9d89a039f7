//! Smoke tests of the DNS examples (`dns-example`), against dig and our own resolver.
