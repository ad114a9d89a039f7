//! Workloads of `bench compare` for DNS (issue 7): dns_bench against dnsmasq, beside libevent's evdns and a raw UDP floor.

use super::Workload;

/// This module's workloads (small versions with `quick`).
pub(super) fn workloads(_quick: bool) -> Vec<Workload> {
    Vec::new()
}
