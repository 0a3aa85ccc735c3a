//! Settings of mimalloc, the global allocator of the tarjama binary and its benchmarks.
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

/// mimalloc's `mi_option_purge_delay`, the same in its v2 and v3 (`mimalloc.h`): the crate
/// exports no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never purge (mimalloc's default is 1000 ms, which did not prevent the faults).
const NEVER: std::os::raw::c_long = -1;

/// mimalloc's `mi_option_allow_thp` in its v3, which the crate builds by default (`mimalloc.h`;
/// the crate exports no constant for it). A unit test checks it against its neighbours' defaults.
const ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Applies tarjama's mimalloc settings; call once at start. Harmless where mimalloc is linked
/// but not the global allocator.
pub fn configure() {
    // `unsafe` outside `kernels` (lib.rs allows it here): a foreign call that configures the
    // allocator, not a kernel, kept beside the allocator's settings that explain it.
    // SAFETY: `mi_option_set` only stores the value; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, NEVER) };
}

/// Runs `load` with mimalloc asking for no huge pages for the memory it maps meanwhile (see the
/// module's documentation), then restores the setting. Memory mapped during `load` (the
/// weights) stays on normal pages; buffers allocated later may get huge pages again.
pub fn without_huge_pages<T>(load: impl FnOnce() -> T) -> T {
    // SAFETY: `mi_option_get` and `mi_option_set` read and store an option's value; mimalloc
    // reads `allow_thp` when it next maps memory.
    let before = unsafe { libmimalloc_sys::mi_option_get(ALLOW_THP) };
    unsafe { libmimalloc_sys::mi_option_set(ALLOW_THP, 0) };
    let out = load();
    // SAFETY: as above.
    unsafe { libmimalloc_sys::mi_option_set(ALLOW_THP, before) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option numbers are mimalloc v3's: `page_cross_thread_max_reclaim` (42, default 32)
    /// comes just before `allow_thp` (43, default 1 on Linux), as in `options.c`.
    #[test]
    fn the_option_numbers_are_mimallocs() {
        // SAFETY: reading options has no preconditions.
        let (neighbour, thp) = unsafe {
            (
                libmimalloc_sys::mi_option_get(ALLOW_THP - 1),
                libmimalloc_sys::mi_option_get(ALLOW_THP),
            )
        };
        assert_eq!(neighbour, 32);
        // 1 unless the environment sets MIMALLOC_ALLOW_THP=0.
        assert!(thp == 0 || thp == 1, "{thp}");
        assert_eq!(
            without_huge_pages(|| unsafe { libmimalloc_sys::mi_option_get(ALLOW_THP) }),
            0
        );
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(ALLOW_THP) }, thp);
    }
}
