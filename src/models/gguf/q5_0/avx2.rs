//! The AVX2 kernels of the Q5_0 products.

use std::arch::x86_64::*;

use super::{Panel, Q8Rows, TileSums, BLOCK, BLOCK_BYTES};

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
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
                3, 3, 3, 3,
            ),
            bit: _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64),
            minus_16: _mm256_set1_epi8(-16),
        }
    }

    /// The 32 signed values `(nibble | bit << 4) - 16` of the block at `block`
    /// (`BLOCK_BYTES` readable bytes).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn signed(&self, block: *const u8) -> __m256i {
        let qh = u32::from_le_bytes([*block.add(2), *block.add(3), *block.add(4), *block.add(5)]);
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
        // Where the bit is clear, nibble - 16 is nibble | 0xf0.
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
unsafe fn signed_products(x: __m256i, y: __m256i) -> __m256 {
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
        let x = unpacker.signed(block);
        let y = _mm256_loadu_si256(y.as_ptr().add(b * BLOCK).cast());
        acc = _mm256_fmadd_ps(
            _mm256_set1_ps(scale(block) * ys),
            signed_products(x, y),
            acc,
        );
    }
    sum(acc)
}

/// Unpacks a Q5_0 block to its signed values, one byte each.
///
/// # Safety
/// AVX2; `block` holds `BLOCK_BYTES` bytes and `out` has room for 32.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn unpack_signed(block: &[u8], out: &mut [i8]) {
    debug_assert!(block.len() >= BLOCK_BYTES && out.len() >= BLOCK);
    let values = Unpacker::new().signed(block.as_ptr());
    _mm256_storeu_si256(out.as_mut_ptr().cast(), values);
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
    match rows {
        4 => tile_rows::<4>(panel, quad, input, first, sums),
        3 => tile_rows::<3>(panel, quad, input, first, sums),
        2 => tile_rows::<2>(panel, quad, input, first, sums),
        _ => tile_rows::<1>(panel, quad, input, first, sums),
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
    let blocks = panel.blocks;
    let weights = panel.values.as_ptr().add(quad * blocks * 4 * BLOCK);
    let weight_scales = panel.scales.as_ptr().add(quad * blocks * 8);
    let offsets = panel.offsets.as_ptr().add(quad * blocks * 8);
    let x = input.values.as_ptr().add(first * blocks * BLOCK);
    let x_scales = input.scales.as_ptr().add(first * blocks);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..blocks {
        let w = weights.add(b * 4 * BLOCK);
        let w = [0, 1, 2, 3].map(|j| _mm256_loadu_si256(w.add(j * BLOCK).cast()));
        let scales = _mm256_loadu_ps(weight_scales.add(b * 8));
        let offset = _mm256_loadu_ps(offsets.add(b * 8));
        for (r, acc) in acc.iter_mut().enumerate() {
            // The input plus 128, as the unsigned operand: pairs reach 255 · 16 · 2, and the
            // sums of four pairs 32640, still within 16 bits.
            let y = _mm256_loadu_si256(x.add((r * blocks + b) * BLOCK).cast());
            let p = w.map(|w| _mm256_maddubs_epi16(y, w));
            let interleave =
                |a, b| _mm256_add_epi16(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
            let (p01, p23) = (interleave(p[0], p[1]), interleave(p[2], p[3]));
            let p = _mm256_add_epi16(
                _mm256_unpacklo_epi64(p01, p23),
                _mm256_unpackhi_epi64(p01, p23),
            );
            let products = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
            // d_w · (Σ (x + 128) · w) - d_w · 128 · Σ w, then times d_x.
            let weighted = _mm256_fmsub_ps(products, scales, offset);
            let x_scale = _mm256_broadcast_ss(&*x_scales.add(r * blocks + b));
            *acc = _mm256_fmadd_ps(weighted, x_scale, *acc);
        }
    }
    for (sums, acc) in sums.iter_mut().zip(acc) {
        let halves = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        _mm_storeu_ps(sums.as_mut_ptr(), halves);
    }
}
