//! The row gather of the key/value cache: beam search reorders the cache's rows at every step.

/// The buffer `[rows.len(), heads, kept, dim]` made of the rows `rows` of `source` (`[_, heads,
/// capacity, dim]`, row-major), each head's first `len` positions copied and the rest up to
/// `kept` zeroed, in parallel. The output is written once, not zeroed first: candle's
/// `index_select` copies whole buffers on one thread, and in beam search on the opus-mt shape
/// that was 6% of the time.
///
/// # Panics
/// If `len > kept` or `len > capacity`, or a row of `rows` is not in `source`.
pub fn gather_heads(
    source: &[f32],
    rows: &[u32],
    [heads, capacity, dim]: [usize; 3],
    len: usize,
    kept: usize,
) -> Vec<f32> {
    assert!(
        len <= kept && len <= capacity,
        "{len} positions of {capacity}, {kept} kept"
    );
    let (row_size, head_size) = (heads * kept * dim, kept * dim);
    let mut out: Vec<f32> = Vec::with_capacity(rows.len() * row_size);
    let spare = &mut out.spare_capacity_mut()[..rows.len() * row_size];
    super::parallel::for_each_chunk_mut(spare, row_size, |r, row| {
        let from = rows[r] as usize * heads * capacity * dim;
        for (h, head) in row.chunks_exact_mut(head_size).enumerate() {
            let filled = &source[from + h * capacity * dim..][..len * dim];
            let (copy, room) = head.split_at_mut(len * dim);
            // SAFETY: `copy` is exactly `filled.len()` values long, and the two never overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(filled.as_ptr(), copy.as_mut_ptr().cast(), len * dim)
            };
            room.iter_mut().for_each(|v| {
                v.write(0.0);
            });
        }
    });
    // SAFETY: every row's every head was written in full above (a panic there, for a row not in
    // `source`, never gets here).
    unsafe { out.set_len(rows.len() * row_size) };
    out
}

#[cfg(test)]
mod tests {
    /// Against indexing, on a shape with room after the copied positions and a repeated row.
    #[test]
    fn copies_the_filled_positions_and_zeroes_the_room() {
        let [heads, capacity, dim] = [3, 7, 5];
        let source: Vec<f32> = (0..4 * heads * capacity * dim).map(|i| i as f32).collect();
        let rows = [2, 0, 2, 3];
        let (len, kept) = (4, 6);
        let got = super::gather_heads(&source, &rows, [heads, capacity, dim], len, kept);
        let mut want = Vec::new();
        for &r in &rows {
            for h in 0..heads {
                for p in 0..kept {
                    for d in 0..dim {
                        let at = ((r as usize * heads + h) * capacity + p) * dim + d;
                        want.push(if p < len { source[at] } else { 0.0 });
                    }
                }
            }
        }
        assert_eq!(got, want);
    }
}
