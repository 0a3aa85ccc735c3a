//! Settings of mimalloc, the global allocator of the tarjama binary and its benchmarks.
//!
//! The decoding loop allocates and frees the same large buffers at every step (the logits of
//! a beam-search step over OPUS-MT's vocabulary are 8 MB). mimalloc keeps freed memory for
//! reuse, but purges it (hands it back to the OS) a while after it is freed, and large blocks
//! were then faulted back in, page by zeroed page. Not purging at all cut beam search's page
//! faults from 27,000–36,000 to about 5,300 on the benchmark model and its CPU time by 11%.
//! The cost is that memory freed after the peak stays with the process until it exits; the peak
//! itself is unchanged (636 MB in both runs).

/// mimalloc's `mi_option_purge_delay`, the same in its v2 and v3 (`mimalloc.h`): the crate
/// exports no constant for it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Never purge (mimalloc's default is 1000 ms, which did not prevent the faults).
const NEVER: std::os::raw::c_long = -1;

/// Applies tarjama's mimalloc settings; call once at start. Harmless where mimalloc is linked
/// but not the global allocator.
pub fn configure() {
    // The one `unsafe` outside `kernels` (lib.rs allows it here): a foreign call that configures
    // the allocator, not a kernel, kept beside the allocator's settings that explain it.
    // SAFETY: `mi_option_set` only stores the value; mimalloc reads it when it next purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, NEVER) };
}
