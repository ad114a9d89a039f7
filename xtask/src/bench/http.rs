//! Workloads of `bench compare` for HTTP (issue 6): http_hello under wrk against evhttp and hyper, and the keep-alive soak.

use super::Workload;

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(_quick: bool) -> Vec<Workload> {
    Vec::new()
}
