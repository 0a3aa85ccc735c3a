//! An AVX-512 matrix product for linear layers on CPU: `out = x · Wᵀ + b` with `W` packed once at
//! load time.
//!
//! Written here because candle's CPU matmul (the `gemm` crate) uses AVX2 kernels on stable Rust
//! and re-packs the weight matrix on every call. While decoding, a layer sees only one row per
//! hypothesis, so that packing and the half-width kernels dominate a step: on the
//! opus-mt-ar-en-shaped benchmark model the output projection over 62834 words took 22 ms per step
//! at 16 rows through candle. The weight is stored here in column panels of [`PANEL`] outputs,
//! each panel `k × PANEL` contiguous, so a panel streams from memory once and stays in L2 while
//! every block of input rows passes over it.

use rayon::prelude::*;

/// Output columns per panel: four 16-lane registers.
pub const PANEL: usize = 64;
/// Input rows per micro-kernel call.
const ROWS: usize = 6;

/// `W` (`[n, k]`, PyTorch's layout) rearranged into `ceil(n / PANEL)` panels of `k × PANEL`.
#[derive(Debug, Clone)]
pub struct PackedWeight {
    data: Vec<f32>,
    n: usize,
    k: usize,
}

impl PackedWeight {
    /// Packs a row-major `[n, k]` weight. Columns past `n` in the last panel are zero.
    pub fn pack(weight: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0f32; panels * k * PANEL];
        data.par_chunks_mut(k * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                for c in 0..PANEL.min(n - p * PANEL) {
                    let row = &weight[(p * PANEL + c) * k..(p * PANEL + c + 1) * k];
                    for (kk, &w) in row.iter().enumerate() {
                        panel[kk * PANEL + c] = w;
                    }
                }
            });
        Self { data, n, k }
    }

    pub fn out_dim(&self) -> usize {
        self.n
    }

    pub fn in_dim(&self) -> usize {
        self.k
    }
}

/// Whether this CPU can run [`matmul`].
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `x` is `[m, k]` row-major; returns `[m, n]` row-major `x · Wᵀ + bias`.
/// Callers must check [`available`] first.
pub fn matmul(x: &[f32], m: usize, w: &PackedWeight, bias: Option<&[f32]>) -> Vec<f32> {
    assert!(available(), "packed_gemm::matmul needs AVX-512");
    let (n, k) = (w.n, w.k);
    assert_eq!(x.len(), m * k);
    // Every element is written below, so the buffer is not zeroed first (the logits of a
    // decoding step are megabytes).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let out_ptr = SendPtr(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let panels = n.div_ceil(PANEL);
    (0..panels).into_par_iter().for_each(|p| {
        let panel = &w.data[p * k * PANEL..(p + 1) * k * PANEL];
        let cols = PANEL.min(n - p * PANEL);
        let out_ptr = &out_ptr;
        for r0 in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - r0);
            // SAFETY: AVX-512 presence was checked; every task writes only its own panel's
            // columns `p * PANEL .. p * PANEL + cols` of rows `r0 .. r0 + rows`, so no two
            // tasks write the same element, and all indices are within `out`'s `m * n`.
            unsafe {
                let dst = out_ptr.0.add(r0 * n + p * PANEL);
                let bias = bias.map(|b| &b[p * PANEL..p * PANEL + cols]);
                avx512::panel_rows(
                    &x[r0 * k..(r0 + rows) * k],
                    rows,
                    k,
                    panel,
                    cols,
                    bias,
                    dst,
                    n,
                );
            }
        }
    });
    // SAFETY: the panels cover all `n` columns and the row blocks all `m` rows, so each of the
    // `m * n` elements was initialised above.
    unsafe { out.set_len(m * n) };
    out
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only used for disjoint writes, see `matmul`.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{PANEL, ROWS};

    /// Multiplies up to [`ROWS`] rows of `x` by one panel and stores `cols` outputs per row.
    ///
    /// # Safety
    /// The CPU must support AVX-512F; `dst` must be valid for writes of `cols` floats at
    /// `dst + r * stride` for each row `r < rows`.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn panel_rows(
        x: &[f32],
        rows: usize,
        k: usize,
        panel: &[f32],
        cols: usize,
        bias: Option<&[f32]>,
        dst: *mut f32,
        stride: usize,
    ) {
        match rows {
            1 => kernel::<1>(x, k, panel, cols, bias, dst, stride),
            2 => kernel::<2>(x, k, panel, cols, bias, dst, stride),
            3 => kernel::<3>(x, k, panel, cols, bias, dst, stride),
            4 => kernel::<4>(x, k, panel, cols, bias, dst, stride),
            5 => kernel::<5>(x, k, panel, cols, bias, dst, stride),
            _ => kernel::<ROWS>(x, k, panel, cols, bias, dst, stride),
        }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize>(
        x: &[f32],
        k: usize,
        panel: &[f32],
        cols: usize,
        bias: Option<&[f32]>,
        dst: *mut f32,
        stride: usize,
    ) {
        debug_assert!(x.len() >= R * k && panel.len() >= k * PANEL);
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        let w = panel.as_ptr();
        let xp = x.as_ptr();
        for kk in 0..k {
            let row = w.add(kk * PANEL);
            let w0 = _mm512_loadu_ps(row);
            let w1 = _mm512_loadu_ps(row.add(16));
            let w2 = _mm512_loadu_ps(row.add(32));
            let w3 = _mm512_loadu_ps(row.add(48));
            for (r, acc) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*xp.add(r * k + kk));
                acc[0] = _mm512_fmadd_ps(xv, w0, acc[0]);
                acc[1] = _mm512_fmadd_ps(xv, w1, acc[1]);
                acc[2] = _mm512_fmadd_ps(xv, w2, acc[2]);
                acc[3] = _mm512_fmadd_ps(xv, w3, acc[3]);
            }
        }
        for (v, start) in (0..PANEL).step_by(16).enumerate() {
            if start >= cols {
                break;
            }
            let lanes = (cols - start).min(16);
            let mask: __mmask16 = if lanes == 16 {
                0xffff
            } else {
                (1u16 << lanes) - 1
            };
            let b = match bias {
                Some(b) => _mm512_maskz_loadu_ps(mask, b.as_ptr().add(start)),
                None => _mm512_setzero_ps(),
            };
            for (r, acc) in acc.iter().enumerate() {
                let value = _mm512_add_ps(acc[v], b);
                _mm512_mask_storeu_ps(dst.add(r * stride + start), mask, value);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn panel_rows(
        _: &[f32],
        _: usize,
        _: usize,
        _: &[f32],
        _: usize,
        _: Option<&[f32]>,
        _: *mut f32,
        _: usize,
    ) {
        unreachable!("packed_gemm::available() is false off x86_64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, w: &[f32], n: usize, k: usize, bias: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|kk| x[i * k + kk] as f64 * w[j * k + kk] as f64)
                    .sum();
                out[i * n + j] = dot as f32 + bias[j];
            }
        }
        out
    }

    #[test]
    fn matches_the_definition_on_ragged_shapes() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let mut seed = 7u32;
        let mut rand = || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        for (m, n, k) in [
            (1, 1, 1),
            (5, 70, 33),
            (13, 129, 64),
            (32, 64, 512),
            (7, 200, 3),
        ] {
            let x: Vec<f32> = (0..m * k).map(|_| rand()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rand()).collect();
            let bias: Vec<f32> = (0..n).map(|_| rand()).collect();
            let got = matmul(&x, m, &PackedWeight::pack(&w, n, k), Some(&bias));
            let want = reference(&x, m, &w, n, k, &bias);
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "{m}x{n}x{k}: {g} vs {e}");
            }
        }
    }
}
