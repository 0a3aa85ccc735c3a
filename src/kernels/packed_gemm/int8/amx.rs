//! The int8 product on AMX tiles ([`Isa::Amx`](crate::kernels::Isa::Amx)), giving the bits of
//! the other two kernels.
//!
//! A tile product (`tdpbssd`, `tdpbusd`) multiplies 16 rows of 64 one-byte inputs by 16 × 64
//! one-byte weights into 16 × 16 i32 sums: 16,384 products an instruction, where `vpdpwssd`
//! does 32. The inputs here have 16 bits (see the parent module), so each is split into its
//! high byte (signed) and its low byte (unsigned), `q = 256 · hi + lo`, and every tile of
//! weights meets both: `Σ q·w = 256 · Σ hi·w + Σ lo·w`. Each partial sum is smaller than the
//! whole one's bound, and the whole fits i32 (the input range's reason), so the two combine to
//! exactly the integer the VNNI kernel sums, and are then scaled by the same operations in the
//! same order: the same bits, which the tests check.
//!
//! Layouts: a weight tile is 16 groups of 4 consecutive `k` (a "quad"), each group holding the
//! 4 weights of 16 columns side by side, so a panel here is, for each slice of 16 of its
//! columns, `[depth / 4][16][4]` with `k` zero-padded to a whole number of tiles ([`depth`]).
//! That is the saved and VNNI layout's two consecutive pair rows, reordered within their 64
//! bytes ([`to_quads`]), so loading saved weights converts them in one pass. The inputs are
//! blocks of 16 rows, each block for every 64 values of `k` a tile of the rows' high bytes then
//! one of their low bytes, `[depth / 64][2][16][64]`, rows past `m` zero.

use std::arch::asm;
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::super::PANEL;
use super::{input_limit, quantize_row, width, SLICE};
use crate::kernels::SendPtr;

/// Rows of every tile: input rows of an input tile and of a sum tile, quads of a weight tile.
const TILE_ROWS: usize = 16;
/// Bytes of a tile row: 64 inputs of one row, or 4 weights of each of 16 columns.
const TILE_BYTES: usize = 64;
/// Bytes of a whole tile.
const TILE: usize = TILE_ROWS * TILE_BYTES;
/// Columns of a sum tile: the columns of one weight tile.
const TILE_COLS: usize = TILE_BYTES / 4;
const _: () = assert!(TILE_COLS == SLICE && PANEL.is_multiple_of(2 * SLICE));

/// `k` rounded up to whole tiles.
pub(in super::super) fn depth(k: usize) -> usize {
    k.next_multiple_of(TILE_BYTES)
}

/// Pair panels (the parent module's `to_panels` layout) of an `[n, k]` weight as quad panels.
pub(in super::super) fn to_quads(pairs: &[i8], n: usize, k: usize) -> Vec<i8> {
    convert(|i| pairs[i], pairs.len(), (n, k), true)
}

/// [`to_quads`] of pair panels as the bytes of a saved file: converted as they are read, with
/// no copy of them in between.
pub(in super::super) fn bytes_to_quads(pairs: &[u8], n: usize, k: usize) -> Vec<i8> {
    convert(|i| pairs[i] as i8, pairs.len(), (n, k), true)
}

/// Quad panels back to pair panels, the saved layout.
pub(in super::super) fn to_pairs(quads: &[i8], n: usize, k: usize) -> Vec<i8> {
    convert(|i| quads[i], quads.len(), (n, k), false)
}

/// The `from_len` weights `from(i)` of an `[n, k]` weight in the other layout: to quads where
/// `to_quads`, else back to pairs.
fn convert(
    from: impl Fn(usize) -> i8 + Sync,
    from_len: usize,
    (n, k): (usize, usize),
    to_quads: bool,
) -> Vec<i8> {
    let (width, depth) = (width(k), depth(k));
    let (pair_panel, quad_panel) = (width * PANEL, depth * PANEL);
    let panels = n.div_ceil(PANEL);
    let (from_panel, to_panel) = if to_quads {
        (pair_panel, quad_panel)
    } else {
        (quad_panel, pair_panel)
    };
    assert_eq!(from_len, panels * from_panel);
    let mut out = vec![0i8; panels * to_panel];
    out.par_chunks_mut(to_panel)
        .enumerate()
        .for_each(|(p, to)| {
            let base = p * from_panel;
            for s in 0..PANEL / SLICE {
                let (pairs, quads) = (s * width * SLICE, s * depth * SLICE);
                for kk in 0..width {
                    for c in 0..SLICE {
                        let pair_at = pairs + (kk / 2) * 2 * SLICE + 2 * c + kk % 2;
                        let quad_at = quads + (kk / 4) * TILE_BYTES + 4 * c + kk % 4;
                        if to_quads {
                            to[quad_at] = from(base + pair_at);
                        } else {
                            to[pair_at] = from(base + quad_at);
                        }
                    }
                }
            }
        });
    out
}

/// The inputs quantized as the other kernels quantize them, split into high and low bytes in
/// blocks of [`TILE_ROWS`] rows (see the module doc), with one scale per row.
struct TileRows {
    data: Vec<u8>,
    scales: Vec<f32>,
    depth: usize,
}

impl TileRows {
    fn new(x: &[f32], m: usize, k: usize) -> Self {
        let (depth, limit) = (depth(k), input_limit(k));
        let block = 2 * TILE_ROWS * depth;
        let mut data = vec![0u8; m.div_ceil(TILE_ROWS) * block];
        let scales = if k == 0 {
            vec![0.0; m]
        } else {
            crate::kernels::parallel::map_chunks_mut(&mut data, block, |b, block| {
                let rows = &x[b * TILE_ROWS * k..(m.min((b + 1) * TILE_ROWS)) * k];
                let mut q = vec![0i16; k];
                rows.chunks_exact(k)
                    .enumerate()
                    .map(|(r, row)| {
                        let scale = quantize_row(row, limit, &mut q);
                        for (tiles, q) in block.chunks_exact_mut(2 * TILE).zip(q.chunks(TILE_BYTES))
                        {
                            let (high, low) = tiles.split_at_mut(TILE);
                            let at = r * TILE_BYTES;
                            for (kk, q) in q.iter().enumerate() {
                                [low[at + kk], high[at + kk]] = q.to_le_bytes();
                            }
                        }
                        scale
                    })
                    .collect::<Vec<f32>>()
            })
            .into_iter()
            .flatten()
            .collect()
        };
        Self {
            data,
            scales,
            depth,
        }
    }

    fn rows(&self) -> usize {
        self.scales.len()
    }
}

/// `[m, n]` row-major `x · Wᵀ + bias` for `x` `[m, k]` and the quad panels of an `[n, k]`
/// weight with its scales (padded to whole panels).
///
/// # Panics
/// Where this CPU does not run [`Isa::Amx`](crate::kernels::Isa::Amx), or the lengths disagree.
pub(in super::super) fn matmul(
    x: &[f32],
    m: usize,
    (n, k): (usize, usize),
    (quads, w_scales): (&[i8], &[f32]),
    bias: Option<&[f32]>,
) -> Vec<f32> {
    assert!(crate::kernels::isa() >= crate::kernels::Isa::Amx);
    let panels_count = n.div_ceil(PANEL);
    assert!(x.len() == m * k && quads.len() == panels_count * depth(k) * PANEL);
    assert!(w_scales.len() >= n && bias.is_none_or(|b| b.len() >= n));
    let rows = TileRows::new(x, m, k);
    // Every element is written below (the panels cover all columns, the blocks all rows).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let out_ptr = SendPtr(out.spare_capacity_mut().as_mut_ptr().cast::<f32>());
    let product = Product {
        rows: &rows,
        quads,
        w_scales,
        bias,
        n,
        out: &out_ptr,
    };
    candle_core::utils::barrier_pool().execute_chunked(panels_count, |range| {
        // SAFETY: the CPU runs AMX (checked above), the lengths were checked, and each panel
        // index is handed to one task, which writes only that panel's columns.
        unsafe { panels(&product, range) }
    });
    // SAFETY: every one of the `m * n` elements was written above.
    unsafe { out.set_len(m * n) };
    out
}

/// Where the products of one matrix go, for [`panels`]: `out` holds `[m, n]` and is written
/// only where each call's panels are.
struct Product<'a> {
    rows: &'a TileRows,
    quads: &'a [i8],
    w_scales: &'a [f32],
    bias: Option<&'a [f32]>,
    n: usize,
    out: &'a SendPtr<f32>,
}

/// Input rows per pass over a call's panels: the inputs' high and low bytes of that many rows
/// take at most 512 KB, so that they stay in L2 while the panels pass.
fn row_chunk(depth: usize) -> usize {
    ((256 * 1024) / depth.max(1))
        .next_multiple_of(TILE_ROWS)
        .max(TILE_ROWS)
}

/// The tile configuration: palette 1, eight tiles of 16 rows × 64 bytes: 0–3 sums, 4–5 the
/// inputs' high and low bytes, 6–7 two slices' weights.
#[repr(C, align(64))]
struct Config([u8; 64]);

impl Config {
    const fn new() -> Self {
        let mut bytes = [0u8; 64];
        bytes[0] = 1;
        let mut tile = 0;
        while tile < 8 {
            bytes[16 + 2 * tile] = TILE_BYTES as u8;
            bytes[48 + tile] = TILE_ROWS as u8;
            tile += 1;
        }
        Self(bytes)
    }
}

/// The outputs of panels `range` for every input row.
///
/// # Safety
/// The CPU must support AMX-TILE, AMX-INT8 and AVX-512F, with the tile state granted to the
/// process ([`Isa::Amx`](crate::kernels::Isa::Amx)); `product.out` must be valid for writes of
/// the `[m, n]` outputs, no other thread writing the columns of these panels; `quads` must be
/// the quad panels of an `[n, k]` weight with `rows.depth == depth(k)`, and `w_scales` (and
/// `bias`, if any) cover the panels' columns.
unsafe fn panels(product: &Product, range: std::ops::Range<usize>) {
    let Product { rows, quads, n, .. } = *product;
    let (m, depth) = (rows.rows(), rows.depth);
    let panel_len = depth * PANEL;
    assert!(range.end <= n.div_ceil(PANEL) && quads.len() >= range.end * panel_len);
    assert!(rows.data.len() >= m.div_ceil(TILE_ROWS) * 2 * TILE_ROWS * depth);
    let config = Config::new();
    // SAFETY: the tile instructions exist and may run (the caller's first condition), and the
    // configuration is 64 bytes.
    unsafe { asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly)) };
    for chunk in (0..m).step_by(row_chunk(depth)) {
        for p in range.clone() {
            let panel = &quads[p * panel_len..(p + 1) * panel_len];
            let cols = PANEL.min(n - p * PANEL);
            for r0 in (chunk..m.min(chunk + row_chunk(depth))).step_by(TILE_ROWS) {
                let block = &rows.data[(r0 / TILE_ROWS) * 2 * TILE_ROWS * depth..];
                for pair in 0..cols.div_ceil(2 * SLICE) {
                    let first = 2 * pair * SLICE;
                    let weights = &panel[first * depth..(first + 2 * SLICE) * depth];
                    // SAFETY: as the caller guarantees; `block` holds the 16 rows' input tiles
                    // (`2 * 16 * depth` bytes, checked above) and `weights` two slices of
                    // `depth / 4` quads of 64 bytes.
                    let sums = unsafe { pair_sums(block, weights, depth) };
                    let columns = first..(first + 2 * SLICE).min(cols);
                    // SAFETY: the rows `r0 ..` and the panel's columns of `out` are this call's
                    // to write, as the caller guarantees.
                    unsafe {
                        store_avx512(product, &sums, r0, p * PANEL + columns.start, columns.len())
                    };
                }
            }
        }
    }
    // SAFETY: the tiles exist (the caller's first condition); releasing them returns their
    // state to the initial one, so none of it outlives the product.
    unsafe { asm!("tilerelease", options(nostack, nomem)) };
}

/// The i32 sums of one input block against two slices: for each slice, the high bytes' then
/// the low bytes' `[16][16]`.
#[repr(C, align(64))]
struct PairSums([[[i32; TILE_COLS]; TILE_ROWS]; 4]);

/// # Safety
/// The CPU must run AMX's tiles, configured as [`Config`] (as [`panels`] does); `block` holds
/// `2 * TILE_ROWS * depth` bytes and `weights` `2 * SLICE * depth`.
unsafe fn pair_sums(block: &[u8], weights: &[i8], depth: usize) -> PairSums {
    assert!(block.len() >= 2 * TILE_ROWS * depth && weights.len() >= 2 * SLICE * depth);
    let mut sums = PairSums([[[0; TILE_COLS]; TILE_ROWS]; 4]);
    if depth == 0 {
        return sums;
    }
    // SAFETY: what the caller guarantees. The block zeroes, multiplies and stores all its tiles
    // (named as clobbered), so no tile data outlives it; only the configuration, loaded once
    // per task by [`panels`], does, and no code the compiler emits uses tiles. Each pass loads the input block's high and low tile
    // for 64 values of `k` (2 KB, consecutive) and the two slices' weight tile for them (1 KB
    // of each slice's stream, `SLICE * depth` apart), all within `block` and `weights` for the
    // `depth / 64` passes; the four sum tiles go to `sums`, 4 KB.
    unsafe {
        asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{inputs} + {row}*1]",
            "tileloadd tmm5, [{inputs} + {row}*1 + 1024]",
            "tileloadd tmm6, [{first} + {row}*1]",
            "tileloadd tmm7, [{second} + {row}*1]",
            "tdpbssd tmm0, tmm4, tmm6",
            "tdpbusd tmm1, tmm5, tmm6",
            "tdpbssd tmm2, tmm4, tmm7",
            "tdpbusd tmm3, tmm5, tmm7",
            "add {inputs}, 2048",
            "add {first}, 1024",
            "add {second}, 1024",
            "dec {passes}",
            "jnz 2b",
            "tilestored [{out} + {row}*1], tmm0",
            "tilestored [{out} + {row}*1 + 1024], tmm1",
            "tilestored [{out} + {row}*1 + 2048], tmm2",
            "tilestored [{out} + {row}*1 + 3072], tmm3",
            inputs = inout(reg) block.as_ptr() => _,
            first = inout(reg) weights.as_ptr() => _,
            second = inout(reg) weights.as_ptr().add(SLICE * depth) => _,
            passes = inout(reg) depth / TILE_BYTES => _,
            out = in(reg) sums.0.as_mut_ptr(),
            row = in(reg) TILE_BYTES,
            out("tmm0") _,
            out("tmm1") _,
            out("tmm2") _,
            out("tmm3") _,
            out("tmm4") _,
            out("tmm5") _,
            out("tmm6") _,
            out("tmm7") _,
            options(nostack)
        );
    }
    sums
}

/// Scales the sums of rows `r0 ..` against `cols` columns from `first` (at most two slices)
/// into the outputs: `(256 · high + low)`, then the VNNI kernel's operations in its order.
///
/// # Safety
/// The CPU must support AVX-512F; the rows' outputs at those columns must be writable.
#[target_feature(enable = "avx512f")]
unsafe fn store_avx512(product: &Product, sums: &PairSums, r0: usize, first: usize, cols: usize) {
    let rows = TILE_ROWS.min(product.rows.rows() - r0);
    // SAFETY: what the caller guarantees; the masked loads and stores touch only the `cols`
    // columns from `first`, which `w_scales` and `bias` cover.
    unsafe {
        for s in 0..cols.div_ceil(SLICE) {
            let lanes = (cols - s * SLICE).min(SLICE);
            let mask = ((1u32 << lanes) - 1) as __mmask16;
            let at = first + s * SLICE;
            let scale = _mm512_maskz_loadu_ps(mask, product.w_scales.as_ptr().add(at));
            let bias = match product.bias {
                Some(bias) => _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(at)),
                None => _mm512_setzero_ps(),
            };
            let (high, low) = (&sums.0[2 * s], &sums.0[2 * s + 1]);
            for r in 0..rows {
                let high = _mm512_loadu_si512(high[r].as_ptr().cast());
                let low = _mm512_loadu_si512(low[r].as_ptr().cast());
                // The whole sum fits i32 (the input range), so the wrapping arithmetic here
                // gives it exactly whatever the partial sums.
                let sum = _mm512_add_epi32(_mm512_slli_epi32::<8>(high), low);
                let x_scale = _mm512_set1_ps(product.rows.scales[r0 + r]);
                let v = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), x_scale);
                let v = _mm512_add_ps(_mm512_mul_ps(v, scale), bias);
                let dst = product.out.get().add((r0 + r) * product.n + at);
                _mm512_mask_storeu_ps(dst, mask, v);
            }
        }
    }
}
