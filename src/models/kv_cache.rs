//! The decoder's key/value cache, kept outside the model so that the decoding loop can reorder
//! its rows (beam search) and drop finished ones (batching).

use candle_core::{Result, Tensor};

/// Keys and values of one decoder layer, each `[rows, heads, len, head_dim]`.
#[derive(Debug, Clone)]
pub struct LayerCache {
    /// Self-attention keys/values, grown by one position per decoding step.
    pub self_kv: Option<(Tensor, Tensor)>,
    /// Cross-attention keys/values over the encoder output: computed once per input.
    pub cross_kv: (Tensor, Tensor),
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
            if let Some((k, v)) = &layer.self_kv {
                layer.self_kv = Some((k.index_select(index, 0)?, v.index_select(index, 0)?));
            }
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
            if let Some((k, v)) = &layer.self_kv {
                layer.self_kv = Some((k.index_select(index, 0)?, v.index_select(index, 0)?));
            }
        }
        Ok(())
    }
}
