//! Integration tests of `oxevent-ratelim`: one binary, one module per topic.
//!
//! All time is fake: an origin `Instant` plus `Duration`s; nothing sleeps.

mod ratelim_bucket;
mod ratelim_group;
mod ratelim_model;
mod regress_bufferevent;
mod test_ratelim;

use std::time::{Duration, Instant};

use oxevent_ratelim::TokenBucketConfig;

/// The same rate and burst both ways, with `tick`.
pub(crate) fn symmetric(rate: u64, burst: u64, tick: Duration) -> TokenBucketConfig {
    TokenBucketConfig::new(rate, burst, rate, burst, tick).expect("valid test configuration")
}

/// `origin + n × tick`.
pub(crate) fn at_tick(origin: Instant, tick: Duration, n: u32) -> Instant {
    origin + tick * n
}
