//! Encoder layers without the padding positions of a batch.
//!
//! Everything in an encoder layer except attention treats each position on its own, so those
//! parts can run over the real positions alone, packed into `[positions, d_model]` rows, and only
//! attention needs the padded `[batch, len, d_model]` layout back. In a batch of sentences of
//! mixed lengths the padding is often half of all positions (5408 positions for 2840 tokens on
//! the first 64 NTREX lines in batches of 16), and the linear layers are most of an encoder's
//! time. CTranslate2 does the same.
//!
//! Values at padding positions never reach a real position: attention masks them, and the
//! decoder's cross-attention masks them again. Here they are zeros instead of whatever the
//! reference computes there.

use candle_core::{Result, Tensor};

/// Where the real positions of a padded batch are.
#[derive(Debug)]
pub struct Packing {
    /// Flat `batch * len` index of each real position, in order.
    real: Tensor,
    /// For each flat padded position, its row among the packed ones; padding points at the
    /// extra zero row after them.
    unpack: Tensor,
    /// Real positions of each row of the batch.
    lengths: Vec<usize>,
    batch: usize,
    len: usize,
}

impl Packing {
    /// From a `[batch, len]` 0/1 attention mask; `None` when the batch has no padding.
    pub fn new(attention_mask: &Tensor) -> Result<Option<Self>> {
        let (batch, len) = attention_mask.dims2()?;
        let keep = attention_mask
            .to_dtype(candle_core::DType::U32)?
            .flatten_all()?
            .to_vec1::<u32>()?;
        let positions = keep.iter().filter(|&&k| k != 0).count() as u32;
        if positions as usize == keep.len() {
            return Ok(None);
        }
        let mut real = Vec::with_capacity(positions as usize);
        let mut unpack = Vec::with_capacity(keep.len());
        for (flat, &k) in keep.iter().enumerate() {
            if k != 0 {
                unpack.push(real.len() as u32);
                real.push(flat as u32);
            } else {
                unpack.push(positions);
            }
        }
        let lengths = keep
            .chunks(len.max(1))
            .map(|row| row.iter().filter(|&&k| k != 0).count())
            .collect();
        let device = attention_mask.device();
        Ok(Some(Self {
            real: Tensor::new(real, device)?,
            unpack: Tensor::new(unpack, device)?,
            lengths,
            batch,
            len,
        }))
    }

    /// `[batch, len, d]` → `[positions, d]`.
    pub fn pack(&self, xs: &Tensor) -> Result<Tensor> {
        let d = xs.dim(2)?;
        xs.reshape((self.batch * self.len, d))?
            .index_select(&self.real, 0)
    }

    /// `[positions, d]` → `[batch, len, d]`, with zeros at the padding.
    pub fn unpack(&self, xs: &Tensor) -> Result<Tensor> {
        let d = xs.dim(1)?;
        let zero = Tensor::zeros((1, d), xs.dtype(), xs.device())?;
        Tensor::cat(&[xs, &zero], 0)?
            .index_select(&self.unpack, 0)?
            .reshape((self.batch, self.len, d))
    }
}

/// The real positions of each row: `packing`'s, or every position of each row of `xs`
/// (`[batch, len, d]`) without one. The rows' positions are consecutive in the packed layout.
pub fn lengths(xs: &Tensor, packing: Option<&Packing>) -> Result<Vec<usize>> {
    match packing {
        Some(packing) => Ok(packing.lengths.clone()),
        None => {
            let (batch, len, _) = xs.dims3()?;
            Ok(vec![len; batch])
        }
    }
}

/// `xs` in the padded layout: unpacked where `packing` is given, else as it is.
pub fn padded(xs: Tensor, packing: Option<&Packing>) -> Result<Tensor> {
    match packing {
        Some(packing) => packing.unpack(&xs),
        None => Ok(xs),
    }
}

/// `xs` (`[batch, len, d]`) as the rows that `packing` keeps, or as it is without one.
pub fn packed(xs: Tensor, packing: Option<&Packing>) -> Result<Tensor> {
    match packing {
        Some(packing) => packing.pack(&xs),
        None => Ok(xs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn packs_the_real_positions_and_restores_them_with_zero_padding() -> Result<()> {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[[1u32, 1, 0], [1, 1, 1], [0, 1, 1]], &dev)?;
        let xs = Tensor::arange(1f32, 19., &dev)?.reshape((3, 3, 2))?;
        let packing = Packing::new(&mask)?.expect("the batch has padding");
        let packed = packing.pack(&xs)?;
        assert_eq!(
            packed.to_vec2::<f32>()?,
            [
                [1., 2.],
                [3., 4.],
                [7., 8.],
                [9., 10.],
                [11., 12.],
                [15., 16.],
                [17., 18.]
            ]
        );
        let restored = packing.unpack(&packed)?;
        let zeroed = xs.broadcast_mul(&mask.to_dtype(candle_core::DType::F32)?.unsqueeze(2)?)?;
        assert_eq!(restored.to_vec3::<f32>()?, zeroed.to_vec3::<f32>()?);
        assert_eq!(lengths(&packed, Some(&packing))?, [2, 3, 2]);
        assert_eq!(lengths(&xs, None)?, [3, 3, 3]);
        assert!(Packing::new(&Tensor::ones((2, 4), candle_core::DType::U32, &dev)?)?.is_none());
        Ok(())
    }
}
