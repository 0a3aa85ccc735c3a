//! The int8 product: int8 weights (one scale per output) times inputs quantized row by row to
//! 16-bit integers, multiplied and summed in 32-bit integers by AVX2's `vpmaddwd`, or on CPUs
//! with AVX-512 VNNI by its `vpdpwssd` ([`avx512_vnni`], below).
//!
//! `vpmaddwd` multiplies 16 pairs of i16 and adds each pair: 16 products per instruction
//! against 8 for an f32 FMA, and on AMD Zen 3 two of them issue per cycle beside the additions,
//! so a tile runs through its inputs at up to twice the f32 kernel's pace. Widening each weight
//! to f32 in registers instead (the first int8 path here) ran no faster than f32 weights once a
//! product was bound by arithmetic, as the encoder's are.
//!
//! The inputs get 16 bits, not the 8 bits of CTranslate2's and oneDNN's `vpmaddubsw` path:
//! that path saturates its 16-bit pair sums on AVX2 (255 · 127 · 2 > 32767) and rounds every
//! input to one of 255 levels. Here each row is scaled to the largest magnitude whose sums cannot
//! overflow i32: `k` products of at most `A · 127` must stay below 2³¹, so
//! `A = min(32767, (2³¹ − 1) / (127 k))`: 32767 for k ≤ 516, 8256 for k = 2048, 4128 for 4096.
//!
//! Layouts, both read front to back by the kernel: a panel holds, for each slice of [`SLICE`]
//! of its columns, the pairs of consecutive inputs of each column, `[PANEL / SLICE][k / 2]
//! [SLICE][2]`, so that one 16-byte load widened to i16 is 8 columns' pairs, the operand
//! `vpmaddwd` takes; `k` is rounded up to even with a zero weight. The quantized inputs are
//! interleaved in blocks of [`ROWS`] rows, `[k / 2][rows][2]`, so that a tile's input pairs are
//! one stream rather than six rows apart. In L1 this kernel runs at 1.3x the f32 one (56
//! against 44 GMAC/s on one core); these layouts took it from 112–140 to 152–230 GOPS on 2
//! cores on the opus-mt shapes (700 rows by 512×2048, 2048×512 and 512×512, and 16 rows by the
//! 62834-word output projection), where the f32 kernel runs at 46–112 GFLOP/s.
//!
//! With AVX-512 VNNI ([`Isa::Avx512Vnni`]) a second kernel reads the same panels and inputs.
//! `vpdpwssd` is `vpmaddwd` and `vpaddd` in one instruction, on 16 lanes: a tile covers all
//! [`PANEL`] columns in one pass, four widened weight registers against [`ROWS`] × 4
//! accumulators. The sums cannot overflow (above), so they equal the AVX2 kernel's, and they are
//! scaled by the same operations in the same order: the two kernels give the same bits, which
//! the tests check. On one core of a 2-core 2.6 GHz Xeon with AVX512_VNNI (`bench_gemm`
//! with `RAYON_NUM_THREADS=1`, counted per second of CPU time, as the machine was shared) it
//! runs at 225–315 GOPS on the encoder shapes of opus-mt and of tc-big (700 rows by 512×2048,
//! 2048×512, 512×512, 1024×4096, 4096×1024 and 1024×1024) against the AVX2 kernel's 120–150
//! (1.8–2.2×), and at 225–290 against 75–82 (3–3.5×) on the output projections (16 rows by
//! 62834 and 61109 words).
//!
//! With AMX ([`Isa::Amx`]) the product runs on tiles ([`amx`]): each 16-bit input split into
//! its two bytes, two tile products per block of weights, giving the same integers and so the
//! same bits; the panels are kept there in the tiles' layout, converted from this one at load.
//!
//! CTranslate2 multiplies with VNNI's other instruction, `vpdpbusd`: unsigned 8-bit inputs
//! (shifted by 128, the shift's sums taken back out) by int8 weights, four products a lane,
//! twice `vpdpwssd`'s. Its integer sums are those of inputs rounded to ±127, so what it would
//! cost was measured by setting the input limit here to 127 and running `tests/it/quantize.rs`:
//! marian-tiny's greedy outputs then matched f32 on 11 of its 12 training inputs (the test wants
//! 95%) and 22 of 32 inputs in all, against 12 and 29 with 16-bit inputs; over the six fixture
//! models, 115 of 152 inputs against 125. So the inputs keep 16 bits.

use rayon::prelude::*;

use super::{finish, Isa, Tile, PANEL, ROWS};

/// `k` rounded up to the pairs the kernel consumes.
pub(super) fn width(k: usize) -> usize {
    k.next_multiple_of(2)
}

/// Columns per pass of the kernel over a panel: two registers of 8 columns' i32 sums, so that
/// [`ROWS`] rows of them, the two weight registers and the broadcast input pair fit AVX2's 16
/// registers.
const SLICE: usize = 16;

/// Rearranges a row-major `[n, k]` int8 matrix (`value(col, kk)`) into pair panels.
pub(super) fn to_panels(n: usize, k: usize, value: impl Fn(usize, usize) -> i8 + Sync) -> Vec<i8> {
    let width = width(k);
    let mut data = vec![0i8; n.div_ceil(PANEL) * width * PANEL];
    data.par_chunks_mut(width * PANEL)
        .enumerate()
        .for_each(|(p, panel)| {
            for c in 0..PANEL.min(n - p * PANEL) {
                let slice = &mut panel[(c / SLICE) * width * SLICE..];
                for kk in 0..k {
                    slice[(kk / 2) * 2 * SLICE + 2 * (c % SLICE) + kk % 2] =
                        value(p * PANEL + c, kk);
                }
            }
        });
    data
}

/// The inputs as i16, `width(k)` per row (zero-padded) and interleaved in blocks of [`ROWS`]
/// rows, with one scale per row: `x ≈ q * scale`.
pub(super) struct QuantizedRows {
    data: Vec<i16>,
    scales: Vec<f32>,
    width: usize,
}

impl QuantizedRows {
    pub(super) fn new(x: &[f32], m: usize, k: usize) -> Self {
        let width = width(k);
        let limit = input_limit(k);
        if k == 0 {
            return Self {
                data: Vec::new(),
                scales: vec![0.0; m],
                width,
            };
        }
        let mut data = vec![0i16; m * width];
        // Beside the product it is a small pass, but alone on one core it was a tenth of it.
        // Whole blocks in parallel; a last, shorter block after them.
        let whole = m / ROWS;
        let (blocks, last) = data.split_at_mut(whole * ROWS * width);
        let mut scales: Vec<f32> =
            crate::kernels::parallel::map_chunks_mut(blocks, ROWS * width, |b, block| {
                quantize_block(&x[b * ROWS * k..(b + 1) * ROWS * k], k, limit, block)
            })
            .into_iter()
            .flatten()
            .collect();
        scales.extend(quantize_block(&x[whole * ROWS * k..], k, limit, last));
        Self {
            data,
            scales,
            width,
        }
    }

    /// Input `kk` of row `r`, quantized.
    #[cfg(test)]
    pub(super) fn value(&self, r: usize, kk: usize) -> i16 {
        let r0 = r - r % ROWS;
        let rows = ROWS.min(self.scales.len() - r0);
        self.data[r0 * self.width + (kk / 2) * 2 * rows + 2 * (r - r0) + kk % 2]
    }

    #[cfg(test)]
    pub(super) fn scale(&self, r: usize) -> f32 {
        self.scales[r]
    }

    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// The block of rows `r0 .. r0 + rows` (`r0` a multiple of [`ROWS`]) and their scales.
    pub(super) fn rows(&self, r0: usize, rows: usize) -> (&[i16], &[f32]) {
        debug_assert!(r0.is_multiple_of(ROWS) && (rows == ROWS || r0 + rows == self.scales.len()));
        (
            &self.data[r0 * self.width..(r0 + rows) * self.width],
            &self.scales[r0..r0 + rows],
        )
    }
}

/// The largest magnitude of the quantized inputs of rows of `k` inputs (see the module doc).
pub(super) fn input_limit(k: usize) -> f32 {
    (32767.0f64)
        .min(i32::MAX as f64 / (127.0 * width(k).max(1) as f64))
        .floor() as f32
}

/// Rounds `row` into `out` (as long) as integers whose largest magnitude is `limit` (each
/// `(x · limit / largest).round()`); returns the row's scale, `x ≈ q · scale`: 0 for a row of
/// zeros, or one with an infinity, whose integers are all 0. A NaN input is 0, as `as i16`
/// makes it.
pub(super) fn quantize_row(row: &[f32], limit: f32, out: &mut [i16]) -> f32 {
    assert_eq!(row.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::isa() >= Isa::Avx2 {
        // SAFETY: the CPU has AVX2 (checked), and the lengths agree (asserted).
        return unsafe { avx2_rounding::quantize_row(row, limit, out) };
    }
    let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    if largest == 0.0 || !largest.is_finite() {
        out.fill(0);
        return 0.0;
    }
    let inverse = limit / largest;
    for (q, &v) in out.iter_mut().zip(row) {
        *q = (v * inverse).round() as i16;
    }
    largest / limit
}

#[cfg(target_arch = "x86_64")]
mod avx2_rounding;

/// Quantizes the rows of `x` (`k` inputs each) into `block`, interleaved (`[width / 2][rows][2]`,
/// zero-padded); returns the rows' scales.
fn quantize_block(x: &[f32], k: usize, limit: f32, block: &mut [i16]) -> Vec<f32> {
    let rows = x.len() / k;
    let mut q = vec![0i16; k];
    x.chunks_exact(k)
        .enumerate()
        .map(|(r, row)| {
            let scale = quantize_row(row, limit, &mut q);
            for (kk, &q) in q.iter().enumerate() {
                block[(kk / 2) * 2 * rows + 2 * r + kk % 2] = q;
            }
            scale
        })
        .collect()
}

/// The tile's products with the kernel of `isa`: the VNNI one from [`Isa::Avx512Vnni`] up,
/// else the AVX2 one. Both give the same bits.
///
/// # Safety
/// The CPU must support `isa`, which must be at least [`Isa::Avx2`]; the tile's destination must
/// be valid for its writes, its `k` is the rows' `width`, and `panel` holds `width * PANEL`
/// weights.
pub(super) unsafe fn panel_rows(
    isa: Isa,
    tile: &Tile<i16>,
    panel: &[i8],
    x_scales: &[f32],
    w_scales: &[f32],
) {
    // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
    unsafe {
        if isa >= Isa::Avx512Vnni {
            avx512_vnni::panel_rows(tile, panel, x_scales, w_scales)
        } else {
            avx2::panel_rows(tile, panel, x_scales, w_scales)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512_vnni;

#[cfg(target_arch = "x86_64")]
pub(super) mod amx;

#[cfg(not(target_arch = "x86_64"))]
pub(super) mod amx {
    pub(in super::super) fn to_quads(_: &[i8], _: usize, _: usize) -> Vec<i8> {
        unreachable!("no AMX off x86-64")
    }
    pub(in super::super) fn to_pairs(_: &[i8], _: usize, _: usize) -> Vec<i8> {
        unreachable!("no AMX off x86-64")
    }
    pub(in super::super) fn bytes_to_quads(_: &[u8], _: usize, _: usize) -> Vec<i8> {
        unreachable!("no AMX off x86-64")
    }
    pub(in super::super) fn matmul(
        _: &[f32],
        _: usize,
        _: (usize, usize),
        _: (&[i8], &[f32]),
        _: Option<&[f32]>,
    ) -> Vec<f32> {
        unreachable!("no AMX off x86-64")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512_vnni {
    pub(super) use super::avx2::panel_rows;
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{finish, Tile, ROWS, SLICE};

    pub(super) unsafe fn panel_rows(
        tile: &Tile<i16>,
        panel: &[i8],
        x_scales: &[f32],
        w_scales: &[f32],
    ) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            for start in (0..tile.cols).step_by(SLICE) {
                let scales = (x_scales, w_scales);
                by_rows!(tile.rows, kernel(tile, panel, start, scales))
            }
        }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn kernel<const R: usize>(
        tile: &Tile<i16>,
        panel: &[i8],
        start: usize,
        (x_scales, w_scales): (&[f32], &[f32]),
    ) {
        // SAFETY: what the caller guarantees (see `# Safety`) is all this relies on.
        unsafe {
            let width = tile.k;
            debug_assert!(tile.x.len() >= R * width && panel.len() >= (start + SLICE) * width);
            let mut acc = [[_mm256_setzero_si256(); 2]; R];
            let w = panel.as_ptr().add(start * width);
            let xp = tile.x.as_ptr();
            for pair in 0..width / 2 {
                let row = w.add(pair * 2 * SLICE);
                let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.cast()));
                let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(row.add(16).cast()));
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = xp.add(2 * (pair * R + r)).cast::<i32>().read_unaligned();
                    let xv = _mm256_set1_epi32(x);
                    acc[0] = _mm256_add_epi32(acc[0], _mm256_madd_epi16(xv, w0));
                    acc[1] = _mm256_add_epi32(acc[1], _mm256_madd_epi16(xv, w1));
                }
            }
            let lanes_here = (tile.cols - start).min(SLICE);
            let scale = &w_scales[start..start + lanes_here];
            let bias = tile.bias.map(|b| &b[start..start + lanes_here]);
            let mut lanes = [0f32; SLICE];
            for (r, acc) in acc.iter().enumerate() {
                let x_scale = _mm256_set1_ps(x_scales[r]);
                let low = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[0]), x_scale);
                let high = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[1]), x_scale);
                _mm256_storeu_ps(lanes.as_mut_ptr(), low);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(8), high);
                let dst = std::slice::from_raw_parts_mut(
                    tile.dst.add(r * tile.stride + start),
                    lanes_here,
                );
                finish(&lanes, Some(scale), bias, dst);
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub(super) unsafe fn panel_rows(_: &super::Tile<i16>, _: &[i8], _: &[f32], _: &[f32]) {
        unreachable!("packed_gemm::available() is false off x86-64")
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{matmul_on, PackedWeight};
    use super::*;

    /// The int8 product by its definition: the integer dot products (in i64) of the weights
    /// rounded as `PackedWeight::pack_int8` rounds them and the rows as [`QuantizedRows`]
    /// rounds them, scaled back in the kernels' order.
    pub(in super::super) fn reference(
        x: &[f32],
        m: usize,
        w: &[f32],
        n: usize,
        k: usize,
        bias: &[f32],
    ) -> Vec<f32> {
        let rows_q = QuantizedRows::new(x, m, k);
        let w_scales: Vec<f32> = w
            .chunks(k)
            .map(|row| row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0)
            .collect();
        (0..m * n)
            .map(|at| {
                let (i, j) = (at / n, at % n);
                let dot: i64 = (0..k)
                    .map(|kk| {
                        let w_q = (w[j * k + kk] / w_scales[j]).round() as i64;
                        rows_q.value(i, kk) as i64 * w_q
                    })
                    .sum();
                dot as f32 * rows_q.scale(i) * w_scales[j] + bias[j]
            })
            .collect()
    }

    /// The VNNI kernel gives the integer reference's bits, and so the AVX2 kernel's, on shapes
    /// that leave every remainder (rows past a multiple of `ROWS`, columns past a multiple of
    /// the panel and of a slice, odd `k`), with `k` past 516 where the input range narrows, and
    /// rows whose sums reach the edge of i32.
    #[test]
    fn the_vnni_kernel_gives_the_integer_reference_bit_for_bit_on_ragged_shapes() {
        if crate::kernels::isa() < Isa::Avx512Vnni {
            eprintln!(
                "skipped: this CPU has no AVX-512 VNNI ({:?}), the VNNI int8 kernel is not tested",
                crate::kernels::isa()
            );
            return;
        }
        for (m, n, k) in [
            (1, 1, 1),
            (5, 70, 33),
            (7, 129, 515),
            (13, 200, 517),
            (6, 17, 2049),
            (11, 65, 4097),
        ] {
            // Deterministic values in [-1, 1]; the first row and column are all ones, so the
            // first output's sum is `width · limit · 127`, the largest the input range allows.
            let value = |i: usize, j: usize| {
                if i == 0 || j == 0 {
                    1.0
                } else {
                    ((i * 31 + j * 17) as f32 * 0.618).sin()
                }
            };
            let x: Vec<f32> = (0..m * k).map(|at| value(at / k, at % k)).collect();
            let w: Vec<f32> = (0..n * k).map(|at| value(at / k, at % k)).collect();
            let bias: Vec<f32> = (0..n).map(|j| value(j + 1, 1)).collect();
            let packed = PackedWeight::pack_int8_for(Isa::Avx512Vnni, &w, n, k);
            let want = reference(&x, m, &w, n, k, &bias);
            let vnni = matmul_on(Isa::Avx512Vnni, &x, m, &packed, Some(&bias));
            let avx2 = matmul_on(Isa::Avx2, &x, m, &packed, Some(&bias));
            for (at, ((v, a), e)) in vnni.iter().zip(&avx2).zip(&want).enumerate() {
                assert_eq!(v.to_bits(), e.to_bits(), "{m}x{n}x{k} at {at}: {v} vs {e}");
                assert_eq!(
                    v.to_bits(),
                    a.to_bits(),
                    "{m}x{n}x{k} at {at}: {v} vs AVX2 {a}"
                );
            }
        }
    }

    /// The AMX kernel gives the integer reference's bits, and so the VNNI kernel's, on shapes
    /// that leave every remainder of its tiles (rows past 16 and past a pass of rows, columns
    /// past a slice, a pair of slices and a panel, `k` past 64 and odd), with sums at the edge
    /// of i32 of both signs, and its weight layout converts back to the saved one exactly.
    #[test]
    fn the_amx_kernel_gives_the_integer_reference_bit_for_bit_on_ragged_shapes() {
        if crate::kernels::isa() < Isa::Amx {
            eprintln!(
                "skipped: this CPU or kernel gives no AMX tiles ({:?}), the AMX int8 kernel is not \
                 tested",
                crate::kernels::isa()
            );
            return;
        }
        for (m, n, k) in [
            (1, 1, 1),
            (5, 70, 33),
            (16, 17, 64),
            (17, 33, 65),
            (40, 129, 515),
            (13, 200, 517),
            (300, 65, 1000),
            (6, 17, 2049),
            (33, 96, 4097),
        ] {
            let value = |i: usize, j: usize| {
                if i == 0 || j == 0 {
                    1.0
                } else if i == 1 || j == 1 {
                    -1.0
                } else {
                    ((i * 31 + j * 17) as f32 * 0.618).sin()
                }
            };
            let x: Vec<f32> = (0..m * k).map(|at| value(at / k, at % k)).collect();
            let w: Vec<f32> = (0..n * k).map(|at| value(at / k, at % k)).collect();
            let bias: Vec<f32> = (0..n).map(|j| value(j + 1, 1)).collect();
            let want = reference(&x, m, &w, n, k, &bias);
            let amx = PackedWeight::pack_int8_for(Isa::Amx, &w, n, k);
            let pairs = PackedWeight::pack_int8_for(Isa::Avx512Vnni, &w, n, k);
            assert_eq!(amx.int8_parts(), pairs.int8_parts(), "{n}x{k} layouts");
            for bias in [Some(&bias[..]), None] {
                let got = matmul_on(Isa::Amx, &x, m, &amx, bias);
                let vnni = matmul_on(Isa::Avx512Vnni, &x, m, &pairs, bias);
                for (at, (g, v)) in got.iter().zip(&vnni).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        v.to_bits(),
                        "{m}x{n}x{k} at {at}: {g} vs VNNI {v}"
                    );
                }
            }
            let got = matmul_on(Isa::Amx, &x, m, &amx, Some(&bias));
            for (at, (g, e)) in got.iter().zip(&want).enumerate() {
                assert_eq!(g.to_bits(), e.to_bits(), "{m}x{n}x{k} at {at}: {g} vs {e}");
            }
        }
    }

    /// The vector rounding is `f32::round`'s (half away from zero) on halves of both signs,
    /// values just below a half, NaN (0) and rows with an infinity or of zeros, at every
    /// position of the vector and in the tail.
    #[test]
    fn rows_round_as_f32_round_does() {
        let limit = input_limit(1000);
        let special = [
            2.5,
            -2.5,
            0.5,
            -0.5,
            1.5,
            0.49999997,
            -0.49999997,
            f32::NAN,
            -0.0,
        ];
        for len in [1, 7, 8, 9, 23, 64] {
            for at in 0..len {
                for &v in &special {
                    // `limit` itself in the row makes the scale 1, so the halves stay halves.
                    let mut row: Vec<f32> = (0..len)
                        .map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.75 + 0.25)
                        .collect();
                    row[(at + 1) % len] = -limit;
                    row[at] = v;
                    let largest = row.iter().fold(0f32, |m, v| m.max(v.abs()));
                    let inverse = limit / largest;
                    let want: Vec<i16> =
                        row.iter().map(|&v| (v * inverse).round() as i16).collect();
                    let mut got = vec![7i16; len];
                    let scale = quantize_row(&row, limit, &mut got);
                    assert_eq!(got, want, "{row:?}");
                    assert_eq!(scale, largest / limit);
                }
            }
            let mut got = vec![7i16; len];
            assert_eq!(quantize_row(&vec![0.0; len], limit, &mut got), 0.0);
            assert!(got.iter().all(|&q| q == 0));
            let mut row = vec![1.0; len];
            row[len / 2] = f32::NEG_INFINITY;
            got.fill(7);
            assert_eq!(quantize_row(&row, limit, &mut got), 0.0);
            assert!(got.iter().all(|&q| q == 0));
        }
    }

    /// The i32 sums cannot overflow at the largest inputs and weights, of either sign.
    #[test]
    fn the_input_range_keeps_sums_within_i32() {
        for k in [1, 2, 515, 516, 517, 2048, 4096, 8191] {
            let limit = input_limit(k) as f64;
            assert!(limit * 127.0 * width(k) as f64 <= i32::MAX as f64);
            let rows = QuantizedRows::new(&vec![-3.5; k], 1, k);
            assert!(
                (0..k).all(|kk| rows.value(0, kk) as f64 == -limit),
                "k = {k}"
            );
        }
    }
}
