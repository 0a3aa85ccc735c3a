//! The decoder's key/value cache, kept outside the model so that the decoding loop can reorder
//! its rows (beam search) and drop finished ones (batching).

use candle_core::{Result, Tensor};

/// Keys and values of one decoder layer, each `[rows, heads, len, head_dim]`.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// Self-attention keys/values, grown by one position per decoding step.
    self_kv: Option<SelfKv>,
    /// Cross-attention keys/values over the encoder output: computed once per input.
    pub cross_kv: (Tensor, Tensor),
}

/// Self-attention keys and values in buffers of `[rows, heads, capacity, head_dim]`, of which
/// the first `len` positions are filled. A step writes its position in place: concatenating
/// instead copied the whole cache of every layer on every step. Clones share the buffers, so a
/// clone must not be appended to while the original is still used.
#[derive(Debug, Clone)]
struct SelfKv {
    k: Tensor,
    v: Tensor,
    len: usize,
}

/// Positions added to a buffer when it is full: a whole reallocation every `GROW` steps.
const GROW: usize = 32;

impl SelfKv {
    /// A buffer of room for `capacity` positions holding `k`/`v` (`[rows, heads, len, dim]`,
    /// possibly strided) at its start.
    fn with_capacity(k: &Tensor, v: &Tensor, capacity: usize) -> Result<Self> {
        let (rows, heads, len, dim) = k.dims4()?;
        let grow = |t: &Tensor| -> Result<Tensor> {
            let room = Tensor::zeros((rows, heads, capacity - len, dim), t.dtype(), t.device())?;
            if len == 0 {
                return Ok(room);
            }
            Tensor::cat(&[t, &room], 2)
        };
        Ok(Self {
            k: grow(k)?,
            v: grow(v)?,
            len,
        })
    }

    fn views(&self) -> Result<(Tensor, Tensor)> {
        Ok((
            self.k.narrow(2, 0, self.len)?,
            self.v.narrow(2, 0, self.len)?,
        ))
    }
}

impl LayerCache {
    /// Appends this step's self-attention keys/values (`[rows, heads, t, head_dim]`, contiguous)
    /// and returns the keys/values of every position so far.
    pub fn append_self_kv(&mut self, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        let mut kv = match self.self_kv.take() {
            Some(kv) if kv.len + t <= kv.k.dim(2)? => kv,
            Some(kv) => {
                let (old_k, old_v) = kv.views()?;
                SelfKv::with_capacity(&old_k, &old_v, (kv.len + t).next_multiple_of(GROW))?
            }
            None => {
                let empty = k.narrow(2, 0, 0)?;
                SelfKv::with_capacity(&empty, &v.narrow(2, 0, 0)?, t.next_multiple_of(GROW))?
            }
        };
        kv.k.slice_set(k, 2, kv.len)?;
        kv.v.slice_set(v, 2, kv.len)?;
        kv.len += t;
        let views = kv.views()?;
        self.self_kv = Some(kv);
        Ok(views)
    }

    /// Keeps the self-attention rows named by `index` (see [`DecoderCache::select_rows`]).
    fn select_self_rows(&mut self, index: &Tensor) -> Result<()> {
        if let Some(kv) = &mut self.self_kv {
            kv.k = kv.k.index_select(index, 0)?;
            kv.v = kv.v.index_select(index, 0)?;
        }
        Ok(())
    }
}

/// Everything the decoder needs between steps for a batch of `rows` hypotheses.
#[derive(Debug, Clone)]
pub struct DecoderCache {
    pub layers: Vec<LayerCache>,
    /// Additive mask over encoder positions, `[rows, 1, 1, src_len]`.
    pub encoder_mask: Tensor,
    /// Number of decoder positions already processed.
    pub past_len: usize,
}

impl DecoderCache {
    /// The cache of a new batch: cross-attention keys/values per layer, no decoded positions.
    pub fn start(cross_kv: Vec<(Tensor, Tensor)>, encoder_mask: Tensor) -> Self {
        Self {
            layers: cross_kv
                .into_iter()
                .map(|cross_kv| LayerCache {
                    self_kv: None,
                    cross_kv,
                })
                .collect(),
            encoder_mask,
            past_len: 0,
        }
    }

    pub fn rows(&self) -> usize {
        self.encoder_mask.dim(0).unwrap_or(0)
    }

    /// Keeps (and repeats or permutes) the rows named by `index`, a `u32` tensor of row numbers.
    /// Used to expand each input into its beams, to drop finished inputs, and to follow beams.
    pub fn select_rows(&mut self, index: &Tensor) -> Result<()> {
        for layer in &mut self.layers {
            layer.select_self_rows(index)?;
            let (k, v) = &layer.cross_kv;
            layer.cross_kv = (k.index_select(index, 0)?, v.index_select(index, 0)?);
        }
        self.encoder_mask = self.encoder_mask.index_select(index, 0)?;
        Ok(())
    }

    /// Reorders only the self-attention rows. Beam search permutes beams within one input, and all
    /// beams of an input share the same encoder output, so the cross-attention rows need no copy.
    pub fn reorder_beams(&mut self, index: &Tensor) -> Result<()> {
        for layer in &mut self.layers {
            layer.select_self_rows(index)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Appending position by position, across reallocations and a row selection, holds what
    /// concatenation would.
    #[test]
    fn appends_in_place_like_concatenation() -> Result<()> {
        let dev = Device::Cpu;
        let step = |i: usize| {
            Tensor::arange(0f32, 12., &dev)?
                .affine(1.0, i as f64 * 100.0)?
                .reshape((3, 2, 1, 2))
        };
        let cross = Tensor::zeros((3, 2, 4, 2), DType::F32, &dev)?;
        let mut layer = LayerCache {
            self_kv: None,
            cross_kv: (cross.clone(), cross),
        };
        let mut expected: Option<Tensor> = None;
        for i in 0..GROW + 5 {
            let k = step(i)?;
            let (got_k, got_v) = layer.append_self_kv(&k, &(k.clone() * 2.0)?)?;
            let want = match expected.take() {
                Some(e) => Tensor::cat(&[&e, &k], 2)?,
                None => k,
            };
            assert_eq!(
                got_k.flatten_all()?.to_vec1::<f32>()?,
                want.flatten_all()?.to_vec1::<f32>()?
            );
            assert_eq!(
                got_v.flatten_all()?.to_vec1::<f32>()?,
                (&want * 2.0)?.flatten_all()?.to_vec1::<f32>()?
            );
            expected = Some(want);
        }
        let index = Tensor::new(&[2u32, 0], &dev)?;
        layer.select_self_rows(&index)?;
        let k = step(99)?.index_select(&index, 0)?;
        let (got_k, _) = layer.append_self_kv(&k, &k)?;
        let want = Tensor::cat(&[&expected.unwrap().index_select(&index, 0)?, &k], 2)?;
        assert_eq!(
            got_k.flatten_all()?.to_vec1::<f32>()?,
            want.flatten_all()?.to_vec1::<f32>()?
        );
        Ok(())
    }
}
