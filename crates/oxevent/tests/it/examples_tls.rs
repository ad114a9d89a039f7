//! Smoke tests of the TLS examples (`le-proxy --tls`, `https-client`), against openssl s_client / s_server.
