//! The int8 tile kernel for AVX-512 VNNI: see the parent module's doc.

use std::arch::x86_64::*;

use super::{Tile, PANEL, ROWS, SLICE};

/// The panel's slices, each one 16-lane register of i32 sums.
const REGS: usize = PANEL / SLICE;

/// # Safety
/// As `int8::panel_rows`, and the CPU must support AVX-512F, AVX-512BW and AVX512_VNNI.
pub(super) unsafe fn panel_rows(
    tile: &Tile<i16>,
    panel: &[i8],
    x_scales: &[f32],
    w_scales: &[f32],
) {
    // SAFETY: what the caller guarantees (see `# Safety` of `int8::panel_rows`) is all this
    // relies on.
    unsafe {
        let scales = (x_scales, w_scales);
        by_rows!(tile.rows, kernel(tile, panel, scales))
    }
}

/// All [`PANEL`] columns in one pass: [`ROWS`] rows of [`REGS`] accumulators, the four
/// widened weight registers and the broadcast input pair take 29 of AVX-512's 32 registers.
/// Each slice of the panel is its own stream (the AVX2 kernel's layout, so that one packed
/// weight serves both kernels); the columns past the tile's are zero weights, computed and
/// not stored.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn kernel<const R: usize>(
    tile: &Tile<i16>,
    panel: &[i8],
    (x_scales, w_scales): (&[f32], &[f32]),
) {
    // SAFETY: what the caller guarantees (see `# Safety` of `int8::panel_rows`) is all this
    // relies on.
    unsafe {
        let width = tile.k;
        debug_assert!(tile.x.len() >= R * width && panel.len() >= PANEL * width);
        let mut acc = [[_mm512_setzero_si512(); REGS]; R];
        let w = panel.as_ptr();
        let xp = tile.x.as_ptr();
        for pair in 0..width / 2 {
            let mut wv = [_mm512_setzero_si512(); REGS];
            for (s, wv) in wv.iter_mut().enumerate() {
                let row = w.add(s * SLICE * width + pair * 2 * SLICE);
                *wv = _mm512_cvtepi8_epi16(_mm256_loadu_si256(row.cast()));
            }
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = xp.add(2 * (pair * R + r)).cast::<i32>().read_unaligned();
                let xv = _mm512_set1_epi32(x);
                // The sums stay within i32 (see the module doc), so this wrapping add of
                // two products is `vpmaddwd` then `vpaddd`, exactly.
                for (acc, wv) in acc.iter_mut().zip(&wv) {
                    *acc = _mm512_dpwssd_epi32(*acc, xv, *wv);
                }
            }
        }
        // Scaled in registers and stored masked, not through `finish` lane by lane as the AVX2
        // kernel is: that took this kernel from 245 to 292 GOPS on one core on the 16 rows by
        // 62834 words of a decoding step's output projection, and 6% on the encoder's k = 512
        // shapes (bench_gemm, CPU time). The operations are the AVX2 kernel's, in its order and
        // unfused (`(sum · x_scale) · w_scale + bias`, a missing bias adding 0), so that the
        // two kernels round alike.
        // Only the slices that hold some of the tile's columns, so that no pointer below
        // leaves its buffer.
        let slices = tile.cols.div_ceil(SLICE);
        let mut masks = [0 as __mmask16; REGS];
        let mut scales = [_mm512_setzero_ps(); REGS];
        let mut biases = [_mm512_setzero_ps(); REGS];
        for s in 0..slices {
            let lanes = (tile.cols - s * SLICE).min(SLICE);
            masks[s] = ((1u32 << lanes) - 1) as __mmask16;
            // Masked loads and stores touch nothing past the tile's `cols` columns.
            scales[s] = _mm512_maskz_loadu_ps(masks[s], w_scales.as_ptr().add(s * SLICE));
            if let Some(bias) = tile.bias {
                biases[s] = _mm512_maskz_loadu_ps(masks[s], bias.as_ptr().add(s * SLICE));
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            let x_scale = _mm512_set1_ps(x_scales[r]);
            let dst = tile.dst.add(r * tile.stride);
            for s in 0..slices {
                let v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[s]), x_scale);
                let v = _mm512_add_ps(_mm512_mul_ps(v, scales[s]), biases[s]);
                _mm512_mask_storeu_ps(dst.add(s * SLICE), masks[s], v);
            }
        }
    }
}
