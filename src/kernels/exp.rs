//! The exponential of softmaxes, vectorised: `e^(x - max)` over a row whose values are at most
//! `max`. Beam search takes two log-softmaxes over the vocabulary per hypothesis and step (62834
//! words for OPUS-MT): through the C library's scalar `expf` they were a third of a beam step on
//! 2 cores. Attention's softmax over the cache uses it too.

/// `Σ e^(x - max)` over `row`, whose values are at most `max`.
pub fn sum_exp(row: &[f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::isa() >= super::Isa::Avx2 {
        // SAFETY: the instructions were checked for.
        return unsafe { avx2::sum_exp(row, max) };
    }
    row.iter().map(|&x| exp_nonpositive(x - max)).sum()
}

/// [`sum_exp`] over the entries of `row` (all at most `max`), without writing them out: the same
/// sum, bit for bit, as [`sum_exp`] of the written-out row.
pub fn sum_exp_shifted(row: &super::top_k::ShiftedRow, max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::isa() >= super::Isa::Avx2 {
        // SAFETY: the instructions were checked for.
        return unsafe { avx2::sum_exp_shifted(row, max) };
    }
    (0..row.row.len())
        .map(|i| exp_nonpositive(row.get(i) - max))
        .sum()
}

/// Replaces each `x` of `row` (all at most `max`) by `e^(x - max)` and returns their sum.
pub fn exp_in_place(row: &mut [f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if super::isa() >= super::Isa::Avx2 {
        // SAFETY: the instructions were checked for.
        return unsafe { avx2::exp_in_place(row, max) };
    }
    row.iter_mut()
        .map(|x| {
            *x = exp_nonpositive(*x - max);
            *x
        })
        .sum()
}

// Cephes' `expf` method: `e^x = 2^n e^r` with `n = round(x / ln 2)`, `|r| <= ln 2 / 2`, and a
// degree-7 polynomial for `e^r`; within 2 ulp of the correctly rounded value.
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// ln 2 in two parts, the first exact in few bits, so that `x - n ln 2` loses nothing.
const LN2_HIGH: f32 = 0.693_359_4;
const LN2_LOW: f32 = -2.121_944_4e-4;
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    0.166_666_65,
    0.5,
];
/// Below this, `e^x` is under f32's smallest normal number: taken as 0 (as for -inf).
const EXP_SMALLEST: f32 = -87.336_55;

/// `e^x` for `x <= 0`, the scalar form of [`avx2::sum_exp`]'s.
fn exp_nonpositive(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    if x < EXP_SMALLEST {
        return 0.0;
    }
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HIGH - n * LN2_LOW;
    let p = EXP_POLY.iter().fold(0.0, |p, c| p * r + c);
    (p * r * r + r + 1.0) * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{exp_nonpositive, EXP_POLY, EXP_SMALLEST, LN2_HIGH, LN2_LOW, LOG2_E};

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp_in_place(row: &mut [f32], max: f32) -> f32 {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let mut chunks = row.chunks_exact_mut(8);
            let mut total = _mm256_setzero_ps();
            let max8 = _mm256_set1_ps(max);
            for chunk in &mut chunks {
                let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), max8));
                _mm256_storeu_ps(chunk.as_mut_ptr(), e);
                total = _mm256_add_ps(total, e);
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), total);
            let mut tail = 0f32;
            for x in chunks.into_remainder() {
                *x = exp_nonpositive(*x - max);
                tail += *x;
            }
            lanes.iter().sum::<f32>() + tail
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_exp(row: &[f32], max: f32) -> f32 {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let mut chunks = row.chunks_exact(8);
            let mut total = _mm256_setzero_ps();
            let max8 = _mm256_set1_ps(max);
            for chunk in &mut chunks {
                let x = _mm256_sub_ps(_mm256_loadu_ps(chunk.as_ptr()), max8);
                total = _mm256_add_ps(total, exp8(x));
            }
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), total);
            let tail: f32 = chunks
                .remainder()
                .iter()
                .map(|&x| exp_nonpositive(x - max))
                .sum();
            lanes.iter().sum::<f32>() + tail
        }
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn sum_exp_shifted(row: &super::super::top_k::ShiftedRow, max: f32) -> f32 {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            // `sum_exp`'s loop, with each chunk's entries made from the logits in registers and
            // the chunks that hold edits patched through memory.
            let mut chunks = row.row.chunks_exact(8);
            let mut total = _mm256_setzero_ps();
            let max8 = _mm256_set1_ps(max);
            let sub = [_mm256_set1_ps(row.sub[0]), _mm256_set1_ps(row.sub[1])];
            let mut edits = row.edits.iter().peekable();
            let mut lanes = [0f32; 8];
            let mut at = 0;
            for chunk in &mut chunks {
                let mut v = _mm256_loadu_ps(chunk.as_ptr());
                v = _mm256_sub_ps(_mm256_sub_ps(v, sub[0]), sub[1]);
                if edits.peek().is_some_and(|e| e.0 < at + 8) {
                    _mm256_storeu_ps(lanes.as_mut_ptr(), v);
                    while let Some(&&(i, value)) = edits.peek().filter(|e| e.0 < at + 8) {
                        lanes[i - at] = value;
                        edits.next();
                    }
                    v = _mm256_loadu_ps(lanes.as_ptr());
                }
                total = _mm256_add_ps(total, exp8(_mm256_sub_ps(v, max8)));
                at += 8;
            }
            _mm256_storeu_ps(lanes.as_mut_ptr(), total);
            let tail: f32 = (at..row.row.len())
                .map(|i| exp_nonpositive(row.get(i) - max))
                .sum();
            lanes.iter().sum::<f32>() + tail
        }
    }

    /// `e^x` of 8 values at most 0.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn exp8(x: __m256) -> __m256 {
        let smallest = _mm256_set1_ps(EXP_SMALLEST);
        let clamped = _mm256_max_ps(x, smallest);
        let n = _mm256_floor_ps(_mm256_fmadd_ps(
            clamped,
            _mm256_set1_ps(LOG2_E),
            _mm256_set1_ps(0.5),
        ));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HIGH), clamped);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LOW), r);
        let mut p = _mm256_setzero_ps();
        for c in EXP_POLY {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        let e_r = _mm256_add_ps(
            _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r),
            _mm256_set1_ps(1.0),
        );
        let two_n = _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
            23,
        ));
        // 0 below the smallest (and for -inf); NaN stays NaN through the max.
        let below = _mm256_cmp_ps(x, smallest, _CMP_LT_OQ);
        _mm256_andnot_ps(below, _mm256_mul_ps(e_r, two_n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms of the exponential, against the C library's.
    #[test]
    fn exp_is_within_two_ulp_of_the_c_library() {
        let check = |x: f32, ours: f32| {
            let libm = x.exp();
            let ulps = (ours.to_bits() as i64 - libm.to_bits() as i64).abs();
            // Below the smallest normal number the C library's subnormals become 0 here.
            assert!(
                ulps <= 2 || (x < -87.0 && ours == 0.0),
                "e^{x}: {ours} vs {libm}"
            );
        };
        let xs: Vec<f32> = (0..142_000).map(|i| i as f32 * -0.000_731).collect();
        for &x in &xs {
            check(x, exp_nonpositive(x));
        }
        #[cfg(target_arch = "x86_64")]
        if super::super::isa() >= super::super::Isa::Avx2 {
            use std::arch::x86_64::*;
            for chunk in xs.chunks_exact(8) {
                let mut lanes = [0f32; 8];
                // SAFETY: the instructions were checked for.
                unsafe {
                    _mm256_storeu_ps(
                        lanes.as_mut_ptr(),
                        avx2::exp8(_mm256_loadu_ps(chunk.as_ptr())),
                    )
                };
                chunk.iter().zip(lanes).for_each(|(&x, e)| check(x, e));
            }
        }
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_nonpositive(0.0), 1.0);
        let row = [
            0.0,
            -1.0,
            f32::NEG_INFINITY,
            -3.0,
            -0.5,
            -2.0,
            -9.0,
            -4.0,
            -0.25,
            -7.0,
        ];
        let want: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((sum_exp(&row, 0.0) - want).abs() < 1e-6);
    }

    /// The sum over a row held as logits and edits is the sum over the written-out row, bit for
    /// bit, with edits in the vector chunks and in the tail.
    #[test]
    fn shifted_sum_matches_the_written_out_row() {
        let row: Vec<f32> = (0..45)
            .map(|i| ((i * 37) % 23) as f32 * -0.41 + 2.0)
            .collect();
        let edits = [(0, -1.0), (5, f32::NEG_INFINITY), (6, -0.5), (41, -2.0)];
        for edits in [&edits[..], &[]] {
            let shifted = super::super::top_k::ShiftedRow {
                row: &row,
                sub: [2.0, 0.75],
                edits,
            };
            let written: Vec<f32> = (0..row.len()).map(|i| shifted.get(i)).collect();
            let max = written.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(
                sum_exp_shifted(&shifted, max).to_bits(),
                sum_exp(&written, max).to_bits()
            );
        }
    }

    #[test]
    fn in_place_matches_the_sum() {
        let row: Vec<f32> = (0..37).map(|i| -(i as f32) * 0.37 + 1.5).collect();
        let mut exps = row.clone();
        let total = exp_in_place(&mut exps, 1.5);
        assert!((total - sum_exp(&row, 1.5)).abs() < 1e-6);
        for (e, x) in exps.iter().zip(&row) {
            assert!(
                (e - (x - 1.5).exp()).abs() <= 2.0 * f32::EPSILON * e.max(1e-30),
                "{e} vs {x}"
            );
        }
    }
}
