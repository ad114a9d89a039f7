//! [`TokenBucketConfig`]: rates, bursts and the tick length, validated once.

use std::time::{Duration, Instant};

use crate::error::{Direction, Error, Result};

/// The largest rate, burst or minimum share accepted, in bytes.
///
/// libevent's `EV_RATE_LIMIT_MAX` is `EV_SSIZE_MAX`, which is `i64::MAX` on 64-bit targets; we
/// use `i64::MAX` on every target, because bucket levels are `i64`. All bucket arithmetic is
/// done in `i128` and saturates, so even values this large cannot overflow.
pub const RATE_LIMIT_MAX: u64 = i64::MAX as u64;

/// The tick length used by [`TokenBucketConfig::with_default_tick`]: one second, as libevent
/// uses when `ev_token_bucket_cfg_new` gets a `NULL` tick length.
pub const DEFAULT_TICK: Duration = Duration::from_secs(1);

/// A validated token-bucket configuration: a rate and a burst for each direction, and the tick.
///
/// Every tick, a bucket gains `rate` tokens (bytes) and is capped at `burst`. A fresh bucket
/// starts with one tick's worth (`rate`), as in libevent. A configuration is small and `Copy`;
/// many buckets may share one, as many bufferevents share one `ev_token_bucket_cfg` in C.
/// There is nothing to free (`ev_token_bucket_cfg_free`): it is a plain value.
///
/// ```
/// use std::time::Duration;
/// use oxevent_ratelim::TokenBucketConfig;
///
/// // 1000 bytes per 100 ms both ways, with bursts of up to 4000 bytes.
/// let cfg = TokenBucketConfig::new(1000, 4000, 1000, 4000, Duration::from_millis(100))?;
/// assert_eq!(cfg.read_rate(), 1000);
/// assert!(TokenBucketConfig::new(10, 5, 1, 1, Duration::from_secs(1)).is_err());
/// # Ok::<(), oxevent_ratelim::Error>(())
/// ```
#[doc(alias = "ev_token_bucket_cfg")]
#[doc(alias = "ev_token_bucket_cfg_free")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenBucketConfig {
    /// INVARIANT: 1 <= read_rate <= read_burst <= RATE_LIMIT_MAX.
    read_rate: u64,
    read_burst: u64,
    /// INVARIANT: 1 <= write_rate <= write_burst <= RATE_LIMIT_MAX.
    write_rate: u64,
    write_burst: u64,
    /// INVARIANT: not zero.
    tick: Duration,
}

impl TokenBucketConfig {
    /// Validates and builds a configuration.
    ///
    /// Rates are in bytes per tick and bursts are bucket sizes in bytes. Unlike libevent,
    /// which counts ticks in whole milliseconds, the tick may be any non-zero [`Duration`];
    /// tick numbers are computed in nanoseconds.
    ///
    /// # Errors
    ///
    /// Checked in this order, for read then write: a rate or burst above [`RATE_LIMIT_MAX`]
    /// ([`Error::TooLarge`]), a zero rate ([`Error::ZeroRate`]), a rate above its burst
    /// ([`Error::RateExceedsBurst`]); then a zero `tick` ([`Error::ZeroTick`]).
    #[doc(alias = "ev_token_bucket_cfg_new")]
    pub fn new(
        read_rate: u64,
        read_burst: u64,
        write_rate: u64,
        write_burst: u64,
        tick: Duration,
    ) -> Result<Self> {
        check_direction(Direction::Read, read_rate, read_burst)?;
        check_direction(Direction::Write, write_rate, write_burst)?;
        if tick.is_zero() {
            return Err(Error::ZeroTick);
        }
        Ok(Self {
            read_rate,
            read_burst,
            write_rate,
            write_burst,
            tick,
        })
    }

    /// [`new`](Self::new) with the [`DEFAULT_TICK`] of one second.
    ///
    /// # Errors
    ///
    /// As [`new`](Self::new), except that the tick cannot be zero.
    pub fn with_default_tick(
        read_rate: u64,
        read_burst: u64,
        write_rate: u64,
        write_burst: u64,
    ) -> Result<Self> {
        Self::new(read_rate, read_burst, write_rate, write_burst, DEFAULT_TICK)
    }

    /// Tokens (bytes) added to the read bucket each tick.
    pub fn read_rate(&self) -> u64 {
        self.read_rate
    }

    /// The most tokens the read bucket can hold.
    pub fn read_burst(&self) -> u64 {
        self.read_burst
    }

    /// Tokens (bytes) added to the write bucket each tick.
    pub fn write_rate(&self) -> u64 {
        self.write_rate
    }

    /// The most tokens the write bucket can hold.
    pub fn write_burst(&self) -> u64 {
        self.write_burst
    }

    /// The tick length.
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The rate of one direction.
    pub fn rate(&self, direction: Direction) -> u64 {
        match direction {
            Direction::Read => self.read_rate,
            Direction::Write => self.write_rate,
        }
    }

    /// The burst of one direction.
    pub fn burst(&self, direction: Direction) -> u64 {
        match direction {
            Direction::Read => self.read_burst,
            Direction::Write => self.write_burst,
        }
    }

    /// The number of whole ticks between `origin` and `now` (libevent's
    /// `ev_token_bucket_get_tick_`, counted from `origin` instead of the Unix epoch).
    ///
    /// A `now` before `origin` counts as tick 0. The count saturates at `u64::MAX`, which only a
    /// one-nanosecond tick could reach, after 584 years.
    pub fn tick_number(&self, origin: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        u64::try_from(elapsed / self.tick.as_nanos()).unwrap_or(u64::MAX)
    }
}

fn check_direction(direction: Direction, rate: u64, burst: u64) -> Result<()> {
    let (rate_name, burst_name) = match direction {
        Direction::Read => ("read rate", "read burst"),
        Direction::Write => ("write rate", "write burst"),
    };
    if rate > RATE_LIMIT_MAX {
        return Err(Error::TooLarge {
            what: rate_name,
            value: rate,
        });
    }
    if burst > RATE_LIMIT_MAX {
        return Err(Error::TooLarge {
            what: burst_name,
            value: burst,
        });
    }
    if rate == 0 {
        return Err(Error::ZeroRate { direction });
    }
    if rate > burst {
        return Err(Error::RateExceedsBurst {
            direction,
            rate,
            burst,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_are_typed() {
        let s = Duration::from_secs(1);
        assert_eq!(
            TokenBucketConfig::new(0, 10, 1, 1, s),
            Err(Error::ZeroRate {
                direction: Direction::Read
            })
        );
        assert_eq!(
            TokenBucketConfig::new(1, 1, 0, 0, s),
            Err(Error::ZeroRate {
                direction: Direction::Write
            })
        );
        assert_eq!(
            TokenBucketConfig::new(11, 10, 1, 1, s),
            Err(Error::RateExceedsBurst {
                direction: Direction::Read,
                rate: 11,
                burst: 10
            })
        );
        assert_eq!(
            TokenBucketConfig::new(1, 1, 3, 2, s),
            Err(Error::RateExceedsBurst {
                direction: Direction::Write,
                rate: 3,
                burst: 2
            })
        );
        assert_eq!(
            TokenBucketConfig::new(1, RATE_LIMIT_MAX + 1, 1, 1, s),
            Err(Error::TooLarge {
                what: "read burst",
                value: RATE_LIMIT_MAX + 1
            })
        );
        assert_eq!(
            TokenBucketConfig::new(1, 1, u64::MAX, u64::MAX, s),
            Err(Error::TooLarge {
                what: "write rate",
                value: u64::MAX
            })
        );
        assert_eq!(
            TokenBucketConfig::new(1, 1, 1, 1, Duration::ZERO),
            Err(Error::ZeroTick)
        );
        let max = TokenBucketConfig::new(
            RATE_LIMIT_MAX,
            RATE_LIMIT_MAX,
            RATE_LIMIT_MAX,
            RATE_LIMIT_MAX,
            Duration::from_nanos(1),
        )
        .expect("the maximum itself is accepted");
        assert_eq!(max.read_burst(), RATE_LIMIT_MAX);
    }

    #[test]
    fn default_tick_is_one_second() {
        let cfg = TokenBucketConfig::with_default_tick(1, 2, 3, 4).unwrap();
        assert_eq!(cfg.tick(), Duration::from_secs(1));
        assert_eq!(
            (
                cfg.read_rate(),
                cfg.read_burst(),
                cfg.write_rate(),
                cfg.write_burst()
            ),
            (1, 2, 3, 4)
        );
        assert_eq!(cfg.rate(Direction::Write), 3);
        assert_eq!(cfg.burst(Direction::Read), 2);
    }

    #[test]
    fn tick_number_counts_whole_ticks() {
        let cfg = TokenBucketConfig::new(1, 1, 1, 1, Duration::from_millis(250)).unwrap();
        let t0 = Instant::now();
        assert_eq!(cfg.tick_number(t0, t0), 0);
        assert_eq!(cfg.tick_number(t0, t0 + Duration::from_millis(249)), 0);
        assert_eq!(cfg.tick_number(t0, t0 + Duration::from_millis(250)), 1);
        assert_eq!(cfg.tick_number(t0, t0 + Duration::from_millis(1001)), 4);
        // A `now` before the origin is tick 0, not a panic.
        assert_eq!(cfg.tick_number(t0 + Duration::from_secs(5), t0), 0);
    }

    #[test]
    fn errors_display_lowercase_without_period() {
        let errs = [
            Error::ZeroRate {
                direction: Direction::Read,
            },
            Error::RateExceedsBurst {
                direction: Direction::Write,
                rate: 2,
                burst: 1,
            },
            Error::TooLarge {
                what: "min share",
                value: u64::MAX,
            },
            Error::ZeroTick,
            Error::UnknownMember(crate::MemberId(7)),
        ];
        for e in errs {
            let text = e.to_string();
            assert!(!text.is_empty());
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.chars().next().unwrap().is_lowercase(), "{text}");
        }
        assert_eq!(
            Error::UnknownMember(crate::MemberId(7)).to_string(),
            "member 7 is not a member of this group"
        );
    }
}
