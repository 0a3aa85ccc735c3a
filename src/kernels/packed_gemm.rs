//! A matrix product for linear layers on x86-64 CPUs with AVX-512, or AVX2 and FMA:
//! `out = x · Wᵀ + b` with `W` packed once at load time, as f32 or as int8.
//!
//! Written here because candle's CPU matmul (the `gemm` crate) uses AVX2 kernels on stable Rust
//! and re-packs the weight matrix on every call. While decoding, a layer sees only one row per
//! hypothesis, so that packing and the half-width kernels dominate a step: on the
//! opus-mt-ar-en-shaped benchmark model the output projection over 62834 words took 22 ms per step
//! at 16 rows through candle. The weight is stored here in column panels of [`PANEL`] outputs,
//! each panel `k × PANEL` contiguous, so a panel streams from memory once and stays in L2 while
//! every block of input rows passes over it.
//!
//! With few rows a product is bound by memory, not arithmetic: the 128 MB f32 output projection
//! of that model ran at 27 GFLOP/s on a 2-core AVX2 machine against ~100 GFLOP/s for weights that
//! fit in cache. The int8 panels (one scale per output column) read a quarter of the bytes, and
//! are multiplied in integers ([`int8`]). candle's quantized matmul (Q8_0) was measured first and
//! ran at half the f32 speed on these shapes, because it takes its dot products one output at a
//! time.

/// `$kernel::<R>(args)` with `R` the tile's `$rows` (at most [`ROWS`]): each kernel keeps a
/// constant number of rows of accumulators, so that they stay in registers.
macro_rules! by_rows {
    ($rows:expr, $kernel:ident($($arg:expr),*)) => {
        match $rows {
            1 => $kernel::<1>($($arg),*),
            2 => $kernel::<2>($($arg),*),
            3 => $kernel::<3>($($arg),*),
            4 => $kernel::<4>($($arg),*),
            5 => $kernel::<5>($($arg),*),
            _ => $kernel::<ROWS>($($arg),*),
        }
    };
}

mod int8;
mod saved;

pub use saved::{int8_lengths, INT8_LAYOUT};

use rayon::prelude::*;

use super::{isa, Isa, SendPtr};

/// Output columns per panel: four 16-lane registers.
pub const PANEL: usize = 64;
/// Input rows per micro-kernel call.
const ROWS: usize = 6;

/// `W` (`[n, k]`, PyTorch's layout) rearranged into `ceil(n / PANEL)` panels of `k × PANEL`.
#[derive(Debug, Clone)]
pub struct PackedWeight {
    panels: Panels,
    n: usize,
    k: usize,
}

#[derive(Debug, Clone)]
enum Panels {
    F32(Vec<f32>),
    /// Symmetric int8 with one f32 scale per output column, `w ≈ q * scale`, in the layout
    /// of [`int8::to_panels`].
    Int8 {
        data: Vec<i8>,
        scales: Vec<f32>,
    },
    /// [`Panels::Int8`] in the layout of AMX's tiles ([`int8::amx::to_quads`]), on CPUs that
    /// run them.
    Int8Quads {
        data: Vec<i8>,
        scales: Vec<f32>,
    },
}

impl Panels {
    /// Int8 panels in [`int8::to_panels`]' layout, as the kernels of `isa` read them.
    fn int8_for(isa: Isa, data: Vec<i8>, scales: Vec<f32>, n: usize, k: usize) -> Self {
        if isa >= Isa::Amx {
            let data = int8::amx::to_quads(&data, n, k);
            Self::Int8Quads { data, scales }
        } else {
            Self::Int8 { data, scales }
        }
    }
}

/// Rearranges a row-major `[n, k]` matrix into panels; columns past `n` in the last panel are 0.
fn to_panels<T: Copy + Default + Send + Sync>(
    n: usize,
    k: usize,
    value: impl Fn(usize, usize) -> T + Sync,
) -> Vec<T> {
    let panels = n.div_ceil(PANEL);
    let mut data = vec![T::default(); panels * k * PANEL];
    data.par_chunks_mut(k * PANEL)
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..PANEL.min(n - p * PANEL) {
                for kk in 0..k {
                    panel[kk * PANEL + c] = value(p * PANEL + c, kk);
                }
            }
        });
    data
}

impl PackedWeight {
    /// Packs a row-major `[n, k]` f32 weight.
    pub fn pack(weight: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k);
        let data = to_panels(n, k, |col, kk| weight[col * k + kk]);
        Self {
            panels: Panels::F32(data),
            n,
            k,
        }
    }

    /// Packs a row-major `[n, k]` weight as int8, each output column scaled by its largest
    /// magnitude (round to nearest, ties away from zero).
    pub fn pack_int8(weight: &[f32], n: usize, k: usize) -> Self {
        Self::pack_int8_for(isa(), weight, n, k)
    }

    /// [`PackedWeight::pack_int8`] for the kernels of `isa`.
    fn pack_int8_for(isa: Isa, weight: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(weight.len(), n * k);
        let mut scales: Vec<f32> = weight
            .par_chunks(k.max(1))
            .map(|row| row.iter().fold(0f32, |m, w| m.max(w.abs())) / 127.0)
            .collect();
        scales.resize(n.div_ceil(PANEL) * PANEL, 0.0);
        let data = int8::to_panels(n, k, |col, kk| {
            let scale = scales[col];
            if scale > 0.0 {
                (weight[col * k + kk] / scale).round().clamp(-127.0, 127.0) as i8
            } else {
                0
            }
        });
        Self {
            panels: Panels::int8_for(isa, data, scales, n, k),
            n,
            k,
        }
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
    isa() >= Isa::Avx2
}

/// `x` is `[m, k]` row-major; returns `[m, n]` row-major `x · Wᵀ + bias`.
///
/// # Panics
/// Where [`available`] is false, or the shapes disagree.
pub fn matmul(x: &[f32], m: usize, w: &PackedWeight, bias: Option<&[f32]>) -> Vec<f32> {
    matmul_on(isa(), x, m, w, bias)
}

/// [`matmul`] with the kernels of `isa`, which must be no more than [`isa()`].
fn matmul_on(isa: Isa, x: &[f32], m: usize, w: &PackedWeight, bias: Option<&[f32]>) -> Vec<f32> {
    assert!(
        Isa::Avx2 <= isa && isa <= super::isa(),
        "packed_gemm::matmul needs AVX-512, or AVX2 and FMA"
    );
    let (n, k) = (w.n, w.k);
    assert_eq!(x.len(), m * k);
    let quantized = match &w.panels {
        Panels::Int8 { .. } => Some(int8::QuantizedRows::new(x, m, k)),
        Panels::F32(_) => None,
        Panels::Int8Quads { data, scales } => {
            assert!(isa >= Isa::Amx, "AMX's weight layout needs AMX");
            return int8::amx::matmul(x, m, (n, k), (data, scales), bias);
        }
    };
    // The AVX2 kernel reads its tile's rows interleaved (see `avx2`).
    let interleaved = match (&w.panels, isa) {
        (Panels::F32(_), Isa::Avx2) => Some(interleave_rows(x, m, k)),
        _ => None,
    };
    // Every element is written below, so the buffer is not zeroed first (the logits of a
    // decoding step are megabytes).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let out_ptr = SendPtr(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let panels = n.div_ceil(PANEL);
    // On candle's thread pool, which runs the model's other operations: with rayon's pool for
    // these products, candle's workers spun between its operations on the cores these needed.
    let panel = |p: usize, next: bool| {
        let cols = PANEL.min(n - p * PANEL);
        let columns = p * PANEL..p * PANEL + cols;
        let bias = bias.map(|b| &b[columns.clone()]);
        let out_ptr = &out_ptr;
        for r0 in (0..m).step_by(ROWS) {
            let rows = ROWS.min(m - r0);
            // SAFETY: every task writes only its own panel's columns of rows `r0 .. r0 + rows`,
            // so no two tasks write the same element, and all indices are within `out`'s
            // `m * n`.
            let dst = unsafe { out_ptr.get().add(r0 * n + p * PANEL) };
            match (&w.panels, &quantized) {
                (Panels::F32(data), _) => {
                    let x = interleaved.as_deref().unwrap_or(x);
                    let tile = Tile {
                        x: &x[r0 * k..(r0 + rows) * k],
                        rows,
                        k,
                        cols,
                        bias,
                        dst,
                        stride: n,
                    };
                    let panel = &data[p * k * PANEL..(p + 1) * k * PANEL];
                    // The blocks of rows after the first read the panel from L2, leaving memory
                    // idle: they fetch the next panel meanwhile, a part each.
                    let ahead = match (r0 / ROWS, m.div_ceil(ROWS) - 1) {
                        (block @ 1.., later) if next => {
                            let next = &data[(p + 1) * k * PANEL..(p + 2) * k * PANEL];
                            let part = next.len().div_ceil(later);
                            &next[((block - 1) * part).min(next.len())
                                ..(block * part).min(next.len())]
                        }
                        _ => &[],
                    };
                    // SAFETY: the instruction set was checked; the tile's writes are its own,
                    // as above.
                    unsafe {
                        if isa >= Isa::Avx512 {
                            avx512::panel_rows(&tile, panel, ahead)
                        } else {
                            avx2::panel_rows(&tile, panel)
                        }
                    }
                }
                (Panels::Int8 { data, scales }, Some(rows_q)) => {
                    let (x, x_scales) = rows_q.rows(r0, rows);
                    let width = rows_q.width();
                    let tile = Tile {
                        x,
                        rows,
                        k: width,
                        cols,
                        bias,
                        dst,
                        stride: n,
                    };
                    let panel = &data[p * width * PANEL..(p + 1) * width * PANEL];
                    // SAFETY: as above; every CPU with AVX-512 or FMA also has AVX2.
                    unsafe {
                        int8::panel_rows(isa, &tile, panel, x_scales, &scales[columns.clone()])
                    }
                }
                (Panels::Int8 { .. }, None) => unreachable!("int8 weights quantize their inputs"),
                (Panels::Int8Quads { .. }, _) => unreachable!("AMX's products returned above"),
            }
        }
    };
    // With a few blocks of rows (a decoding step's), tasks of a few consecutive panels, so that
    // each panel's successor (which its later blocks of rows fetch) is the same thread's next
    // one. Many rows are bound by arithmetic, not memory, and keep tasks of one panel, which
    // balance better.
    let threads = candle_core::utils::barrier_pool().n_workers() + 1;
    let group = match m.div_ceil(ROWS) {
        2..=8 => (panels / (2 * threads)).clamp(1, 64),
        _ => 1,
    };
    candle_core::utils::barrier_pool().execute_chunked(panels.div_ceil(group), |groups| {
        for g in groups {
            let last = ((g + 1) * group).min(panels) - 1;
            (g * group..=last).for_each(|p| panel(p, p < last));
        }
    });
    // SAFETY: the panels cover all `n` columns and the row blocks all `m` rows, so each of the
    // `m * n` elements was initialised above.
    unsafe { out.set_len(m * n) };
    out
}

/// `x` (`[m, k]`) in blocks of [`ROWS`] rows, each block `[k][rows]`: a tile's inputs become
/// one stream instead of six rows `k` apart. With `k = 2048` those rows were 8 KB apart and all
/// fell into the same L1 set; interleaving took that shape from 60 to 93 GFLOP/s on 2 cores.
fn interleave_rows(x: &[f32], m: usize, k: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(m * k);
    for r0 in (0..m).step_by(ROWS) {
        let rows = ROWS.min(m - r0);
        let block = &x[r0 * k..(r0 + rows) * k];
        out.extend((0..k * rows).map(|i| block[(i % rows) * k + i / rows]));
    }
    out
}

/// Up to [`ROWS`] rows of input (`k` values each) against one panel, and where their outputs
/// go: `cols` floats at `dst + r * stride` for each row `r < rows`.
struct Tile<'a, X> {
    x: &'a [X],
    rows: usize,
    k: usize,
    cols: usize,
    bias: Option<&'a [f32]>,
    dst: *mut f32,
    stride: usize,
}

/// `out = acc * scale + bias` for `lanes` outputs of one row, from `acc` as stored lanes.
fn finish(acc: &[f32], scale: Option<&[f32]>, bias: Option<&[f32]>, dst: &mut [f32]) {
    for (j, d) in dst.iter_mut().enumerate() {
        let v = match scale {
            Some(s) => acc[j] * s[j],
            None => acc[j],
        };
        *d = v + bias.map_or(0.0, |b| b[j]);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{finish, Tile, PANEL, ROWS};

    /// # Safety
    /// The CPU must support AVX-512F; the tile's destination must be valid for its writes, and
    /// `panel` must hold `k * PANEL` weights.
    pub unsafe fn panel_rows(tile: &Tile<f32>, panel: &[f32], ahead: &[f32]) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe { by_rows!(tile.rows, kernel(tile, panel, ahead)) }
    }

    /// Cache lines of 16 floats.
    const LINE: usize = 16;

    #[target_feature(enable = "avx512f")]
    unsafe fn kernel<const R: usize>(tile: &Tile<f32>, panel: &[f32], ahead: &[f32]) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on; the
        // prefetches read nothing (and stay within `ahead`).
        unsafe {
            let k = tile.k;
            debug_assert!(tile.x.len() >= R * k && panel.len() >= k * PANEL);
            let mut acc = [[_mm512_setzero_ps(); 4]; R];
            let w = panel.as_ptr();
            let xp = tile.x.as_ptr();
            let lines = ahead.len().div_ceil(LINE);
            let per_step = lines.div_ceil(k.max(1));
            for kk in 0..k {
                for line in kk * per_step..((kk + 1) * per_step).min(lines) {
                    _mm_prefetch::<_MM_HINT_T1>(ahead.as_ptr().add(line * LINE).cast());
                }
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
            let mut lanes = [0f32; PANEL];
            for (r, acc) in acc.iter().enumerate() {
                for (v, acc) in acc.iter().enumerate() {
                    _mm512_storeu_ps(lanes.as_mut_ptr().add(16 * v), *acc);
                }
                let dst = std::slice::from_raw_parts_mut(tile.dst.add(r * tile.stride), tile.cols);
                finish(&lanes, None, tile.bias, dst);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{finish, Tile, PANEL, ROWS};

    /// Columns per pass over a panel: two 8-lane registers, so that [`ROWS`] rows of
    /// accumulators, the two weight vectors and the broadcast input fit AVX2's 16 registers.
    const SLICE: usize = 16;

    /// # Safety
    /// The CPU must support AVX2 and FMA; the tile's destination must be valid for its writes,
    /// its rows interleaved (`[k][rows]`, see `interleave_rows`), and `panel` must hold
    /// `k * PANEL` weights.
    pub unsafe fn panel_rows(tile: &Tile<f32>, panel: &[f32]) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            for start in (0..tile.cols).step_by(SLICE) {
                by_rows!(tile.rows, kernel(tile, panel, start))
            }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn kernel<const R: usize>(tile: &Tile<f32>, panel: &[f32], start: usize) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let k = tile.k;
            debug_assert!(
                tile.x.len() >= R * k && panel.len() >= k * PANEL && start + SLICE <= PANEL
            );
            let mut acc = [[_mm256_setzero_ps(); 2]; R];
            let w = panel.as_ptr().add(start);
            let xp = tile.x.as_ptr();
            for kk in 0..k {
                let row = w.add(kk * PANEL);
                let w0 = _mm256_loadu_ps(row);
                let w1 = _mm256_loadu_ps(row.add(8));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let xv = _mm256_broadcast_ss(&*xp.add(kk * R + r));
                    acc[0] = _mm256_fmadd_ps(xv, w0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(xv, w1, acc[1]);
                }
            }
            let lanes_here = (tile.cols - start).min(SLICE);
            let bias = tile.bias.map(|b| &b[start..start + lanes_here]);
            let mut lanes = [0f32; SLICE];
            for (r, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(8), acc[1]);
                let dst = std::slice::from_raw_parts_mut(
                    tile.dst.add(r * tile.stride + start),
                    lanes_here,
                );
                finish(&lanes, None, bias, dst);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub unsafe fn panel_rows(_: &super::Tile<f32>, _: &[f32], _: &[f32]) {
        unreachable!("packed_gemm::available() is false off x86-64")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub unsafe fn panel_rows(_: &super::Tile<f32>, _: &[f32]) {
        unreachable!("packed_gemm::available() is false off x86-64")
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

    /// Each kernel this CPU can run: AVX2 as well where AVX-512 is there.
    fn kernels() -> Vec<Isa> {
        [Isa::Amx, Isa::Avx512Vnni, Isa::Avx512, Isa::Avx2]
            .into_iter()
            .filter(|&kernel| kernel <= isa())
            .collect()
    }

    #[test]
    fn matches_the_definition_on_ragged_shapes() {
        let kernels = kernels();
        if kernels.is_empty() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA");
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
            (6, 16, 2048),
        ] {
            let x: Vec<f32> = (0..m * k).map(|_| rand()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| rand()).collect();
            let bias: Vec<f32> = (0..n).map(|_| rand()).collect();
            let packed = PackedWeight::pack(&w, n, k);
            let want = reference(&x, m, &w, n, k, &bias);
            // int8: exactly the integer product of the rounded weights and the inputs rounded
            // per row, scaled back.
            let want_int8 = int8::tests::reference(&x, m, &w, n, k, &bias);
            for &isa in &kernels {
                let got = matmul_on(isa, &x, m, &packed, Some(&bias));
                for (g, e) in got.iter().zip(&want) {
                    assert!((g - e).abs() < 1e-4, "{isa:?} {m}x{n}x{k}: {g} vs {e}");
                }
                let int8 = PackedWeight::pack_int8_for(isa, &w, n, k);
                let got = matmul_on(isa, &x, m, &int8, Some(&bias));
                for ((g, e), f) in got.iter().zip(&want_int8).zip(&want) {
                    assert!((g - e).abs() < 1e-5, "{isa:?} int8 {m}x{n}x{k}: {g} vs {e}");
                    assert!(
                        (g - f).abs() < 0.05,
                        "{isa:?} int8 {m}x{n}x{k}: {g} vs f32 {f}"
                    );
                }
            }
        }
    }
}
