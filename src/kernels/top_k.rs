//! The choice of tokens over a row of logits without writing the row's scores out: a beam step
//! used to copy every row (62834 words for OPUS-MT), normalise it, add the beam's score and scan
//! the copy, six passes and four of them writing. Here a row of scores is described by the logits
//! it derives from ([`ShiftedRow`]) and scanned once for its best `k`, and the sum of the
//! re-normalisation reads the logits again ([`super::exp::sum_exp_shifted`]); every value is
//! computed with the same f32 operations, in the same order, as on the written-out row, so the
//! choice is bit for bit the same.

/// A row of scores held as the logits it derives from: entry `i` is
/// `(row[i] - sub[0]) - sub[1]` (`sub = [+inf, 0]` makes every entry -inf), except at `edits`,
/// `(index, value)` sorted by index without repeats, which hold their own values.
#[derive(Debug, Clone, Copy)]
pub struct ShiftedRow<'a> {
    pub row: &'a [f32],
    pub sub: [f32; 2],
    pub edits: &'a [(usize, f32)],
}

impl ShiftedRow<'_> {
    /// The entry at `i` of an unedited position.
    fn base(&self, x: f32) -> f32 {
        (x - self.sub[0]) - self.sub[1]
    }

    /// The entry at `i`.
    pub fn get(&self, i: usize) -> f32 {
        match self.edits.binary_search_by_key(&i, |e| e.0) {
            Ok(at) => self.edits[at].1,
            Err(_) => self.base(self.row[i]),
        }
    }

    /// The largest entry (-inf for an empty row), given `row_max`, the largest logit of `row`.
    /// NaNs are skipped, as `f32::max` skips them.
    pub fn max(&self, row_max: f32) -> f32 {
        // Subtracting is monotonic, so the largest unedited entry comes from the largest
        // unedited logit: `row_max` unless an edit sits on it.
        let unedited_max = if self.edits.iter().any(|&(i, _)| self.row[i] == row_max) {
            let mut from = 0;
            let mut best = f32::NEG_INFINITY;
            for &(i, _) in self.edits {
                best = best.max(max(&self.row[from..i]));
                from = i + 1;
            }
            best.max(max(&self.row[from..]))
        } else {
            row_max
        };
        let unedited = if self.edits.len() < self.row.len() {
            self.base(unedited_max)
        } else {
            f32::NEG_INFINITY
        };
        self.edits.iter().fold(unedited, |m, e| m.max(e.1))
    }
}

/// The largest value of `row`, -inf when it is empty; NaNs are skipped, as `f32::max` skips them.
pub fn max(row: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::isa() >= super::Isa::Avx2 {
        // SAFETY: the instructions were checked for.
        return unsafe { avx2::max(row) };
    }
    row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// The best `k` of `scores` seen so far, `(score, index)` best first; ties keep the lower index,
/// as long as indices are offered in increasing order.
#[derive(Debug, Clone)]
pub struct Best {
    k: usize,
    items: Vec<(f32, usize)>,
}

impl Best {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            items: Vec::with_capacity(k + 1),
        }
    }

    /// The score a new entry must beat, once `k` are held.
    fn threshold(&self) -> Option<f32> {
        (self.k > 0 && self.items.len() == self.k).then(|| self.items[self.k - 1].0)
    }

    pub fn offer(&mut self, score: f32, index: usize) {
        if self.k == 0 || self.threshold().is_some_and(|t| score <= t) {
            return;
        }
        let at = self.items.partition_point(|&(b, _)| b >= score);
        self.items.insert(at, (score, index));
        self.items.truncate(self.k);
    }

    pub fn into_vec(self) -> Vec<(f32, usize)> {
        self.items
    }
}

/// Offers every entry of `row` to `best` as `((entry - then[0]) - then[1]) + add`, at index
/// `offset + i`, in increasing index order.
pub fn offer_row(row: &ShiftedRow, then: [f32; 2], add: f32, offset: usize, best: &mut Best) {
    let post = |v: f32| ((v - then[0]) - then[1]) + add;
    let mut from = 0;
    for &(i, value) in row.edits {
        offer_logits(&row.row[from..i], row.sub, then, add, offset + from, best);
        best.offer(post(value), offset + i);
        from = i + 1;
    }
    offer_logits(&row.row[from..], row.sub, then, add, offset + from, best);
}

/// [`offer_row`] over unedited logits.
fn offer_logits(
    logits: &[f32],
    sub: [f32; 2],
    then: [f32; 2],
    add: f32,
    offset: usize,
    best: &mut Best,
) {
    #[cfg(target_arch = "x86_64")]
    if super::isa() >= super::Isa::Avx2 {
        // SAFETY: the instructions were checked for.
        return unsafe {
            avx2::offer_logits(
                logits,
                [sub[0], sub[1], then[0], then[1]],
                add,
                offset,
                best,
            )
        };
    }
    for (i, &x) in logits.iter().enumerate() {
        best.offer(
            score(x, [sub[0], sub[1], then[0], then[1]], add),
            offset + i,
        );
    }
}

/// `((((x - sub[0]) - sub[1]) - sub[2]) - sub[3]) + add`: the operations of the written-out
/// row (log-softmax, re-normalisation, the beam's score), in their order.
fn score(x: f32, sub: [f32; 4], add: f32) -> f32 {
    ((((x - sub[0]) - sub[1]) - sub[2]) - sub[3]) + add
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{score, Best};

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn max(row: &[f32]) -> f32 {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let mut chunks = row.chunks_exact(8);
            // `max_ps` returns its second operand where either is NaN: NaNs are skipped.
            let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
            for chunk in &mut chunks {
                best = _mm256_max_ps(_mm256_loadu_ps(chunk.as_ptr()), best);
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), best);
            lanes
                .iter()
                .chain(chunks.remainder())
                .copied()
                .fold(f32::NEG_INFINITY, f32::max)
        }
    }

    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn offer_logits(
        logits: &[f32],
        sub: [f32; 4],
        add: f32,
        offset: usize,
        best: &mut Best,
    ) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let subs = [
                _mm256_set1_ps(sub[0]),
                _mm256_set1_ps(sub[1]),
                _mm256_set1_ps(sub[2]),
                _mm256_set1_ps(sub[3]),
            ];
            let add8 = _mm256_set1_ps(add);
            let mut chunks = logits.chunks_exact(8);
            let mut lanes = [0f32; 8];
            let mut at = offset;
            for chunk in &mut chunks {
                let mut v = _mm256_loadu_ps(chunk.as_ptr());
                for s in subs {
                    v = _mm256_sub_ps(v, s);
                }
                v = _mm256_add_ps(v, add8);
                // Lanes that are not at most the threshold (NaN included, as in `offer`).
                let mask = match best.threshold() {
                    Some(t) => _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(t), _CMP_NLE_UQ)),
                    None => 0xff,
                };
                if mask != 0 {
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    for (lane, &s) in lanes.iter().enumerate() {
                        if mask & (1 << lane) != 0 {
                            best.offer(s, at + lane);
                        }
                    }
                }
                at += 8;
            }
            for (i, &x) in chunks.remainder().iter().enumerate() {
                best.offer(score(x, sub, add), at + i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The best `k` of a written-out row, the way beam search chose them before.
    fn reference(scores: &[f32], k: usize) -> Vec<(f32, usize)> {
        let mut best = Best::new(k);
        scores
            .iter()
            .enumerate()
            .for_each(|(i, &s)| best.offer(s, i));
        best.into_vec()
    }

    fn scan(row: &ShiftedRow, then: [f32; 2], add: f32, k: usize) -> Vec<(f32, usize)> {
        let mut best = Best::new(k);
        offer_row(row, then, add, 0, &mut best);
        best.into_vec()
    }

    #[test]
    fn best_is_sorted_and_keeps_the_lower_index_on_ties() {
        let scores = [0.1, 0.9, 0.5, 0.9, -1.0, 0.9];
        assert_eq!(reference(&scores, 3), vec![(0.9, 1), (0.9, 3), (0.9, 5)]);
        assert_eq!(reference(&scores, 0), vec![]);
    }

    /// On rows long enough for the vector loop, with ties, edits, -inf and a ragged tail, the scan
    /// gives what scanning the written-out row gives.
    #[test]
    fn the_scan_matches_the_written_out_row() {
        let mut seed = 7u32;
        let mut rand = move || {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            // Coarse values, so that ties are frequent.
            ((seed >> 24) as f32 / 16.0).floor() - 8.0
        };
        for len in [0, 3, 8, 37, 203] {
            let row: Vec<f32> = (0..len).map(|_| rand()).collect();
            let edits: Vec<(usize, f32)> = (0..len)
                .step_by(5)
                .map(|i| (i, if i % 2 == 0 { f32::NEG_INFINITY } else { 9.0 }))
                .collect();
            for edits in [&edits[..], &[]] {
                for sub in [[1.5, 0.25], [f32::INFINITY, 0.0], [0.0, 0.0]] {
                    let shifted = ShiftedRow {
                        row: &row,
                        sub,
                        edits,
                    };
                    let written: Vec<f32> = (0..len).map(|i| shifted.get(i)).collect();
                    let want_max = written.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    assert_eq!(shifted.max(max(&row)).to_bits(), want_max.to_bits());
                    for k in [1, 4, 8, 300] {
                        let (then, add) = ([0.5, -0.125], -3.0);
                        let after: Vec<f32> = written
                            .iter()
                            .map(|&v| ((v - then[0]) - then[1]) + add)
                            .collect();
                        assert_eq!(scan(&shifted, then, add, k), reference(&after, k));
                    }
                }
            }
        }
    }

    /// A row of -inf still yields `k` entries, the lowest indices first, and `k` past the
    /// number of finite values fills up with -inf ones.
    #[test]
    fn impossible_entries_fill_up_in_index_order() {
        let row = vec![0.0f32; 40];
        let forced = ShiftedRow {
            row: &row,
            sub: [f32::INFINITY, 0.0],
            edits: &[(17, 0.0)],
        };
        let got = scan(&forced, [0.0, 0.0], -2.0, 4);
        let inf = f32::NEG_INFINITY;
        assert_eq!(got, vec![(-2.0, 17), (inf, 0), (inf, 1), (inf, 2)]);
        let none = ShiftedRow {
            row: &row,
            sub: [f32::INFINITY, 0.0],
            edits: &[],
        };
        assert_eq!(scan(&none, [0.0, 0.0], 0.0, 2), vec![(inf, 0), (inf, 1)]);
        assert_eq!(none.max(0.0), inf);
    }
}
