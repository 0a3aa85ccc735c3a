//! One-query attention of a group of heads with AVX2 and FMA, for head sizes that are a
//! multiple of 8. Written with intrinsics because the compiler's vectorisation of the generic
//! code mixed the heads' sums across lanes with blends (attention was 12% of chat generation
//! at 1000 cached positions).

use std::arch::x86_64::*;

use super::{by_position, softmax_rows, Group, VALUE_BLOCK};

/// Writes the `H` heads' contexts of `group` into `context` (`H × dim`).
///
/// # Safety
/// AVX2 and FMA; `dim` is a multiple of 8, `group` holds `H` queries and at least one position,
/// its values and mask are as long as its keys, and `context` has `H × dim` values (what
/// `Group::attend` checks).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn attend<const H: usize>(group: &Group<'_>, context: &mut [f32]) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        let (dim, len) = (group.dim, group.keys.len() / group.dim);
        debug_assert!(dim % 8 == 0 && len > 0 && group.queries.len() == H * dim);
        debug_assert!(context.len() == H * dim && group.values.len() == len * dim);
        let chunks = dim / 8;
        let (queries, keys) = (group.queries.as_ptr(), group.keys.as_ptr());
        let scale = _mm256_set1_ps(group.scale);

        // weights[h * len + p]: head h's score, then its weight, for position p. Eight positions
        // at a time, their eight running sums reduced together.
        let mut weights = vec![0f32; H * len];
        let full = len / 8 * 8;
        for first in (0..full).step_by(8) {
            let bias = match group.mask {
                Some(mask) => _mm256_loadu_ps(mask.as_ptr().add(first)),
                None => _mm256_setzero_ps(),
            };
            for h in 0..H {
                let query = queries.add(h * dim);
                let mut sums = [_mm256_setzero_ps(); 8];
                for c in 0..chunks {
                    let q = _mm256_loadu_ps(query.add(8 * c));
                    for (j, sum) in sums.iter_mut().enumerate() {
                        let key = _mm256_loadu_ps(keys.add((first + j) * dim + 8 * c));
                        *sum = _mm256_fmadd_ps(q, key, *sum);
                    }
                }
                let scores = _mm256_fmadd_ps(totals(&sums), scale, bias);
                _mm256_storeu_ps(weights.as_mut_ptr().add(h * len + first), scores);
            }
        }
        for p in full..len {
            let bias = group.mask.map_or(0.0, |m| m[p]);
            for h in 0..H {
                let mut sum = _mm256_setzero_ps();
                for c in 0..chunks {
                    let q = _mm256_loadu_ps(queries.add(h * dim + 8 * c));
                    sum = _mm256_fmadd_ps(q, _mm256_loadu_ps(keys.add(p * dim + 8 * c)), sum);
                }
                weights[h * len + p] = total(sum) * group.scale + bias;
            }
        }
        softmax_rows(&mut weights, len);

        let by_position = by_position::<H>(&weights, len);
        // Eight dimensions at a time for every head (one register each), over a block of positions
        // whose values stay in L1 across the passes.
        context.fill(0.0);
        let (values, out) = (group.values.as_ptr(), context.as_mut_ptr());
        for first in (0..len).step_by(VALUE_BLOCK) {
            let end = (first + VALUE_BLOCK).min(len);
            for c in 0..chunks {
                let mut sums = [_mm256_setzero_ps(); H];
                for (h, sum) in sums.iter_mut().enumerate() {
                    *sum = _mm256_loadu_ps(out.add(h * dim + 8 * c));
                }
                for p in first..end {
                    let value = _mm256_loadu_ps(values.add(p * dim + 8 * c));
                    let w = by_position.as_ptr().add(p * H);
                    for (h, sum) in sums.iter_mut().enumerate() {
                        *sum = _mm256_fmadd_ps(_mm256_broadcast_ss(&*w.add(h)), value, *sum);
                    }
                }
                for (h, sum) in sums.iter().enumerate() {
                    _mm256_storeu_ps(out.add(h * dim + 8 * c), *sum);
                }
            }
        }
    }
}

/// `[Σ sums[0], Σ sums[1], .., Σ sums[7]]`.
#[inline]
#[target_feature(enable = "avx2")]
fn totals(sums: &[__m256; 8]) -> __m256 {
    let pairs = [0, 2, 4, 6].map(|j| _mm256_hadd_ps(sums[j], sums[j + 1]));
    // Per 128-bit half: the partial totals of sums 0–3, then of 4–7.
    let low = _mm256_hadd_ps(pairs[0], pairs[1]);
    let high = _mm256_hadd_ps(pairs[2], pairs[3]);
    _mm256_add_ps(
        _mm256_permute2f128_ps(low, high, 0x20),
        _mm256_permute2f128_ps(low, high, 0x31),
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn total(sum: __m256) -> f32 {
    let halves = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
}
