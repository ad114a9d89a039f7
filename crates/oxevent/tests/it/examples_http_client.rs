//! Smoke tests of the HTTP client examples (`http-connect`).
