//! The row gather of the key/value cache: beam search reorders the cache's rows at every step.

/// Reorders the rows of `buffer` (`[rows.len(), heads, capacity, dim]`, row-major) in place, so
/// that row `r` holds what row `rows[r]` held, in each head's first `len` positions (the rest is
/// left as it was). A beam step keeps the rows of the beams that stay: those are not touched,
/// and every other row is copied once, in an order that reads each row before it is overwritten
/// (a cycle of rows, beams trading places, goes through one spare row). Gathering into a new
/// buffer instead copied every row and wrote a fresh buffer per layer at every step.
///
/// # Panics
/// If a row of `rows` is not in `buffer`, `len > capacity`, or `buffer` is too short.
pub fn reorder_heads(
    buffer: &mut [f32],
    rows: &[u32],
    [heads, capacity, dim]: [usize; 3],
    len: usize,
) {
    let n = rows.len();
    let row_size = heads * capacity * dim;
    assert!(len <= capacity && buffer.len() >= n * row_size);
    let head = |row: usize, h: usize| row * row_size + h * capacity * dim;
    // `readers[s]`: rows still to be written that read row `s`.
    let mut readers = vec![0usize; n];
    let mut pending = vec![false; n];
    for (r, &s) in rows.iter().enumerate() {
        let s = s as usize;
        assert!(s < n, "row {s} selected from {n} rows");
        if s != r {
            readers[s] += 1;
            pending[r] = true;
        }
    }
    let mut ready: Vec<usize> = (0..n).filter(|&r| pending[r] && readers[r] == 0).collect();
    // A row saved to break a cycle: `(row, its heads' filled positions)`.
    let mut spare: Option<(usize, Vec<f32>)> = None;
    loop {
        while let Some(r) = ready.pop() {
            let s = rows[r] as usize;
            for h in 0..heads {
                let to = head(r, h);
                match &spare {
                    Some((saved, data)) if *saved == s => buffer[to..to + len * dim]
                        .copy_from_slice(&data[h * len * dim..(h + 1) * len * dim]),
                    _ => buffer.copy_within(head(s, h)..head(s, h) + len * dim, to),
                }
            }
            pending[r] = false;
            readers[s] -= 1;
            if readers[s] == 0 && pending[s] {
                ready.push(s);
            }
        }
        // Every row still to be written is read by another: they form cycles. Saving one row of
        // a cycle lets it be overwritten, and the rest of the cycle follows.
        let Some(r) = (0..n).find(|&r| pending[r]) else {
            break;
        };
        let mut data = Vec::with_capacity(heads * len * dim);
        for h in 0..heads {
            data.extend_from_slice(&buffer[head(r, h)..head(r, h) + len * dim]);
        }
        spare = Some((r, data));
        readers[r] = 0;
        ready.push(r);
    }
}

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
    /// Against gathering into a new buffer, on repeats, chains, swaps, longer cycles and rows
    /// that stay, with room after the filled positions left alone.
    #[test]
    fn reorders_in_place_like_a_gather() {
        let [heads, capacity, dim] = [2, 5, 3];
        let len = 3;
        for rows in [
            vec![0u32, 1, 2, 3],
            vec![0, 0, 1, 2],
            vec![1, 0, 3, 2],
            vec![1, 2, 3, 0],
            vec![3, 3, 3, 3],
            vec![2, 0, 1, 1],
            vec![1, 0, 0, 3],
        ] {
            let n = rows.len();
            let source: Vec<f32> = (0..n * heads * capacity * dim).map(|i| i as f32).collect();
            let mut buffer = source.clone();
            super::reorder_heads(&mut buffer, &rows, [heads, capacity, dim], len);
            for (r, &s) in rows.iter().enumerate() {
                for h in 0..heads {
                    for p in 0..capacity {
                        for d in 0..dim {
                            let at = |row: usize| ((row * heads + h) * capacity + p) * dim + d;
                            let want = if p < len {
                                source[at(s as usize)]
                            } else {
                                source[at(r)]
                            };
                            assert_eq!(buffer[at(r)], want, "{rows:?}");
                        }
                    }
                }
            }
        }
    }

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
