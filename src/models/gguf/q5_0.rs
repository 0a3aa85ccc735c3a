//! Matrix products with GGML Q5_0 weights on x86-64 CPUs with AVX2.
//!
//! Q5_0 is the type of most tensors of small Qwen2.5 GGUF files (their 896-wide rows do not fit
//! the 256-value k-quant blocks, so llama.cpp's quantizer falls back to it). candle 0.11.1 computes
//! Q5_0 dot products one value at a time in scalar code; this computes the same quantity
//! (weights times the input quantized to Q8_0 blocks, as llama.cpp and candle do) 32 values per
//! step with AVX2 integer instructions.
//!
//! A Q5_0 block holds 32 weights: an f16 scale `d`, 32 high bits `qh`, and 16 bytes of low
//! nibbles `qs`. Weight `j` is `d * ((nibble_j | bit_j << 4) - 16)`, where weights 0–15 take the
//! low nibbles of `qs` and 16–31 the high ones.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

const BLOCK: usize = 32;
/// Bytes of one Q5_0 block: d (2), qh (4), qs (16).
const BLOCK_BYTES: usize = 22;

/// Output columns handled together, so that one pass over the quantized input serves them all.
const COLUMNS: usize = 8;
/// From this many input rows on (prompts), weight rows are unpacked to int8 once per call rather
/// than once per input row: prompts ran 1.4–1.6x faster, while single tokens were slower that way.
const UNPACK_ROWS: usize = 4;

/// A `[n, k]` Q5_0 weight, as its raw blocks.
#[derive(Debug, Clone)]
pub(super) struct Q5_0Matrix {
    blocks: Vec<u8>,
    n: usize,
    k: usize,
}

/// The input, quantized to Q8_0 blocks: per block a scale (already rounded to f16, as stored)
/// and 32 int8 values.
struct Q8Rows {
    scales: Vec<f32>,
    values: Vec<i8>,
    blocks_per_row: usize,
}

impl Q8Rows {
    /// The values and block scales of input row `r`.
    fn row(&self, r: usize) -> (&[i8], &[f32]) {
        let first = r * self.blocks_per_row;
        let blocks = first..first + self.blocks_per_row;
        (
            &self.values[blocks.start * BLOCK..blocks.end * BLOCK],
            &self.scales[blocks],
        )
    }
}

impl Q5_0Matrix {
    /// The matrix of a Q5_0 tensor on the CPU, when this CPU has AVX2; `None` otherwise (candle's
    /// own kernels then run).
    pub(super) fn from_qtensor(tensor: &QTensor) -> candle_core::Result<Option<Self>> {
        if tensor.dtype() != GgmlDType::Q5_0 || !matches!(tensor.device(), Device::Cpu) {
            return Ok(None);
        }
        if !avx2_available() {
            return Ok(None);
        }
        let (n, k) = tensor.shape().dims2()?;
        if k % BLOCK != 0 {
            return Ok(None);
        }
        let blocks = tensor.data()?.into_owned();
        if blocks.len() != n * (k / BLOCK) * BLOCK_BYTES {
            candle_core::bail!("Q5_0 tensor of shape {n}x{k} has {} bytes", blocks.len());
        }
        Ok(Some(Self { blocks, n, k }))
    }

    /// `x · Wᵀ` for `x` of shape `[..., k]` (f32).
    pub(super) fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut shape = x.dims().to_vec();
        let k = shape.pop().unwrap_or(0);
        if k != self.k {
            candle_core::bail!("Q5_0 matmul: input width {k}, weight width {}", self.k);
        }
        let rows: usize = shape.iter().product();
        let host = x.flatten_all()?.to_vec1::<f32>()?;
        let q = quantize_rows(&host, rows, k);
        let (n, row_bytes) = (self.n, (k / BLOCK) * BLOCK_BYTES);
        let mut out = vec![0f32; rows * n];
        let out_ptr = SendPtr(out.as_mut_ptr());
        // Column groups in parallel; each writes only its own columns of every row. On candle's
        // thread pool, which runs the model's other quantized products: with a second pool
        // (rayon's) for these, candle's idle workers spun between its products on the cores
        // this one needed (a quarter of all samples in a generation profile).
        let out_ptr = &out_ptr;
        let group = |g: usize| {
            let cols = g * COLUMNS..((g + 1) * COLUMNS).min(n);
            let weight_row = |c: usize| &self.blocks[c * row_bytes..(c + 1) * row_bytes];
            // SAFETY: `r * n + c` is within `out` for every row and column, and no other group
            // writes column `c`.
            let store = |r: usize, c: usize, v: f32| unsafe { *out_ptr.0.add(r * n + c) = v };
            if rows < UNPACK_ROWS {
                for r in 0..rows {
                    for c in cols.clone() {
                        store(r, c, dot_q5_0(weight_row(c), &q, r));
                    }
                }
            } else {
                // Each weight row is unpacked to int8 once and then serves every input row.
                let unpacked: Vec<Unpacked> = cols.clone().map(|c| unpack(weight_row(c))).collect();
                for r in 0..rows {
                    for (c, w) in cols.clone().zip(&unpacked) {
                        store(r, c, dot(w, &q, r));
                    }
                }
            }
        };
        candle_core::utils::barrier_pool()
            .execute_chunked(n.div_ceil(COLUMNS), |groups| groups.for_each(group));
        shape.push(n);
        Tensor::from_vec(out, shape, x.device())
    }
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only used for disjoint writes, see `Q5_0Matrix::matmul`.
unsafe impl Sync for SendPtr {}

fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Q8_0 quantization of each row: per block of 32, `d = max|x| / 127` and `q = round(x / d)`.
fn quantize_rows(x: &[f32], rows: usize, k: usize) -> Q8Rows {
    let blocks_per_row = k / BLOCK;
    let mut scales = vec![0f32; rows * blocks_per_row];
    let mut values = vec![0i8; rows * k];
    // Sequential: a fraction of the product's cost, and too little work per row to share.
    values
        .chunks_mut(BLOCK)
        .zip(scales.iter_mut())
        .zip(x.chunks(BLOCK))
        .for_each(|((q, scale), block)| {
            let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = amax / 127.0;
            let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
            for (q, v) in q.iter_mut().zip(block) {
                *q = (v * inverse).round() as i8;
            }
            *scale = f16::from_f32(d).to_f32();
        });
    Q8Rows {
        scales,
        values,
        blocks_per_row,
    }
}

/// One weight row as signed bytes (`(nibble | high bit << 4) - 16`) and per-block scales.
struct Unpacked {
    values: Vec<i8>,
    scales: Vec<f32>,
}

fn unpack(w: &[u8]) -> Unpacked {
    let blocks = w.len() / BLOCK_BYTES;
    let mut values = vec![0i8; blocks * BLOCK];
    let scales = (0..blocks)
        .map(|b| {
            f16::from_bits(u16::from_le_bytes([
                w[b * BLOCK_BYTES],
                w[b * BLOCK_BYTES + 1],
            ]))
            .to_f32()
        })
        .collect();
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_qtensor` only builds a matrix where AVX2 is present; `values` has room for
    // every block of `w`.
    unsafe {
        avx2::unpack(w, &mut values)
    };
    Unpacked { values, scales }
}

fn block_scale(block: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32()
}

/// The dot product of one Q5_0 weight row with row `r` of the quantized input.
fn dot_q5_0(w: &[u8], q: &Q8Rows, r: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        let (values, scales) = q.row(r);
        // SAFETY: as in `unpack`; both rows hold `blocks_per_row` blocks.
        unsafe { avx2::dot_q5_0(w, values, scales) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, q, r);
        unreachable!("Q5_0Matrix is only built on x86-64")
    }
}

/// The dot product of one unpacked weight row with row `r` of the quantized input.
fn dot(w: &Unpacked, q: &Q8Rows, r: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        let (values, scales) = q.row(r);
        // SAFETY: as in `unpack`; both rows hold `blocks_per_row` blocks.
        unsafe { avx2::dot(&w.values, &w.scales, values, scales) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, q, r);
        unreachable!("Q5_0Matrix is only built on x86-64")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BLOCK, BLOCK_BYTES};

    /// What unpacking a Q5_0 block needs, kept in registers across blocks.
    struct Unpacker {
        low_nibbles: __m256i,
        select: __m256i,
        bit: __m256i,
        minus_16: __m256i,
    }

    impl Unpacker {
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn new() -> Self {
            Self {
                low_nibbles: _mm256_set1_epi8(0x0f),
                // Byte j of the expanded high bits tests bit j % 8 of byte j / 8 of `qh`.
                select: _mm256_setr_epi8(
                    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                    3, 3, 3, 3, 3, 3,
                ),
                bit: _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64),
                minus_16: _mm256_set1_epi8(-16),
            }
        }

        /// The 32 signed values of the block at `block` (`BLOCK_BYTES` readable bytes).
        #[inline]
        #[target_feature(enable = "avx2")]
        unsafe fn values(&self, block: *const u8) -> __m256i {
            let qh =
                u32::from_le_bytes([*block.add(2), *block.add(3), *block.add(4), *block.add(5)]);
            let qs = _mm_loadu_si128(block.add(6).cast());
            // Weights 0–15 from the low nibbles, 16–31 from the high ones.
            let nibbles = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs),
                self.low_nibbles,
            );
            let high = _mm256_cmpeq_epi8(
                _mm256_and_si256(
                    _mm256_shuffle_epi8(_mm256_set1_epi32(qh as i32), self.select),
                    self.bit,
                ),
                self.bit,
            );
            // (nibble | high << 4) - 16: where the bit is clear, nibble - 16 is nibble | 0xf0.
            _mm256_or_si256(nibbles, _mm256_andnot_si256(high, self.minus_16))
        }
    }

    /// The block's scale `d`.
    #[inline]
    unsafe fn scale(block: *const u8) -> f32 {
        super::block_scale(std::slice::from_raw_parts(block, 2))
    }

    /// Eight partial sums (as f32) of the products of two blocks of 32 signed bytes.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn block_products(x: __m256i, y: __m256i) -> __m256 {
        // Signed × signed bytes through the unsigned × signed instruction: |x| · (y · sign x).
        let products = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        _mm256_cvtepi32_ps(_mm256_madd_epi16(products, _mm256_set1_epi16(1)))
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn sum(acc: __m256) -> f32 {
        let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
        _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
    }

    /// Unpacks Q5_0 blocks to their signed 5-bit values, one byte each.
    ///
    /// # Safety
    /// AVX2; `values.len() >= w.len() / BLOCK_BYTES * BLOCK`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn unpack(w: &[u8], values: &mut [i8]) {
        let unpacker = Unpacker::new();
        for b in 0..w.len() / BLOCK_BYTES {
            let x = unpacker.values(w.as_ptr().add(b * BLOCK_BYTES));
            _mm256_storeu_si256(values.as_mut_ptr().add(b * BLOCK).cast(), x);
        }
    }

    /// The dot product of Q5_0 blocks with int8 blocks, unpacking on the fly.
    ///
    /// # Safety
    /// AVX2 and FMA; `w` holds `y_scales.len()` blocks and `y` as many blocks of 32 values.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_q5_0(w: &[u8], y: &[i8], y_scales: &[f32]) -> f32 {
        debug_assert!(
            w.len() == y_scales.len() * BLOCK_BYTES && y.len() == w.len() / BLOCK_BYTES * BLOCK
        );
        let unpacker = Unpacker::new();
        let mut acc = _mm256_setzero_ps();
        for (b, &ys) in y_scales.iter().enumerate() {
            let block = w.as_ptr().add(b * BLOCK_BYTES);
            let x = unpacker.values(block);
            let y = _mm256_loadu_si256(y.as_ptr().add(b * BLOCK).cast());
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale(block) * ys), block_products(x, y), acc);
        }
        sum(acc)
    }

    /// The dot product of unpacked blocks with int8 blocks.
    ///
    /// # Safety
    /// AVX2 and FMA; both value slices hold `w_scales.len()` blocks, as many as `y_scales`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot(w: &[i8], w_scales: &[f32], y: &[i8], y_scales: &[f32]) -> f32 {
        debug_assert!(w.len() == w_scales.len() * BLOCK && y.len() == y_scales.len() * BLOCK);
        let mut acc = _mm256_setzero_ps();
        for (b, (&ws, &ys)) in w_scales.iter().zip(y_scales).enumerate() {
            let x = _mm256_loadu_si256(w.as_ptr().add(b * BLOCK).cast());
            let y = _mm256_loadu_si256(y.as_ptr().add(b * BLOCK).cast());
            acc = _mm256_fmadd_ps(_mm256_set1_ps(ws * ys), block_products(x, y), acc);
        }
        sum(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Module;

    /// Against candle's own Q5_0 product (dequantize-free, Q8_0 inputs) on random data.
    #[test]
    fn agrees_with_candle() -> candle_core::Result<()> {
        if !avx2_available() {
            eprintln!("skipped: no AVX2");
            return Ok(());
        }
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1., (37, 96), &dev)?;
        let q = QTensor::quantize(&w, GgmlDType::Q5_0)?;
        let ours = Q5_0Matrix::from_qtensor(&q)?.expect("a Q5_0 matrix");
        let reference = candle_core::quantized::QMatMul::from_qtensor(q)?;
        for rows in [1, 5] {
            let x = Tensor::randn(0f32, 1., (rows, 96), &dev)?;
            let want = reference.forward(&x)?.to_vec2::<f32>()?;
            let got = ours.matmul(&x)?.to_vec2::<f32>()?;
            for (a, b) in want.iter().flatten().zip(got.iter().flatten()) {
                assert!((a - b).abs() <= 1e-4 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
        Ok(())
    }
}
