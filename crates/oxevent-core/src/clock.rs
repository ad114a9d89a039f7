//! The base's clock: monotonic, cached per loop iteration, coarse by default,
//! precise on request, or manual for tests.
//!
//! All time the reactor uses comes from here (architecture invariant 4).
//! Internally time is a `u64` of nanoseconds since the clock's origin, which
//! keeps heap comparisons cheap; the public API converts to
//! [`std::time::Instant`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sys;

/// Where a base reads the time from.
#[derive(Clone)]
pub struct Clock {
    kind: ClockKind,
    origin: Instant,
}

#[derive(Clone)]
enum ClockKind {
    /// `CLOCK_MONOTONIC_COARSE`: a few ns per read, a few ms of resolution.
    Coarse { origin_ns: u64, resolution_ns: u64 },
    /// `CLOCK_MONOTONIC` through `Instant`.
    Precise,
    /// Moves only when the test advances it.
    Manual(Arc<ManualShared>),
}

struct ManualShared {
    ns: AtomicU64,
    wakers: std::sync::Mutex<Vec<oxevent_backend::Waker>>,
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ClockKind::Coarse { .. } => "coarse",
            ClockKind::Precise => "precise",
            ClockKind::Manual(_) => "manual",
        };
        f.debug_struct("Clock").field("kind", &kind).finish()
    }
}

impl Clock {
    /// The default clock: `CLOCK_MONOTONIC_COARSE` where the OS has it.
    #[must_use]
    pub fn coarse() -> Self {
        // Read the Instant first and the raw clock second, so the mapping
        // from raw readings to Instants can only lag real time, never lead
        // it: a timer then never fires early by the Instant's measure.
        #[allow(clippy::disallowed_methods)] // this is the Clock
        let origin = Instant::now();
        match (
            sys::clock::precise_monotonic_ns(),
            sys::clock::coarse_monotonic_ns(),
        ) {
            (Some(origin_ns), Some(_)) => Self {
                kind: ClockKind::Coarse {
                    origin_ns,
                    resolution_ns: sys::clock::coarse_resolution_ns(),
                },
                origin,
            },
            _ => Self {
                kind: ClockKind::Precise,
                origin,
            },
        }
    }

    /// A precise monotonic clock (`EVENT_BASE_FLAG_PRECISE_TIMER`).
    #[must_use]
    pub fn precise() -> Self {
        #[allow(clippy::disallowed_methods)] // this is the Clock
        let origin = Instant::now();
        Self {
            kind: ClockKind::Precise,
            origin,
        }
    }

    /// A manual clock for tests, starting at zero, and the handle that moves
    /// it. Time stands still until [`ManualClock::advance`] is called; a base
    /// on a manual clock never sleeps waiting for a timer (it waits for I/O,
    /// a [`Remote`](crate::Remote) message or an advance of the clock).
    #[must_use]
    pub fn manual() -> (Self, ManualClock) {
        let shared = Arc::new(ManualShared {
            ns: AtomicU64::new(0),
            wakers: std::sync::Mutex::new(Vec::new()),
        });
        #[allow(clippy::disallowed_methods)] // this is the Clock
        let origin = Instant::now();
        (
            Self {
                kind: ClockKind::Manual(shared.clone()),
                origin,
            },
            ManualClock(shared),
        )
    }

    /// Whether this is a manual clock.
    #[must_use]
    pub fn is_manual(&self) -> bool {
        matches!(self.kind, ClockKind::Manual(_))
    }

    /// Whether this is the coarse clock.
    #[must_use]
    pub fn is_coarse(&self) -> bool {
        matches!(self.kind, ClockKind::Coarse { .. })
    }

    /// Nanoseconds since this clock's origin.
    pub(crate) fn now_ns(&self) -> u64 {
        match &self.kind {
            ClockKind::Coarse { origin_ns, .. } => sys::clock::coarse_monotonic_ns()
                .map_or_else(|| self.precise_ns(), |n| n.saturating_sub(*origin_ns)),
            ClockKind::Precise => self.precise_ns(),
            ClockKind::Manual(m) => m.ns.load(Ordering::Acquire),
        }
    }

    /// A precise reading, used when a timer is due within the coarse
    /// clock's resolution. Equal to [`Clock::now_ns`] for the other kinds.
    pub(crate) fn precise_ns(&self) -> u64 {
        match &self.kind {
            ClockKind::Manual(m) => m.ns.load(Ordering::Acquire),
            ClockKind::Coarse { origin_ns, .. } => {
                sys::clock::precise_monotonic_ns().map_or(0, |n| n.saturating_sub(*origin_ns))
            }
            ClockKind::Precise => {
                #[allow(clippy::disallowed_methods)] // this is the Clock
                let now = Instant::now();
                u64::try_from(now.saturating_duration_since(self.origin).as_nanos())
                    .unwrap_or(u64::MAX)
            }
        }
    }

    /// The resolution below which a coarse reading is re-checked precisely.
    pub(crate) fn coarse_resolution_ns(&self) -> u64 {
        match self.kind {
            ClockKind::Coarse { resolution_ns, .. } => resolution_ns,
            _ => 0,
        }
    }

    /// Converts an internal reading to an `Instant`.
    pub(crate) fn to_instant(&self, ns: u64) -> Instant {
        self.origin + Duration::from_nanos(ns)
    }

    pub(crate) fn register_waker(&self, w: &oxevent_backend::Waker) {
        if let ClockKind::Manual(m) = &self.kind {
            m.wakers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(w.clone());
        }
    }
}

/// The handle that moves a manual [`Clock`]. It is `Send + Sync + Clone`, so
/// a test may advance time from another thread; each advance wakes the bases
/// that use the clock (once they have handed out a [`Remote`](crate::Remote)
/// or been created, whichever registered a waker).
#[derive(Clone)]
pub struct ManualClock(Arc<ManualShared>);

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl ManualClock {
    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let add = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .ns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                Some(v.saturating_add(add))
            });
        let wakers = self
            .0
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for w in wakers.iter() {
            let _ = w.wake();
        }
    }

    /// The time elapsed on this clock since it was created.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        Duration::from_nanos(self.0.ns.load(Ordering::Acquire))
    }
}

/// Converts a duration to nanoseconds, saturating.
pub(crate) fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_are_monotonic() {
        for c in [Clock::coarse(), Clock::precise()] {
            let a = c.now_ns();
            std::thread::sleep(Duration::from_millis(15));
            let b = c.now_ns();
            assert!(b > a, "{c:?}: {a} then {b}");
            assert!(c.precise_ns() >= b.saturating_sub(c.coarse_resolution_ns() + 1_000_000));
        }
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let (c, h) = Clock::manual();
        assert_eq!(c.now_ns(), 0);
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.now_ns(), 0);
        h.advance(Duration::from_millis(5));
        assert_eq!(c.now_ns(), 5_000_000);
        assert_eq!(h.elapsed(), Duration::from_millis(5));
        assert_eq!(
            c.to_instant(5_000_000) - c.to_instant(0),
            Duration::from_millis(5)
        );
    }
}
