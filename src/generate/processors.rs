//! Score processors applied to one hypothesis' next-token scores before a token is chosen, in the
//! order Hugging Face applies them: repetition penalty, no-repeat n-grams, bad words, minimum
//! length, forced first token, forced end token, and last the optional re-normalisation.
//!
//! Greedy search applies them to raw logits, beam search to log-probabilities, as the reference
//! does; the repetition penalty therefore acts differently in the two, on purpose.

use std::collections::HashSet;

use super::GenerationConfig;

pub struct Processors<'a> {
    cfg: &'a GenerationConfig,
}

impl<'a> Processors<'a> {
    pub fn new(cfg: &'a GenerationConfig) -> Self {
        Self { cfg }
    }

    /// `sequence` is the decoder sequence so far, start token included; `scores` has one entry
    /// per vocabulary item.
    pub fn apply(&self, sequence: &[u32], scores: &mut [f32]) {
        let cfg = self.cfg;
        let len = sequence.len();
        if cfg.repetition_penalty != 1.0 {
            let penalty = cfg.repetition_penalty;
            let seen: HashSet<u32> = sequence.iter().copied().collect();
            for id in seen {
                if let Some(s) = scores.get_mut(id as usize) {
                    *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
                }
            }
        }
        if cfg.no_repeat_ngram_size > 0 {
            for id in banned_ngram_tokens(sequence, cfg.no_repeat_ngram_size) {
                if let Some(s) = scores.get_mut(id as usize) {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
        for bad in &cfg.bad_words_ids {
            if let Some((&last, prefix)) = bad.split_last() {
                if last == cfg.eos_token_id && prefix.is_empty() {
                    continue; // the reference never bans end-of-sequence on its own
                }
                if sequence.ends_with(prefix) {
                    if let Some(s) = scores.get_mut(last as usize) {
                        *s = f32::NEG_INFINITY;
                    }
                }
            }
        }
        if len < cfg.min_length {
            if let Some(s) = scores.get_mut(cfg.eos_token_id as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        if let Some(bos) = cfg.forced_bos_token_id {
            if len == 1 {
                force(scores, bos);
            }
        }
        if let Some(eos) = cfg.forced_eos_token_id {
            if len + 1 == cfg.max_length {
                force(scores, eos);
            }
        }
        if cfg.renormalize_logits {
            log_softmax(scores);
        }
    }
}

fn force(scores: &mut [f32], id: u32) {
    scores.fill(f32::NEG_INFINITY);
    if let Some(s) = scores.get_mut(id as usize) {
        *s = 0.0;
    }
}

/// Tokens that would complete an n-gram already present in `sequence`.
pub(crate) fn banned_ngram_tokens(sequence: &[u32], n: usize) -> Vec<u32> {
    if sequence.len() + 1 < n {
        return Vec::new();
    }
    let prefix = &sequence[sequence.len() + 1 - n..];
    sequence
        .windows(n)
        .filter(|w| &w[..n - 1] == prefix)
        .map(|w| w[n - 1])
        .collect()
}

/// Numerically stable log-softmax over one row, in place.
pub fn log_softmax(row: &mut [f32]) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = sum_exp(row, max).ln();
    for x in row.iter_mut() {
        *x = *x - max - log_sum;
    }
}

/// `Σ e^(x - max)` over `row`, whose values are at most `max`. Beam search takes two
/// log-softmaxes over the vocabulary per hypothesis and step (62834 words for OPUS-MT): through
/// the C library's scalar `expf` they were a third of a beam step on 2 cores.
fn sum_exp(row: &[f32], max: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the instructions were checked for.
        return unsafe { avx2::sum_exp(row, max) };
    }
    row.iter().map(|&x| exp_nonpositive(x - max)).sum()
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
    pub(super) unsafe fn sum_exp(row: &[f32], max: f32) -> f32 {
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

    /// `e^x` of 8 values at most 0.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn exp8(x: __m256) -> __m256 {
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

/// Index of the first maximum, like `torch.argmax`.
pub fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_repeated_trigram() {
        // 1 2 3 ... 1 2 → 3 would repeat "1 2 3".
        assert_eq!(banned_ngram_tokens(&[1, 2, 3, 4, 1, 2], 3), vec![3]);
        assert!(banned_ngram_tokens(&[1, 2], 3).is_empty());
        assert_eq!(banned_ngram_tokens(&[7, 7], 2), vec![7]);
    }

    #[test]
    fn repetition_penalty_pushes_seen_tokens_down() {
        let mut cfg = GenerationConfig::new(0, 1, 0);
        cfg.repetition_penalty = 2.0;
        let mut scores = vec![4.0, -1.0, 3.0];
        Processors::new(&cfg).apply(&[0, 1], &mut scores);
        assert_eq!(scores, vec![2.0, -2.0, 3.0]);
    }

    #[test]
    fn min_length_and_forced_eos() {
        let mut cfg = GenerationConfig::new(0, 1, 0);
        cfg.min_length = 3;
        cfg.max_length = 4;
        cfg.forced_eos_token_id = Some(1);
        let mut scores = vec![0.5, 0.9, 0.1];
        Processors::new(&cfg).apply(&[0, 2], &mut scores);
        assert_eq!(scores[1], f32::NEG_INFINITY);
        let mut scores = vec![0.5, 0.9, 0.1];
        Processors::new(&cfg).apply(&[0, 2, 2], &mut scores);
        assert_eq!(scores, vec![f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
    }

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
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
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

    #[test]
    fn log_softmax_normalises() {
        let mut row = vec![1.0, 2.0, 3.0];
        log_softmax(&mut row);
        let total: f32 = row.iter().map(|x| x.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&row), 2);
    }
}
