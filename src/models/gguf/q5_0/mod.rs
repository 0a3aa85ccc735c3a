//! Matrix products with GGML Q5_0 weights on x86-64 CPUs with AVX2.
//!
//! Q5_0 is the type of most tensors of small Qwen2.5 GGUF files (their 896-wide rows do not fit
//! the 256-value k-quant blocks, so llama.cpp's quantizer falls back to it). candle 0.11.1 computes
//! Q5_0 dot products one value at a time in scalar code; this computes the same quantity
//! (weights times the input quantized to Q8_0 blocks, as llama.cpp and candle do) 32 values per
//! instruction with AVX2 integer products.
//!
//! A Q5_0 block holds 32 weights: an f16 scale `d`, 32 high bits `qh`, and 16 bytes of low
//! nibbles `qs`. Weight `j` is `d * ((nibble_j | bit_j << 4) - 16)`, where weights 0–15 take the
//! low nibbles of `qs` and 16–31 the high ones.
//!
//! Two paths:
//! - A few input rows (generation): each weight block is unpacked in registers and used once,
//!   so the weights are read in their 5.5-bit form, which is what bounds the speed there.
//! - Many input rows (prompts): a group of weight rows is unpacked to signed bytes once per
//!   call, and a register tile of 4 input rows × 4 weight rows reuses every load. The input is
//!   stored plus 128, the unsigned operand of the byte product; what that adds, `128 · Σ w` per
//!   weight block, is computed when the weights are unpacked and taken off in the same
//!   instruction that applies the weight scale.
//!
//! `cargo run --release --example bench_q5_0` measures both against candle's kernel.

#[cfg(target_arch = "x86_64")]
mod avx2;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

const BLOCK: usize = 32;
/// Bytes of one Q5_0 block: d (2), qh (4), qs (16).
const BLOCK_BYTES: usize = 22;

/// Weight rows per parallel task when few input rows come: one pass over the quantized input
/// serves them all.
const GENERATION_COLUMNS: usize = 8;
/// Weight rows per parallel task for prompts: unpacked together into a panel that stays in L1.
const PROMPT_COLUMNS: usize = 16;
/// Input rows of the prompt path's register tile, by 4 weight rows.
const TILE_ROWS: usize = 4;
type TileSums = [[f32; 4]; TILE_ROWS];
/// From this many input rows on, weight rows are unpacked once per call rather than once per
/// input row (single tokens are faster reading the packed blocks directly).
const UNPACK_ROWS: usize = 4;

/// A `[n, k]` Q5_0 weight, as its raw blocks.
#[derive(Debug, Clone)]
pub struct Q5_0Matrix {
    blocks: Vec<u8>,
    n: usize,
    k: usize,
}

/// The input, quantized to Q8_0 blocks: per block a scale (already rounded to f16, as stored)
/// and 32 int8 values (stored plus 128 for the prompt kernel, see `quantize_rows`).
struct Q8Rows {
    values: Vec<i8>,
    scales: Vec<f32>,
    blocks_per_row: usize,
}

impl Q8Rows {
    fn rows(&self) -> usize {
        self.values.len() / (self.blocks_per_row * BLOCK)
    }

    /// The values and block scales of input row `r`.
    fn row(&self, r: usize) -> (&[i8], &[f32]) {
        let blocks = r * self.blocks_per_row..(r + 1) * self.blocks_per_row;
        (
            &self.values[blocks.start * BLOCK..blocks.end * BLOCK],
            &self.scales[blocks],
        )
    }
}

impl Q5_0Matrix {
    /// The matrix of a Q5_0 tensor on the CPU, when this CPU has AVX2; `None` otherwise (candle's
    /// own kernels then run).
    pub fn from_qtensor(tensor: &QTensor) -> candle_core::Result<Option<Self>> {
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
    pub fn matmul(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let [y] = Self::matmul_many([self], x)?;
        Ok(y)
    }

    /// `x · Wᵀ` for several weights of the same width: the input is quantized once and all the
    /// products share one parallel section.
    pub fn matmul_many<const N: usize>(
        weights: [&Self; N],
        x: &Tensor,
    ) -> candle_core::Result<[Tensor; N]> {
        let mut shape = x.dims().to_vec();
        let k = shape.pop().unwrap_or(0);
        if let Some(w) = weights.iter().find(|w| w.k != k) {
            candle_core::bail!("Q5_0 matmul: input width {k}, weight width {}", w.k);
        }
        let rows: usize = shape.iter().product();
        let host = x.flatten_all()?.to_vec1::<f32>()?;
        let prompt = rows >= UNPACK_ROWS;
        let input = quantize_rows(&host, rows, k, prompt);
        let columns = if prompt {
            PROMPT_COLUMNS
        } else {
            GENERATION_COLUMNS
        };
        let mut outputs: [Vec<f32>; N] = weights.map(|w| vec![0f32; rows * w.n]);
        let targets: Vec<SendPtr> = outputs
            .iter_mut()
            .map(|o| SendPtr(o.as_mut_ptr()))
            .collect();
        // Tasks are (weight, group of `columns` weight rows); each writes only its own output
        // columns. On candle's thread pool, which runs the model's other products: with a
        // second pool (rayon's) for these, candle's idle workers spun between its products on
        // the cores this one needed (a quarter of all samples in a generation profile).
        let tasks: Vec<(usize, usize)> = (0..N)
            .flat_map(|i| (0..weights[i].n.div_ceil(columns)).map(move |g| (i, g)))
            .collect();
        let run = |(i, g): (usize, usize)| {
            let (w, out) = (weights[i], &targets[i]);
            let cols = g * columns..((g + 1) * columns).min(w.n);
            // SAFETY: `r * n + c` is within the output for every input row and weight row, and
            // no other task writes column `c` of this output.
            let store = |r: usize, c: usize, v: f32| unsafe { *out.0.add(r * w.n + c) = v };
            if !prompt {
                for r in 0..rows {
                    for c in cols.clone() {
                        store(r, c, dot_q5_0(w.weight_row(c), &input, r));
                    }
                }
            } else {
                w.tile_product(cols, &input, rows, store);
            }
        };
        candle_core::utils::barrier_pool()
            .execute_chunked(tasks.len(), |chunk| chunk.for_each(|t| run(tasks[t])));
        let mut products = Vec::with_capacity(N);
        for (w, out) in weights.iter().zip(outputs) {
            let mut shape = shape.clone();
            shape.push(w.n);
            products.push(Tensor::from_vec(out, shape, x.device())?);
        }
        Ok(products
            .try_into()
            .unwrap_or_else(|_| unreachable!("one product per weight")))
    }

    fn weight_row(&self, c: usize) -> &[u8] {
        let row_bytes = (self.k / BLOCK) * BLOCK_BYTES;
        &self.blocks[c * row_bytes..(c + 1) * row_bytes]
    }

    /// Every input row times weight rows `cols`, through the unpacked panel and tiles of
    /// `TILE_ROWS` input rows × 4 weight rows.
    fn tile_product(
        &self,
        cols: std::ops::Range<usize>,
        input: &Q8Rows,
        rows: usize,
        mut store: impl FnMut(usize, usize, f32),
    ) {
        let panel = Panel::unpack(self, cols.clone());
        for first in (0..rows).step_by(TILE_ROWS) {
            for quad in 0..panel.quads() {
                let mut sums = [[0f32; 4]; TILE_ROWS];
                tile(&panel, quad, input, first, &mut sums);
                for (r, row) in sums.iter().enumerate().take(rows - first) {
                    for (j, &v) in row.iter().enumerate() {
                        let c = cols.start + 4 * quad + j;
                        if c < cols.end {
                            store(first + r, c, v);
                        }
                    }
                }
            }
        }
    }
}

/// Weight rows unpacked for the prompt path, in fours ("quads"; a ragged last quad is filled
/// with zero weights). Per quad and block:
/// - `values`: the 32 signed values of each of its 4 rows;
/// - `scales`: the 4 rows' scales, twice (one per 128-bit half of the kernel's sums);
/// - `offsets`: per row and half, `d · 128 · Σ` of those 16 values: what the kernel's unsigned
///   input (the int8 input plus 128) adds to each product, scaled.
struct Panel {
    values: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<f32>,
    blocks: usize,
}

impl Panel {
    fn unpack(matrix: &Q5_0Matrix, cols: std::ops::Range<usize>) -> Self {
        let blocks = matrix.k / BLOCK;
        let quads = cols.len().div_ceil(4);
        let mut values = vec![0i8; quads * blocks * 4 * BLOCK];
        let mut scales = vec![0f32; quads * blocks * 8];
        let mut offsets = vec![0f32; quads * blocks * 8];
        for (j, c) in cols.enumerate() {
            let w = matrix.weight_row(c);
            let (quad, row) = (j / 4, j % 4);
            for b in 0..blocks {
                let block = &w[b * BLOCK_BYTES..(b + 1) * BLOCK_BYTES];
                let at = quad * blocks + b;
                let out = &mut values[(at * 4 + row) * BLOCK..(at * 4 + row + 1) * BLOCK];
                unpack_signed(block, out);
                let d = block_scale(block);
                for half in 0..2 {
                    let sum: i32 = out[16 * half..16 * half + 16]
                        .iter()
                        .map(|&v| v as i32)
                        .sum();
                    scales[at * 8 + 4 * half + row] = d;
                    offsets[at * 8 + 4 * half + row] = d * (128 * sum) as f32;
                }
            }
        }
        Self {
            values,
            scales,
            offsets,
            blocks,
        }
    }

    fn quads(&self) -> usize {
        self.values.len() / (4 * self.blocks * BLOCK)
    }
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only used for disjoint writes, see `Q5_0Matrix::matmul_many`.
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
/// With `plus_128`, the values are stored as the bytes of `q + 128` (the prompt kernel's
/// unsigned operand).
fn quantize_rows(x: &[f32], rows: usize, k: usize, plus_128: bool) -> Q8Rows {
    let flip = if plus_128 { i8::MIN } else { 0 };
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
                *q = ((v * inverse).round() as i8) ^ flip;
            }
            *scale = f16::from_f32(d).to_f32();
        });
    Q8Rows {
        values,
        scales,
        blocks_per_row,
    }
}

fn block_scale(block: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes([block[0], block[1]])).to_f32()
}

/// One Q5_0 block's values as signed bytes, `(nibble | bit << 4) - 16`.
fn unpack_signed(block: &[u8], out: &mut [i8]) {
    assert!(block.len() >= BLOCK_BYTES && out.len() >= BLOCK);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_qtensor` only builds a matrix where AVX2 is present; both lengths checked.
    unsafe {
        avx2::unpack_signed(block, out)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}

/// `sums[r][j]` = input row `first + r` times weight row `4 · quad + j` of the panel.
fn tile(panel: &Panel, quad: usize, input: &Q8Rows, first: usize, sums: &mut TileSums) {
    let rows = TILE_ROWS.min(input.rows() - first);
    assert!(quad < panel.quads() && rows > 0 && panel.blocks == input.blocks_per_row);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_qtensor` only builds a matrix where AVX2 and FMA are present; the shapes
    // are checked above.
    unsafe {
        avx2::tile(panel, quad, input, first, rows, sums)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}

/// The dot product of one Q5_0 weight row with row `r` of the quantized input.
fn dot_q5_0(w: &[u8], q: &Q8Rows, r: usize) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        let (values, scales) = q.row(r);
        // SAFETY: `from_qtensor` only builds a matrix where AVX2 and FMA are present; both rows
        // hold `blocks_per_row` blocks.
        unsafe { avx2::dot_q5_0(w, values, scales) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, q, r);
        unreachable!("Q5_0Matrix is only built on x86-64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Module;

    /// Against candle's own Q5_0 product (dequantize-free, Q8_0 inputs) on random data, for
    /// both paths and ragged tiles (rows not a multiple of 4, an odd number of weight rows).
    #[test]
    fn agrees_with_candle() -> candle_core::Result<()> {
        if !avx2_available() {
            eprintln!("skipped: no AVX2");
            return Ok(());
        }
        let dev = Device::Cpu;
        for (n, k) in [(37, 96), (40, 896)] {
            let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
            let q = QTensor::quantize(&w, GgmlDType::Q5_0)?;
            let ours = Q5_0Matrix::from_qtensor(&q)?.expect("a Q5_0 matrix");
            let reference = candle_core::quantized::QMatMul::from_qtensor(q)?;
            for rows in [1, 3, 5, 11] {
                let x = Tensor::randn(0f32, 1., (rows, k), &dev)?;
                let want = reference.forward(&x)?.to_vec2::<f32>()?;
                let got = ours.matmul(&x)?.to_vec2::<f32>()?;
                for (a, b) in want.iter().flatten().zip(got.iter().flatten()) {
                    assert!(
                        (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                        "{n}x{k}, {rows} rows: {a} vs {b}"
                    );
                }
                let [again, _] = Q5_0Matrix::matmul_many([&ours, &ours], &x)?;
                assert_eq!(again.to_vec2::<f32>()?, got);
            }
        }
        Ok(())
    }

    /// The unpacking agrees with the scalar definition of the format.
    #[test]
    fn unpacking() {
        let mut block = [0u8; BLOCK_BYTES];
        for (i, b) in block.iter_mut().enumerate().skip(2) {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        if !avx2_available() {
            eprintln!("skipped: no AVX2");
            return;
        }
        let mut out = [0i8; BLOCK];
        unpack_signed(&block, &mut out);
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        for (j, &v) in out.iter().enumerate() {
            let byte = block[6 + j % 16];
            let nibble = if j < 16 { byte & 15 } else { byte >> 4 };
            let want = (nibble + 16 * ((qh >> j) & 1) as u8) as i8 - 16;
            assert_eq!(v, want, "value {j}");
        }
    }
}
