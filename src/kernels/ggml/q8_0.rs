//! One token through a Q8_0 weight on x86-64 CPUs with AVX2: the chat models' output
//! projection (Qwen2.5 0.5B: 151936 × 896, 145 MB, read once per generated token).
//!
//! candle's Q8_0 product computes the same dot products (weights times the input quantized to
//! Q8_0), but it read the weights at 11-12 GB/s on a 2-core VM where a plain read reaches 18: the
//! hardware prefetcher alone kept too few cache lines in flight. This one asks for the weights
//! ahead of use. Prompts (several rows) still go to candle, which tiles them.
//!
//! A Q8_0 block holds 32 weights: an f16 scale `d` and 32 int8 values.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::q8_rows::{quantize_rows, Q8Rows};
use crate::kernels::{isa, Isa};

const BLOCK: usize = 32;
/// Bytes of one Q8_0 block: d (2), qs (32).
const BLOCK_BYTES: usize = 34;
/// Weight rows per parallel task.
const COLUMNS: usize = 64;

/// A `[n, k]` Q8_0 weight, shared with whatever else holds the tensor (the token embeddings,
/// when the output projection is tied to them).
#[derive(Debug, Clone)]
pub struct Q8_0Matrix {
    tensor: Arc<QTensor>,
    n: usize,
    k: usize,
}

impl Q8_0Matrix {
    /// The matrix of a Q8_0 tensor on the CPU, when this CPU has AVX2, FMA and F16C; `None`
    /// otherwise (candle's own kernels then run).
    pub fn from_arc(tensor: Arc<QTensor>) -> candle_core::Result<Option<Self>> {
        if tensor.dtype() != GgmlDType::Q8_0 || !matches!(tensor.device(), Device::Cpu) {
            return Ok(None);
        }
        if isa() < Isa::Avx2 {
            return Ok(None);
        }
        let (n, k) = tensor.shape().dims2()?;
        if k % BLOCK != 0 {
            return Ok(None);
        }
        if tensor.data()?.len() != n * (k / BLOCK) * BLOCK_BYTES {
            candle_core::bail!("Q8_0 tensor of shape {n}x{k} has the wrong size");
        }
        Ok(Some(Self { tensor, n, k }))
    }

    /// `x · Wᵀ` for `x` of shape `[..., k]` (f32) holding one row; `None` for more rows.
    pub fn matmul_one(&self, x: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let mut shape = x.dims().to_vec();
        let k = shape.pop().unwrap_or(0);
        if k != self.k {
            candle_core::bail!("Q8_0 matmul: input width {k}, weight width {}", self.k);
        }
        if shape.iter().product::<usize>() != 1 {
            return Ok(None);
        }
        let input = quantize_rows(&x.flatten_all()?.to_vec1::<f32>()?, 1, k, false);
        // Borrowed: candle keeps a CPU tensor's blocks in memory.
        let data = self.tensor.data()?;
        let row_bytes = (k / BLOCK) * BLOCK_BYTES;
        let groups = crate::kernels::parallel::map(self.n.div_ceil(COLUMNS), |g| {
            let rows = g * COLUMNS..((g + 1) * COLUMNS).min(self.n);
            let mut out = vec![0f32; rows.len()];
            dot_rows(
                &data[rows.start * row_bytes..rows.end * row_bytes],
                &input,
                &mut out,
            );
            out
        });
        shape.push(self.n);
        Ok(Some(Tensor::from_vec(groups.concat(), shape, x.device())?))
    }
}

/// The dot products of consecutive weight rows (their GGUF blocks, `out.len()` rows) with the
/// quantized input row.
fn dot_rows(w: &[u8], input: &Q8Rows, out: &mut [f32]) {
    let (values, scales, _) = input.row(0);
    assert!(w.len() == out.len() * (values.len() / BLOCK * BLOCK_BYTES));
    assert!(scales.len() >= values.len() / BLOCK);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_arc` only builds a matrix where AVX2, FMA and F16C are present; the lengths
    // are checked above.
    unsafe {
        avx2::dot_rows(w, values, scales, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q8_0Matrix is only built on x86-64")
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, BLOCK_BYTES};

    /// How far ahead of the weights being read to ask for them, in bytes (as for Q5_0, see
    /// `examples/bench_gguf`).
    const PREFETCH_AHEAD: usize = 1024;

    /// All rows of a task in one function, two at a time: each input block is loaded once for
    /// both, and the loop's speed no longer depends on whether the compiler inlines a per-row
    /// call into its caller (it did or did not as unrelated code moved, and the output
    /// projection ran 10% slower when it did not).
    ///
    /// # Safety
    /// AVX2, FMA and F16C; `w` holds `out.len()` rows of `x.len() / 32` blocks each, and
    /// `scales` at least `x.len() / 32` scales.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_rows(w: &[u8], x: &[i8], scales: &[f32], out: &mut [f32]) {
        let blocks = x.len() / BLOCK;
        let row_bytes = blocks * BLOCK_BYTES;
        let rows = |r: usize| w.as_ptr().wrapping_add(r * row_bytes);
        let mut pairs = out.chunks_exact_mut(2);
        let mut row = 0;
        // SAFETY: every row passed to `dot2` is inside `w` (see `# Safety`); the lone last
        // row goes through `dot2` twice, and the second result is dropped.
        unsafe {
            for pair in &mut pairs {
                let [a, b] = dot2(rows(row), rows(row + 1), x, scales, blocks);
                pair[0] = a;
                pair[1] = b;
                row += 2;
            }
            if let [last] = pairs.into_remainder() {
                *last = dot2(rows(row), rows(row), x, scales, blocks)[0];
            }
        }
    }

    /// # Safety
    /// As [`dot_rows`], for two rows of `blocks` blocks at `w0` and `w1`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn dot2(
        w0: *const u8,
        w1: *const u8,
        x: &[i8],
        scales: &[f32],
        blocks: usize,
    ) -> [f32; 2] {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let ones = _mm256_set1_epi16(1);
            let mut acc0 = _mm256_setzero_ps();
            let mut acc1 = _mm256_setzero_ps();
            for (b, &x_scale) in scales.iter().enumerate().take(blocks) {
                let b0 = w0.add(b * BLOCK_BYTES);
                let b1 = w1.add(b * BLOCK_BYTES);
                // One request per 64 bytes and row: every other block starts a new line.
                if b % 2 == 0 {
                    _mm_prefetch::<_MM_HINT_T0>(b0.wrapping_add(PREFETCH_AHEAD).cast());
                    _mm_prefetch::<_MM_HINT_T0>(b1.wrapping_add(PREFETCH_AHEAD).cast());
                }
                let y = _mm256_loadu_si256(x.as_ptr().add(b * BLOCK).cast());
                acc0 = block_fma(b0, y, x_scale, ones, acc0);
                acc1 = block_fma(b1, y, x_scale, ones, acc1);
            }
            [sum(acc0), sum(acc1)]
        }
    }

    /// `acc + d_w · d_x · Σ w·y` for the block at `block`.
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    unsafe fn block_fma(
        block: *const u8,
        y: __m256i,
        x_scale: f32,
        ones: __m256i,
        acc: __m256,
    ) -> __m256 {
        // SAFETY: `block` points at a whole Q8_0 block (the callers' `# Safety`).
        unsafe {
            let d = u16::from_le_bytes([*block, *block.add(1)]);
            let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(d))));
            let weights = _mm256_loadu_si256(block.add(2).cast());
            // Signed × signed bytes through the unsigned × signed instruction:
            // |w| · (y · sign w).
            let products = _mm256_maddubs_epi16(
                _mm256_sign_epi8(weights, weights),
                _mm256_sign_epi8(y, weights),
            );
            let sums = _mm256_cvtepi32_ps(_mm256_madd_epi16(products, ones));
            _mm256_fmadd_ps(sums, _mm256_set1_ps(d * x_scale), acc)
        }
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    fn sum(acc: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    /// Against candle's own Q8_0 product on random data, with a ragged last task.
    #[test]
    fn agrees_with_candle() -> candle_core::Result<()> {
        if isa() < Isa::Avx2 {
            eprintln!("skipped: no AVX2");
            return Ok(());
        }
        let dev = Device::Cpu;
        for (n, k) in [(37, 96), (200, 896)] {
            let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
            let q = Arc::new(QTensor::quantize(&w, GgmlDType::Q8_0)?);
            let ours = Q8_0Matrix::from_arc(q.clone())?.expect("a Q8_0 matrix");
            let reference = QMatMul::from_arc(q)?;
            let x = Tensor::randn(0f32, 1., (1, 1, k), &dev)?;
            let want = reference.forward(&x)?.flatten_all()?.to_vec1::<f32>()?;
            let got = ours.matmul_one(&x)?.expect("one row");
            assert_eq!(got.dims(), [1, 1, n]);
            for (a, b) in want.iter().zip(got.flatten_all()?.to_vec1::<f32>()?) {
                assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
            }
            let two = Tensor::randn(0f32, 1., (2, k), &dev)?;
            assert!(ours.matmul_one(&two)?.is_none());
        }
        Ok(())
    }
}
