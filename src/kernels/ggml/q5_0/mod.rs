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
//! low nibbles of `qs` and 16–31 the high ones. At load, each weight row's blocks are split
//! into their parts (see [`Row`]).
//!
//! Two paths:
//! - A few input rows (generation): each weight block is unpacked in registers and used once,
//!   so the weights are read in their 5.5-bit form, which is what bounds the speed there. The
//!   weights are taken unsigned (`nibble | bit << 4`), the unsigned operand of the byte
//!   product; what that adds, `16 · Σ x` per input block, is known from the input alone.
//! - Many input rows (prompts, `prompt.rs`): a group of weight rows is unpacked to signed bytes
//!   once per call, and a register tile of 4 input rows × 4 weight rows (8 × 16 with AVX-512
//!   VNNI, whose `vpdpbusd` sums four byte products per lane) reuses every load. There
//!   the input is stored plus 128 as the unsigned operand, and `128 · Σ w` per weight block is
//!   computed when the weights are unpacked.
//!
//! Both take the offset off in integers, so each block's integer product is exact and the
//! floating-point work is llama.cpp's: per block, `d_w · d_x` times that integer, summed.
//!
//! `cargo run --release --example bench_gguf` measures both against candle's kernel.

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512_vnni;
mod prompt;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use half::f16;

use super::q8_rows::{quantize_rows, scale_slots, Q8Rows};
use crate::kernels::{isa, Isa, SendPtr};
use prompt::PromptKernel;

const BLOCK: usize = 32;
/// Bytes of one Q5_0 block in GGUF: d (2), qh (4), qs (16).
const BLOCK_BYTES: usize = 22;

/// Weight rows per parallel task when few input rows come: one pass over the quantized input
/// serves them all.
const GENERATION_COLUMNS: usize = 8;
/// From this many input rows on, weight rows are unpacked once per call rather than once per
/// input row (single tokens are faster reading the packed blocks directly).
const UNPACK_ROWS: usize = 4;

/// A `[n, k]` Q5_0 weight, each row laid out as a [`Row`].
#[derive(Debug, Clone)]
pub struct Q5_0Matrix {
    data: Vec<u8>,
    n: usize,
    k: usize,
    blocks: usize,
}

/// One weight row: its blocks in groups of up to 8, each group stored as 8 f16 scales (zero
/// padded), then its blocks' high bits (`qh`, 4 bytes each), then their nibbles (`qs`, 16
/// bytes each). The same bytes as GGUF's, read front to back, but eight scales convert in one
/// instruction. (Scales, high bits and nibbles as three separate runs per row were slower in a
/// model: three short streams defeated the prefetcher.)
#[derive(Clone, Copy)]
struct Row<'a> {
    bytes: &'a [u8],
    blocks: usize,
}

/// A group of up to 8 blocks of a [`Row`].
struct BlockGroup<'a> {
    /// 8 f16 scales, little endian.
    scales: &'a [u8],
    high: &'a [u8],
    low: &'a [u8],
}

/// Bytes of a full group: 8 scales, 8 `qh`, 8 `qs`.
const GROUP_BYTES: usize = 16 + 8 * 20;

impl<'a> Row<'a> {
    fn bytes_for(blocks: usize) -> usize {
        16 * blocks.div_ceil(8) + 20 * blocks
    }

    /// Group `g`, blocks `8 g ..`.
    fn group(&self, g: usize) -> BlockGroup<'a> {
        let count = (self.blocks - 8 * g).min(8);
        let at = g * GROUP_BYTES;
        let bytes = &self.bytes[at..at + 16 + 20 * count];
        let (scales, rest) = bytes.split_at(16);
        let (high, low) = rest.split_at(4 * count);
        BlockGroup { scales, high, low }
    }

    fn scale(&self, b: usize) -> f32 {
        let scales = self.group(b / 8).scales;
        let j = 2 * (b % 8);
        f16::from_bits(u16::from_le_bytes([scales[j], scales[j + 1]])).to_f32()
    }
}

impl Q5_0Matrix {
    /// The matrix of a Q5_0 tensor on the CPU, when this CPU has AVX2, FMA and F16C; `None`
    /// otherwise (candle's own kernels then run).
    pub fn from_qtensor(tensor: &QTensor) -> candle_core::Result<Option<Self>> {
        if tensor.dtype() != GgmlDType::Q5_0 || !matches!(tensor.device(), Device::Cpu) {
            return Ok(None);
        }
        let (n, k) = tensor.shape().dims2()?;
        Self::from_gguf(&tensor.data()?, n, k)
    }

    /// The matrix of `[n, k]` Q5_0 weights given as their GGUF bytes, for the CPU, when this CPU
    /// has AVX2, FMA and F16C; `None` otherwise. Built from the file's bytes, the weights are
    /// never held as candle's blocks too.
    pub fn from_gguf(gguf: &[u8], n: usize, k: usize) -> candle_core::Result<Option<Self>> {
        if isa() < Isa::Avx2 {
            return Ok(None);
        }
        if !k.is_multiple_of(BLOCK) {
            return Ok(None);
        }
        let blocks = k / BLOCK;
        if gguf.len() != n * blocks * BLOCK_BYTES {
            candle_core::bail!("Q5_0 tensor of shape {n}x{k} has {} bytes", gguf.len());
        }
        let row_bytes = Row::bytes_for(blocks);
        let mut data = vec![0u8; n * row_bytes];
        for (gguf, row) in gguf
            .chunks_exact(blocks * BLOCK_BYTES)
            .zip(data.chunks_exact_mut(row_bytes))
        {
            for (gguf, group) in gguf
                .chunks(8 * BLOCK_BYTES)
                .zip(row.chunks_mut(GROUP_BYTES))
            {
                let count = gguf.len() / BLOCK_BYTES;
                let (scales, rest) = group.split_at_mut(16);
                let (high, low) = rest.split_at_mut(4 * count);
                for (b, block) in gguf.chunks_exact(BLOCK_BYTES).enumerate() {
                    scales[2 * b..2 * b + 2].copy_from_slice(&block[..2]);
                    high[4 * b..4 * b + 4].copy_from_slice(&block[2..6]);
                    low[16 * b..16 * b + 16].copy_from_slice(&block[6..]);
                }
            }
        }
        Ok(Some(Self { data, n, k, blocks }))
    }

    fn row(&self, c: usize) -> Row<'_> {
        let row_bytes = Row::bytes_for(self.blocks);
        Row {
            bytes: &self.data[c * row_bytes..(c + 1) * row_bytes],
            blocks: self.blocks,
        }
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
        let Some(kernel) = PromptKernel::for_this_cpu() else {
            candle_core::bail!("Q5_0 matmul on a CPU without AVX2");
        };
        Self::matmul_many_with(kernel, weights, x)
    }

    fn matmul_many_with<const N: usize>(
        kernel: PromptKernel,
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
            prompt::COLUMNS
        } else {
            GENERATION_COLUMNS
        };
        let mut outputs: [Vec<f32>; N] = weights.map(|w| vec![0f32; rows * w.n]);
        let targets: Vec<SendPtr<f32>> = outputs
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
            let store = |r: usize, c: usize, v: f32| unsafe { *out.get().add(r * w.n + c) = v };
            if prompt {
                prompt::product(kernel, w, cols, &input, store);
            } else {
                // One weight row at a time: two interleaved rows ran 30% slower in a model,
                // the weights streaming from memory in two runs instead of one.
                for r in 0..rows {
                    for c in cols.clone() {
                        store(r, c, dot_row(w.row(c), &input, r));
                    }
                }
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
}

/// The dot product of weight row `w` with row `r` of the quantized input.
fn dot_row(w: Row<'_>, input: &Q8Rows, r: usize) -> f32 {
    let (values, scales, offsets) = input.row(r);
    assert!(w.blocks * BLOCK == values.len() && scale_slots(w.blocks) == scales.len());
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_gguf` only builds a matrix where AVX2, FMA and F16C are present; the
    // lengths are checked above.
    unsafe {
        avx2::dot_row(w, values, scales, offsets)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Module;

    /// Against candle's own Q5_0 product (dequantize-free, Q8_0 inputs) on random data, for
    /// both paths and ragged shapes (rows not a multiple of 4, an odd number of weight rows,
    /// blocks not a multiple of 8).
    #[test]
    fn agrees_with_candle() -> candle_core::Result<()> {
        if isa() < Isa::Avx2 {
            eprintln!("skipped: no AVX2");
            return Ok(());
        }
        let dev = Device::Cpu;
        for (n, k) in [(37, 96), (40, 896), (9, 320)] {
            let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
            let q = QTensor::quantize(&w, GgmlDType::Q5_0)?;
            let ours = Q5_0Matrix::from_qtensor(&q)?.expect("a Q5_0 matrix");
            let reference = candle_core::quantized::QMatMul::from_qtensor(q)?;
            for rows in [1, 2, 3, 5, 11, 17] {
                let x = Tensor::randn(0f32, 1., (rows, k), &dev)?;
                let want = reference.forward(&x)?.to_vec2::<f32>()?;
                for kernel in PromptKernel::available() {
                    let [got] = Q5_0Matrix::matmul_many_with(kernel, [&ours], &x)?;
                    let got = got.to_vec2::<f32>()?;
                    for (a, b) in want.iter().flatten().zip(got.iter().flatten()) {
                        assert!(
                            (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                            "{kernel:?}, {n}x{k}, {rows} rows: {a} vs {b}"
                        );
                    }
                    let [again, _] = Q5_0Matrix::matmul_many_with(kernel, [&ours, &ours], &x)?;
                    assert_eq!(again.to_vec2::<f32>()?, got);
                }
            }
        }
        Ok(())
    }

    /// The AVX-512 VNNI prompt tile gives, bit for bit, the integer definition: per block the
    /// exact integer product of the Q5_0 values and the Q8_0 input, times `d_w · d_x`, added
    /// in block order with one rounding (a fused multiply-add). Ragged shapes: rows not a
    /// multiple of 8, weight rows not a multiple of 16, blocks not a multiple of 8.
    #[test]
    fn the_vnni_prompt_tile_is_the_integer_definition() -> candle_core::Result<()> {
        if !PromptKernel::available().contains(&PromptKernel::Avx512Vnni) {
            eprintln!("skipped: this CPU has no AVX-512 VNNI");
            return Ok(());
        }
        let dev = Device::Cpu;
        for (n, k, rows) in [(37, 96, 4), (40, 896, 19), (9, 320, 8), (16, 32, 13)] {
            let w = Tensor::randn(0f32, 1., (n, k), &dev)?;
            let q = QTensor::quantize(&w, GgmlDType::Q5_0)?;
            let ours = Q5_0Matrix::from_qtensor(&q)?.expect("a Q5_0 matrix");
            let x = Tensor::randn(0f32, 1., (rows, k), &dev)?;
            let [got] = Q5_0Matrix::matmul_many_with(PromptKernel::Avx512Vnni, [&ours], &x)?;
            let got = got.to_vec2::<f32>()?;
            let input = quantize_rows(&x.flatten_all()?.to_vec1::<f32>()?, rows, k, true);
            let blocks = k / BLOCK;
            for (r, got) in got.iter().enumerate() {
                let (values, scales, _) = input.row(r);
                for (c, &got) in got.iter().enumerate() {
                    let mut unpacked = vec![0i8; k];
                    let mut sums = vec![[0i32; 2]; blocks];
                    prompt::unpack_row(ours.row(c), &mut unpacked, BLOCK, &mut sums);
                    let mut want = 0f32;
                    for (b, &x_scale) in scales.iter().enumerate().take(blocks) {
                        let product: i32 = (b * BLOCK..(b + 1) * BLOCK)
                            .map(|i| i32::from(values[i] ^ i8::MIN) * i32::from(unpacked[i]))
                            .sum();
                        want = (product as f32).mul_add(ours.row(c).scale(b) * x_scale, want);
                    }
                    assert_eq!(got.to_bits(), want.to_bits(), "{n}x{k} row {r} column {c}");
                }
            }
        }
        Ok(())
    }

    /// The unpacking agrees with the scalar definition of the format.
    #[test]
    fn unpacking() {
        if isa() < Isa::Avx2 {
            eprintln!("skipped: no AVX2");
            return;
        }
        let low: Vec<u8> = (0..16u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        let high = 0x9e37_79b9u32;
        let mut bytes = vec![0u8; 16];
        bytes.extend(high.to_le_bytes());
        bytes.extend(&low);
        let row = Row {
            bytes: &bytes,
            blocks: 1,
        };
        let (mut out, mut sums) = ([0i8; BLOCK], [[0i32; 2]]);
        prompt::unpack_row(row, &mut out, BLOCK, &mut sums);
        for (j, &v) in out.iter().enumerate() {
            let byte = low[j % 16];
            let nibble = if j < 16 { byte & 15 } else { byte >> 4 };
            let want = (nibble + 16 * ((high >> j) & 1) as u8) as i8 - 16;
            assert_eq!(v, want, "value {j}");
        }
        let half_sum = |h: usize| {
            out[16 * h..16 * h + 16]
                .iter()
                .map(|&v| i32::from(v))
                .sum::<i32>()
        };
        assert_eq!(sums, [[half_sum(0), half_sum(1)]]);
    }
}
