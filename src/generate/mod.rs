//! Decoding for every encoder-decoder model: greedy and beam search with Hugging Face semantics.
//!
//! A model only has to implement [`Seq2SeqModel`]; the loops here own the decoder cache, reorder
//! it for beam search and drop inputs that are finished, so every model family shares one
//! implementation of search, scoring and stopping.

mod beam;
mod config;
mod device;
mod greedy;
pub mod llm;
mod processors;

use candle_core::{Device, Tensor};

pub use config::{EarlyStopping, GenerationConfig};
pub use processors::{argmax, log_softmax, Processors};

use crate::models::kv_cache::DecoderCache;

/// What the decoding loops need from an encoder-decoder model.
pub trait Seq2SeqModel {
    /// Encodes a right-padded batch: `input_ids` and `attention_mask` are `[batch, len]` `u32`.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor>;

    /// Prepares the decoder for a batch: computes cross-attention keys/values once.
    fn start_decoder(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderCache>;

    /// Runs the decoder over `ids` (`[rows, len]`) after the positions in `cache`, extends the
    /// cache, and returns logits `[rows, len, vocab]` in f32.
    fn decode(&self, ids: &Tensor, cache: &mut DecoderCache) -> candle_core::Result<Tensor>;

    /// Feeds one token per row and returns next-token logits `[rows, vocab]` in f32.
    fn decode_step(
        &self,
        tokens: &Tensor,
        cache: &mut DecoderCache,
    ) -> candle_core::Result<Tensor> {
        let rows = tokens.dim(0)?;
        self.decode(&tokens.reshape((rows, 1))?, cache)?.squeeze(1)
    }

    /// The longest source or target sequence the model has positions for.
    fn max_positions(&self) -> usize;

    fn device(&self) -> &Device;
}

/// Generates one token sequence per input of a padded batch. Each result excludes the decoder
/// start token and includes the end-of-sequence token when one was generated.
pub fn generate<M: Seq2SeqModel + ?Sized>(
    model: &M,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    cfg: &GenerationConfig,
) -> candle_core::Result<Vec<Vec<u32>>> {
    let encoder_hidden = model.encode(input_ids, attention_mask)?;
    let cache = model.start_decoder(&encoder_hidden, attention_mask)?;
    let batch = input_ids.dim(0)?;
    if cfg.max_length <= 1 {
        return Ok(vec![Vec::new(); batch]);
    }
    if cfg.num_beams <= 1 {
        greedy::search(model, cache, batch, cfg)
    } else {
        beam::search(model, cache, batch, cfg)
    }
}

/// Reads a `[rows, vocab]` logits tensor into host memory as one flat row-major vector.
fn logits_to_host(logits: &Tensor) -> candle_core::Result<(Vec<f32>, usize)> {
    let vocab = logits.dim(1)?;
    Ok((logits.flatten_all()?.to_vec1::<f32>()?, vocab))
}

fn row_index(rows: &[u32], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::new(rows, device)
}
