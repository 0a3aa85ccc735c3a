//! The prompt path of the Q5_0 product: many input rows, so each task unpacks its weight rows
//! once into a panel that stays in L1, and runs register tiles over it: 4 input rows × 4 weight
//! rows with AVX2, 8 input rows × all 16 of the task's weight rows with AVX-512 VNNI.

use super::super::q8_rows::Q8Rows;
use super::{Q5_0Matrix, Row, BLOCK};
use crate::kernels::{isa, Isa};

/// Weight rows per parallel task.
pub(super) const COLUMNS: usize = 16;
/// Input rows of the register tile.
pub(super) const TILE_ROWS: usize = 4;
pub(super) type TileSums = [[f32; 4]; TILE_ROWS];
/// Input rows of the AVX-512 VNNI tile (whose columns are all [`COLUMNS`] weight rows).
pub(super) const WIDE_TILE_ROWS: usize = 8;
pub(super) type WideSums = [[f32; COLUMNS]; WIDE_TILE_ROWS];

/// Which tile runs the prompt product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum PromptKernel {
    /// 4 input rows × 4 weight rows, `vpmaddubsw` (AVX2).
    Avx2,
    /// 8 input rows × 16 weight rows, `vpdpbusd` (AVX-512 VNNI).
    Avx512Vnni,
}

impl PromptKernel {
    /// The fastest this CPU runs; `None` without AVX2, FMA and F16C.
    pub(super) fn for_this_cpu() -> Option<Self> {
        match isa() {
            Isa::Avx512Vnni | Isa::Amx => Some(Self::Avx512Vnni),
            Isa::Avx2 | Isa::Avx512 => Some(Self::Avx2),
            Isa::Portable => None,
        }
    }

    /// The kernels this CPU can run, for tests.
    #[cfg(test)]
    pub(super) fn available() -> Vec<Self> {
        match Self::for_this_cpu() {
            Some(Self::Avx512Vnni) => vec![Self::Avx2, Self::Avx512Vnni],
            Some(Self::Avx2) => vec![Self::Avx2],
            None => Vec::new(),
        }
    }
}

/// Every input row times weight rows `cols` of `matrix`, handed to `store(row, column, value)`.
pub(super) fn product(
    kernel: PromptKernel,
    matrix: &Q5_0Matrix,
    cols: std::ops::Range<usize>,
    input: &Q8Rows,
    store: impl FnMut(usize, usize, f32),
) {
    match kernel {
        PromptKernel::Avx2 => product_avx2(matrix, cols, input, store),
        PromptKernel::Avx512Vnni => product_wide(matrix, cols, input, store),
    }
}

fn product_wide(
    matrix: &Q5_0Matrix,
    cols: std::ops::Range<usize>,
    input: &Q8Rows,
    mut store: impl FnMut(usize, usize, f32),
) {
    let panel = WidePanel::unpack(matrix, cols.clone());
    let rows = input.rows();
    for first in (0..rows).step_by(WIDE_TILE_ROWS) {
        let mut sums = [[0f32; COLUMNS]; WIDE_TILE_ROWS];
        wide_tile(&panel, input, first, &mut sums);
        for (r, row) in sums.iter().enumerate().take(rows - first) {
            for (c, &v) in cols.clone().zip(row) {
                store(first + r, c, v);
            }
        }
    }
}

fn product_avx2(
    matrix: &Q5_0Matrix,
    cols: std::ops::Range<usize>,
    input: &Q8Rows,
    mut store: impl FnMut(usize, usize, f32),
) {
    let panel = Panel::unpack(matrix, cols.clone());
    let rows = input.rows();
    for first in (0..rows).step_by(TILE_ROWS) {
        for quad in 0..panel.quads() {
            let mut sums = [[0f32; 4]; TILE_ROWS];
            tile(&panel, quad, input, first, &mut sums);
            for (r, row) in sums.iter().enumerate().take(rows - first) {
                for (j, &v) in row.iter().enumerate() {
                    let c = cols.start + 4 * quad + j;
                    if c < cols.end {
                        store(first + r, c, v);
                    }
                }
            }
        }
    }
}

/// Weight rows unpacked for the prompt path, in fours ("quads"; a ragged last quad is filled
/// with zero weights). Per quad and block:
/// - `values`: the 32 signed values of each of its 4 rows;
/// - `scales`: the 4 rows' scales, twice (one per 128-bit half of the kernel's sums);
/// - `offsets`: per row and half, `128 · Σ` of those 16 values: what the kernel's unsigned
///   input (the int8 input plus 128) adds to each product.
pub(super) struct Panel {
    pub(super) values: Vec<i8>,
    pub(super) scales: Vec<f32>,
    pub(super) offsets: Vec<i32>,
    pub(super) blocks: usize,
}

impl Panel {
    fn unpack(matrix: &Q5_0Matrix, cols: std::ops::Range<usize>) -> Self {
        let blocks = matrix.blocks;
        let quads = cols.len().div_ceil(4);
        let mut values = vec![0i8; quads * blocks * 4 * BLOCK];
        let mut scales = vec![0f32; quads * blocks * 8];
        let mut offsets = vec![0i32; quads * blocks * 8];
        let mut sums = vec![[0i32; 2]; blocks];
        for (j, c) in cols.enumerate() {
            let w = matrix.row(c);
            let (quad, row) = (j / 4, j % 4);
            let first = quad * blocks * 4 + row;
            unpack_row(w, &mut values[first * BLOCK..], 4 * BLOCK, &mut sums);
            for (b, sums) in sums.iter().enumerate() {
                let at = quad * blocks + b;
                let d = w.scale(b);
                for (half, &sum) in sums.iter().enumerate() {
                    scales[at * 8 + 4 * half + row] = d;
                    offsets[at * 8 + 4 * half + row] = 128 * sum;
                }
            }
        }
        Self {
            values,
            scales,
            offsets,
            blocks,
        }
    }

    fn quads(&self) -> usize {
        self.values.len() / (4 * self.blocks * BLOCK)
    }
}

/// Weight rows unpacked for the AVX-512 VNNI tile, all [`COLUMNS`] of a task together (a ragged
/// last task's missing rows are zero weights). Per block:
/// - `values`: 8 runs of 64 bytes, run `g` holding values `4g..4g + 4` of each weight row in
///   turn (the lanes of one register);
/// - `scales`: the weight rows' scales;
/// - `offsets`: per weight row, `-128 · Σ` of the block's values, which the unsigned input
///   (the int8 input plus 128) adds to each product.
pub(super) struct WidePanel {
    pub(super) values: Vec<i8>,
    pub(super) scales: Vec<f32>,
    pub(super) offsets: Vec<i32>,
    pub(super) blocks: usize,
}

impl WidePanel {
    fn unpack(matrix: &Q5_0Matrix, cols: std::ops::Range<usize>) -> Self {
        let blocks = matrix.blocks;
        let mut values = vec![0i8; blocks * BLOCK * COLUMNS];
        let mut scales = vec![0f32; blocks * COLUMNS];
        let mut offsets = vec![0i32; blocks * COLUMNS];
        let mut row = vec![0i8; blocks * BLOCK];
        let mut sums = vec![[0i32; 2]; blocks];
        for (j, c) in cols.enumerate() {
            let w = matrix.row(c);
            unpack_row(w, &mut row, BLOCK, &mut sums);
            for (b, (block, sums)) in row.chunks_exact(BLOCK).zip(&sums).enumerate() {
                for (g, four) in block.chunks_exact(4).enumerate() {
                    let at = ((b * 8 + g) * COLUMNS + j) * 4;
                    values[at..at + 4].copy_from_slice(four);
                }
                scales[b * COLUMNS + j] = w.scale(b);
                offsets[b * COLUMNS + j] = -128 * (sums[0] + sums[1]);
            }
        }
        Self {
            values,
            scales,
            offsets,
            blocks,
        }
    }
}

/// `sums[r][j]` = input row `first + r` times weight row `j` of the panel.
fn wide_tile(panel: &WidePanel, input: &Q8Rows, first: usize, sums: &mut WideSums) {
    assert!(first < input.rows() && panel.blocks == input.blocks_per_row);
    let rows = WIDE_TILE_ROWS.min(input.rows() - first);
    let blocks = panel.blocks;
    assert!(panel.values.len() == blocks * BLOCK * COLUMNS);
    assert!(panel.scales.len() == blocks * COLUMNS && panel.offsets.len() == blocks * COLUMNS);
    assert!(
        isa() >= Isa::Avx512Vnni,
        "the AVX-512 VNNI tile on a CPU without it"
    );
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the instructions were checked for just above, and the shapes.
    unsafe {
        super::avx512_vnni::tile(panel, input, first, rows, sums)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}

/// Unpacks weight row `row` to signed bytes, block `b` at `out[b * stride..]`, with the sums
/// of each block's two 16-value halves.
pub(super) fn unpack_row(row: Row<'_>, out: &mut [i8], stride: usize, sums: &mut [[i32; 2]]) {
    let blocks = row.blocks;
    assert!(blocks > 0 && sums.len() >= blocks && out.len() >= (blocks - 1) * stride + BLOCK);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_gguf` only builds a matrix where AVX2 is present; lengths checked above.
    unsafe {
        super::avx2::unpack_row(row, out, stride, sums)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}

/// `sums[r][j]` = input row `first + r` times weight row `4 · quad + j` of the panel.
fn tile(panel: &Panel, quad: usize, input: &Q8Rows, first: usize, sums: &mut TileSums) {
    assert!(first < input.rows());
    let rows = TILE_ROWS.min(input.rows() - first);
    assert!(quad < panel.quads() && panel.blocks == input.blocks_per_row);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_gguf` only builds a matrix where AVX2 and FMA are present; the shapes
    // are checked above.
    unsafe {
        super::avx2::tile(panel, quad, input, first, rows, sums)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}
