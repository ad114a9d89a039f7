//! Raw monotonic clock reads (Linux: `CLOCK_MONOTONIC_COARSE` and
//! `CLOCK_MONOTONIC`, which share one epoch, so their readings mix).

#[cfg(any(target_os = "linux", target_os = "android"))]
fn read(id: libc::clockid_t) -> Option<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let r = unsafe { libc::clock_gettime(id, &mut ts) };
    if r != 0 {
        return None;
    }
    Some(
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64),
    )
}

/// Nanoseconds of `CLOCK_MONOTONIC_COARSE`, or `None` where there is no
/// coarse clock (the caller then uses `Instant`).
pub(crate) fn coarse_monotonic_ns() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return read(libc::CLOCK_MONOTONIC_COARSE);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    None
}

/// Nanoseconds of `CLOCK_MONOTONIC`, on the same epoch as
/// [`coarse_monotonic_ns`].
pub(crate) fn precise_monotonic_ns() -> Option<u64> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    return read(libc::CLOCK_MONOTONIC);
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    None
}

/// The resolution of the coarse clock in nanoseconds (about 4 ms on a
/// 250 Hz kernel), or 0 if unknown.
pub(crate) fn coarse_resolution_ns() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
        let r = unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if r == 0 {
            return (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
        }
    }
    0
}
