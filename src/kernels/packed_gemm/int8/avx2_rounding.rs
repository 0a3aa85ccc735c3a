//! [`quantize_row`](super::quantize_row) eight inputs at a time: without SSE4.1 in the target
//! (the portable build), `f32::round` is a call into libm per input, which was 7% of a
//! beam-search step.

use std::arch::x86_64::*;

/// # Safety
/// The CPU must support AVX2; `out` is as long as `row`.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn quantize_row(row: &[f32], limit: f32, out: &mut [i16]) -> f32 {
    let lanes = row.len() / 8 * 8;
    // SAFETY: every load reads 8 of `row`'s first `lanes` inputs and every store writes 8
    // of `out`'s (as long as `row`, the caller guarantees).
    unsafe {
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut largest = _mm256_setzero_ps();
        for at in (0..lanes).step_by(8) {
            let v = _mm256_and_ps(_mm256_loadu_ps(row.as_ptr().add(at)), abs);
            // `vmaxps` returns its second operand where either is NaN, so a NaN input is
            // skipped, as `f32::max` skips it.
            largest = _mm256_max_ps(v, largest);
        }
        let mut lanes_max = [0f32; 8];
        _mm256_storeu_ps(lanes_max.as_mut_ptr(), largest);
        let largest = row[lanes..]
            .iter()
            .chain(&lanes_max)
            .fold(0f32, |m, v| m.max(v.abs()));
        if largest == 0.0 || !largest.is_finite() {
            out.fill(0);
            return 0.0;
        }
        let inverse = limit / largest;
        let scale = _mm256_set1_ps(inverse);
        let half = _mm256_set1_ps(0.5);
        let one = _mm256_set1_ps(1.0);
        let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
        for at in (0..lanes).step_by(8) {
            let x = _mm256_mul_ps(_mm256_loadu_ps(row.as_ptr().add(at)), scale);
            // Half away from zero, as `f32::round`: the truncation, and one more step away
            // from zero where the part cut off (exact) is at least a half.
            let t = _mm256_round_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(x);
            let cut = _mm256_andnot_ps(sign, _mm256_sub_ps(x, t));
            let step = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(cut, half),
                _mm256_or_ps(one, _mm256_and_ps(x, sign)),
            );
            let r = _mm256_add_ps(t, step);
            // NaN inputs compare false above and convert to i32::MIN: zero them, as
            // `as i16` does.
            let ordered = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_ORD_Q>(x, x));
            let q = _mm256_and_si256(_mm256_cvttps_epi32(r), ordered);
            // |q| ≤ limit ≤ 32767, so the saturating pack is exact.
            let packed = _mm256_packs_epi32(q, q);
            let packed = _mm256_permute4x64_epi64::<0b1000>(packed);
            _mm_storeu_si128(
                out.as_mut_ptr().add(at).cast(),
                _mm256_castsi256_si128(packed),
            );
        }
        for (q, &v) in out[lanes..].iter_mut().zip(&row[lanes..]) {
            *q = (v * inverse).round() as i16;
        }
        largest / limit
    }
}
