//! The AVX2 kernels of the Q5_0 products.

use std::arch::x86_64::*;

use super::super::q8_rows::Q8Rows;
use super::prompt::{Panel, TileSums};
use super::{Row, BLOCK};

/// What unpacking a Q5_0 block needs, kept in registers across blocks.
struct Unpacker {
    low_nibbles: __m256i,
    select: __m256i,
    bit: __m256i,
    sixteen: __m256i,
}

impl Unpacker {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        Self {
            low_nibbles: _mm256_set1_epi8(0x0f),
            // Byte j of the expanded high bits tests bit j % 8 of byte j / 8 of `qh`.
            select: _mm256_setr_epi8(
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                3, 3, 3, 3,
            ),
            bit: _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64),
            sixteen: _mm256_set1_epi8(16),
        }
    }

    /// The block's 32 nibbles, and a mask of the values whose high bit is set.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn parts(&self, high: u32, low: *const u8) -> (__m256i, __m256i) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let qs = _mm_loadu_si128(low.cast());
            // Weights 0–15 from the low nibbles, 16–31 from the high ones.
            let nibbles = _mm256_and_si256(
                _mm256_set_m128i(_mm_srli_epi16(qs, 4), qs),
                self.low_nibbles,
            );
            let high = _mm256_cmpeq_epi8(
                _mm256_and_si256(
                    _mm256_shuffle_epi8(_mm256_set1_epi32(high as i32), self.select),
                    self.bit,
                ),
                self.bit,
            );
            (nibbles, high)
        }
    }

    /// The 32 values `(nibble | bit << 4) - 16` of a block (`low`: its 16 bytes of nibbles).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn signed(&self, high: u32, low: *const u8) -> __m256i {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let (nibbles, high) = self.parts(high, low);
            // Where the bit is clear, nibble - 16 is nibble | 0xf0.
            let minus_16 = _mm256_sub_epi8(_mm256_setzero_si256(), self.sixteen);
            _mm256_or_si256(nibbles, _mm256_andnot_si256(high, minus_16))
        }
    }

    /// The 32 values `nibble | bit << 4` (the weights plus 16) of a block.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn unsigned(&self, high: u32, low: *const u8) -> __m256i {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let (nibbles, high) = self.parts(high, low);
            _mm256_or_si256(nibbles, _mm256_and_si256(high, self.sixteen))
        }
    }
}

#[inline]
#[target_feature(enable = "avx2")]
fn sum(acc: __m256) -> f32 {
    let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    let pairs = _mm_add_ps(halves, _mm_movehl_ps(halves, halves));
    _mm_cvtss_f32(_mm_add_ss(pairs, _mm_shuffle_ps(pairs, pairs, 1)))
}

/// How far ahead of the weights being read to ask for them, in bytes.
const PREFETCH_AHEAD: usize = 1024;
/// Cache lines per group of 8 blocks (176 bytes).
const GROUP_LINES: usize = 3;

/// The dot product of a weight row with one quantized input row (`x`, its block `scales` and
/// `offsets`, see `Q8Rows`), unpacking the weights on the fly.
///
/// # Safety
/// AVX2, FMA and F16C; the row and the input hold the same number of blocks, and the scales and
/// offsets are laid out as `Q8Rows` lays them out.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_row(w: Row<'_>, x: &[i8], scales: &[f32], offsets: &[i32]) -> f32 {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        let blocks = x.len() / BLOCK;
        let unpacker = Unpacker::new();
        let ones = _mm256_set1_epi16(1);
        let mut acc = _mm256_setzero_ps();
        for (g, first) in (0..blocks).step_by(8).enumerate() {
            let group = w.group(g);
            // The weights stream from memory; the hardware prefetcher alone left a single token's
            // product at 11-15 GB/s, with this 15-18 (examples/bench_gguf, 95 MB of weights).
            let ahead = group.scales.as_ptr().wrapping_add(PREFETCH_AHEAD);
            for line in 0..GROUP_LINES {
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64 * line).cast());
            }
            // Eight blocks' scales at a time: d_w · d_x per block.
            let d = _mm256_cvtph_ps(_mm_loadu_si128(group.scales.as_ptr().cast()));
            let mut block_scales = [0f32; 8];
            let x_scales = _mm256_loadu_ps(scales.as_ptr().add(first));
            _mm256_storeu_ps(block_scales.as_mut_ptr(), _mm256_mul_ps(d, x_scales));
            for (j, scale) in block_scales.iter().enumerate().take(blocks - first) {
                let b = first + j;
                let y = _mm256_loadu_si256(x.as_ptr().add(b * BLOCK).cast());
                let high = u32::from_le_bytes(*group.high.as_ptr().add(4 * j).cast::<[u8; 4]>());
                let w = unpacker.unsigned(high, group.low.as_ptr().add(16 * j));
                // Unsigned 0–31 × signed ±127, in pairs: at most 7874, no saturation. Less the
                // weights' +16, the same integers as the signed product.
                let products = _mm256_sub_epi32(
                    _mm256_madd_epi16(_mm256_maddubs_epi16(w, y), ones),
                    _mm256_loadu_si256(offsets.as_ptr().add(8 * b).cast()),
                );
                acc = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(products),
                    _mm256_broadcast_ss(scale),
                    acc,
                );
            }
        }
        sum(acc)
    }
}

/// Unpacks every block of a weight row to signed bytes, block `b` at `out[b * stride..]`, and
/// returns per block the sums of its two 16-value halves.
///
/// # Safety
/// AVX2; `out` has room for `row`'s last block at its stride, and `sums` one pair per block.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn unpack_row(
    row: Row<'_>,
    out: &mut [i8],
    stride: usize,
    sums: &mut [[i32; 2]],
) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        let blocks = row.blocks;
        debug_assert!(sums.len() >= blocks && out.len() >= (blocks - 1) * stride + BLOCK);
        let unpacker = Unpacker::new();
        let sixteen = _mm256_set1_epi8(16);
        for (b, sums) in sums.iter_mut().enumerate().take(blocks) {
            let group = row.group(b / 8);
            let j = b % 8;
            let high = u32::from_le_bytes(*group.high.as_ptr().add(4 * j).cast::<[u8; 4]>());
            let values = unpacker.signed(high, group.low.as_ptr().add(16 * j));
            _mm256_storeu_si256(out.as_mut_ptr().add(b * stride).cast(), values);
            // Sums of the values plus 16 (unsigned) in 8-byte groups, less 16 per value.
            let groups = _mm256_sad_epu8(_mm256_add_epi8(values, sixteen), _mm256_setzero_si256());
            let mut g = [0i64; 4];
            _mm256_storeu_si256(g.as_mut_ptr().cast(), groups);
            *sums = [(g[0] + g[1]) as i32 - 256, (g[2] + g[3]) as i32 - 256];
        }
    }
}

/// `sums[r][j]` = input row `first + r` times weight row `4 · quad + j` of the panel, for
/// `r < rows`.
///
/// # Safety
/// AVX2 and FMA; `1 <= rows <= TILE_ROWS`, input rows `first..first + rows` exist, the panel has
/// quad `quad`, and the input has as many blocks per row as the panel.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile(
    panel: &Panel,
    quad: usize,
    input: &Q8Rows,
    first: usize,
    rows: usize,
    sums: &mut TileSums,
) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        match rows {
            4 => tile_rows::<4>(panel, quad, input, first, sums),
            3 => tile_rows::<3>(panel, quad, input, first, sums),
            2 => tile_rows::<2>(panel, quad, input, first, sums),
            _ => tile_rows::<1>(panel, quad, input, first, sums),
        }
    }
}

/// Per block and input row, the four weight rows' byte products are summed down to one vector
/// whose lanes are the four dot products of each 16-value half (two interleave-and-add steps
/// in 16 bits, then `pmaddwd`), so the conversion and the scaling take one instruction for four
/// products. `phaddw` does the same summing, but on Zen 3 at a third of the throughput.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_rows<const R: usize>(
    panel: &Panel,
    quad: usize,
    input: &Q8Rows,
    first: usize,
    sums: &mut TileSums,
) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        let blocks = panel.blocks;
        let weights = panel.values.as_ptr().add(quad * blocks * 4 * BLOCK);
        let weight_scales = panel.scales.as_ptr().add(quad * blocks * 8);
        let offsets = panel.offsets.as_ptr().add(quad * blocks * 8);
        let x = input.values.as_ptr().add(first * blocks * BLOCK);
        let stride = input.scale_stride();
        let x_scales = input.scales.as_ptr().add(first * stride);
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); R];
        for b in 0..blocks {
            let w = weights.add(b * 4 * BLOCK);
            let w = [0, 1, 2, 3].map(|j| _mm256_loadu_si256(w.add(j * BLOCK).cast()));
            let scales = _mm256_loadu_ps(weight_scales.add(b * 8));
            let offset = _mm256_loadu_si256(offsets.add(b * 8).cast());
            for (r, acc) in acc.iter_mut().enumerate() {
                // The input plus 128, as the unsigned operand: pairs reach 255 · 16 · 2, and the
                // sums of four pairs 32640, still within 16 bits.
                let y = _mm256_loadu_si256(x.add((r * blocks + b) * BLOCK).cast());
                let p = w.map(|w| _mm256_maddubs_epi16(y, w));
                let interleave = |a, b| {
                    _mm256_add_epi16(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b))
                };
                let (p01, p23) = (interleave(p[0], p[1]), interleave(p[2], p[3]));
                let p = _mm256_add_epi16(
                    _mm256_unpacklo_epi64(p01, p23),
                    _mm256_unpackhi_epi64(p01, p23),
                );
                // Σ (x + 128) · w - 128 · Σ w: the same integers as the signed product, so that
                // each block's product is exact, as in llama.cpp.
                let products = _mm256_sub_epi32(_mm256_madd_epi16(p, ones), offset);
                let x_scale = _mm256_broadcast_ss(&*x_scales.add(r * stride + b));
                let scale = _mm256_mul_ps(scales, x_scale);
                *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(products), scale, *acc);
            }
        }
        for (sums, acc) in sums.iter_mut().zip(acc) {
            let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            _mm_storeu_ps(sums.as_mut_ptr(), halves);
        }
    }
}
