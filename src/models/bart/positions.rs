//! The three kinds of absolute position embeddings of the BART family.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

/// fairseq reserves the first rows of a position table for padding.
const FAIRSEQ_OFFSET: usize = 2;

#[derive(Debug, Clone)]
pub(super) enum Positions {
    /// Marian: fixed sinusoids, sines in the first half of the dimensions, from position 0.
    Marian(Tensor),
    /// BART and mBART: a learned table whose first two rows are never used.
    Learned(Tensor),
    /// M2M100 and NLLB: fixed fairseq sinusoids. Positions count non-padding tokens only and
    /// start after `padding_idx`; padding tokens get the all-zero row `padding_idx`.
    Fairseq { table: Tensor, padding_idx: u32 },
}

impl Positions {
    pub(super) fn marian(n_pos: usize, dim: usize, device: &Device, dtype: DType) -> Result<Self> {
        Ok(Self::Marian(
            marian_sinusoids(n_pos, dim, device)?.to_dtype(dtype)?,
        ))
    }

    pub(super) fn learned(vb: VarBuilder, n_pos: usize, dim: usize) -> Result<Self> {
        Ok(Self::Learned(
            vb.get((n_pos + FAIRSEQ_OFFSET, dim), "weight")?,
        ))
    }

    pub(super) fn fairseq(
        n_pos: usize,
        dim: usize,
        padding_idx: u32,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        let table = fairseq_sinusoids(n_pos + FAIRSEQ_OFFSET, dim, padding_idx as usize, device)?;
        Ok(Self::Fairseq {
            table: table.to_dtype(dtype)?,
            padding_idx,
        })
    }

    /// The highest number of positions a sequence may use.
    pub(super) fn capacity(&self) -> usize {
        match self {
            Self::Marian(t) => t.dim(0).unwrap_or(0),
            Self::Learned(t) | Self::Fairseq { table: t, .. } => {
                t.dim(0).unwrap_or(0).saturating_sub(FAIRSEQ_OFFSET)
            }
        }
    }

    /// Position embeddings for `ids` (`[rows, len]`) following `past` earlier positions, as a
    /// tensor that broadcasts against `[rows, len, dim]`.
    pub(super) fn embed(&self, ids: &Tensor, past: usize) -> Result<Tensor> {
        let (rows, len) = ids.dims2()?;
        if past + len > self.capacity() {
            candle_core::bail!(
                "sequence of {} tokens exceeds the model's {} positions",
                past + len,
                self.capacity()
            );
        }
        match self {
            Self::Marian(table) => table.narrow(0, past, len),
            Self::Learned(table) => table.narrow(0, past + FAIRSEQ_OFFSET, len),
            Self::Fairseq { table, padding_idx } => {
                let ids = ids.to_vec2::<u32>()?;
                let mut positions = Vec::with_capacity(rows * len);
                for row in &ids {
                    let mut counted = past as u32;
                    for &id in row {
                        if id == *padding_idx {
                            positions.push(*padding_idx);
                        } else {
                            counted += 1;
                            positions.push(padding_idx + counted);
                        }
                    }
                }
                let index = Tensor::from_vec(positions, rows * len, table.device())?;
                let dim = table.dim(1)?;
                table.index_select(&index, 0)?.reshape((rows, len, dim))
            }
        }
    }
}

/// Marian's table, computed in f64 like the reference, then cast.
fn marian_sinusoids(n_pos: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; n_pos * dim];
    for pos in 0..n_pos {
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for (j, value) in row.iter_mut().enumerate() {
            // Column j of the interleaved table has frequency index j / 2; sines come from the
            // even columns, cosines from the odd ones.
            let (src, f): (usize, fn(f64) -> f64) = if j < half {
                (2 * j, f64::sin)
            } else {
                (2 * (j - half) + 1, f64::cos)
            };
            let angle = pos as f64 / 10000f64.powf((2 * (src / 2)) as f64 / dim as f64);
            *value = f(angle) as f32;
        }
    }
    Tensor::from_vec(table, (n_pos, dim), device)
}

/// fairseq's (tensor2tensor's) table: frequencies spaced by ln(10000)/(half - 1), sines then
/// cosines, computed in f32 as the reference does; the padding row is zero.
fn fairseq_sinusoids(
    n_pos: usize,
    dim: usize,
    padding_idx: usize,
    device: &Device,
) -> Result<Tensor> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|j| (j as f32 * -step).exp()).collect();
    let mut table = vec![0f32; n_pos * dim];
    for pos in 0..n_pos {
        if pos == padding_idx {
            continue;
        }
        let row = &mut table[pos * dim..(pos + 1) * dim];
        for (j, f) in freqs.iter().enumerate() {
            let angle = pos as f32 * f;
            row[j] = angle.sin();
            row[half + j] = angle.cos();
        }
    }
    Tensor::from_vec(table, (n_pos, dim), device)
}
