//! Cache hints for the dispatch path.

/// Asks the CPU to start loading the cache line holding `*p`, so a later
/// access does not stall on memory. Only a hint: it never faults and has no
/// visible effect, whatever `p` points to.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint that never faults, even for invalid
    // addresses, and reads nothing architecturally visible; SSE, which it
    // needs, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
