//! The AVX-512 VNNI tile of the Q5_0 prompt product (see `prompt.rs`).

use std::arch::x86_64::*;

use super::super::q8_rows::Q8Rows;
use super::prompt::{WidePanel, WideSums, WIDE_TILE_ROWS};
use super::BLOCK;

/// `sums[r][j]` = input row `first + r` times weight row `j` of the panel, for `r < rows`.
///
/// # Safety
/// AVX-512F and AVX512_VNNI; `1 <= rows <= WIDE_TILE_ROWS`; input rows `first..first + rows`
/// exist, with as many blocks per row as the panel and `input.scale_stride()` scales each; the
/// panel holds `blocks · 32 · COLUMNS` values and `blocks · COLUMNS` scales and offsets.
#[target_feature(enable = "avx512f,avx512vnni")]
pub(super) unsafe fn tile(
    panel: &WidePanel,
    input: &Q8Rows,
    first: usize,
    rows: usize,
    sums: &mut WideSums,
) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        match rows {
            8 => tile_rows::<8>(panel, input, first, sums),
            7 => tile_rows::<7>(panel, input, first, sums),
            6 => tile_rows::<6>(panel, input, first, sums),
            5 => tile_rows::<5>(panel, input, first, sums),
            4 => tile_rows::<4>(panel, input, first, sums),
            3 => tile_rows::<3>(panel, input, first, sums),
            2 => tile_rows::<2>(panel, input, first, sums),
            1 => tile_rows::<1>(panel, input, first, sums),
            _ => unreachable!("a tile of no rows"),
        }
    }
}

/// Per block, the panel's 8 registers (4 consecutive values of all 16 weight rows each) serve
/// every input row of the tile: `vpdpbusd` multiplies each 4 input bytes, broadcast, with
/// them and sums into one i32 lane per weight row, so a block's 16 integer products take 8
/// instructions and come out lane by lane, ready to scale, with no horizontal sums. The sums
/// start from the panel's `-128 · Σ w` (the unsigned input is the int8 input plus 128), so each
/// block's integer is the exact signed product, as in llama.cpp. With 8 input rows, 8
/// independent chains keep the multiply-add unit busy past its latency.
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn tile_rows<const R: usize>(
    panel: &WidePanel,
    input: &Q8Rows,
    first: usize,
    sums: &mut WideSums,
) {
    const { assert!(R <= WIDE_TILE_ROWS) };
    // SAFETY: what the caller guarantees (see `# Safety` of `tile`) is all this relies on.
    unsafe {
        let blocks = panel.blocks;
        let weights = panel.values.as_ptr();
        let x = input.values.as_ptr().add(first * blocks * BLOCK);
        let stride = input.scale_stride();
        let x_scales = input.scales.as_ptr().add(first * stride);
        let mut acc = [_mm512_setzero_ps(); R];
        for b in 0..blocks {
            let w = weights.add(b * 8 * 64);
            let w: [__m512i; 8] = std::array::from_fn(|g| _mm512_loadu_si512(w.add(64 * g).cast()));
            let scales = _mm512_loadu_ps(panel.scales.as_ptr().add(16 * b));
            let offsets = _mm512_loadu_si512(panel.offsets.as_ptr().add(16 * b).cast());
            for (r, acc) in acc.iter_mut().enumerate() {
                let xr = x.add((r * blocks + b) * BLOCK);
                let mut products = offsets;
                for (g, w) in w.iter().enumerate() {
                    let four = _mm512_set1_epi32(xr.add(4 * g).cast::<i32>().read_unaligned());
                    products = _mm512_dpbusd_epi32(products, four, *w);
                }
                let scale = _mm512_mul_ps(scales, _mm512_set1_ps(*x_scales.add(r * stride + b)));
                *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(products), scale, *acc);
            }
        }
        for (sums, acc) in sums.iter_mut().zip(acc) {
            _mm512_storeu_ps(sums.as_mut_ptr(), acc);
        }
    }
}
