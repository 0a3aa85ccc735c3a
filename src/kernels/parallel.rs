//! Work split over candle's thread pool, the one that runs the models' own operations.
//!
//! Decoding alternates between the model's operations and per-row work on the host (scoring
//! beams, choosing tokens). Running the latter on rayon's pool put rayon's threads beside
//! candle's workers, which spin for a while after each operation: on 2 cores, three busy
//! threads shared two cores (see scripts/README.md).

use super::SendPtr;

/// `[f(0, chunk 0), f(1, chunk 1), ..]` over the `width`-long chunks of `data`, in parallel.
pub fn map_chunks_mut<T: Send, R: Send>(
    data: &mut [T],
    width: usize,
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    map_chunks_in_order(data, width, false, f)
}

/// As [`for_each_chunk_mut`], handing the chunks out last first: for work that grows with the
/// chunk's index, so that no thread is left with one of the longest at the end.
pub fn for_each_chunk_mut_last_first<T: Send>(
    data: &mut [T],
    width: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    map_chunks_in_order(data, width, true, f);
}

/// [`map_chunks_mut`], the chunks handed out first to last or, with `last_first`, the other way.
fn map_chunks_in_order<T: Send, R: Send>(
    data: &mut [T],
    width: usize,
    last_first: bool,
    f: impl Fn(usize, &mut [T]) -> R + Sync,
) -> Vec<R> {
    assert!(width > 0 && data.len().is_multiple_of(width));
    let n = data.len() / width;
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let (base, slots) = (SendPtr(data.as_mut_ptr()), SendPtr(out.as_mut_ptr()));
    candle_core::utils::barrier_pool().execute_chunked(n, |chunks| {
        let (base, slots) = (&base, &slots);
        for i in chunks.map(|i| if last_first { n - 1 - i } else { i }) {
            // SAFETY: every chunk index is handed out once, so no two tasks touch the same
            // chunk of `data` or slot of `out`, and both outlive this call.
            unsafe {
                let chunk = std::slice::from_raw_parts_mut(base.get().add(i * width), width);
                *slots.get().add(i) = Some(f(i, chunk));
            }
        }
    });
    out.into_iter()
        .map(|v| v.expect("every chunk was run"))
        .collect()
}

/// Calls `f(i, chunk)` for every `width`-long chunk `i` of `data`, in parallel.
pub fn for_each_chunk_mut<T: Send>(
    data: &mut [T],
    width: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    map_chunks_mut(data, width, f);
}

/// Where each of consecutive runs of `lengths` starts: `[0, l0, l0 + l1, ..]`.
pub fn run_starts(lengths: &[usize]) -> Vec<usize> {
    lengths
        .iter()
        .scan(0, |at, &len| {
            let start = *at;
            *at += len;
            Some(start)
        })
        .collect()
}

/// Calls `f(i, run)` for the consecutive runs of `data` that are `lengths[i]` long (they cover
/// it exactly), in parallel.
///
/// # Panics
/// If the lengths do not add up to `data.len()`.
pub fn for_each_run_mut<T: Send>(
    data: &mut [T],
    lengths: &[usize],
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let starts = run_starts(lengths);
    assert_eq!(
        lengths.iter().sum::<usize>(),
        data.len(),
        "runs cover the data"
    );
    let base = SendPtr(data.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(lengths.len(), |runs| {
        let base = &base;
        for i in runs {
            // SAFETY: every run index is handed out once, and the runs are disjoint parts of
            // `data` (consecutive, their lengths adding up to its length, checked above), which
            // outlives this call.
            let run =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(starts[i]), lengths[i]) };
            f(i, run);
        }
    });
}

/// `[f(0), f(1), .., f(n - 1)]`, computed in parallel.
pub fn map<R: Send>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    map_chunks_mut(&mut vec![(); n], 1, |i, _| f(i))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_chunk_once_and_in_order() {
        let mut data = vec![0usize; 3000];
        let firsts = super::map_chunks_mut(&mut data, 3, |i, chunk| {
            chunk.iter_mut().for_each(|v| *v += i);
            chunk[0]
        });
        assert!(data.chunks(3).enumerate().all(|(i, c)| c == [i, i, i]));
        assert_eq!(firsts, (0..1000).collect::<Vec<_>>());
        let mut data = vec![0usize; 3000];
        super::for_each_chunk_mut_last_first(&mut data, 3, |i, chunk| {
            chunk.iter_mut().for_each(|v| *v += i);
        });
        assert!(data.chunks(3).enumerate().all(|(i, c)| c == [i, i, i]));
        assert_eq!(super::map(7, |i| i * 2), [0, 2, 4, 6, 8, 10, 12]);
        let mut data = vec![0usize; 10];
        super::for_each_run_mut(&mut data, &[3, 0, 1, 6], |i, run| {
            run.iter_mut().for_each(|v| *v = i + 1);
        });
        assert_eq!(data, [1, 1, 1, 3, 4, 4, 4, 4, 4, 4]);
        assert_eq!(super::run_starts(&[3, 0, 1, 6]), [0, 3, 3, 4]);
    }
}
