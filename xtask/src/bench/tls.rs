//! Workloads of `bench compare` for TLS echo (issue 5): tls_echo_server against libevent's bufferevent_openssl and tokio-openssl.

use super::Workload;

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(_quick: bool) -> Vec<Workload> {
    Vec::new()
}
