//! Cache hints: ask the CPU to start loading a line before it is needed. The one place pyheap
//! issues them (the refcount tier and the collector use these too). A hint never faults and
//! has no effect a program can observe, whatever the address; off x86-64 and under Miri it is
//! a no-op.

/// Starts loading the cache line at `addr`, for reading.
#[inline(always)]
pub fn prefetch(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: the intrinsic only needs SSE, which every x86-64 target has; a prefetch is a
    // hint that never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(addr.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}

/// Starts loading the cache line at `addr`, for writing.
#[inline(always)]
pub fn prefetch_for_write(addr: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: as for `prefetch`.
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        _mm_prefetch::<_MM_HINT_ET0>(addr.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = addr;
}
