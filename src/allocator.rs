//! Settings of mimalloc, the global allocator of the tarjama binary and its benchmarks, and of
//! the process's huge pages while a model loads.
//!
//! The decoding loop allocates and frees the same large buffers at every step (the logits of
//! a beam-search step over OPUS-MT's vocabulary are 8 MB). mimalloc keeps freed memory for
//! reuse, but purges it (hands it back to the OS) a while after it is freed, and large blocks
//! were then faulted back in, page by zeroed page. Not purging at all cut beam search's page
//! faults from 27,000–36,000 to about 5,300 on the benchmark model and its CPU time by 11%.
//! The cost is that memory freed after the peak stays with the process until it exits; the peak
//! itself is unchanged (636 MB in both runs).
//!
//! mimalloc also asks for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on the memory it
//! maps. Where the kernel's THP defrag setting is `madvise` (the default on many distributions),
//! each such fault may first compact memory: on a 2-core VM whose memory was fragmented by page
//! cache, loading the opus-mt-shaped f32 model took 2.1–4.4 s, 2.3–4.4 s of it system time,
//! against 0.52 s with `MIMALLOC_ALLOW_THP=0`; but generation without huge pages was 5–7%
//! slower. [`without_huge_pages`] gives the load the first and keeps the second for decoding.
//! Fresh memory costs more still on VMs whose host takes back the memory a guest frees: a huge
//! page is a whole free 2 MB block, the kind the guest hands back first, so each one faulted in
//! waits for the host (README, "Performance").

/// mimalloc's `mi_option_purge_delay`, the same in its v2 and v3 (`mimalloc.h`): the crate
/// exports no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never purge (mimalloc's default is 1000 ms, which did not prevent the faults).
const NEVER: std::os::raw::c_long = -1;

/// Applies tarjama's mimalloc settings; call once at start. Harmless where mimalloc is linked
/// but not the global allocator.
pub fn configure() {
    // `unsafe` outside `kernels` (lib.rs allows it here): a foreign call that configures the
    // allocator, not a kernel, kept beside the allocator's settings that explain it.
    // SAFETY: `mi_option_set` only stores the value; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, NEVER) };
}

/// Runs `load` with the process's transparent huge pages turned off (Linux's
/// `PR_SET_THP_DISABLE`), then turns them back on: memory faulted in meanwhile (the weights)
/// stays on normal pages, memory faulted in later (decoding's buffers) may get huge pages
/// again. Loads that overlap (tests, a service loading several models) keep them off until the
/// last one ends.
///
/// A switch for the whole process rather than mimalloc's `allow_thp`: mimalloc decides on huge
/// pages when it reserves an arena (1 GiB at a time), usually long before the weights are
/// allocated in it, so changing its option around a load changed nothing.
pub fn without_huge_pages<T>(load: impl FnOnce() -> T) -> T {
    let _off = HugePagesOff::new();
    load()
}

/// How many loads run, and the process's huge-page setting before the first of them.
static LOADS: std::sync::Mutex<(usize, ThpSetting)> = std::sync::Mutex::new((0, ThpSetting(0)));

/// Huge pages off while it lives.
struct HugePagesOff;

impl HugePagesOff {
    fn new() -> Self {
        let mut loads = LOADS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if loads.0 == 0 {
            loads.1 = ThpSetting::get();
            ThpSetting::OFF.set();
        }
        loads.0 += 1;
        HugePagesOff
    }
}

impl Drop for HugePagesOff {
    fn drop(&mut self) {
        let mut loads = LOADS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loads.0 -= 1;
        if loads.0 == 0 {
            loads.1.set();
        }
    }
}

/// Whether a load is running (in another thread, from a caller's point of view after its own
/// load has ended), which keeps huge pages off.
pub fn loading() -> bool {
    LOADS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .0
        > 0
}

/// Whether transparent huge pages are off for this process now (while a load runs, or from the
/// start with `MIMALLOC_ALLOW_THP=0`): pages faulted in now will be small ones.
pub fn thp_disabled() -> bool {
    ThpSetting::get().0 & 1 != 0
}

/// The value of Linux's `PR_GET_THP_DISABLE`: bit 0 set where huge pages are off, with the
/// flags of how (Linux 6.18 adds `PR_THP_DISABLE_EXCEPT_ADVISED`, bit 1), which setting it back
/// restores.
#[derive(Clone, Copy)]
struct ThpSetting(i32);

impl ThpSetting {
    const OFF: ThpSetting = ThpSetting(1);

    #[cfg(target_os = "linux")]
    fn get() -> Self {
        // SAFETY: PR_GET_THP_DISABLE reads a setting of the calling process; no pointers.
        let value = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        // -1 where the kernel has no such setting (before 3.15): treated as on.
        ThpSetting(value.max(0))
    }

    #[cfg(not(target_os = "linux"))]
    fn get() -> Self {
        ThpSetting(0)
    }

    #[cfg(target_os = "linux")]
    fn set(self) {
        let (disable, flags) = (self.0 & 1, self.0 & !1);
        // SAFETY: PR_SET_THP_DISABLE sets a setting of the calling process; no pointers. Where
        // it fails (kernels without it, or without a flag), huge pages stay as they were: a
        // slower load, nothing else.
        unsafe {
            libc::prctl(
                libc::PR_SET_THP_DISABLE,
                disable as libc::c_ulong,
                flags as libc::c_ulong,
                0,
                0,
            )
        };
    }

    #[cfg(not(target_os = "linux"))]
    fn set(self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_pages_stay_off_until_the_last_overlapping_load_ends_then_are_as_before() {
        let before = thp_disabled();
        let after_inner = without_huge_pages(|| {
            let inner = without_huge_pages(thp_disabled);
            (inner, thp_disabled())
        });
        if cfg!(target_os = "linux") {
            assert_eq!(after_inner, (true, true));
        }
        assert_eq!(thp_disabled(), before);
    }
}
