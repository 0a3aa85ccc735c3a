//! The input of the GGML-type products (`q5_0`, `q8_0`): rows quantized to Q8_0 blocks, as
//! llama.cpp and candle quantize them before their integer dot products.

use half::f16;

const BLOCK: usize = 32;

/// Scales per input row, padded so that they can be read eight at a time.
pub(super) fn scale_slots(blocks: usize) -> usize {
    blocks.next_multiple_of(8)
}

/// The input, quantized to Q8_0 blocks: per block a scale (already rounded to f16, as stored)
/// and 32 int8 values (stored plus 128 for the Q5_0 prompt kernel, see `quantize_rows`).
pub(super) struct Q8Rows {
    pub(super) values: Vec<i8>,
    /// Per row, `scale_slots(blocks_per_row)` scales, zero padded.
    pub(super) scales: Vec<f32>,
    /// Per block, eight sums `16 · Σ` of four consecutive values: what the Q5_0 generation
    /// kernel's unsigned weights (the weights plus 16) add to each of its eight partial
    /// products, taken off in integers so that each block's product stays exact.
    pub(super) offsets: Vec<i32>,
    pub(super) blocks_per_row: usize,
}

impl Q8Rows {
    pub(super) fn rows(&self) -> usize {
        self.values.len() / (self.blocks_per_row * BLOCK)
    }

    pub(super) fn scale_stride(&self) -> usize {
        scale_slots(self.blocks_per_row)
    }

    /// The values, block scales and offsets of input row `r`.
    pub(super) fn row(&self, r: usize) -> (&[i8], &[f32], &[i32]) {
        let values = r * self.blocks_per_row * BLOCK..(r + 1) * self.blocks_per_row * BLOCK;
        let scales = r * self.scale_stride()..(r + 1) * self.scale_stride();
        let offsets = r * self.blocks_per_row * 8..(r + 1) * self.blocks_per_row * 8;
        (
            &self.values[values],
            &self.scales[scales],
            &self.offsets[offsets],
        )
    }
}

/// Q8_0 quantization of each row: per block of 32, `d = max|x| / 127` and `q = round(x / d)`.
/// With `plus_128`, the values are stored as the bytes of `q + 128` (the Q5_0 prompt kernel's
/// unsigned operand).
pub(super) fn quantize_rows(x: &[f32], rows: usize, k: usize, plus_128: bool) -> Q8Rows {
    let blocks_per_row = k / BLOCK;
    let stride = scale_slots(blocks_per_row);
    let mut scales = vec![0f32; rows * stride];
    let mut offsets = vec![0i32; rows * blocks_per_row * 8];
    let mut values = vec![0i8; rows * k];
    let row_offsets = blocks_per_row * 8;
    if rows < PARALLEL_ROWS || k == 0 {
        let parts = values
            .chunks_exact_mut(k.max(1))
            .zip(scales.chunks_exact_mut(stride.max(1)))
            .zip(offsets.chunks_exact_mut(row_offsets.max(1)));
        for (r, ((q, s), o)) in parts.enumerate() {
            quantize_row(&x[r * k..(r + 1) * k], q, s, o, plus_128);
        }
    } else {
        // A prompt's rows in parallel (sequential, this was 3% of a 1,000-token prompt); each
        // task returns its row's scales and offsets, copied into place after.
        let per_row = crate::kernels::parallel::map_chunks_mut(&mut values, k, |r, q| {
            let (mut s, mut o) = (vec![0f32; stride], vec![0i32; row_offsets]);
            quantize_row(&x[r * k..(r + 1) * k], q, &mut s, &mut o, plus_128);
            (s, o)
        });
        let parts = scales
            .chunks_exact_mut(stride)
            .zip(offsets.chunks_exact_mut(row_offsets));
        for ((s, o), (row_s, row_o)) in parts.zip(per_row) {
            s.copy_from_slice(&row_s);
            o.copy_from_slice(&row_o);
        }
    }
    Q8Rows {
        values,
        scales,
        offsets,
        blocks_per_row,
    }
}

/// From this many input rows on, rows are quantized in parallel.
const PARALLEL_ROWS: usize = 16;

/// One row of [`quantize_rows`]: its values, scales and offsets.
fn quantize_row(x: &[f32], q: &mut [i8], scales: &mut [f32], offsets: &mut [i32], plus_128: bool) {
    let flip = if plus_128 { i8::MIN } else { 0 };
    for (b, (q, block)) in q.chunks_mut(BLOCK).zip(x.chunks(BLOCK)).enumerate() {
        let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d != 0.0 { 1.0 / d } else { 0.0 };
        for (j, (q, v)) in q.iter_mut().zip(block).enumerate() {
            let value = (v * inverse).round() as i8;
            offsets[b * 8 + j / 4] += 16 * i32::from(value);
            *q = value ^ flip;
        }
        scales[b] = f16::from_f32(d).to_f32();
    }
}
