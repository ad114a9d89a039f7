//! Token buckets and rate-limit groups: the arithmetic of libevent's bufferevent rate
//! limiting, as pure logic.
//!
//! # Where it sits
//!
//! ```text
//! oxevent-core  <-  oxevent-ratelim  <-  oxevent-bufferevent  <-  oxevent-openssl, -http, -dns
//! ```
//!
//! This crate sits between the reactor and the bufferevents, but it does no I/O, arms no
//! timer and reads no clock. Every operation that depends on time takes the caller's `now`
//! (the event loop's cached time, from core's `Clock`), so the arithmetic is exact and can be
//! tested without sleeping. The bufferevent layer drives it:
//!
//! - a bufferevent with its own limit holds a [`TokenBucket`] built from a
//!   [`TokenBucketConfig`]; it asks how much it may read or write, charges what it did, stops a
//!   direction when told [`Transition::Suspended`], and arms one timer at
//!   [`TokenBucket::next_tick_at`] to resume it: one timer per tick, never one per byte;
//! - bufferevents sharing bandwidth join a [`RateLimitGroup`] under a [`MemberId`]; the group
//!   splits its bucket into fair shares ([`RateLimitGroup::max_to_read`]), reports when all
//!   members must stop ([`GroupChange::Suspend`]), and on each tick of its own timer
//!   ([`RateLimitGroup::refill`]) lists the members to resume, in a rotating order.
//!
//! Ticks are counted from an origin (the `now` a bucket was created with) in whole ticks, with
//! integer arithmetic only, as libevent's `ev_token_bucket_update_` does; a bucket gains
//! `rate × ticks` tokens capped at the burst, and a limit may go negative after an overlong
//! operation and recover over the following ticks. Nothing overflows, whatever the gap between
//! two refills or the size of the rates.
//!
//! # Example
//!
//! A connection limited to 4 KiB per 100 ms, in a group limited to 10 KiB per 100 ms:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use oxevent_ratelim::{
//!     DEFAULT_MAX_SINGLE_READ, GroupChange, MemberId, RateLimitGroup, TokenBucket,
//!     TokenBucketConfig, Transition,
//! };
//!
//! let tick = Duration::from_millis(100);
//! let own_cfg = TokenBucketConfig::new(4096, 4096, 4096, 4096, tick)?;
//! let group_cfg = TokenBucketConfig::new(10_240, 10_240, 10_240, 10_240, tick)?;
//!
//! let t0 = Instant::now(); // in the bufferevent layer: the loop's cached time
//! let mut own = TokenBucket::new(&own_cfg, t0);
//! let mut group = RateLimitGroup::new(group_cfg, t0);
//! let me = MemberId(1);
//! group.add_member(me);
//! group.add_member(MemberId(2));
//!
//! // Before a read: refill the own bucket, then ask the group, which applies every cap.
//! own.refill(&own_cfg, t0);
//! let n = group.max_to_read(me, Some(&own), DEFAULT_MAX_SINGLE_READ)?;
//! assert_eq!(n, 4096); // the own bucket is stricter than the group's half (5120)
//!
//! // After reading n bytes: charge both.
//! assert_eq!(own.charge_read(n), Transition::Suspended); // stop reading, arm one timer...
//! let wake_at = own.next_tick_at(t0);
//! assert_eq!(wake_at, t0 + tick);
//! assert_eq!(group.charge_read(me, n)?, GroupChange::Unchanged);
//!
//! // ...which fires at the next tick and resumes reading.
//! assert!(own.refill(&own_cfg, wake_at).read);
//! assert_eq!(group.totals(), (4096, 0));
//! # Ok::<(), oxevent_ratelim::Error>(())
//! ```
//!
//! # Two reasons to suspend
//!
//! A bufferevent with both its own limit and a group keeps the two suspensions apart, as
//! libevent does with `BEV_SUSPEND_BW` and `BEV_SUSPEND_BW_GROUP`: its own bucket suspends and
//! resumes it through [`Transition`]s and its own timer, the group through [`GroupChange`]s and
//! the group's timer. A direction runs only while neither holds it. Asking the group with
//! `Some(&own_bucket)` gives the allowance under both.
//!
//! # Differences from libevent
//!
//! - Ticks are counted from each bucket's origin (its creation time, or the time its tick
//!   length last changed) instead of the Unix epoch, in nanoseconds instead of milliseconds.
//! - A member's share is also capped by what the group has left, so the minimum share never
//!   overdraws the group; libevent may hand out `min_share` bytes from an almost empty group.
//! - Suspended members are resumed starting from a member that rotates deterministically,
//!   instead of from a random one.
//! - [`RATE_LIMIT_MAX`] is `i64::MAX` on every target; all arithmetic saturates, group totals
//!   included (libevent's wrap).
//! - Asking for or charging a member that is not in the group is an
//!   [`Error::UnknownMember`], so an empty group never divides by zero.
//! - A manual group decrement resumes a suspended group only when it adds tokens and the
//!   bucket ends above zero.
//!
//! # Feature flags
//!
//! None.

#![forbid(unsafe_code)]

mod bucket;
mod config;
mod error;
mod group;

pub use bucket::{
    DEFAULT_MAX_SINGLE_READ, DEFAULT_MAX_SINGLE_WRITE, Directions, TokenBucket, Transition,
};
pub use config::{DEFAULT_TICK, RATE_LIMIT_MAX, TokenBucketConfig};
pub use error::{Direction, Error, Result};
pub use group::{DEFAULT_MIN_SHARE, GroupChange, GroupRefill, MemberId, RateLimitGroup};
