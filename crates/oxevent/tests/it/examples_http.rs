//! Smoke tests of the HTTP examples (`http-server`, `http-connect`), against curl.
