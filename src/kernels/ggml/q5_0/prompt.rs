//! The prompt path of the Q5_0 product: many input rows, so each task unpacks its weight rows
//! once into a panel that stays in L1, and runs register tiles of input rows × 4 weight rows
//! over it.

use super::super::q8_rows::Q8Rows;
use super::{Q5_0Matrix, Row, BLOCK};

/// Weight rows per parallel task.
pub(super) const COLUMNS: usize = 16;
/// Input rows of the register tile.
pub(super) const TILE_ROWS: usize = 4;
pub(super) type TileSums = [[f32; 4]; TILE_ROWS];

/// Every input row times weight rows `cols` of `matrix`, handed to `store(row, column, value)`.
pub(super) fn product(
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
    let rows = TILE_ROWS.min(input.rows() - first);
    assert!(quad < panel.quads() && rows > 0 && panel.blocks == input.blocks_per_row);
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `from_gguf` only builds a matrix where AVX2 and FMA are present; the shapes
    // are checked above.
    unsafe {
        super::avx2::tile(panel, quad, input, first, rows, sums)
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("Q5_0Matrix is only built on x86-64")
}
